// Downstream publications: a stream table's changes as a PostgreSQL
// publication that other systems subscribe to (a second PostgreSQL with
// CREATE SUBSCRIPTION, Debezium, Kafka Connect), with no slot of ours and no
// extra infrastructure. Reference: docs/publications.md.
//
// The publisher owns three things, all in SQL on the caller's connection
// (it never opens one, and never starts or ends a transaction):
//  * the publication and the stream table's replica identity, which must
//    agree: PostgreSQL 15 refuses every UPDATE and DELETE of a table whose
//    publication column list misses a replica-identity column (the DDL
//    itself is accepted). ChooseLayout is the one rule; ApplyLayout makes
//    the database match it.
//  * the refresh-boundary message (`trickle.refresh`), emitted inside a
//    refresh transaction that changed the stream table;
//  * the full refresh of a published stream table as a diff against the
//    stored rows, so recomputing an unchanged row emits nothing.
//
// Ownership: a publication is the service's only when the catalog names it
// AND its comment says it belongs to that stream table (kCommentPrefix); a
// publication by another hand is never altered or dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"

namespace trickle::publisher {

// The logical message prefix of a refresh boundary.
inline constexpr char kRefreshMessagePrefix[] = "trickle.refresh";
// COMMENT ON PUBLICATION of every publication the service creates, followed
// by the stream table's "schema.name".
inline constexpr char kCommentPrefix[] = "trickle downstream publication of ";

// A stream table as the publisher sees it. `plan` is not owned and must
// outlive the call.
struct StreamTableRef {
  std::string schema;
  std::string name;
  const delta::DeltaPlan* plan = nullptr;

  std::string QualifiedName() const { return schema + "." + name; }
};

enum class IdentityKind {
  // REPLICA IDENTITY DEFAULT over a primary key on the stream table's
  // natural key: events carry business keys, old rows are not logged.
  kPrimaryKey,
  // REPLICA IDENTITY FULL: whole old rows are logged (a stream table read by
  // another one needs them; a table without a NOT NULL key has nothing else).
  kFull,
};

// The surrogate row key a published stream table gets when it has no NOT
// NULL natural key: `bigint GENERATED ALWAYS AS IDENTITY`, hidden from the
// stream table's readers like every __pgt_ column, stable while the row
// lives (updates keep it), new for every inserted row.
inline constexpr char kRowKeyColumn[] = "__pgt_id";

// How a published stream table is laid out.
struct PublicationLayout {
  IdentityKind identity = IdentityKind::kFull;
  // The primary key: the natural key, or {kRowKeyColumn}.
  std::vector<std::string> key;
  bool surrogate_key = false;  // key is kRowKeyColumn, added by the publisher
  // Published columns in table order; nullopt publishes every column (FULL
  // needs them all).
  std::optional<std::vector<std::string>> columns;
};

// The rule (pure). Every published stream table gets a primary key:
//  * its natural key when the plan's row identity is NOT NULL (identity
//    columns and no __pgt_row_id hash): group keys, carried source keys;
//  * else the surrogate kRowKeyColumn (nullable or multiset identity,
//    FULL-only plans).
// Replica identity and columns:
//  * read by another stream table -> FULL, every column published (the
//    reader's capture needs whole old rows, and PostgreSQL 15 then needs
//    every column in the list);
//  * else DEFAULT (the primary key); published columns = the visible ones
//    plus the key's hidden columns, in table order (the surrogate last).
PublicationLayout ChooseLayout(const delta::DeltaPlan& plan, bool read_by_stream_table);

// "<name>_pub" for a stream table in public, "<schema>_<name>_pub"
// elsewhere, cut to 63 bytes (PostgreSQL's limit) on a character boundary.
std::string DefaultPublicationName(const std::string& schema, const std::string& name);

// Fails with FailedPrecondition when a publication named `publication`
// exists that is not this stream table's (by its comment); OK when none
// exists.
absl::Status CheckNotForeign(PgConnection& conn, const std::string& publication,
                             const StreamTableRef& table);
// Whether `publication` exists and carries the comment naming `table`.
absl::StatusOr<bool> IsOwned(PgConnection& conn, const std::string& publication,
                             const StreamTableRef& table);

// CREATE PUBLICATION for the table (insert, update, delete, truncate), with
// its comment, then ApplyLayout. Run it inside the caller's transaction.
absl::Status Create(PgConnection& conn, const std::string& publication, const StreamTableRef& table,
                    bool read_by_stream_table);
// Makes the replica identity, primary key and column list match
// ChooseLayout; changes nothing when they already do (no lock taken). The
// identity and the column list change in the caller's transaction, so no
// refresh ever sees one without the other.
absl::Status ApplyLayout(PgConnection& conn, const std::string& publication,
                         const StreamTableRef& table, bool read_by_stream_table);
// DROP PUBLICATION and the identity back to FULL (the stream-table
// default); the primary key stays. Refuses (FailedPrecondition) a
// publication that is not this table's.
absl::Status Drop(PgConnection& conn, const std::string& publication, const StreamTableRef& table);

// ---- Inside a refresh transaction -------------------------------------------

// The stream table's row counters of the current transaction so far.
struct RowCounts {
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t deleted = 0;
  int64_t total() const { return inserted + updated + deleted; }
};
absl::StatusOr<RowCounts> ReadTransactionCounts(PgConnection& conn, const StreamTableRef& table);

struct RefreshBoundary {
  std::string action;                  // FULL or DIFFERENTIAL
  std::string frontier_lsn;            // the new frontier (F, E)
  std::vector<std::string> exceptions;
  bool truncated = false;              // the refresh emptied the table first
};
// Emits `trickle.refresh` (transactional) when the stream table changed
// since `before` (or was truncated); returns this refresh's counts.
absl::StatusOr<RowCounts> EmitRefreshBoundary(PgConnection& conn, const StreamTableRef& table,
                                              const RowCounts& before,
                                              const RefreshBoundary& boundary);

// A full refresh that changes only what differs: DELETE the stored rows
// the full result lacks, UPDATE those whose non-identity columns differ,
// INSERT the new ones, matched on the plan's identity (a NOT NULL key: one
// FULL JOIN finds the differences; a nullable identity: the full result in
// a temp table, matched through __pgt_row_id). Empty when the plan has no
// identity or no full SELECT (then TRUNCATE + INSERT is the only way).
std::vector<std::string> FullRefreshDiffSql(PgConnection& conn, const StreamTableRef& table);

}  // namespace trickle::publisher
