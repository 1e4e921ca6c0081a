#include "delta/delta_sql.h"

#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "delta/lowering.h"
#include "delta/sql_builder.h"

namespace trickle::delta {

using pg_query::Node;
namespace b = sqlb;

namespace {

constexpr char kDm[] = "__pgt_dm";

std::vector<int> VisibleColumns(const Op& op) {
  std::vector<int> v;
  for (size_t k = 0; k < op.columns.size(); ++k) {
    if (!op.columns[k].hidden) v.push_back(k);
  }
  return v;
}

// alias.c1 AS c1, ..., alias.cn AS cn
void AddPassThrough(const std::string& alias, int n, b::NodeList* targets) {
  for (int k = 0; k < n; ++k) targets->push_back(b::Target(b::Col(alias, ColName(k)), ColName(k)));
}

Node Ref(const std::string& alias, int k) { return b::Col(alias, ColName(k)); }

Node BigInt(int64_t v) { return b::Cast(b::Int(v), "bigint"); }

Node FromCte(const std::string& cte, const std::string& alias) { return b::Table("", cte, alias); }

// Does `expr` reference only alias.c<k> with k in [lo, hi)?
void CollectRefs(const Node& expr, const std::string& alias, std::set<int>* out) {
  Node copy = expr;
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_column_ref() && n->column_ref().fields_size() == 2 &&
        n->column_ref().fields(0).has_string() && n->column_ref().fields(1).has_string() &&
        n->column_ref().fields(0).string().sval() == alias) {
      const std::string& c = n->column_ref().fields(1).string().sval();
      if (c.size() > 1 && c[0] == 'c') out->insert(std::atoi(c.c_str() + 1) - 1);
    }
    return true;
  };
  (void)visit(&copy);
  (void)WalkNodes(&copy, visit);
}

bool ExprNotNull(const Node& expr, const std::string& alias, const Op& input) {
  if (!expr.has_column_ref() || expr.column_ref().fields_size() != 2) return false;
  if (expr.column_ref().fields(0).string().sval() != alias) return false;
  const std::string& c = expr.column_ref().fields(1).string().sval();
  if (c.size() < 2 || c[0] != 'c') return false;
  int k = std::atoi(c.c_str() + 1) - 1;
  return k >= 0 && k < static_cast<int>(input.columns.size()) && input.columns[k].not_null;
}

}  // namespace

Node Rebase(const Node& expr, const std::string& from_alias, const std::string& to_alias,
            int shift) {
  Node out = expr;
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_column_ref() && n->column_ref().fields_size() == 2 &&
        n->column_ref().fields(0).has_string() && n->column_ref().fields(1).has_string() &&
        n->column_ref().fields(0).string().sval() == from_alias) {
      const std::string& c = n->column_ref().fields(1).string().sval();
      int k = std::atoi(c.c_str() + 1) - 1;
      *n = b::Col(to_alias, ColName(k - shift));
      return false;
    }
    return true;
  };
  auto first = visit(&out);
  if (first.ok() && *first) (void)WalkNodes(&out, visit);
  return out;
}

Node Substitute(const Node& expr, const std::string& alias, const std::vector<Node>& replacements) {
  Node out = expr;
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_column_ref() && n->column_ref().fields_size() == 2 &&
        n->column_ref().fields(0).has_string() && n->column_ref().fields(1).has_string() &&
        n->column_ref().fields(0).string().sval() == alias) {
      const std::string& c = n->column_ref().fields(1).string().sval();
      int k = std::atoi(c.c_str() + 1) - 1;
      *n = replacements[k];
      return false;
    }
    return true;
  };
  auto first = visit(&out);
  if (first.ok() && *first) (void)WalkNodes(&out, visit);
  return out;
}

std::string SqlGenerator::AddCte(const std::string& prefix, Node select, bool inlined) {
  std::string name = absl::StrCat("__pgt_", prefix, next_cte_++);
  if (inlined) inlined_.insert(name);
  ctes_.emplace_back(name, std::move(select));
  return name;
}

Node SqlGenerator::DeltaTable(int source, const std::string& alias) const {
  const auto& s = sources_[source];
  std::string schema, name = s.delta_table;
  auto dot = name.find('.');
  if (dot != std::string::npos) {
    schema = name.substr(0, dot);
    name = name.substr(dot + 1);
  }
  return b::Table(schema, name, alias);
}

