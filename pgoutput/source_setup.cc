#include "pgoutput/source_setup.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "trickle_pgoutput_stream_sql.h"

namespace trickle::pgoutput {

absl::Status RefuseStandby(PgConnection& conn) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult recovery, conn.Exec("SELECT pg_catalog.pg_is_in_recovery()"));
  if (recovery.Get(0, 0) != "t") return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the database at ", conn.Describe(),
      " is a hot standby (read replica): it is in recovery and takes no writes, and PostgreSQL 15 "
      "decodes no WAL on a standby; trickled needs the primary, where it creates its replication slot, "
      "publication, catalog and stream tables: point --dsn at the primary (readers may query the stream "
      "tables on the replica, which replicates them like any table)"));
}

absl::Status EnsurePublication(PgConnection& conn, const SourceSetupOptions& options) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult found,
                           conn.ExecParams(sql::kPublicationLookup, {options.publication_name}));
  if (found.rows() == 1) {
    if (found.Get(0, 1) != "t" || found.Get(0, 2) != "t" || found.Get(0, 3) != "t" ||
        found.Get(0, 4) != "t") {
      return absl::FailedPreconditionError(absl::StrCat(
          "publication \"", options.publication_name,
          "\" does not publish insert, update, delete and truncate; run ALTER PUBLICATION ",
          conn.QuoteIdentifier(options.publication_name),
          " SET (publish = 'insert, update, delete, truncate')"));
    }
    return absl::OkStatus();
  }
  if (!options.create_missing) {
    return absl::FailedPreconditionError(absl::StrCat(
        "publication \"", options.publication_name, "\" does not exist; run CREATE PUBLICATION ",
        conn.QuoteIdentifier(options.publication_name), " or start with --create-missing"));
  }
  auto created = conn.Exec(absl::StrCat("CREATE PUBLICATION ",
                                        conn.QuoteIdentifier(options.publication_name)));
  // Another starter may have won the race (duplicate_object): that is fine.
  if (!created.ok() && SqlStateOf(created.status()) != "42710") return created.status();
  return absl::OkStatus();
}

namespace {

// Runs options.before_create_slot with the WAL insert position.
absl::Status BeforeCreate(PgConnection& conn, const SourceSetupOptions& options) {
  if (!options.before_create_slot) return absl::OkStatus();
  TRICKLE_ASSIGN_OR_RETURN(PgResult wal, conn.Exec("SELECT pg_catalog.pg_current_wal_insert_lsn()::text"));
  TRICKLE_ASSIGN_OR_RETURN(Lsn position, ParseLsn(wal.Get(0, 0)));
  return options.before_create_slot(position);
}

}  // namespace

