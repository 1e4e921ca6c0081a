// LATERAL subqueries correlated by equalities, as joins with derived tables.
//
//   SELECT c.id, s.n, s.total FROM customers c
//   LEFT JOIN LATERAL (SELECT count(*) AS n, sum(o.amount) AS total
//                      FROM orders o WHERE o.cust_id = c.id) s ON true
// becomes
//   SELECT c.id, CASE WHEN s.__pgt_rows IS NULL
//                     THEN (SELECT count(*) FROM orders o WHERE false) ELSE s.n END,
//          s.total
//   FROM customers c
//   LEFT JOIN (SELECT count(*) AS n, sum(o.amount) AS total, o.cust_id AS __pgt_key1,
//                     pg_catalog.count(*) AS __pgt_rows
//              FROM orders o GROUP BY o.cust_id) s ON s.__pgt_key1 = c.id
//
// A LATERAL subquery whose WHERE is predicates over its own FROM plus
// equalities `inner = outer` (nothing else of the outer row: not in its
// select list, GROUP BY or HAVING) returns, for an outer row, the subquery's
// rows over the inner rows whose keys equal the outer row's. So:
//  * no aggregate (DISTINCT allowed), or GROUP BY: the subquery with the
//    keys added to its select list (and GROUP BY / DISTINCT) is a plain
//    derived table, joined on `__pgt_key<i> = outer` added to the join's ON
//    (or, for a comma / CROSS JOIN item, to the WHERE). A NULL key joins
//    nothing, as the subquery then has no rows.
//  * an aggregate without GROUP BY: one row for every outer row, even over
//    no inner rows. The derived table is grouped by the keys and LEFT
//    JOINed; a column whose value over no rows is not NULL (count: 0) is
//    read as `CASE WHEN __pgt_rows IS NULL THEN <its value over no rows>
//    ELSE <column> END` wherever the block reads it. Only as a comma /
//    CROSS JOIN item or `LEFT JOIN LATERAL ... ON true`.
//  * uncorrelated: a plain subquery (LATERAL dropped).
// Not rewritten (refused by lowering): ORDER BY ... LIMIT / OFFSET, window
// functions, set operations, correlation other than equalities, outer
// references elsewhere, nested subqueries, RIGHT / FULL JOIN LATERAL.
#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "delta/lowering.h"
#include "delta/pg_parser.h"
#include "delta/rewrite.h"
#include "delta/rewrite_correlation.h"
#include "delta/rewrite_scope.h"
#include "delta/sql_builder.h"

namespace trickle::delta {
namespace {

using pg_query::Node;
namespace b = sqlb;

constexpr char kRows[] = "__pgt_rows";

// The location of a subquery's SELECT, for notes.
int Location(const Node& select) {
  if (!select.has_select_stmt()) return -1;
  const auto& t = select.select_stmt().target_list();
  return t.empty() ? -1 : t[0].res_target().location();
}

bool IsTrue(const Node& n) {
  return n.has_a_const() && n.a_const().has_boolval() && n.a_const().boolval().boolval();
}

class LateralRewriter {
 public:
  LateralRewriter(const CatalogFacts& facts, std::vector<RewriteNote>* notes)
      : names_(facts), facts_(facts), notes_(notes) {}

  void Block(pg_query::SelectStmt* s, const CteList& outer_ctes) {
    if (s->has_with_clause()) {
      if (s->with_clause().recursive()) return;
      CteList before = outer_ctes;
      for (auto& c : *s->mutable_with_clause()->mutable_ctes()) {
        auto* cte = c.mutable_common_table_expr();
        if (cte->ctequery().has_select_stmt()) {
          Block(cte->mutable_ctequery()->mutable_select_stmt(), before);
        }
        before.push_back(cte);
      }
    }
    const CteList ctes = NameResolver::WithCtes(*s, outer_ctes);
    if (s->op() != pg_query::SETOP_NONE) {
      Block(s->mutable_larg(), ctes);
      Block(s->mutable_rarg(), ctes);
      return;
    }
    // Blocks below first: subqueries in FROM (a LATERAL one's own body
    // included) and in expressions.
    auto visit = [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_select_stmt()) {
        Block(n->mutable_select_stmt(), ctes);
        return false;
      }
      return true;
    };
    for (auto& item : *s->mutable_from_clause()) (void)WalkNodes(&item, visit);
    for (auto& t : *s->mutable_target_list()) (void)WalkNodes(&t, visit);
    if (s->has_where_clause()) (void)WalkNodes(s->mutable_where_clause(), visit);
    if (s->has_having_clause()) (void)WalkNodes(s->mutable_having_clause(), visit);
    // One LATERAL item at a time, as long as one can be rewritten.
    for (int guard = 0; guard < 64 && Once(s, ctes); ++guard) {
    }
  }

