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
//
// RunOracleSuite does the same for many stream tables over one data set (the
// TPC-H gate): every batch is applied once, and every stream table is
// refreshed and checked in the same snapshot, in order, so a stream table may
// read the stream tables defined before it.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"

namespace trickle::delta::testing {

struct OracleCase {
  std::string name;  // the stream table is st.t_<name>
  std::string query;
  // Expected plan: differential (the default) or full refresh only.
  bool expect_differential = true;
  // The mode the stream table is planned in. AUTO: a construct the engine
  // cannot maintain gives a full-refresh-only plan. DIFFERENTIAL: it is
  // refused, and the case ends there (expect_differential = false).
  RefreshMode mode = RefreshMode::kAuto;
  // When not differential: what the reason must name (a substring of the
  // refusal, or of the full-refresh-only plan's reason). Empty: not checked.
  std::string refused_because = "";
};

struct OracleOptions {
  uint64_t seed = 0;
  int batches = 25;
  // Statements are logged to stderr when set (debugging a failing seed).
  bool verbose = false;
  // Printed after the seed in a failure, to replay it.
  std::string replay_command = "build/tests/delta/delta_oracle_test";
};

struct OracleStats {
  int batches = 0;
  int64_t changed_rows = 0;  // total delta-table rows fed to the engine
  bool refused = false;      // refused in DIFFERENTIAL mode, as expected
  double refresh_ms = 0;     // time in the refreshes after the first (MERGE or full refresh)
  std::string explanation;
};

// The tables a suite reads and their random changes.
struct OracleDataset {
  std::string search_path;  // set before anything else, e.g. "src, public"
  // Creates and fills the tables (from scratch: drop what exists).
  std::function<absl::Status(PgConnection&, std::mt19937_64&)> create;
  // One random change batch; the caller commits it.
  std::function<absl::Status(PgConnection&, std::mt19937_64&)> apply_batch;
};

// The source tables every case reads: schema "src" (customers, orders,
// lines, products, events, audit) and "Odd Schema"."we""ird" with hostile
// column names. `rng` decides the initial data.
absl::Status CreateSourceTables(PgConnection& conn, std::mt19937_64& rng);

// One random change batch over every source table (committed by the caller).
absl::Status ApplyRandomBatch(PgConnection& conn, std::mt19937_64& rng);

// The query matrix's data set: CreateSourceTables and ApplyRandomBatch.
OracleDataset MatrixDataset();

// Runs the oracle for one case over the matrix's data set. The error message
// carries the seed, the batch, the rows that differ and the SQL, so a
// failure can be replayed.
absl::Status RunOracleCase(PgConnection& conn, const OracleCase& c, const OracleOptions& options,
                           OracleStats* stats);

// Runs every case over one data set: creates the data, then the stream
// tables in order (a case may read the stream tables st.t_<name> of the cases
// before it; they are read by their visible columns, as the service does),
// then applies each batch once and refreshes and checks every stream table,
// in order, in one REPEATABLE READ transaction. A case that fails is left out
// of the later batches; the others go on. One status (and one stats entry,
// when `stats` is given) per case.
std::vector<absl::Status> RunOracleSuite(PgConnection& conn, const OracleDataset& data,
                                         const std::vector<OracleCase>& cases,
                                         const OracleOptions& options,
                                         std::vector<OracleStats>* stats);

}  // namespace trickle::delta::testing