absl::StatusOr<SlotInfo> EnsureSlot(PgConnection& conn, const SourceSetupOptions& options) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult found, conn.ExecParams(sql::kSlotLookup, {options.slot_name}));
  TRICKLE_ASSIGN_OR_RETURN(PgResult db, conn.Exec("SELECT current_database()"));
  SlotInfo info;
  if (found.rows() == 1) {
    if (found.Get(0, 5) != "logical" || found.Get(0, 0) != "pgoutput") {
      return absl::FailedPreconditionError(absl::StrCat(
          "replication slot \"", options.slot_name, "\" exists but is a ", found.Get(0, 5),
          " slot with plugin \"", found.Get(0, 0),
          "\"; Trickle needs a logical slot with plugin pgoutput: choose another --slot-name "
          "or drop it with SELECT pg_drop_replication_slot(",
          conn.QuoteLiteral(options.slot_name), ")"));
    }
    if (found.Get(0, 1) != db.Get(0, 0)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replication slot \"", options.slot_name, "\" belongs to database \"", found.Get(0, 1),
          "\", not \"", db.Get(0, 0), "\"; choose another --slot-name"));
    }
    if (found.Get(0, 6) != "lost") {
      if (!found.IsNull(0, 4)) {
        TRICKLE_ASSIGN_OR_RETURN(info.confirmed_flush, ParseLsn(found.Get(0, 4)));
      }
      return info;
    }
    std::string confirmed = found.IsNull(0, 4) ? "?" : std::string(found.Get(0, 4));
    if (!options.recreate_lost_slot) {
      return absl::FailedPreconditionError(absl::StrCat(
          "replication slot \"", options.slot_name,
          "\" was invalidated by PostgreSQL (wal_status lost: it held back more WAL than "
          "max_slot_wal_keep_size allows), so the changes after ", confirmed,
          " can no longer be streamed; start with --recreate-lost-slot to replace it and refresh "
          "every stream table in full, or drop it with SELECT pg_drop_replication_slot(",
          conn.QuoteLiteral(options.slot_name), ") and start again (same effect)"));
    }
    TRICKLE_RETURN_IF_ERROR(BeforeCreate(conn, options));
    auto dropped = conn.ExecParams(sql::kSlotDrop, {options.slot_name});
    if (!dropped.ok()) {
      return absl::Status(dropped.status().code(),
                          absl::StrCat("dropping the invalidated replication slot \"", options.slot_name,
                                       "\": ", dropped.status().message()));
    }
    info.replaced_lost = true;
    spdlog::warn("dropped replication slot \"{}\": PostgreSQL had invalidated it (changes after {} were lost)",
                 options.slot_name, confirmed);
  } else if (!options.create_missing) {
    return absl::FailedPreconditionError(absl::StrCat(
        "replication slot \"", options.slot_name,
        "\" does not exist; run SELECT pg_create_logical_replication_slot(",
        conn.QuoteLiteral(options.slot_name), ", 'pgoutput') or start with --create-missing"));
  }
  if (!info.replaced_lost) TRICKLE_RETURN_IF_ERROR(BeforeCreate(conn, options));
  auto created = conn.ExecParams(sql::kSlotCreate, {options.slot_name});
  if (!created.ok()) {
    if (SqlStateOf(created.status()) == "42710") return EnsureSlot(conn, options);  // raced
    return absl::Status(created.status().code(),
                        absl::StrCat("creating replication slot \"", options.slot_name,
                                     "\": ", created.status().message(),
                                     " (the role needs REPLICATION, and max_replication_slots "
                                     "a free slot)"));
  }
  info.created = true;
  TRICKLE_ASSIGN_OR_RETURN(info.confirmed_flush, ParseLsn(created->Get(0, 0)));
  return info;
}

absl::StatusOr<std::vector<std::string>> TablesLackingFullIdentity(
    PgConnection& conn, const std::string& publication_name) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult rows,
                           conn.ExecParams(sql::kReplicaIdentityCheck, {publication_name}));
  std::vector<std::string> tables;
  for (int i = 0; i < rows.rows(); ++i) {
    tables.push_back(absl::StrCat(rows.Get(i, 0), ".", rows.Get(i, 1)));
  }
  return tables;
}

absl::Status SetReplicaIdentityFull(PgConnection& conn, const std::string& schema,
                                    const std::string& table) {
  return conn
      .Exec(absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(schema), ".",
                         conn.QuoteIdentifier(table), " REPLICA IDENTITY FULL"))
      .status();
}

absl::Status CheckReplicaIdentity(PgConnection& conn, const SourceSetupOptions& options) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult rows,
                           conn.ExecParams(sql::kReplicaIdentityCheck, {options.publication_name}));
  std::vector<std::string> problems;
  for (int i = 0; i < rows.rows(); ++i) {
    std::string schema(rows.Get(i, 0)), table(rows.Get(i, 1));
    if (options.set_replica_identity) {
      TRICKLE_RETURN_IF_ERROR(SetReplicaIdentityFull(conn, schema, table));
      continue;
    }
    char ident = rows.Get(i, 2).empty() ? '?' : rows.Get(i, 2)[0];
    const char* name = ident == 'd' ? "DEFAULT" : ident == 'n' ? "NOTHING" : ident == 'i' ? "USING INDEX" : "?";
    problems.push_back(absl::StrCat(
        "source table \"", schema, ".", table, "\" has REPLICA IDENTITY ", name, "; run ALTER TABLE ",
        conn.QuoteIdentifier(schema), ".", conn.QuoteIdentifier(table), " REPLICA IDENTITY FULL"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      absl::StrJoin(problems, "; "),
      " (or start with --set-replica-identity). Trickle needs full old rows to compute deltas."));
}

}  // namespace trickle::pgoutput
