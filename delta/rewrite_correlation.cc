#include "delta/rewrite_correlation.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "delta/lowering.h"
#include "delta/sql_builder.h"

namespace trickle::delta {

using pg_query::Node;
namespace b = sqlb;

namespace {

// A built-in aggregate that gives NULL over no rows (by name, as the engine
// classifies every aggregate: a user's own aggregate named sum in another
// schema is taken for the built-in one).
bool NullOnEmptyAggregate(const Node& n, const CatalogFacts& facts) {
  if (!n.has_func_call() || !IsAggregateCall(n.func_call(), facts)) return false;
  const auto& call = n.func_call();
  if (call.agg_star() || call.agg_within_group() || call.args_size() != 1) return false;
  if (call.funcname_size() == 2 && call.funcname(0).string().sval() != "pg_catalog") return false;
  static const std::set<std::string> kNames = {"sum", "avg", "min", "max"};
  return kNames.count(FunctionName(call)) > 0;
}

bool NumericConstant(const Node& n) {
  return n.has_a_const() && (n.a_const().has_ival() || n.a_const().has_fval());
}

}  // namespace

void SplitAnd(const Node& n, std::vector<Node>* out) {
  if (n.has_bool_expr() && n.bool_expr().boolop() == pg_query::AND_EXPR) {
    for (const auto& a : n.bool_expr().args()) SplitAnd(a, out);
  } else {
    out->push_back(n);
  }
}

// NULL whenever the subquery has no rows: a NULL-on-empty aggregate, cast,
// or combined by + - * / with numeric constants or other such expressions
// (strict operators: NULL in, NULL out).
bool NullOnEmpty(const Node& n, const CatalogFacts& facts) {
  if (n.has_type_cast()) return NullOnEmpty(n.type_cast().arg(), facts);
  if (NullOnEmptyAggregate(n, facts)) return true;
  if (n.has_a_expr() && n.a_expr().kind() == pg_query::AEXPR_OP && n.a_expr().name_size() == 1 &&
      n.a_expr().has_lexpr()) {
    static const std::set<std::string> kOps = {"+", "-", "*", "/"};
    if (!kOps.count(n.a_expr().name(0).string().sval())) return false;
    const Node& l = n.a_expr().lexpr();
    const Node& r = n.a_expr().rexpr();
    bool ln = NullOnEmpty(l, facts), rn = NullOnEmpty(r, facts);
    return (ln && (rn || NumericConstant(r))) || (rn && NumericConstant(l));
  }
  return false;
}

// Whether `expr` has an aggregate call (not looking into subqueries), and
// whether it reads a column outside every aggregate call.
void ScanAggregates(const Node& expr, const CatalogFacts& facts, bool* aggregate,
                    bool* bare_column) {
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_sub_link()) return false;
    if (n->has_func_call() && IsAggregateCall(n->func_call(), facts)) {
      *aggregate = true;
      return false;
    }
    if (n->has_column_ref()) *bare_column = true;
    return true;
  };
  Node copy = expr;
  auto descend = visit(&copy);
  if (descend.ok() && *descend) (void)WalkNodes(&copy, visit);
}

RefSides SidesOf(const Node& expr, const NameScope& inner, const NameScope& outer) {
  RefSides s;
  const bool plain = ForEachColumnRef(expr, [&](const pg_query::ColumnRef& ref) {
    switch (ClassifyRef(ref, inner, outer)) {
      case NameOrigin::kInner:
        s.inner = true;
        break;
      case NameOrigin::kOuter:
        s.outer = true;
        break;
      case NameOrigin::kUnknown:
        s.unknown = true;
    }
  });
  s.unknown = s.unknown || !plain;
  return s;
}

std::optional<Correlation> SplitCorrelation(const pg_query::SelectStmt& sub, const NameScope& inner,
                                            const NameScope& outer) {
  Correlation c;
  std::vector<Node> conjuncts;
  if (sub.has_where_clause()) SplitAnd(sub.where_clause(), &conjuncts);
  for (const auto& conjunct : conjuncts) {
    RefSides cs = SidesOf(conjunct, inner, outer);
    if (cs.unknown) return std::nullopt;
    if (!cs.outer) {
      c.local.push_back(conjunct);
      continue;
    }
    if (!conjunct.has_a_expr() || conjunct.a_expr().kind() != pg_query::AEXPR_OP ||
        conjunct.a_expr().name_size() != 1 || conjunct.a_expr().name(0).string().sval() != "=" ||
        !conjunct.a_expr().has_lexpr()) {
      return std::nullopt;  // correlation other than an equality
    }
    const Node& l = conjunct.a_expr().lexpr();
    const Node& r = conjunct.a_expr().rexpr();
    RefSides ls = SidesOf(l, inner, outer), rs = SidesOf(r, inner, outer);
    if (ls.inner && !ls.outer && rs.outer && !rs.inner) {
      c.keys.push_back({l, r, true});
    } else if (rs.inner && !rs.outer && ls.outer && !ls.inner) {
      c.keys.push_back({r, l, false});
    } else {
      return std::nullopt;
    }
  }
  return c;
}

