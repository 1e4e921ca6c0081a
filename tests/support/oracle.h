// The correctness oracle for tests, independent of the engine's own verify:
// in one snapshot, (ST EXCEPT ALL Q) UNION ALL (Q EXCEPT ALL ST) over the
// stream table's visible columns (read from pg_attribute, not from the plan).
#pragma once

#include <string>

#include "common/pg_connection.h"

namespace trickle::testing {

// Rows by which stream table `st` (a relation name as SQL text) and `query`
// differ; -1 when the check itself failed (with a test failure recorded).
int64_t OracleDifferences(PgConnection& conn, const std::string& st, const std::string& query);

}  // namespace trickle::testing
