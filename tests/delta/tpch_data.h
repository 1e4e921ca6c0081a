// TPC-H for the delta engine's tests and benchmarks: the schema, a
// deterministic SQL data generator and the 22 queries (tests/delta/tpch/),
// and random change batches in the shape of the specification's refresh
// functions (RF1: new orders with their lineitems; RF2: orders and their
// lineitems deleted) plus updates of prices, quantities, dates and keys.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pg_connection.h"

namespace trickle::delta::testing {

// Creates schemas tpch (the tables) and tpch_gen (the generator) from
// scratch and loads scale factor `sf` (0.01: 60k lineitems).
absl::Status LoadTpch(PgConnection& conn, double sf);

struct TpchQuery {
  std::string name;   // "q01" ... "q22"
  std::string query;  // the query text, parameters substituted for `sf`
  int limit = 0;      // the specification's LIMIT (the text has none), 0 if none
};
// The 22 queries, read from tests/delta/tpch/queries.
absl::StatusOr<std::vector<TpchQuery>> TpchQueries(double sf);

struct TpchBatchSize {
  int new_orders = 15;      // RF1: at most this many new orders
  int deleted_orders = 15;  // RF2: at most this many orders deleted
  int updates = 12;         // at most this many update statements
};
// One random batch (the caller commits): RF1 and RF2 of random sizes up to
// the limits, and random updates: lineitem quantities, prices, discounts,
// dates (across the queries' date ranges), part and supplier keys, return
// flags; order dates, customers, priorities, comments and keys (an order
// moved to a new key with its lineitems); customer balances, segments,
// nations and phones, customers added and deleted; part prices, brands,
// containers, types, sizes and names; partsupp costs and quantities;
// supplier balances, nations and comments; a join partner deleted in the
// batch that points at it.
absl::Status ApplyTpchBatch(PgConnection& conn, std::mt19937_64& rng,
                            const TpchBatchSize& size = {});

}  // namespace trickle::delta::testing
