// Builders for libpg_query parse-tree nodes: the engine emits SQL by building
// trees with these and deparsing them (pg_parser.h), never by pasting text.
// Identifiers are always String nodes, so the deparser quotes them as needed.
//
// Each builder produces the same shape PostgreSQL's parser would produce for
// the equivalent text, so a deparsed tree parses back to itself (the check
// DeparseStatement relies on).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pg_query.pb.h"

namespace trickle::delta::sqlb {

using Node = pg_query::Node;
using NodeList = std::vector<Node>;

// --- expressions -----------------------------------------------------------
Node Col(std::string_view qualifier, std::string_view column);  // qualifier.column
Node Col(std::string_view column);                              // column
Node Star(std::string_view qualifier);                          // qualifier.*
Node Int(int64_t value);
Node Str(std::string_view value);
Node Bool(bool value);
Node Null();
// `arg::type`; `type` is SQL type syntax ("bigint", "numeric", "\"char\"",
// or a format_type() result), parsed once by PostgreSQL's grammar.
Node Cast(Node arg, std::string_view type);
Node Op(std::string_view op, Node left, Node right);  // binary operator
Node Neg(Node arg);                                   // unary minus
Node Eq(Node left, Node right);
Node IsDistinct(Node left, Node right);
Node IsNotDistinct(Node left, Node right);
Node And(NodeList args);  // TRUE when empty; the single argument when one
Node Or(NodeList args);   // FALSE when empty
Node Not(Node arg);
// IS NULL / IS NOT NULL: on a composite value these test its fields (ROW(NULL,
// NULL) IS NULL is true), so they only suit values the engine knows are not
// composite (its own hash and count columns).
Node IsNull(Node arg);
Node IsNotNull(Node arg);
// `arg IS NOT DISTINCT FROM NULL`: the value itself is NULL. This is the NULL
// that `=` (record equality treats ROW(NULL, NULL) as equal to itself), IN,
// GROUP BY and strict functions such as count(x) see, so every split on NULL
// of a user's value uses it. PostgreSQL's parser turns it into a NullTest on
// the value alone, as indexable as IS NULL.
Node IsNullValue(Node arg);
Node IsNotNullValue(Node arg);  // `arg IS DISTINCT FROM NULL`
// pg_catalog.<name>(args): engine-chosen built-in functions are schema
// qualified, so a user's search_path cannot redirect them.
Node Func(std::string_view name, NodeList args);
Node Agg(std::string_view name, NodeList args, const Node* filter = nullptr);
Node CountStar(const Node* filter = nullptr);
Node Case(std::vector<std::pair<Node, Node>> whens, const Node* otherwise);
Node Coalesce(NodeList args);
Node Least(NodeList args);     // LEAST(...): NULL arguments are ignored
Node Greatest(NodeList args);  // GREATEST(...)
Node Row(NodeList args);       // ROW(a, b, ...)
Node Exists(Node select);
Node ScalarSubquery(Node select);
Node ArraySubquery(Node select);
Node NotIn(Node test, Node select);  // test NOT IN (select)
// row_number() OVER (PARTITION BY partition...)
Node RowNumberOver(NodeList partition);
// hash_record_extended(ROW(args), 0): hashes with each type's own hash
// function, so it agrees with the type's equality (1.0 and 1.00 hash alike).
Node RowHash(NodeList args);

// --- relations and statements ----------------------------------------------
Node Table(std::string_view schema, std::string_view name, std::string_view alias, bool inh = true);
Node Subquery(Node select, std::string_view alias, const std::vector<std::string>& colnames = {});
Node Join(pg_query::JoinType type, Node left, Node right, Node quals);
Node Target(Node value, std::string_view name);  // value AS name
Node Target(Node value);
Node SortBy(Node node, bool descending);

// A SELECT under construction.
struct Select {
  NodeList targets;
  NodeList from;
  std::vector<Node> where;  // ANDed
  NodeList group_by;
  std::vector<Node> having;  // ANDed
  bool distinct = false;
  NodeList distinct_on;
  NodeList order_by;   // SortBy nodes
  int64_t limit = -1;  // LIMIT n when >= 0
  Node Build() const;
};
Node UnionAll(NodeList selects);  // one select: returned as is
Node SetOp(pg_query::SetOperation op, bool all, Node left, Node right);
// WITH ctes SELECT ...: attaches a WITH clause to a SelectStmt node.
// CTEs named in `not_materialized` get NOT MATERIALIZED.
Node WithCtes(std::vector<std::pair<std::string, Node>> ctes, Node select,
              const std::set<std::string>& not_materialized = {});

Node RangeVarNode(std::string_view schema, std::string_view name);

}  // namespace trickle::delta::sqlb
