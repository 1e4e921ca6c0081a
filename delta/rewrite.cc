#include "delta/rewrite.h"

namespace trickle::delta {

absl::StatusOr<pg_query::Node> RewriteQuery(const pg_query::Node& select_stmt,
                                            const CatalogFacts& facts,
                                            std::vector<RewriteNote>* notes) {
  pg_query::Node out = select_stmt;
  RewriteLateralSubqueries(&out, facts, notes);
  DecorrelateScalarSubqueries(&out, facts, notes);
  RewriteMultiColumnNotIn(&out, facts, notes);
  return out;
}

}  // namespace trickle::delta