Node SqlGenerator::SourcesChanged(const Op& op) const {
  std::set<int> scans;
  std::vector<const Op*> stack = {&op};
  while (!stack.empty()) {
    const Op* o = stack.back();
    stack.pop_back();
    if (o->kind == OpKind::kScan) scans.insert(o->source);
    for (const auto& in : o->inputs) stack.push_back(in.get());
  }
  b::NodeList ors;
  for (int s : scans) {
    b::Select e;
    e.targets.push_back(b::Target(b::Int(1)));
    e.from.push_back(DeltaTable(s, "d"));
    ors.push_back(b::Exists(e.Build()));
  }
  return b::Or(std::move(ors));
}

// --- restrictions -----------------------------------------------------------

Node SqlGenerator::Restrict(Node select, int ncols, const Restriction& r) {
  const size_t n = r.exprs.size();
  bool any_nullable = false;
  for (bool x : r.nullable) any_nullable |= x;
  auto wrap = [&](b::NodeList where) {
    b::Select s;
    AddPassThrough("i", ncols, &s.targets);
    s.from.push_back(b::Subquery(select, "i"));
    s.where = std::move(where);
    return s.Build();
  };
  // Rows whose key has no NULL: a semi-join PostgreSQL can drive from the
  // (small) key set into an index on the relation.
  b::Select keys;
  for (size_t j = 0; j < n; ++j)
    keys.targets.push_back(b::Target(b::Col("k", absl::StrCat("k", j + 1))));
  keys.from.push_back(FromCte(r.keys_cte, "k"));
  Node in;
  {
    Node sub;
    auto* sl = sub.mutable_sub_link();
    sl->set_sub_link_type(pg_query::ANY_SUBLINK);
    if (n == 1) {
      *sl->mutable_testexpr() = r.exprs[0];
    } else {
      auto* row = sl->mutable_testexpr()->mutable_row_expr();
      for (const auto& e : r.exprs) *row->add_args() = e;
      row->set_row_format(pg_query::COERCE_IMPLICIT_CAST);
    }
    *sl->mutable_subselect() = keys.Build();
    in = std::move(sub);
  }
  if (!any_nullable) return wrap({in});
  // Rows whose key has a NULL: matched NULL-safely, only when the key set
  // has such keys at all (an InitPlan gate, so usually skipped). "A NULL" is
  // exactly what makes `=` in the IN branch unknown: a NULL value, not a
  // composite whose fields are all NULL (that one `=` matches), so the two
  // branches never both take a row.
  b::NodeList row_has_null, key_has_null, match;
  for (size_t j = 0; j < n; ++j) {
    Node kj = b::Col("k", absl::StrCat("k", j + 1));
    if (r.nullable[j]) {
      row_has_null.push_back(b::IsNullValue(r.exprs[j]));
      key_has_null.push_back(b::IsNullValue(kj));
    }
    match.push_back(b::IsNotDistinct(kj, r.exprs[j]));
  }
  b::Select gate;
  gate.targets.push_back(b::Target(b::Int(1)));
  gate.from.push_back(FromCte(r.keys_cte, "k"));
  gate.where.push_back(b::Or(key_has_null));
  b::Select probe;
  probe.targets.push_back(b::Target(b::Int(1)));
  probe.from.push_back(FromCte(r.keys_cte, "k"));
  probe.where.push_back(b::And(match));
  Node with_nulls = wrap({b::Exists(gate.Build()), b::Or(row_has_null), b::Exists(probe.Build())});
  return b::UnionAll({wrap({in}), with_nulls});
}

