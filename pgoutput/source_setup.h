// What the source database must have before capture can start: the
// publication, the logical slot (pgoutput), and full old rows on every
// published table. Runs on an ordinary (non-replication) connection.
#pragma once

#include <functional>
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
  // A slot PostgreSQL invalidated (wal_status "lost": it held back more WAL
  // than max_slot_wal_keep_size) can never stream again. With this it is
  // dropped and created anew (else: an error saying how to recover).
  bool recreate_lost_slot = false;
  // Called before a slot is created (missing, or replacing a lost one), with
  // the WAL insert position read just before: every transaction the new slot
  // sends commits after it, and none before it will ever be sent. The
  // capture records it so that stream tables behind it are refreshed in
  // full. An error stops the creation.
  std::function<absl::Status(Lsn wal_position_before)> before_create_slot;
};

struct SlotInfo {
  bool created = false;        // this call created it
  bool replaced_lost = false;  // ... replacing a slot PostgreSQL invalidated
  Lsn confirmed_flush = 0;     // where decoding resumes
};

// Refuses a hot standby (read replica: pg_is_in_recovery()) as the target,
// with a message saying so: trickled needs the primary, where it creates its
// slot, publication, catalog and stream tables (PostgreSQL 15 decodes no WAL
// on a standby, and a standby takes no writes).
absl::Status RefuseStandby(PgConnection& conn);

// Ensures the publication exists (created empty, publishing insert, update,
// delete and truncate).
absl::Status EnsurePublication(PgConnection& conn, const SourceSetupOptions& options);

// Ensures a logical slot with plugin pgoutput exists in this database (see
// recreate_lost_slot and before_create_slot).
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
