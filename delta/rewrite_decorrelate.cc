// Decorrelation of subqueries inside expressions: scalar subqueries (the
// shape of TPC-H Q2, Q17, Q20), and EXISTS / IN / ANY / ALL anywhere but as a
// top-level WHERE conjunct (under OR, in the select list, ...).
//
//   SELECT ... FROM lineitem, part
//   WHERE p_partkey = l_partkey
//     AND l_quantity < (SELECT 0.2 * avg(l_quantity) FROM lineitem
//                       WHERE l_partkey = p_partkey)
// becomes
//   SELECT ... FROM lineitem, part,
//     (SELECT l_partkey AS __pgt_key1, 0.2 * avg(l_quantity) AS __pgt_value
//      FROM lineitem GROUP BY l_partkey) __pgt_sq1
//   WHERE p_partkey = l_partkey AND l_quantity < __pgt_sq1.__pgt_value
//     AND __pgt_sq1.__pgt_key1 = p_partkey
//
// A subquery is decorrelated when its WHERE is a conjunction of predicates
// over its own FROM and equalities `inner expression = outer expression`
// (the correlation keys; no other reference to the outer block), and it
// returns exactly one row per outer row for certain:
//  * an aggregate without GROUP BY / HAVING: one row always. The derived
//    table has one row per correlation key; an outer row whose key has no
//    group gets what the aggregate gives over no rows. For a bare sum / avg
//    / min / max (or arithmetic of one with numeric constants) that is NULL,
//    which a LEFT JOIN gives; otherwise (count: 0, the "COUNT bug") the value
//    is the subquery's own expression over an empty input,
//    `CASE WHEN __pgt_rows IS NULL THEN (SELECT <expr> FROM <from> WHERE
//    false) ELSE __pgt_value END`, where __pgt_rows counts the group's rows.
//  * a lookup in one table whose primary key (or replica identity) the
//    correlation equalities cover: at most one row, NULL when none.
// A subquery that may return more than one row (an error at run time in
// PostgreSQL) is not rewritten, so it stays refused: the rewrite never turns
// that error into duplicated rows.
//
// Where the subquery sits decides the join:
//  * a top-level WHERE conjunct `x <op> (subquery)` with a comparison
//    operator, when the subquery gives NULL for a key without rows: an inner
//    join (NULL compares to nothing, so the outer row goes either way). Its
//    equalities join the WHERE, so lowering makes them the join's key.
//  * anywhere else (select list, HAVING, inside OR / CASE / functions): a
//    LEFT JOIN of the FROM item(s) the correlation reads with the derived
//    table. In a grouped block the derived table's columns join the GROUP BY
//    (they are functionally dependent on the grouped correlation keys; PG
//    would reject the query otherwise).
// Correlation keys match with the query's own `=`, so a NULL key matches no
// group, exactly as in the subquery.
//
// EXISTS, IN, op ANY and op ALL inside expressions (under OR, in the select
// list, ...; lowering itself makes a top-level WHERE conjunct EXISTS / IN /
// NOT IN a semi-, anti- or NOT IN join):
//  * uncorrelated: one value for the whole query, a scalar subquery:
//    `EXISTS (q)` -> `(SELECT count(*) > 0 FROM (q) __pgt_exists)`,
//    `x op ANY|ALL (q)` -> `x op ANY|ALL (ARRAY(q))`: PostgreSQL's own ANY /
//    ALL semantics over the array, NULLs and the empty case included.
//  * correlated by equalities, as above: LEFT JOIN a derived table grouped by
//    the keys: EXISTS is `__pgt_rows IS NOT NULL` (a key with rows has a
//    group), `x op ANY|ALL (q)` is `x op ANY|ALL (coalesce(__pgt_items,
//    '{}'))` over the key's values gathered by array_agg (empty for a key
//    without rows, so ANY is false and ALL true, as over an empty subquery).
//  A row on the left (`(a, b) IN (...)`) is not rewritten: an array of
//  records compares NULL fields as equal, a row comparison does not.
//
// Not rewritten (left to lowering, which refuses them): correlation other
// than equality, outer references outside the WHERE, subqueries with GROUP
// BY, HAVING, LIMIT, set operations or nested subqueries (DISTINCT too, for
// a scalar one), references two or more levels out, and blocks whose FROM
// names cannot be told for certain.
#include <algorithm>
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

