// Relation schemas as pgoutput describes them, versioned per relation OID.
//
// pgoutput sends a Relation message before the first change of a relation in
// each session, and again after anything invalidates its cached description:
// a reconnect, an ALTER TABLE, even an unrelated catalog invalidation. Most
// resends describe the same schema. The cache turns that stream into schema
// versions: a version changes only when the schema does, so every change can
// be stored with the version it was written under and read back with the
// right column names and types, across any number of ALTER TABLEs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pgoutput/messages.h"

namespace trickle::pgoutput {

using SchemaVersion = uint32_t;

// One version of one relation's schema: what a Relation message says, minus
// the xid of the transaction that happened to carry it.
struct RelationSchema {
  Oid relation_oid = 0;
  SchemaVersion version = 0;   // 1 for the first schema seen for the OID
  std::string namespace_name;  // "" means pg_catalog, as on the wire
  std::string relation_name;
  char replica_identity = 'd';  // d(efault), n(othing), f(ull), i(ndex)
  std::vector<RelationColumn> columns;

  // "public.orders" (pg_catalog spelled out when the wire sent "").
  std::string QualifiedName() const;
  // Same names, replica identity and columns (name, type, typmod, key flag)
  // as `message` describes; the version and OID are not compared.
  bool SameSchemaAs(const RelationMessage& message) const;
  bool operator==(const RelationSchema&) const = default;
};

// Schema versions of every relation seen on one replication stream.
//
// Not thread-safe: it belongs to the thread that decodes the stream. Pointers
// it returns stay valid for the cache's lifetime (versions are never
// removed or moved).
class RelationCache {
 public:
  RelationCache() = default;
  RelationCache(const RelationCache&) = delete;
  RelationCache& operator=(const RelationCache&) = delete;

  // Records the schema a Relation message describes and returns the version
  // that the relation's following changes use: the latest version when the
  // schema is unchanged (the usual resend), otherwise a new version one past
  // the latest. A Relation inside a streamed transaction that later aborts
  // may leave a version no stored change uses; numbers stay monotone, which
  // is all the versions promise.
  SchemaVersion Apply(const RelationMessage& message);

  // Puts back a schema version persisted earlier (for example by storage
  // after a restart), so numbering continues where it stopped. Versions of
  // one OID must be restored in ascending order; gaps are allowed (older
  // versions may have been trimmed). Restoring an identical version again is
  // a no-op. Errors: InvalidArgument for version 0, FailedPrecondition for an
  // out-of-order or conflicting version.
  absl::Status Restore(RelationSchema schema);

  // The latest schema of `oid`. NotFound when no Relation message for it was
  // seen or restored.
  absl::StatusOr<const RelationSchema*> Current(Oid oid) const;

  // A specific version of `oid`'s schema. NotFound when unknown (never seen,
  // or not restored).
  absl::StatusOr<const RelationSchema*> Get(Oid oid, SchemaVersion version) const;

  // Number of relations with at least one version.
  size_t relation_count() const { return versions_.size(); }

 private:
  // Ascending by version; unique_ptr keeps the schemas' addresses stable as
  // the vector grows.
  absl::flat_hash_map<Oid, std::vector<std::unique_ptr<RelationSchema>>> versions_;
};

}  // namespace trickle::pgoutput