 private:
  // A LATERAL subquery as a derived table.
  struct Rewritten {
    Node item;  // RangeSubselect, the subquery's alias
    std::string alias;
    std::vector<CorrelationKey> keys;
    bool one_row = false;  // an aggregate without GROUP BY: a row for every outer row
    // Columns not NULL over no inner rows (one_row), and their value then.
    std::vector<std::pair<std::string, Node>> none_values;
  };

  // Rewrites the first LATERAL item that can be; false when none can.
  bool Once(pg_query::SelectStmt* s, const CteList& ctes);
  std::optional<Rewritten> Rewrite(const pg_query::RangeSubselect& rs, const NameScope& outer,
                                   const CteList& ctes);
  // Whether the block's reads of `r`'s columns can be taken through a CASE
  // (no subquery in the block could read them unseen).
  bool CanReadThroughCase(const pg_query::SelectStmt& s) const;
  void Note(const Rewritten& r, int location);
  void ReadThroughCase(pg_query::SelectStmt* s, const Rewritten& r, const CteList& ctes);

  NameResolver names_;
  const CatalogFacts& facts_;
  std::vector<RewriteNote>* notes_;
};

std::optional<LateralRewriter::Rewritten> LateralRewriter::Rewrite(
    const pg_query::RangeSubselect& rs, const NameScope& outer, const CteList& ctes) {
  if (!rs.subquery().has_select_stmt() || !rs.has_alias()) return std::nullopt;
  const auto& sub = rs.subquery().select_stmt();
  if (sub.op() != pg_query::SETOP_NONE || sub.values_lists_size() > 0 || sub.has_limit_count() ||
      sub.has_limit_offset() || sub.window_clause_size() > 0 || sub.locking_clause_size() > 0 ||
      sub.has_into_clause() || sub.from_clause_size() == 0) {
    return std::nullopt;
  }
  for (const auto& d : sub.distinct_clause()) {
    if (d.node_case() != Node::NODE_NOT_SET) return std::nullopt;  // DISTINCT ON
  }
  for (const auto& g : sub.group_clause()) {
    if (g.has_grouping_set()) return std::nullopt;
  }
  if (sub.has_with_clause() && sub.with_clause().recursive()) return std::nullopt;
  const CteList inner_ctes = NameResolver::WithCtes(sub, ctes);
  auto inner = names_.FromScope(sub.from_clause(), inner_ctes);
  if (!inner.has_value()) return std::nullopt;
  // Nothing but the WHERE may read the outer row.
  bool aggregate = sub.has_having_clause();
  for (const auto& t : sub.target_list()) {
    const Node& v = t.res_target().val();
    if (v.has_column_ref() && v.column_ref().fields_size() > 0 &&
        v.column_ref().fields(v.column_ref().fields_size() - 1).has_a_star()) {
      continue;
    }
    RefSides sides = SidesOf(v, *inner, outer);
    if (sides.outer || sides.unknown) return std::nullopt;
    bool bare = false;
    ScanAggregates(v, facts_, &aggregate, &bare);
  }
  for (const auto& g : sub.group_clause()) {
    RefSides sides = SidesOf(g, *inner, outer);
    if (sides.outer || sides.unknown) return std::nullopt;
  }
  if (sub.has_having_clause()) {
    RefSides sides = SidesOf(sub.having_clause(), *inner, outer);
    if (sides.outer || sides.unknown) return std::nullopt;
  }
  auto correlation = SplitCorrelation(sub, *inner, outer);
  if (!correlation.has_value()) return std::nullopt;

  Rewritten r;
  r.alias = rs.alias().aliasname();
  r.keys = correlation->keys;
  if (r.keys.empty()) {  // uncorrelated: a plain subquery
    r.item.mutable_range_subselect()->CopyFrom(rs);
    r.item.mutable_range_subselect()->set_lateral(false);
    return r;
  }
  r.one_row = aggregate && sub.group_clause_size() == 0;
  pg_query::SelectStmt derived = sub;
  derived.clear_where_clause();
  if (!correlation->local.empty()) *derived.mutable_where_clause() = b::And(correlation->local);
  for (size_t i = 0; i < r.keys.size(); ++i) {
    *derived.add_target_list() = b::Target(r.keys[i].inner, absl::StrCat(kDerivedKey, i + 1));
    if (aggregate) *derived.add_group_clause() = r.keys[i].inner;
  }
  if (r.one_row) {
    auto names = names_.OutputNames(sub, ctes);
    if (!names.has_value()) return std::nullopt;
    for (int k = 0; k < rs.alias().colnames_size() && k < static_cast<int>(names->size()); ++k)
      (*names)[k] = rs.alias().colnames(k).string().sval();
    for (int k = 0; k < sub.target_list_size(); ++k) {
      const Node& v = sub.target_list(k).res_target().val();
      if (!NullOnEmpty(v, facts_)) r.none_values.emplace_back((*names)[k], ValueOverNoRows(sub, v));
    }
    if (!r.none_values.empty()) *derived.add_target_list() = b::Target(b::CountStar(), kRows);
  }
  Node d;
  *d.mutable_select_stmt() = std::move(derived);
  r.item = b::Subquery(std::move(d), r.alias);
  *r.item.mutable_range_subselect()->mutable_alias() = rs.alias();
  return r;
}

void LateralRewriter::Note(const Rewritten& r, int location) {
  if (r.keys.empty()) {
    notes_->push_back(
        {absl::StrCat("uncorrelated LATERAL subquery ", r.alias, ": a plain subquery"), location});
    return;
  }
  std::vector<std::string> keys;
  for (const auto& k : r.keys) {
    auto shown = DeparseExpression(k.inner);
    keys.push_back(shown.ok() ? *shown : "?");
  }
  notes_->push_back(
      {absl::StrCat("LATERAL subquery ", r.alias,
                    r.one_row
                        ? " (one row per outer row) LEFT JOINed as a derived table grouped by ("
                        : " joined as a derived table on its correlation keys (",
                    absl::StrJoin(keys, ", "), ")"),
       location});
}

bool LateralRewriter::CanReadThroughCase(const pg_query::SelectStmt& s) const {
  bool sublink = false;
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_sub_link()) sublink = true;
    return !sublink;
  };
  pg_query::SelectStmt copy = s;
  copy.clear_from_clause();
  (void)WalkNodes(&copy, visit);
  for (auto item : s.from_clause()) {
    // ON clauses only; the FROM items' own subqueries are other blocks.
    std::function<void(Node*)> quals = [&](Node* n) {
      if (!n->has_join_expr()) return;
      if (n->join_expr().has_quals())
        (void)WalkNodes(n->mutable_join_expr()->mutable_quals(), visit);
      quals(n->mutable_join_expr()->mutable_larg());
      quals(n->mutable_join_expr()->mutable_rarg());
    };
    quals(&item);
  }
  return !sublink;
}