constexpr char kValue[] = "__pgt_value";
constexpr char kRows[] = "__pgt_rows";
constexpr char kItems[] = "__pgt_items";

bool IsComparison(const Node& n) {
  if (!n.has_a_expr() || n.a_expr().kind() != pg_query::AEXPR_OP || n.a_expr().name_size() != 1 ||
      !n.a_expr().has_lexpr()) {
    return false;
  }
  static const std::set<std::string> kOps = {"=", "<>", "<", ">", "<=", ">="};
  return kOps.count(n.a_expr().name(0).string().sval()) > 0;
}

bool IsScalarSublink(const Node& n) {
  return n.has_sub_link() && n.sub_link().sub_link_type() == pg_query::EXPR_SUBLINK;
}

// A subquery that can be decorrelated.
enum class SubKind { kScalar, kExists, kAnyAll };

struct Candidate {
  SubKind kind = SubKind::kScalar;
  std::vector<CorrelationKey> keys;  // empty: uncorrelated (EXISTS / ANY / ALL only)
  std::vector<Node> local;           // its other WHERE conjuncts
  bool aggregate = false;            // (scalar) else a lookup by key
  bool null_on_empty = false;        // (scalar)
};

// A WHERE conjunct lowering turns into a semi-, anti- or NOT IN join itself:
// [NOT] EXISTS, x [NOT] IN, x = ANY, x <> ALL, (a, b) IN.
bool LoweredAsJoin(const Node& conjunct) {
  const Node* n = &conjunct;
  bool negated = false;
  if (n->has_bool_expr() && n->bool_expr().boolop() == pg_query::NOT_EXPR &&
      n->bool_expr().args_size() == 1) {
    negated = true;
    n = &n->bool_expr().args(0);
  }
  if (!n->has_sub_link()) return false;
  const auto& sl = n->sub_link();
  std::string op =
      sl.oper_name_size() > 0 ? sl.oper_name(sl.oper_name_size() - 1).string().sval() : "=";
  switch (sl.sub_link_type()) {
    case pg_query::EXISTS_SUBLINK:
      return true;
    case pg_query::ANY_SUBLINK:
      return op == "=" && sl.oper_name_size() <= 1 && !(negated && sl.testexpr().has_row_expr());
    case pg_query::ALL_SUBLINK:
      return !negated && op == "<>" && sl.oper_name_size() <= 1 && !sl.testexpr().has_row_expr();
    default:
      return false;
  }
}

// `test <op> ANY|ALL (array)`, with the subquery's own operator name.
Node QuantifiedOverArray(const pg_query::SubLink& sl, Node array) {
  Node n;
  auto* a = n.mutable_a_expr();
  a->set_kind(sl.sub_link_type() == pg_query::ALL_SUBLINK ? pg_query::AEXPR_OP_ALL
                                                          : pg_query::AEXPR_OP_ANY);
  if (sl.oper_name_size() > 0) {
    *a->mutable_name() = sl.oper_name();
  } else {
    a->add_name()->mutable_string()->set_sval("=");
  }
  *a->mutable_lexpr() = sl.testexpr();
  *a->mutable_rexpr() = std::move(array);
  return n;
}

std::string Shown(const Node& expr) {
  auto s = DeparseExpression(expr);
  return s.ok() ? *s : "?";
}

class Decorrelator {
 public:
  Decorrelator(const CatalogFacts& facts, std::vector<RewriteNote>* notes)
      : names_(facts), facts_(facts), notes_(notes) {}

  // Rewrites every block under `s` (innermost first), then `s` itself.
  void Block(pg_query::SelectStmt* s, const CteList& outer_ctes);

