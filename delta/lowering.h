// Lowering: libpg_query's parse tree -> the operator tree (operator_tree.h).
//
// One transform per parse-node kind, as DuckDB's transformer does: FROM items
// (tables, CTE references, subqueries, joins), WHERE (with EXISTS / IN / NOT
// IN turned into semi-, anti- and NOT IN joins, and uncorrelated scalar
// subqueries into one-row cross joins), GROUP BY and aggregates, HAVING, the
// select list, DISTINCT and set operations. Column references are resolved
// against the catalog facts and rebound to operator inputs.
//
// Internal to delta/.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "delta/delta_engine.h"
#include "delta/operator_tree.h"
#include "pg_query.pb.h"

namespace trickle::delta {

struct LoweredQuery {
  std::unique_ptr<Op> root;
  // One entry per distinct source relation (Scan::source indexes it); delta
  // table names are filled in by the caller.
  std::vector<SourceRelation> sources;
  std::vector<std::string> output_names;  // the root's visible columns, in order
  int op_count = 0;
};

// A construct the engine cannot maintain differentially, and where it is.
struct UnsupportedConstruct {
  std::string construct;  // e.g. "window function row_number()"
  int location = -1;      // byte offset into the query, -1 when unknown
};

// Lowers one SelectStmt node. On a construct that cannot be maintained
// differentially returns absl::UnimplementedError and fills *unsupported;
// other errors (unknown relation or column, ambiguous reference) are
// InvalidArgumentError.
absl::StatusOr<LoweredQuery> LowerQuery(const pg_query::Node& select_stmt,
                                        const CatalogFacts& facts,
                                        UnsupportedConstruct* unsupported);

// PostgreSQL's FigureColname: the name a select-list expression gets when it
// has no alias ("?column?" when nothing better).
std::string FigureColname(const pg_query::Node& expr);

// The unqualified name of a FuncCall, as the parser spells it.
std::string FunctionName(const pg_query::FuncCall& call);

// Whether a call is an aggregate (not a window call): by its syntax
// (count(*), DISTINCT, ORDER BY, FILTER, WITHIN GROUP), else by the catalog
// facts, else by a built-in list of aggregate names.
bool IsAggregateCall(const pg_query::FuncCall& call, const CatalogFacts& facts);

// Calls `fn` on every Node under `message`, pre-order. `fn` returns true to
// descend into the node, false to skip its children (it may have replaced
// the node in place).
absl::Status WalkNodes(google::protobuf::Message* message,
                       const std::function<absl::StatusOr<bool>(pg_query::Node*)>& fn);

}  // namespace trickle::delta