Node SqlGenerator::Eval(const Op& op, State state, const Restriction* r) {
  if (r == nullptr) return Build(op, state, {});
  switch (op.kind) {
    case OpKind::kScan:
      return EvalScan(op, state, r);
    case OpKind::kFilter:
      return Build(op, state, {r});
    case OpKind::kProject: {
      Restriction pushed;
      for (const auto& e : r->exprs) pushed.exprs.push_back(Substitute(e, "i", op.exprs));
      pushed.nullable = r->nullable;
      pushed.keys_cte = r->keys_cte;
      return Build(op, state, {&pushed});
    }
    case OpKind::kJoin: {
      const int nl = op.inputs[0]->columns.size();
      std::set<int> refs;
      for (const auto& e : r->exprs) CollectRefs(e, "i", &refs);
      bool all_left = !refs.empty() && *refs.rbegin() < nl;
      bool all_right = !refs.empty() && *refs.begin() >= nl;
      if (all_left && op.join != JoinKind::kRight && op.join != JoinKind::kFull) {
        return Build(op, state, {r, nullptr});
      }
      if (all_right && (op.join == JoinKind::kInner || op.join == JoinKind::kRight)) {
        Restriction pushed;
        for (const auto& e : r->exprs) pushed.exprs.push_back(Rebase(e, "i", "i", nl));
        pushed.nullable = r->nullable;
        pushed.keys_cte = r->keys_cte;
        return Build(op, state, {nullptr, &pushed});
      }
      break;
    }
    case OpKind::kAggregate: {
      // On group columns only: restrict the input by the group expressions,
      // so only the touched groups are aggregated.
      const int g = op.group_exprs.size();
      std::set<int> refs;
      for (const auto& e : r->exprs) CollectRefs(e, "i", &refs);
      if (g > 0 && !refs.empty() && *refs.rbegin() < g) {
        Restriction pushed;
        for (const auto& e : r->exprs) pushed.exprs.push_back(Substitute(e, "i", op.group_exprs));
        pushed.nullable = r->nullable;
        pushed.keys_cte = r->keys_cte;
        return Build(op, state, {&pushed});
      }
      break;
    }
    case OpKind::kDistinct: {
      // Output column k is the input's k-th visible column.
      std::vector<Node> vis;
      for (int k : VisibleColumns(*op.inputs[0])) vis.push_back(Ref("i", k));
      Restriction pushed;
      for (const auto& e : r->exprs) pushed.exprs.push_back(Substitute(e, "i", vis));
      pushed.nullable = r->nullable;
      pushed.keys_cte = r->keys_cte;
      return Build(op, state, {&pushed});
    }
    default:
      break;
  }
  return Restrict(Build(op, state, {}), op.columns.size(), *r);
}

Node SqlGenerator::EvalScan(const Op& op, State state, const Restriction* r) {
  const auto& src = sources_[op.source];
  const int n = src.columns.size();
  auto select_from = [&](Node from, const std::string& alias, b::NodeList where) {
    b::Select s;
    for (int k = 0; k < n; ++k)
      s.targets.push_back(b::Target(b::Col(alias, src.columns[k]), ColName(k)));
    s.from.push_back(std::move(from));
    s.where = std::move(where);
    return s.Build();
  };
  Node live = select_from(b::Table(src.schema, src.name, "t", op.inh), "t", {});
  if (state == State::kPost) return r != nullptr ? Restrict(live, n, *r) : live;
  // Pre-state: the live rows minus the inserted ones, plus the deleted ones.
  Node op_is_i = b::Eq(b::Col("d", "__op"), b::Str("I"));
  Node kept;
  if (!src.key.empty()) {
    // Keyed: the key is unique in the live table, so an inserted row is the
    // live row with its key (an anti-join PostgreSQL runs as a hash probe).
    b::NodeList match = {op_is_i};
    for (const auto& k : src.key) match.push_back(b::Eq(b::Col("d", k), b::Col("t", k)));
    b::Select probe;
    probe.targets.push_back(b::Target(b::Int(1)));
    probe.from.push_back(DeltaTable(op.source, "d"));
    probe.where.push_back(b::And(std::move(match)));
    kept = select_from(b::Table(src.schema, src.name, "t", op.inh), "t",
                       {b::Not(b::Exists(probe.Build()))});
    if (r != nullptr) kept = Restrict(kept, n, *r);
  } else {
    // No key: remove the inserted rows as a multiset.
    Node ins = select_from(DeltaTable(op.source, "d"), "d", {op_is_i});
    if (r != nullptr) {
      live = Restrict(live, n, *r);
      ins = Restrict(ins, n, *r);
    }
    kept = b::SetOp(pg_query::SETOP_EXCEPT, true, live, ins);
  }
  Node deleted =
      select_from(DeltaTable(op.source, "d"), "d", {b::Eq(b::Col("d", "__op"), b::Str("D"))});
  if (r != nullptr) deleted = Restrict(deleted, n, *r);
  b::Select outer;
  AddPassThrough("p", n, &outer.targets);
  outer.from.push_back(b::Subquery(b::UnionAll({kept, deleted}), "p"));
  return outer.Build();
}