 private:
  void Children(pg_query::SelectStmt* s, const CteList& ctes);
  void FromItems(Node* item, const CteList& ctes);
  void SublinksIn(Node* expr, const CteList& ctes);
  std::optional<Candidate> Analyze(const pg_query::SubLink& sl, const NameScope& outer,
                                   const CteList& ctes) const;
  Node DerivedTable(const pg_query::SelectStmt& sub, const Candidate& c, bool with_rows) const;
  // The correlation equalities over the derived table `alias`.
  // Replaces the scalar subqueries of the block that can be decorrelated.
  void Level(pg_query::SelectStmt* s, const CteList& ctes);

  NameResolver names_;
  const CatalogFacts& facts_;
  std::vector<RewriteNote>* notes_;
  int next_alias_ = 1;
};

void Decorrelator::SublinksIn(Node* expr, const CteList& ctes) {
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_sub_link()) {
      auto* sl = n->mutable_sub_link();
      if (sl->subselect().has_select_stmt()) {
        Block(sl->mutable_subselect()->mutable_select_stmt(), ctes);
      }
      if (sl->has_testexpr()) SublinksIn(sl->mutable_testexpr(), ctes);
      return false;
    }
    return true;
  };
  auto descend = visit(expr);
  if (descend.ok() && *descend) (void)WalkNodes(expr, visit);
}

void Decorrelator::FromItems(Node* item, const CteList& ctes) {
  if (item->has_range_subselect() && item->range_subselect().subquery().has_select_stmt()) {
    Block(item->mutable_range_subselect()->mutable_subquery()->mutable_select_stmt(), ctes);
  } else if (item->has_join_expr()) {
    FromItems(item->mutable_join_expr()->mutable_larg(), ctes);
    FromItems(item->mutable_join_expr()->mutable_rarg(), ctes);
  }
}

void Decorrelator::Children(pg_query::SelectStmt* s, const CteList& ctes) {
  for (auto& item : *s->mutable_from_clause()) FromItems(&item, ctes);
  if (s->has_where_clause()) SublinksIn(s->mutable_where_clause(), ctes);
  for (auto& t : *s->mutable_target_list()) SublinksIn(&t, ctes);
  if (s->has_having_clause()) SublinksIn(s->mutable_having_clause(), ctes);
}

void Decorrelator::Block(pg_query::SelectStmt* s, const CteList& outer_ctes) {
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
  Children(s, ctes);
  Level(s, ctes);
}

