// What a table must be to be a stream table's source, and what its sources
// need before a stream table can read them: free functions on the caller's
// connection, used by create and by a rebuild (lifecycle.cc).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"

namespace trickle::scheduler {

// A partitioned source: refused with the reason (call it before anything
// is changed on the source side).
absl::Status RefusePartitionedSources(PgConnection& conn, const std::vector<delta::SourceRelation>& sources);
// Every source carries full old rows (REPLICA IDENTITY FULL): set where
// `set_replica_identity` allows it, else an error with the statement to run.
absl::Status EnsureFullOldRows(PgConnection& conn, const std::vector<delta::SourceRelation>& sources,
                               bool set_replica_identity);
// Every source is in the service's publication `publication`.
absl::Status EnsureSourcesPublished(PgConnection& conn, const std::vector<delta::SourceRelation>& sources,
                                    const std::string& publication);
// DESIGN step 5: waits until every transaction in progress now has ended
// (at most 5 minutes), so that none is in neither the initial snapshot nor
// the change log.
absl::Status WaitForInFlightTransactions(PgConnection& conn);

}  // namespace trickle::scheduler