Node SqlGenerator::Build(const Op& op, State state, const std::vector<const Restriction*>& in) {
  auto input = [&](size_t i) {
    return Eval(*op.inputs[i], state, i < in.size() ? in[i] : nullptr);
  };
  b::Select s;
  switch (op.kind) {
    case OpKind::kScan:
      return EvalScan(op, state, nullptr);
    case OpKind::kValues:
      return op.values;
    case OpKind::kFilter:
      AddPassThrough("i", op.columns.size(), &s.targets);
      s.from.push_back(b::Subquery(input(0), "i"));
      s.where.push_back(op.predicate);
      return s.Build();
    case OpKind::kProject:
      for (size_t k = 0; k < op.exprs.size(); ++k)
        s.targets.push_back(b::Target(op.exprs[k], ColName(k)));
      s.from.push_back(b::Subquery(input(0), "i"));
      return s.Build();
    case OpKind::kJoin: {
      const int nl = op.inputs[0]->columns.size();
      const int nr = op.inputs[1]->columns.size();
      Node left = b::Subquery(input(0), "l");
      Node right = b::Subquery(input(1), "r");
      AddPassThrough("l", nl, &s.targets);
      switch (op.join) {
        case JoinKind::kInner:
        case JoinKind::kLeft:
        case JoinKind::kRight:
        case JoinKind::kFull: {
          for (int k = 0; k < nr; ++k) s.targets.push_back(b::Target(Ref("r", k), ColName(nl + k)));
          pg_query::JoinType jt = op.join == JoinKind::kInner   ? pg_query::JOIN_INNER
                                  : op.join == JoinKind::kLeft  ? pg_query::JOIN_LEFT
                                  : op.join == JoinKind::kRight ? pg_query::JOIN_RIGHT
                                                                : pg_query::JOIN_FULL;
          s.from.push_back(b::Join(jt, std::move(left), std::move(right), op.condition));
          return s.Build();
        }
        case JoinKind::kSemi:
        case JoinKind::kAnti: {
          b::Select probe;
          probe.targets.push_back(b::Target(b::Int(1)));
          probe.from.push_back(std::move(right));
          probe.where.push_back(op.condition);
          Node e = b::Exists(probe.Build());
          s.from.push_back(std::move(left));
          s.where.push_back(op.join == JoinKind::kSemi ? e : b::Not(e));
          return s.Build();
        }
        case JoinKind::kNotIn: {
          b::Select sub;
          sub.targets.push_back(b::Target(Ref("r", 0)));
          sub.from.push_back(std::move(right));
          s.from.push_back(std::move(left));
          s.where.push_back(b::NotIn(op.condition, sub.Build()));
          return s.Build();
        }
      }
      return s.Build();
    }
    case OpKind::kAggregate: {
      for (size_t k = 0; k < op.group_exprs.size(); ++k) {
        s.targets.push_back(b::Target(op.group_exprs[k], ColName(k)));
        s.group_by.push_back(op.group_exprs[k]);
      }
      for (size_t k = 0; k < op.aggs.size(); ++k) {
        s.targets.push_back(b::Target(op.aggs[k].call, ColName(op.group_exprs.size() + k)));
      }
      s.from.push_back(b::Subquery(input(0), "i"));
      return s.Build();
    }
    case OpKind::kDistinct: {
      auto vis = VisibleColumns(*op.inputs[0]);
      for (size_t k = 0; k < vis.size(); ++k)
        s.targets.push_back(b::Target(Ref("i", vis[k]), ColName(k)));
      s.distinct = true;
      s.from.push_back(b::Subquery(input(0), "i"));
      return s.Build();
    }
    case OpKind::kSetOp: {
      const Op& l = *op.inputs[0];
      const Op& r = *op.inputs[1];
      auto lvis = VisibleColumns(l);
      auto rvis = VisibleColumns(r);
      b::Select ls, rs;
      for (size_t k = 0; k < lvis.size(); ++k) {
        ls.targets.push_back(b::Target(Ref("i", lvis[k]), ColName(k)));
        rs.targets.push_back(b::Target(Ref("i", rvis[k]), ColName(k)));
      }
      if (op.setop == SetOpKind::kUnionAll && op.key.has_value()) {
        int next = lvis.size();
        ls.targets.push_back(b::Target(b::Int(1), ColName(next)));
        rs.targets.push_back(b::Target(b::Int(2), ColName(next)));
        ++next;
        for (int k : *l.key) {
          ls.targets.push_back(b::Target(Ref("i", k), ColName(next)));
          rs.targets.push_back(b::Target(b::Null(), ColName(next)));
          ++next;
        }
        for (int k : *r.key) {
          ls.targets.push_back(b::Target(b::Null(), ColName(next)));
          rs.targets.push_back(b::Target(Ref("i", k), ColName(next)));
          ++next;
        }
      }
      ls.from.push_back(b::Subquery(input(0), "i"));
      rs.from.push_back(b::Subquery(input(1), "i"));
      pg_query::SetOperation so = op.setop == SetOpKind::kUnionAll    ? pg_query::SETOP_UNION
                                  : op.setop == SetOpKind::kIntersect ? pg_query::SETOP_INTERSECT
                                                                      : pg_query::SETOP_EXCEPT;
      Node set = b::SetOp(so, op.all, ls.Build(), rs.Build());
      // Keep every relation a plain SELECT (typed NULLs resolve inside the
      // set operation, not in a parent).
      b::Select outer;
      AddPassThrough("u", op.columns.size(), &outer.targets);
      outer.from.push_back(b::Subquery(set, "u"));
      return outer.Build();
    }
    case OpKind::kScalar: {
      const Op& sub = *op.inputs[0];
      b::Select inner;
      inner.targets.push_back(b::Target(Ref("i", VisibleColumns(sub)[0])));
      inner.from.push_back(b::Subquery(input(0), "i"));
      inner.order_by = sub.order;  // over i.c<k>, as sub's output is named here
      Node v = op.array ? b::ArraySubquery(inner.Build()) : b::ScalarSubquery(inner.Build());
      s.targets.push_back(b::Target(v, ColName(0)));
      return s.Build();
    }
  }
  return s.Build();
}