std::optional<Candidate> Decorrelator::Analyze(const pg_query::SubLink& sl, const NameScope& outer,
                                               const CteList& ctes) const {
  Candidate c;
  switch (sl.sub_link_type()) {
    case pg_query::EXPR_SUBLINK:
      c.kind = SubKind::kScalar;
      break;
    case pg_query::EXISTS_SUBLINK:
      c.kind = SubKind::kExists;
      break;
    case pg_query::ANY_SUBLINK:
    case pg_query::ALL_SUBLINK:
      // A row on the left compares records, whose NULL rules an array of
      // records does not keep: left to lowering.
      if (sl.testexpr().has_row_expr()) return std::nullopt;
      c.kind = SubKind::kAnyAll;
      break;
    default:
      return std::nullopt;
  }
  if (!sl.subselect().has_select_stmt()) return std::nullopt;
  const auto& sub = sl.subselect().select_stmt();
  if (sub.op() != pg_query::SETOP_NONE || sub.values_lists_size() > 0 ||
      sub.group_clause_size() > 0 || sub.has_having_clause() || sub.has_limit_count() ||
      sub.has_limit_offset() || sub.window_clause_size() > 0 || sub.locking_clause_size() > 0 ||
      sub.has_into_clause() || sub.from_clause_size() == 0 ||
      (c.kind == SubKind::kScalar && sub.distinct_clause_size() > 0) ||
      (c.kind != SubKind::kExists && sub.target_list_size() != 1)) {
    return std::nullopt;
  }
  for (const auto& d : sub.distinct_clause()) {
    if (d.node_case() != Node::NODE_NOT_SET) return std::nullopt;  // DISTINCT ON
  }
  if (sub.has_with_clause() && sub.with_clause().recursive()) return std::nullopt;
  const CteList inner_ctes = NameResolver::WithCtes(sub, ctes);
  auto inner = names_.FromScope(sub.from_clause(), inner_ctes);
  if (!inner.has_value()) return std::nullopt;
  auto sides = [&](const Node& e) { return SidesOf(e, *inner, outer); };
  bool bare_column = false;
  for (const auto& t : sub.target_list()) {
    const Node& value = t.res_target().val();
    if (value.has_column_ref() && value.column_ref().fields_size() > 0 &&
        value.column_ref().fields(value.column_ref().fields_size() - 1).has_a_star()) {
      if (c.kind != SubKind::kExists) return std::nullopt;
      continue;
    }
    RefSides vs = sides(value);
    if (vs.outer || vs.unknown) return std::nullopt;
    ScanAggregates(value, facts_, &c.aggregate, &bare_column);
  }
  if (c.kind == SubKind::kScalar) {
    if (c.aggregate && bare_column) return std::nullopt;  // needs GROUP BY: not one row
    c.null_on_empty = c.aggregate && NullOnEmpty(sub.target_list(0).res_target().val(), facts_);
  } else if (c.aggregate) {
    return std::nullopt;  // an aggregate makes one row: not the shape handled here
  }

  auto correlation = SplitCorrelation(sub, *inner, outer);
  if (!correlation.has_value()) return std::nullopt;
  c.keys = std::move(correlation->keys);
  c.local = std::move(correlation->local);
  if (c.kind != SubKind::kScalar) return c;  // correlated or not
  if (c.keys.empty()) return std::nullopt;   // uncorrelated: lowering makes it a Scalar
  if (c.aggregate) return c;

  // A lookup: one base table, its key covered by plain correlation columns.
  if (inner->entries.size() != 1 || inner->entries[0].relation == nullptr ||
      inner->entries[0].relation->key.empty()) {
    return std::nullopt;
  }
  const NameEntry& e = inner->entries[0];
  for (const auto& k : e.relation->key) {
    bool covered = false;
    for (const auto& key : c.keys) {
      if (!key.inner.has_column_ref()) continue;
      const auto& f = key.inner.column_ref().fields();
      if (f.empty() || !f[f.size() - 1].has_string()) continue;
      const std::string& col = f[f.size() - 1].string().sval();
      // The column under its (possibly aliased) name is the key column.
      auto it = std::find(e.columns.begin(), e.columns.end(), col);
      if (it == e.columns.end()) continue;
      covered = covered || e.relation->columns[it - e.columns.begin()].name == k;
    }
    if (!covered) return std::nullopt;
  }
  return c;
}

Node Decorrelator::DerivedTable(const pg_query::SelectStmt& sub, const Candidate& c,
                                bool with_rows) const {
  b::Select d;
  const bool grouped = c.kind != SubKind::kScalar || c.aggregate;
  for (size_t i = 0; i < c.keys.size(); ++i) {
    d.targets.push_back(b::Target(c.keys[i].inner, absl::StrCat(kDerivedKey, i + 1)));
    if (grouped) d.group_by.push_back(c.keys[i].inner);
  }
  switch (c.kind) {
    case SubKind::kScalar:
      d.targets.push_back(b::Target(sub.target_list(0).res_target().val(), kValue));
      if (with_rows) d.targets.push_back(b::Target(b::CountStar(), kRows));
      break;
    case SubKind::kExists:
      d.targets.push_back(b::Target(b::CountStar(), kRows));
      break;
    case SubKind::kAnyAll:
      d.targets.push_back(
          b::Target(b::Agg("array_agg", {sub.target_list(0).res_target().val()}), kItems));
      break;
  }
  d.from.assign(sub.from_clause().begin(), sub.from_clause().end());
  d.where = c.local;
  Node out = d.Build();
  if (sub.has_with_clause()) *out.mutable_select_stmt()->mutable_with_clause() = sub.with_clause();
  return out;
}

