// What the source database must have before capture can start: the
// publication, the logical slot (pgoutput), and full old rows on every
// published table. Runs on an ordinary (non-replication) connection.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/lsn.h"
#include "common/pg_connection.h"

namespace trickle::pgoutput {

struct SourceSetupOptions {
  std::string slot_name = "trickle";
  std::string publication_name = "trickle_sources";
  // Create the slot / publication when missing (else: error naming them).
  bool create_missing = true;
  // ALTER TABLE ... REPLICA IDENTITY FULL on published tables that lack it
  // (else: error naming the tables and the statement to run).
  bool set_replica_identity = false;
};

struct SlotInfo {
  bool created = false;       // this call created it
  Lsn confirmed_flush = 0;    // where decoding resumes
};

// Ensures the publication exists (created empty, publishing insert, update,
// delete and truncate).
absl::Status EnsurePublication(PgConnection& conn, const SourceSetupOptions& options);

// Ensures a logical slot with plugin pgoutput exists in this database.
absl::StatusOr<SlotInfo> EnsureSlot(PgConnection& conn, const SourceSetupOptions& options);

// Published tables whose replica identity is not FULL, as "schema.table".
absl::StatusOr<std::vector<std::string>> TablesLackingFullIdentity(
    PgConnection& conn, const std::string& publication_name);

// Checks every published table carries full old rows; with
// set_replica_identity, fixes those that don't. The error names each table
// and the statement that fixes it.
absl::Status CheckReplicaIdentity(PgConnection& conn, const SourceSetupOptions& options);

// Sets REPLICA IDENTITY FULL on one table (quoted through libpq).
absl::Status SetReplicaIdentityFull(PgConnection& conn, const std::string& schema,
                                    const std::string& table);

}  // namespace trickle::pgoutput
