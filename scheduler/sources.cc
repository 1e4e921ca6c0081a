// What a table must be to be a source, and what a stream table's sources
// need before it can read them (scheduler/sources.h).
#include "scheduler/sources.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace trickle::scheduler {

absl::Status RefusePartitionedSources(PgConnection& conn, const std::vector<delta::SourceRelation>& sources) {
  std::vector<uint32_t> oids;
  for (const delta::SourceRelation& s : sources) oids.push_back(s.oid);
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult partitioned,
      conn.ExecParams("SELECT oid FROM pg_class WHERE oid = ANY ($1::oid[]) AND relkind = 'p' ORDER BY oid LIMIT 1",
                        {absl::StrCat("{", absl::StrJoin(oids, ","), "}")}));
  if (partitioned.rows() == 0) return absl::OkStatus();
  for (const delta::SourceRelation& s : sources) {
    if (std::to_string(s.oid) != partitioned.Get(0, 0)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "source table \"", s.schema, ".", s.name,
        "\" is partitioned, which stream tables do not support yet: its changes arrive under each partition, "
        "and every partition would need REPLICA IDENTITY FULL (without it an UPDATE fails on the source or "
        "stops the capture); read its partitions instead (a UNION ALL of them)"));
  }
  return absl::OkStatus();
}


absl::Status EnsureFullOldRows(PgConnection& conn, const std::vector<delta::SourceRelation>& sources,
                               bool set_replica_identity) {
  for (const delta::SourceRelation& s : sources) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult ident, conn.ExecParams("SELECT relreplident::text FROM pg_class WHERE oid = $1",
                                                             {std::to_string(s.oid)}));
    if (ident.rows() == 1 && ident.Get(0, 0) != "f") {
      std::string fix = absl::StrCat("ALTER TABLE ", conn.QuoteIdentifier(s.schema), ".",
                                     conn.QuoteIdentifier(s.name), " REPLICA IDENTITY FULL");
      if (!set_replica_identity) {
        return absl::FailedPreconditionError(absl::StrCat("source table \"", s.schema, ".", s.name,
                                                          "\" does not carry full old rows; run ", fix,
                                                          " or start trickled with --set-replica-identity"));
      }
      TRICKLE_RETURN_IF_ERROR(conn.Exec(fix).status());
    }
  }
  return absl::OkStatus();
}


absl::Status EnsureSourcesPublished(PgConnection& conn, const std::vector<delta::SourceRelation>& sources,
                                    const std::string& publication) {
  for (const delta::SourceRelation& s : sources) {
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult member,
        conn.ExecParams("SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2"
                        " AND tablename = $3",
                        {publication, s.schema, s.name}));
    if (member.rows() > 0) continue;
    auto added = conn.Exec(absl::StrCat("ALTER PUBLICATION ", conn.QuoteIdentifier(publication),
                                        " ADD TABLE ", conn.QuoteIdentifier(s.schema), ".",
                                        conn.QuoteIdentifier(s.name)));
    if (!added.ok() && SqlStateOf(added.status()) != "42710") return added.status();
  }
  return absl::OkStatus();
}


absl::Status WaitForInFlightTransactions(PgConnection& conn) {
  // DESIGN step 5: every transaction in progress when the sources joined the
  // publication must end before the initial snapshot, or its changes could
  // be neither in that snapshot nor in the change log.
  TRICKLE_ASSIGN_OR_RETURN(PgResult xmax,
                           conn.Exec("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"));
  std::string horizon(xmax.Get(0, 0));
  absl::Time deadline = absl::Now() + absl::Minutes(5);
  while (true) {
    TRICKLE_ASSIGN_OR_RETURN(
        PgResult passed,
        conn.ExecParams("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8", {horizon}));
    if (passed.Get(0, 0) == "t") return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          "transactions that were running when the sources joined the publication have not ended "
          "after 5 minutes; see pg_stat_activity for long-running transactions and retry");
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}


}  // namespace trickle::scheduler