void Decorrelator::Level(pg_query::SelectStmt* s, const CteList& ctes) {
  auto outer = names_.FromScope(s->from_clause(), ctes);
  if (!outer.has_value()) return;
  bool grouped = s->group_clause_size() > 0;
  for (const auto& g : s->group_clause()) {
    if (g.has_grouping_set()) return;
  }
  bool aggregate_block = grouped || s->has_having_clause();
  for (const auto& t : s->target_list()) {
    bool bare = false;
    ScanAggregates(t.res_target().val(), facts_, &aggregate_block, &bare);
  }
  // Candidates first, so `*` is expanded only when something is rewritten.
  bool any = false;
  auto find = [&](const Node& expr) {
    auto visit = [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_sub_link()) {
        any = any || Analyze(n->sub_link(), *outer, ctes).has_value();
        return false;
      }
      return true;
    };
    Node copy = expr;
    auto d = visit(&copy);
    if (d.ok() && *d) (void)WalkNodes(&copy, visit);
  };
  if (s->has_where_clause()) {
    std::vector<Node> conjuncts;
    SplitAnd(s->where_clause(), &conjuncts);
    for (const auto& c : conjuncts) {
      if (!LoweredAsJoin(c)) find(c);
    }
  }
  for (const auto& t : s->target_list()) find(t);
  if (s->has_having_clause()) find(s->having_clause());
  if (!any) return;

  // A new FROM item would show in `*`: spell the select list's `*` out.
  if (!ExpandStar(s, *outer)) return;

  auto note = [&](const pg_query::SubLink& sl, const Candidate& c, const std::string& how) {
    std::vector<std::string> keys;
    for (const auto& k : c.keys) keys.push_back(Shown(k.inner));
    const char* what = c.kind == SubKind::kScalar   ? "correlated scalar subquery "
                       : c.kind == SubKind::kExists ? "correlated EXISTS "
                                                    : "correlated IN / ANY / ALL ";
    notes_->push_back(
        {absl::StrCat(what, how,
                      c.kind != SubKind::kScalar || c.aggregate ? " a derived table grouped by ("
                                                                : " a lookup on its key (",
                      absl::StrJoin(keys, ", "), ")"),
         sl.location()});
  };
  std::vector<Node> added_where;
  // Replaces a subquery inside an expression. `per_row`: evaluated per input
  // row (WHERE, a block without aggregates, an aggregate's arguments), else
  // per group (the select list and HAVING of an aggregate block), where the
  // derived table's columns join the GROUP BY.
  auto replace = [&](Node* n, bool per_row) -> bool {
    auto c = Analyze(n->sub_link(), *outer, ctes);
    if (!c.has_value()) return false;
    const pg_query::SubLink sl = n->sub_link();
    const auto& sub = sl.subselect().select_stmt();
    if (c->keys.empty()) {
      // Uncorrelated EXISTS / ANY / ALL: one value for the whole query, a
      // scalar subquery (PostgreSQL's own ANY / ALL over an array keeps
      // every NULL rule: an empty array is false for ANY, true for ALL).
      if (c->kind == SubKind::kExists) {
        b::Select e;
        e.targets.push_back(b::Target(b::Op(">", b::CountStar(), b::Int(0))));
        e.from.push_back(b::Subquery(sl.subselect(), "__pgt_exists"));
        *n = b::ScalarSubquery(e.Build());
        notes_->push_back(
            {"uncorrelated EXISTS inside an expression: count(*) > 0 of the subquery, "
             "a scalar subquery",
             sl.location()});
      } else {
        *n = QuantifiedOverArray(sl, b::ArraySubquery(sl.subselect()));
        notes_->push_back(
            {"uncorrelated IN / ANY / ALL inside an expression: over ARRAY(subquery), "
             "a scalar subquery",
             sl.location()});
      }
      return true;
    }
    if (!per_row && !grouped) return false;
    const bool with_rows = c->kind == SubKind::kScalar && c->aggregate && !c->null_on_empty;
    const std::string alias = absl::StrCat("__pgt_sq", next_alias_++);
    if (!LeftJoinOnKeys(s, names_, ctes, c->keys,
                        b::Subquery(DerivedTable(sub, *c, with_rows), alias), alias)) {
      return false;
    }
    Node value;
    switch (c->kind) {
      case SubKind::kScalar:
        value = b::Col(alias, kValue);
        if (with_rows) {
          // What the aggregate gives over no rows: the subquery's own
          // expression over an empty input.
          Node none = ValueOverNoRows(sub, sub.target_list(0).res_target().val());
          value = b::Case({{b::IsNull(b::Col(alias, kRows)), std::move(none)}}, &value);
          if (!per_row) *s->add_group_clause() = b::Col(alias, kRows);
        }
        if (!per_row) *s->add_group_clause() = b::Col(alias, kValue);
        break;
      case SubKind::kExists:
        // A key with rows has a group (whose count is never NULL).
        value = b::IsNotNull(b::Col(alias, kRows));
        if (!per_row) *s->add_group_clause() = b::Col(alias, kRows);
        break;
      case SubKind::kAnyAll:
        // The key's values as an array, empty for a key without rows: ANY
        // / ALL over it is exactly the subquery's (NULLs included).
        value = QuantifiedOverArray(sl, b::Coalesce({b::Col(alias, kItems), b::Str("{}")}));
        if (!per_row) *s->add_group_clause() = b::Col(alias, kItems);
        break;
    }
    note(sl, *c, "LEFT JOINed to");
    *n = std::move(value);
    return true;
  };
  std::function<void(Node*, bool)> rewrite_all = [&](Node* expr, bool per_row) {
    auto visit = [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_sub_link()) {
        replace(n, per_row);
        return false;
      }
      if (!per_row && n->has_func_call() && IsAggregateCall(n->func_call(), facts_)) {
        auto* fc = n->mutable_func_call();
        for (auto& a : *fc->mutable_args()) rewrite_all(&a, true);
        if (fc->has_agg_filter()) rewrite_all(fc->mutable_agg_filter(), true);
        return false;
      }
      return true;
    };
    auto d = visit(expr);
    if (d.ok() && *d) (void)WalkNodes(expr, visit);
  };

  if (s->has_where_clause()) {
    std::vector<Node> conjuncts;
    SplitAnd(s->where_clause(), &conjuncts);
    for (auto& conjunct : conjuncts) {
      if (IsComparison(conjunct)) {
        auto* e = conjunct.mutable_a_expr();
        for (Node* side : {e->mutable_lexpr(), e->mutable_rexpr()}) {
          if (!IsScalarSublink(*side)) continue;
          auto c = Analyze(side->sub_link(), *outer, ctes);
          if (!c.has_value() || (c->aggregate && !c->null_on_empty)) continue;
          const auto& sub = side->sub_link().subselect().select_stmt();
          const std::string alias = absl::StrCat("__pgt_sq", next_alias_++);
          *s->add_from_clause() = b::Subquery(DerivedTable(sub, *c, false), alias);
          for (auto& j : KeyConditions(c->keys, alias)) added_where.push_back(std::move(j));
          note(side->sub_link(), *c, "joined with");
          *side = b::Col(alias, kValue);
        }
      }
      if (!LoweredAsJoin(conjunct)) rewrite_all(&conjunct, true);
    }
    for (auto& j : added_where) conjuncts.push_back(std::move(j));
    *s->mutable_where_clause() = b::And(std::move(conjuncts));
  }
  for (auto& t : *s->mutable_target_list()) {
    auto* rt = t.mutable_res_target();
    Node before = rt->val();
    rewrite_all(rt->mutable_val(), !aggregate_block);
    // The output column keeps the name PostgreSQL gives the subquery.
    if (rt->name().empty() && CanonicalKey(before) != CanonicalKey(rt->val())) {
      rt->set_name(FigureColname(before));
    }
  }
  if (s->has_having_clause()) rewrite_all(s->mutable_having_clause(), false);
}

}  // namespace

void DecorrelateScalarSubqueries(Node* select_stmt, const CatalogFacts& facts,
                                 std::vector<RewriteNote>* notes) {
  if (!select_stmt->has_select_stmt()) return;
  Decorrelator d(facts, notes);
  d.Block(select_stmt->mutable_select_stmt(), {});
}

}  // namespace trickle::delta