Node ValueOverNoRows(const pg_query::SelectStmt& sub, const Node& expr) {
  b::Select empty;
  empty.targets.push_back(b::Target(expr));
  empty.from.assign(sub.from_clause().begin(), sub.from_clause().end());
  empty.where.push_back(b::Bool(false));
  Node e = empty.Build();
  if (sub.has_with_clause()) *e.mutable_select_stmt()->mutable_with_clause() = sub.with_clause();
  return b::ScalarSubquery(std::move(e));
}

std::vector<Node> KeyConditions(const std::vector<CorrelationKey>& keys, const std::string& alias) {
  std::vector<Node> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    Node k = b::Col(alias, absl::StrCat(kDerivedKey, i + 1));
    out.push_back(keys[i].inner_left ? b::Eq(k, keys[i].outer) : b::Eq(keys[i].outer, k));
  }
  return out;
}

bool LeftJoinOnKeys(pg_query::SelectStmt* s, const NameResolver& names, const CteList& ctes,
                    const std::vector<CorrelationKey>& keys, Node item, const std::string& alias) {
  // The FROM items holding every outer reference of the correlation.
  std::vector<NameScope> items;
  for (const auto& item : s->from_clause()) {
    auto scope = names.ItemScope(item, ctes);
    if (!scope.has_value()) return false;
    items.push_back(std::move(*scope));
  }
  std::set<int> used;
  bool ok = true;
  for (const auto& key : keys) {
    const bool plain = ForEachColumnRef(key.outer, [&](const pg_query::ColumnRef& ref) {
      int found = -1;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!ResolvesIn(ref, items[i])) continue;
        if (found >= 0) ok = false;  // ambiguous
        found = i;
      }
      if (found < 0) {
        ok = false;
      } else {
        used.insert(found);
      }
    });
    if (!plain) ok = false;
  }
  if (!ok || used.empty()) return false;
  auto* from = s->mutable_from_clause();
  const int first = *used.begin();
  Node left = from->Get(first);
  for (int i : used) {
    if (i == first) continue;
    left = b::Join(pg_query::JOIN_INNER, std::move(left), from->Get(i), Node());
    left.mutable_join_expr()->clear_quals();
  }
  Node joined = b::Join(pg_query::JOIN_LEFT, std::move(left), std::move(item),
                        b::And(KeyConditions(keys, alias)));
  // Items after `first` are removed from the back, so indexes stay valid.
  for (auto it = used.rbegin(); it != used.rend(); ++it) {
    if (*it != first) from->erase(from->begin() + *it);
  }
  *from->Mutable(first) = std::move(joined);
  return true;
}

bool ExpandStar(pg_query::SelectStmt* s, const NameScope& scope,
                const std::set<std::string>& also) {
  // The entries a target's `*` stands for; nullopt when it is no star.
  auto star_of = [&](const Node& v) -> std::optional<std::vector<const NameEntry*>> {
    if (!v.has_column_ref()) return std::nullopt;
    const auto& f = v.column_ref().fields();
    if (f.empty() || !f[f.size() - 1].has_a_star()) return std::nullopt;
    std::vector<const NameEntry*> out;
    if (f.size() == 1) {
      for (const auto& e : scope.entries) out.push_back(&e);
      return out;
    }
    if (f.size() == 2 && f[0].has_string() && also.count(f[0].string().sval())) {
      for (const auto& e : scope.entries) {
        if (e.name == f[0].string().sval()) out.push_back(&e);
      }
      return out;
    }
    return std::nullopt;
  };
  bool any = false;
  for (const auto& t : s->target_list()) any = any || star_of(t.res_target().val()).has_value();
  if (!any) return true;
  if (scope.merged_columns) return false;
  std::set<std::string> seen;
  for (const auto& e : scope.entries) {
    if (!seen.insert(e.name).second) return false;  // two entries of one name
  }
  google::protobuf::RepeatedPtrField<Node> targets;
  for (const auto& t : s->target_list()) {
    auto entries = star_of(t.res_target().val());
    if (!entries.has_value()) {
      *targets.Add() = t;
      continue;
    }
    for (const NameEntry* e : *entries) {
      for (const auto& col : e->columns) *targets.Add() = b::Target(b::Col(e->name, col));
    }
  }
  *s->mutable_target_list() = std::move(targets);
  return true;
}

}  // namespace trickle::delta
