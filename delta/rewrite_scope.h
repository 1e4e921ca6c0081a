// Names visible in a query block, for the rewrites that run on the parse tree
// before lowering (rewrite.h): which relation a column reference belongs to,
// the subquery's own FROM or the block around it. Lowering binds names for
// real; a rewrite only needs to know, with certainty, where a name comes
// from, and gives up (leaves the query as it is) whenever it cannot tell.
//
// Internal to delta/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "delta/delta_engine.h"
#include "pg_query.pb.h"

namespace trickle::delta {

// One range-table entry of a FROM clause: a table, CTE reference or
// subquery, by the name a query uses for it.
struct NameEntry {
  std::string name;    // alias, else the relation (or CTE) name
  std::string schema;  // the schema of an unaliased base table, else ""
  std::vector<std::string> columns;
  const RelationFacts* relation = nullptr;  // a base table: its facts
  bool nullable = false;                    // on the NULL-filled side of an outer join
};

struct NameScope {
  std::vector<NameEntry> entries;
  // Some JOIN ... USING / NATURAL merges columns (its `*` is not the entries'
  // columns in order).
  bool merged_columns = false;
};

// The CTEs a block can see, innermost last.
using CteList = std::vector<const pg_query::CommonTableExpr*>;

// Where a column reference resolves.
enum class NameOrigin { kInner, kOuter, kUnknown };

class NameResolver {
 public:
  explicit NameResolver(const CatalogFacts& facts) : facts_(facts) {}

  // The entries of a FROM list, or nullopt when some item's columns cannot
  // be named for certain (a function in FROM, an unknown relation, an alias
  // on a JOIN, ...).
  std::optional<NameScope> FromScope(const google::protobuf::RepeatedPtrField<pg_query::Node>& from,
                                     const CteList& ctes) const;
  std::optional<NameScope> ItemScope(const pg_query::Node& item, const CteList& ctes) const;

  // The output column names of a SELECT (as PostgreSQL names them), or
  // nullopt when they cannot be told.
  std::optional<std::vector<std::string>> OutputNames(const pg_query::SelectStmt& stmt,
                                                      const CteList& ctes) const;

  // The CTEs visible inside `stmt`: `outer` plus its own WITH list.
  static CteList WithCtes(const pg_query::SelectStmt& stmt, const CteList& outer);

  const CatalogFacts& facts() const { return facts_; }

 private:
  const RelationFacts* FindRelation(const pg_query::RangeVar& rv) const;
  const CatalogFacts& facts_;
};

// Where `ref` resolves: in `inner` (which shadows), else in `outer`, else
// unknown (a third level, a misspelling, `t.*`).
NameOrigin ClassifyRef(const pg_query::ColumnRef& ref, const NameScope& inner,
                       const NameScope& outer);
// Whether `ref` resolves in `scope`.
bool ResolvesIn(const pg_query::ColumnRef& ref, const NameScope& scope);

// Whether `expr` is a reference to a NOT NULL column of a base table in
// `scope`, not on the NULL-filled side of an outer join: never NULL.
bool NeverNull(const pg_query::Node& expr, const NameScope& scope);

// Calls `fn` on every column reference in `expr` outside nested subqueries;
// returns false when `expr` contains a subquery (whose references a caller
// cannot classify with these scopes).
bool ForEachColumnRef(const pg_query::Node& expr,
                      const std::function<void(const pg_query::ColumnRef&)>& fn);

}  // namespace trickle::delta