// --- deltas -------------------------------------------------------------------

std::string SqlGenerator::Delta(const Op& op) {
  auto it = delta_cte_.find(op.id);
  if (it != delta_cte_.end()) return it->second;
  std::string name;
  b::Select s;
  switch (op.kind) {
    case OpKind::kScan: {
      const auto& src = sources_[op.source];
      for (size_t k = 0; k < src.columns.size(); ++k) {
        s.targets.push_back(b::Target(b::Col("d", src.columns[k]), ColName(k)));
      }
      Node minus_one = b::Int(-1);
      Node sign = b::Case({{b::Eq(b::Col("d", "__op"), b::Str("I")), b::Int(1)}}, &minus_one);
      s.targets.push_back(b::Target(b::Cast(sign, "bigint"), kDm));
      s.from.push_back(DeltaTable(op.source, "d"));
      name = AddCte("d", s.Build(), /*inlined=*/true);
      break;
    }
    case OpKind::kValues: {
      AddPassThrough("i", op.columns.size(), &s.targets);
      s.targets.push_back(b::Target(BigInt(0), kDm));
      s.from.push_back(b::Subquery(op.values, "i"));
      s.where.push_back(b::Bool(false));
      name = AddCte("d", s.Build());
      break;
    }
    case OpKind::kFilter: {
      std::string in = Delta(*op.inputs[0]);
      AddPassThrough("i", op.columns.size(), &s.targets);
      s.targets.push_back(b::Target(b::Col("i", kDm), kDm));
      s.from.push_back(FromCte(in, "i"));
      s.where.push_back(op.predicate);
      name = AddCte("d", s.Build(), inlined_.count(in) > 0);
      break;
    }
    case OpKind::kProject: {
      std::string in = Delta(*op.inputs[0]);
      for (size_t k = 0; k < op.exprs.size(); ++k)
        s.targets.push_back(b::Target(op.exprs[k], ColName(k)));
      s.targets.push_back(b::Target(b::Col("i", kDm), kDm));
      s.from.push_back(FromCte(in, "i"));
      name = AddCte("d", s.Build(), inlined_.count(in) > 0);
      break;
    }
    case OpKind::kJoin:
      if (op.join == JoinKind::kInner) {
        name = DeltaJoinInner(op);
      } else if (op.join == JoinKind::kNotIn) {
        name = DeltaNotIn(op);
      } else {
        name = DeltaByKeys(op);
      }
      break;
    case OpKind::kAggregate:
    case OpKind::kDistinct:
      name = DeltaByKeys(op);
      break;
    case OpKind::kSetOp:
      if (op.setop == SetOpKind::kUnionAll) {
        const Op& l = *op.inputs[0];
        const Op& r = *op.inputs[1];
        std::string dl = Delta(l), dr = Delta(r);
        auto lvis = VisibleColumns(l), rvis = VisibleColumns(r);
        b::Select ls, rs;
        for (size_t k = 0; k < lvis.size(); ++k) {
          ls.targets.push_back(b::Target(Ref("i", lvis[k]), ColName(k)));
          rs.targets.push_back(b::Target(Ref("i", rvis[k]), ColName(k)));
        }
        if (op.key.has_value()) {
          int next = lvis.size();
          ls.targets.push_back(b::Target(b::Int(1), ColName(next)));
          rs.targets.push_back(b::Target(b::Int(2), ColName(next)));
          ++next;
          for (int k : *l.key) {
            ls.targets.push_back(b::Target(Ref("i", k), ColName(next)));
            rs.targets.push_back(b::Target(b::Null(), ColName(next)));
            ++next;
          }
          for (int k : *r.key) {
            ls.targets.push_back(b::Target(b::Null(), ColName(next)));
            rs.targets.push_back(b::Target(Ref("i", k), ColName(next)));
            ++next;
          }
        }
        ls.targets.push_back(b::Target(b::Col("i", kDm), kDm));
        rs.targets.push_back(b::Target(b::Col("i", kDm), kDm));
        ls.from.push_back(FromCte(dl, "i"));
        rs.from.push_back(FromCte(dr, "i"));
        b::Select outer;
        AddPassThrough("u", op.columns.size(), &outer.targets);
        outer.targets.push_back(b::Target(b::Col("u", kDm), kDm));
        outer.from.push_back(b::Subquery(b::UnionAll({ls.Build(), rs.Build()}), "u"));
        name = AddCte("d", outer.Build());
      } else {
        name = DeltaByKeys(op);
      }
      break;
    case OpKind::kScalar:
      name = DeltaScalar(op);
      break;
  }
  delta_cte_[op.id] = name;
  return name;
}