void LateralRewriter::ReadThroughCase(pg_query::SelectStmt* s, const Rewritten& r,
                                      const CteList& ctes) {
  // Which unqualified names the rewritten item alone provides.
  auto scope = names_.FromScope(s->from_clause(), ctes);
  auto replacement = [&](const pg_query::ColumnRef& ref) -> std::optional<Node> {
    std::vector<std::string> f;
    for (const auto& x : ref.fields()) {
      if (!x.has_string()) return std::nullopt;
      f.push_back(x.string().sval());
    }
    std::string col;
    if (f.size() == 2 && f[0] == r.alias) {
      col = f[1];
    } else if (f.size() == 1 && scope.has_value()) {
      int owners = 0;
      for (const auto& e : scope->entries) {
        if (std::find(e.columns.begin(), e.columns.end(), f[0]) != e.columns.end()) ++owners;
      }
      if (owners != 1) return std::nullopt;
      col = f[0];
    } else {
      return std::nullopt;
    }
    for (const auto& [name, none] : r.none_values) {
      if (name != col) continue;
      Node value = b::Col(r.alias, col);
      return b::Case({{b::IsNull(b::Col(r.alias, kRows)), none}}, &value);
    }
    return std::nullopt;
  };
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_sub_link()) return false;
    if (n->has_column_ref()) {
      if (auto x = replacement(n->column_ref()); x.has_value()) *n = std::move(*x);
      return false;
    }
    return true;
  };
  auto each = [&](Node* n) {
    auto d = visit(n);
    if (d.ok() && *d) (void)WalkNodes(n, visit);
  };
  for (auto& t : *s->mutable_target_list()) {
    auto* rt = t.mutable_res_target();
    // A column read through the CASE keeps its output name.
    if (rt->name().empty() && rt->val().has_column_ref() &&
        replacement(rt->val().column_ref()).has_value()) {
      rt->set_name(FigureColname(rt->val()));
    }
    each(rt->mutable_val());
  }
  if (s->has_where_clause()) each(s->mutable_where_clause());
  for (auto& g : *s->mutable_group_clause()) each(&g);
  if (s->has_having_clause()) each(s->mutable_having_clause());
  for (auto& o : *s->mutable_sort_clause()) each(&o);
  for (auto& item : *s->mutable_from_clause()) {
    std::function<void(Node*)> quals = [&](Node* n) {
      if (!n->has_join_expr()) return;
      if (n->join_expr().has_quals()) each(n->mutable_join_expr()->mutable_quals());
      quals(n->mutable_join_expr()->mutable_larg());
      quals(n->mutable_join_expr()->mutable_rarg());
    };
    quals(&item);
  }
}

