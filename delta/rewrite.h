// Query rewrites: passes over the parse tree that run before lowering, each
// turning a construct the operator tree has no rule for into an equivalent
// query in constructs it has (so the delta rules see fewer shapes). One pass
// per file, each pinned by its own golden files (tests/delta/rewrite_golden/):
//
//   rewrite_decorrelate.cc  subqueries inside expressions: correlated scalar
//                           subqueries, EXISTS / IN / ANY / ALL under OR or in
//                           the select list -> a join with a derived table
//                           grouped by the correlation keys, or one scalar
//                           subquery when uncorrelated
//   rewrite_not_in.cc       multi-column NOT IN -> NOT EXISTS keeping SQL's
//                           NULL rules
//   rewrite_lateral.cc      LATERAL subqueries correlated by equalities -> a
//                           join with a derived table on the keys
// (rewrite_scope.h names relations and columns for them;
// rewrite_correlation.h holds what the subquery passes share.)
//
// A pass changes a query only where it can prove the result equal, SQL's NULL
// rules included; everything else is left as written, and lowering then
// names the construct it cannot maintain.
//
// Internal to delta/.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "delta/delta_engine.h"
#include "pg_query.pb.h"

namespace trickle::delta {

// What a pass did, for the plan's explanation.
struct RewriteNote {
  std::string what;
  int location = -1;  // byte offset into the query of the construct rewritten
};

// Runs every pass over a SelectStmt node.
absl::StatusOr<pg_query::Node> RewriteQuery(const pg_query::Node& select_stmt,
                                            const CatalogFacts& facts,
                                            std::vector<RewriteNote>* notes);

// rewrite_decorrelate.cc
void DecorrelateScalarSubqueries(pg_query::Node* select_stmt, const CatalogFacts& facts,
                                 std::vector<RewriteNote>* notes);
// rewrite_lateral.cc
void RewriteLateralSubqueries(pg_query::Node* select_stmt, const CatalogFacts& facts,
                              std::vector<RewriteNote>* notes);
// rewrite_not_in.cc
void RewriteMultiColumnNotIn(pg_query::Node* select_stmt, const CatalogFacts& facts,
                             std::vector<RewriteNote>* notes);

}  // namespace trickle::delta
