// What the subquery rewrites share (rewrite_decorrelate.cc,
// rewrite_lateral.cc): a correlated subquery's WHERE split into predicates
// over its own FROM and the equalities that tie it to the block around it,
// what an aggregate gives over no rows, and the select list's `*` spelled
// out before a rewrite adds FROM items.
//
// Internal to delta/.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "delta/delta_engine.h"
#include "delta/rewrite_scope.h"
#include "pg_query.pb.h"

namespace trickle::delta {

// The derived table's correlation key columns: __pgt_key1, __pgt_key2, ...
inline constexpr char kDerivedKey[] = "__pgt_key";

// The conjuncts of an AND tree.
void SplitAnd(const pg_query::Node& n, std::vector<pg_query::Node>* out);

// One correlation equality `inner = outer` (or `outer = inner`): `inner`
// reads only the subquery's FROM, `outer` only the block around it.
struct CorrelationKey {
  pg_query::Node inner;
  pg_query::Node outer;
  bool inner_left = true;
};

// Where an expression's column references resolve.
struct RefSides {
  bool inner = false;
  bool outer = false;
  bool unknown = false;  // resolves nowhere for certain, or has a subquery
};
RefSides SidesOf(const pg_query::Node& expr, const NameScope& inner, const NameScope& outer);

// The subquery's WHERE split into `local` predicates (over its own FROM) and
// correlation `keys`; nullopt when some conjunct reads the outer block
// other than as such an equality, or a name cannot be told.
struct Correlation {
  std::vector<CorrelationKey> keys;  // empty: uncorrelated
  std::vector<pg_query::Node> local;
};
std::optional<Correlation> SplitCorrelation(const pg_query::SelectStmt& sub, const NameScope& inner,
                                            const NameScope& outer);

// Whether `expr` has an aggregate call (not looking into subqueries), and
// whether it reads a column outside every aggregate call.
void ScanAggregates(const pg_query::Node& expr, const CatalogFacts& facts, bool* aggregate,
                    bool* bare_column);

// NULL whenever the subquery it is the value of has no rows: a bare sum /
// avg / min / max, cast, or combined by + - * / with numeric constants or
// other such expressions (strict operators: NULL in, NULL out). By name, as
// the engine classifies every aggregate.
bool NullOnEmpty(const pg_query::Node& expr, const CatalogFacts& facts);

// `(SELECT <expr> FROM <sub's FROM> WHERE false)`: what the subquery's
// expression gives over no rows (count: 0, a user's aggregate: its initial
// state), as an uncorrelated scalar subquery.
pg_query::Node ValueOverNoRows(const pg_query::SelectStmt& sub, const pg_query::Node& expr);

// `alias.__pgt_key<i> = outer` for each key, in the query's own orientation.
std::vector<pg_query::Node> KeyConditions(const std::vector<CorrelationKey>& keys,
                                          const std::string& alias);

// LEFT JOINs `item` (a derived table named `alias`) on the key conditions
// to the FROM item(s) of `s` the keys' outer sides read (several are CROSS
// JOINed first, in their order); false (nothing changed) when they cannot
// be found for certain.
bool LeftJoinOnKeys(pg_query::SelectStmt* s, const NameResolver& names, const CteList& ctes,
                    const std::vector<CorrelationKey>& keys, pg_query::Node item,
                    const std::string& alias);

// Spells out a bare `*` in the select list (a FROM item about to be added
// would show in it), and `name.*` for the entries named in `also`; false
// (nothing changed) when it cannot be spelled out for certain (merged USING
// columns, two entries of one name).
bool ExpandStar(pg_query::SelectStmt* s, const NameScope& scope,
                const std::set<std::string>& also = {});

}  // namespace trickle::delta