bool LateralRewriter::Once(pg_query::SelectStmt* s, const CteList& ctes) {
  auto* from = s->mutable_from_clause();
  NameScope before;
  // The lateral item found, where it is, and how it is joined.
  for (int i = 0; i < from->size(); ++i) {
    // A JOIN tree: its LATERAL right sides, depth first.
    std::function<bool(Node*, const NameScope&)> in_join = [&](Node* item,
                                                               const NameScope& outer) -> bool {
      if (!item->has_join_expr()) return false;
      auto* j = item->mutable_join_expr();
      if (in_join(j->mutable_larg(), outer)) return true;
      if (!j->rarg().has_range_subselect() || !j->rarg().range_subselect().lateral()) return false;
      if (j->jointype() != pg_query::JOIN_INNER && j->jointype() != pg_query::JOIN_LEFT)
        return false;
      auto left = names_.ItemScope(j->larg(), ctes);
      if (!left.has_value()) return false;
      NameScope scope = outer;
      for (auto& e : left->entries) scope.entries.push_back(e);
      auto r = Rewrite(j->rarg().range_subselect(), scope, ctes);
      if (!r.has_value()) return false;
      const bool on_true = !j->has_quals() || IsTrue(j->quals());
      if (r->one_row && !on_true) return false;
      if (!r->none_values.empty() && !CanReadThroughCase(*s)) return false;
      auto all = names_.FromScope(s->from_clause(), ctes);
      if (!all.has_value() || !ExpandStar(s, *all, {r->alias})) return false;
      std::vector<Node> quals = KeyConditions(r->keys, r->alias);
      if (!on_true) quals.insert(quals.begin(), j->quals());
      if (r->one_row) j->set_jointype(pg_query::JOIN_LEFT);
      if (!r->keys.empty()) *j->mutable_quals() = b::And(std::move(quals));
      const int location = Location(j->rarg().range_subselect().subquery());
      *j->mutable_rarg() = r->item;
      if (!r->none_values.empty()) ReadThroughCase(s, *r, ctes);
      Note(*r, location);
      return true;
    };
    Node* item = from->Mutable(i);
    if (in_join(item, before)) return true;
    if (item->has_range_subselect() && item->range_subselect().lateral()) {
      auto r = Rewrite(item->range_subselect(), before, ctes);
      if (r.has_value() && (r->none_values.empty() || CanReadThroughCase(*s))) {
        auto all = names_.FromScope(s->from_clause(), ctes);
        if (all.has_value() && ExpandStar(s, *all, {r->alias})) {
          const int location = Location(item->range_subselect().subquery());
          if (!r->one_row) {
            Note(*r, location);
            *item = r->item;
            if (!r->keys.empty()) {
              std::vector<Node> conjuncts;
              if (s->has_where_clause()) SplitAnd(s->where_clause(), &conjuncts);
              for (auto& c : KeyConditions(r->keys, r->alias)) conjuncts.push_back(std::move(c));
              *s->mutable_where_clause() = b::And(std::move(conjuncts));
            }
            return true;
          }
          // Every outer row gets a row: LEFT JOINed onto the items the keys
          // read (the LATERAL item leaves the list first).
          Node saved = *item;
          from->erase(from->begin() + i);
          if (LeftJoinOnKeys(s, names_, ctes, r->keys, r->item, r->alias)) {
            if (!r->none_values.empty()) ReadThroughCase(s, *r, ctes);
            Note(*r, location);
            return true;
          }
          // (Not for a query PostgreSQL accepts: the keys read items before it.)
          from->Add(std::move(saved));
          for (int k = from->size() - 1; k > i; --k) from->SwapElements(k, k - 1);
          return false;
        }
      }
    }
    auto scope = names_.ItemScope(*item, ctes);
    if (!scope.has_value()) return false;
    for (auto& e : scope->entries) before.entries.push_back(std::move(e));
  }
  return false;
}

}  // namespace

void RewriteLateralSubqueries(Node* select_stmt, const CatalogFacts& facts,
                              std::vector<RewriteNote>* notes) {
  if (!select_stmt->has_select_stmt()) return;
  LateralRewriter r(facts, notes);
  r.Block(select_stmt->mutable_select_stmt(), {});
}

}  // namespace trickle::delta
