// The correctness oracle for the delta engine, on a real PostgreSQL.
//
// For one defining query: create the source tables with random data (seeded),
// build the plan from facts the catalog adapter gathers, create and fully
// refresh the stream table, then for each of N random change batches:
//   1. copy every source table (the pre-state),
//   2. apply the batch (inserts, updates including key and join-key changes,
//      deletes, NULLs, duplicates, a join partner deleted in the batch that
//      points at it, a group emptied and refilled) and commit,
//   3. in one REPEATABLE READ transaction: fill the delta tables with the
//      consolidated difference (copy EXCEPT ALL live as 'D', live EXCEPT ALL
//      copy as 'I'), run the MERGE, and check in the same snapshot that
//      (ST EXCEPT ALL Q) and (Q EXCEPT ALL ST) are both empty.
// At the end the incrementally maintained table, hidden columns included,
// must equal a fresh full refresh.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"

namespace trickle::delta::testing {

struct OracleCase {
  std::string name;
  std::string query;
  // Expected plan: differential (the default) or full refresh only.
  bool expect_differential = true;
};

struct OracleOptions {
  uint64_t seed = 0;
  int batches = 25;
  // Statements are logged to stderr when set (debugging a failing seed).
  bool verbose = false;
};

struct OracleStats {
  int batches = 0;
  int64_t changed_rows = 0;  // total delta-table rows fed to the engine
  std::string explanation;
};

// The source tables every case reads: schema "src" (customers, orders,
// lines, products, events, audit) and "Odd Schema"."we""ird" with hostile
// column names. `rng` decides the initial data.
absl::Status CreateSourceTables(PgConnection& conn, std::mt19937_64& rng);

// One random change batch over every source table (committed by the caller).
absl::Status ApplyRandomBatch(PgConnection& conn, std::mt19937_64& rng);

// Runs the oracle for one case. The error message carries the seed, the
// batch, the rows that differ and the SQL, so a failure can be replayed.
absl::Status RunOracleCase(PgConnection& conn, const OracleCase& c, const OracleOptions& options,
                           OracleStats* stats);

}  // namespace trickle::delta::testing