std::string SqlGenerator::DeltaJoinInner(const Op& op) {
  const Op& l = *op.inputs[0];
  const Op& r = *op.inputs[1];
  const int nl = l.columns.size(), nr = r.columns.size();
  std::string dl = Delta(l), dr = Delta(r);
  auto term = [&](Node left, Node right, Node dm) {
    b::Select s;
    AddPassThrough("l", nl, &s.targets);
    for (int k = 0; k < nr; ++k) s.targets.push_back(b::Target(Ref("r", k), ColName(nl + k)));
    s.targets.push_back(b::Target(std::move(dm), kDm));
    s.from.push_back(
        b::Join(pg_query::JOIN_INNER, std::move(left), std::move(right), op.condition));
    return s.Build();
  };
  // ΔL⋈R₁ + L₁⋈ΔR − ΔL⋈ΔR: only post-states and deltas, so each term is a
  // join PostgreSQL can drive from the small delta through the other side's
  // indexes.
  Node t1 = term(FromCte(dl, "l"), b::Subquery(Eval(r, State::kPost), "r"), b::Col("l", kDm));
  Node t2 = term(b::Subquery(Eval(l, State::kPost), "l"), FromCte(dr, "r"), b::Col("r", kDm));
  Node t3 = term(FromCte(dl, "l"), FromCte(dr, "r"),
                 b::Neg(b::Op("*", b::Col("l", kDm), b::Col("r", kDm))));
  b::Select outer;
  AddPassThrough("u", op.columns.size(), &outer.targets);
  outer.targets.push_back(b::Target(b::Col("u", kDm), kDm));
  outer.from.push_back(b::Subquery(b::UnionAll({t1, t2, t3}), "u"));
  return AddCte("d", outer.Build());
}

std::string SqlGenerator::Recompute(const Op& op, std::vector<const Restriction*> in, Node gate) {
  auto side = [&](State state, int sign) {
    b::Select s;
    AddPassThrough("x", op.columns.size(), &s.targets);
    s.targets.push_back(b::Target(BigInt(sign), kDm));
    s.from.push_back(b::Subquery(Build(op, state, in), "x"));
    if (gate.node_case() != Node::NODE_NOT_SET) s.where.push_back(gate);
    return s.Build();
  };
  b::Select outer;
  AddPassThrough("u", op.columns.size(), &outer.targets);
  outer.targets.push_back(b::Target(b::Col("u", kDm), kDm));
  outer.from.push_back(
      b::Subquery(b::UnionAll({side(State::kPost, 1), side(State::kPre, -1)}), "u"));
  return AddCte("d", outer.Build());
}

std::string SqlGenerator::DeltaByKeys(const Op& op) {
  // Partition key expressions per input (over "i" of that input), and the
  // key set built from the inputs' deltas.
  std::vector<std::vector<Node>> part(op.inputs.size());
  if (op.kind == OpKind::kJoin) {
    for (const auto& [le, re] : op.equi) {
      part[0].push_back(Rebase(le, "l", "i", 0));
      part[1].push_back(Rebase(re, "r", "i", 0));
    }
  } else if (op.kind == OpKind::kAggregate) {
    part[0] = op.group_exprs;
  } else {
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      for (int k : VisibleColumns(*op.inputs[i])) part[i].push_back(Ref("i", k));
    }
  }
  std::vector<std::string> deltas;
  for (const auto& in : op.inputs) deltas.push_back(Delta(*in));
  if (part[0].empty()) {
    // No partition key: recompute the whole operator, only when an input changed.
    b::NodeList ors;
    for (const auto& d : deltas) {
      b::Select e;
      e.targets.push_back(b::Target(b::Int(1)));
      e.from.push_back(FromCte(d, "g"));
      ors.push_back(b::Exists(e.Build()));
    }
    return Recompute(op, {}, b::Or(std::move(ors)));
  }
  b::NodeList key_selects;
  for (size_t i = 0; i < op.inputs.size(); ++i) {
    b::Select k;
    for (size_t j = 0; j < part[i].size(); ++j) {
      k.targets.push_back(b::Target(part[i][j], absl::StrCat("k", j + 1)));
    }
    k.from.push_back(FromCte(deltas[i], "i"));
    key_selects.push_back(k.Build());
  }
  Node keys;
  if (key_selects.size() == 1) {
    key_selects[0].mutable_select_stmt()->add_distinct_clause();
    keys = key_selects[0];
  } else {
    keys = b::SetOp(pg_query::SETOP_UNION, false, key_selects[0], key_selects[1]);
  }
  std::string keys_cte = AddCte("k", keys);
  std::vector<Restriction> restrictions(op.inputs.size());
  std::vector<const Restriction*> in;
  for (size_t i = 0; i < op.inputs.size(); ++i) {
    restrictions[i].exprs = part[i];
    for (const auto& e : part[i])
      restrictions[i].nullable.push_back(!ExprNotNull(e, "i", *op.inputs[i]));
    restrictions[i].keys_cte = keys_cte;
  }
  for (const auto& r : restrictions) in.push_back(&r);
  return Recompute(op, in, Node());
}

std::string SqlGenerator::DeltaNotIn(const Op& op) {
  const Op& l = *op.inputs[0];
  const Op& r = *op.inputs[1];
  std::string dl = Delta(l), dr = Delta(r);
  // NOT IN depends on two global facts about the subquery besides the key:
  // whether it has rows at all and whether it has a NULL. While those are
  // the same before and after, only the touched keys change; otherwise
  // everything is recomputed.
  auto exists = [&](State state, bool nulls) {
    b::Select e;
    e.targets.push_back(b::Target(b::Int(1)));
    e.from.push_back(b::Subquery(Eval(r, state), "r"));
    if (nulls) e.where.push_back(b::IsNullValue(Ref("r", 0)));
    return b::Exists(e.Build());
  };
  b::Select flags;
  flags.targets.push_back(b::Target(exists(State::kPost, false), "e1"));
  flags.targets.push_back(b::Target(exists(State::kPost, true), "n1"));
  flags.targets.push_back(b::Target(exists(State::kPre, false), "e0"));
  flags.targets.push_back(b::Target(exists(State::kPre, true), "n0"));
  std::string f = AddCte("f", flags.Build());
  auto flag = [&](Node expr) {
    b::Select s;
    s.targets.push_back(b::Target(std::move(expr)));
    s.from.push_back(FromCte(f, "f"));
    return b::ScalarSubquery(s.Build());
  };
  Node same = flag(b::And(
      {b::Eq(b::Col("f", "e1"), b::Col("f", "e0")), b::Eq(b::Col("f", "n1"), b::Col("f", "n0"))}));

  b::Select k1, k2;
  k1.targets.push_back(b::Target(op.condition, "k1"));
  k1.from.push_back(FromCte(dl, "l"));
  k2.targets.push_back(b::Target(Ref("r", 0), "k1"));
  k2.from.push_back(FromCte(dr, "r"));
  std::string keys_cte =
      AddCte("k", b::SetOp(pg_query::SETOP_UNION, false, k1.Build(), k2.Build()));
  Restriction rl;
  rl.exprs.push_back(Rebase(op.condition, "l", "i", 0));
  rl.nullable.push_back(!ExprNotNull(rl.exprs[0], "i", l));
  rl.keys_cte = keys_cte;

  auto restricted = [&](State state, const char* e, const char* n, int sign) {
    b::Select probe;
    probe.targets.push_back(b::Target(b::Int(1)));
    probe.from.push_back(b::Subquery(Eval(r, state), "r"));
    probe.where.push_back(b::Eq(Ref("r", 0), op.condition));
    Node passes = b::Or({b::Not(flag(b::Col("f", e))),
                         b::And({b::IsNotNullValue(op.condition), b::Not(flag(b::Col("f", n))),
                                 b::Not(b::Exists(probe.Build()))})});
    b::Select s;
    AddPassThrough("l", op.columns.size(), &s.targets);
    s.targets.push_back(b::Target(BigInt(sign), kDm));
    s.from.push_back(b::Subquery(Eval(l, state, &rl), "l"));
    s.where.push_back(same);
    s.where.push_back(passes);
    return s.Build();
  };
  auto full = [&](State state, int sign) {
    b::Select s;
    AddPassThrough("x", op.columns.size(), &s.targets);
    s.targets.push_back(b::Target(BigInt(sign), kDm));
    s.from.push_back(b::Subquery(Build(op, state, {}), "x"));
    s.where.push_back(b::Not(same));
    return s.Build();
  };
  b::Select outer;
  AddPassThrough("u", op.columns.size(), &outer.targets);
  outer.targets.push_back(b::Target(b::Col("u", kDm), kDm));
  outer.from.push_back(b::Subquery(
      b::UnionAll({restricted(State::kPost, "e1", "n1", 1), restricted(State::kPre, "e0", "n0", -1),
                   full(State::kPost, 1), full(State::kPre, -1)}),
      "u"));
  return AddCte("d", outer.Build());
}

std::string SqlGenerator::DeltaScalar(const Op& op) {
  auto value = [&](State state) {
    b::Select s;
    s.targets.push_back(b::Target(Ref("v", 0)));
    s.from.push_back(b::Subquery(Build(op, state, {}), "v"));
    return b::ScalarSubquery(s.Build());
  };
  b::Select both;
  both.targets.push_back(b::Target(value(State::kPost), "n"));
  both.targets.push_back(b::Target(value(State::kPre), "o"));
  both.where.push_back(SourcesChanged(op));
  std::string s = AddCte("s", both.Build());
  auto side = [&](const char* col, int sign) {
    b::Select x;
    x.targets.push_back(b::Target(b::Col("s", col), ColName(0)));
    x.targets.push_back(b::Target(BigInt(sign), kDm));
    x.from.push_back(FromCte(s, "s"));
    x.where.push_back(b::IsDistinct(b::Col("s", "n"), b::Col("s", "o")));
    return x.Build();
  };
  b::Select outer;
  AddPassThrough("u", 1, &outer.targets);
  outer.targets.push_back(b::Target(b::Col("u", kDm), kDm));
  outer.from.push_back(b::Subquery(b::UnionAll({side("n", 1), side("o", -1)}), "u"));
  return AddCte("d", outer.Build());
}

std::string SqlGenerator::Strategy(const Op& op) {
  switch (op.kind) {
    case OpKind::kScan:
      return "delta table";
    case OpKind::kValues:
      return "constant (no delta)";
    case OpKind::kFilter:
    case OpKind::kProject:
      return "linear";
    case OpKind::kJoin:
      switch (op.join) {
        case JoinKind::kInner:
          return "bilinear: ΔL⋈R₁ + L₁⋈ΔR − ΔL⋈ΔR";
        case JoinKind::kNotIn:
          return "affected-key recompute on the NOT IN key while the subquery's emptiness and "
                 "NULLs are unchanged, else full recompute";
        default:
          return op.equi.empty() ? "recompute when an input changes (no equi-join key)"
                                 : "affected-key recompute on the equi-join key";
      }
    case OpKind::kAggregate:
      return op.group_exprs.empty() ? "recompute when the input changes"
                                    : "affected-key recompute on the group key";
    case OpKind::kDistinct:
      return "affected-key recompute on the whole row";
    case OpKind::kSetOp:
      return op.setop == SetOpKind::kUnionAll ? "linear"
                                              : "affected-key recompute on the whole row";
    case OpKind::kScalar:
      return "recompute when its sources change; old and new value diffed";
  }
  return "";
}

}  // namespace trickle::delta
