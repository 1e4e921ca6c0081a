#include "delta/delta_engine.h"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "delta/delta_sql.h"
#include "delta/lowering.h"
#include "delta/operator_tree.h"
#include "delta/pg_parser.h"
#include "delta/rewrite.h"
#include "delta/sql_builder.h"

namespace trickle::delta {

using pg_query::Node;
namespace b = sqlb;

namespace {

constexpr char kOp[] = "__pgt_op";
constexpr char kRowId[] = "__pgt_row_id";
constexpr char kDup[] = "__pgt_dup";
constexpr char kCount[] = "__pgt_count";

// How the top of the operator tree is stored and how its delta is applied.
struct StoragePlan {
  std::string mode;  // for the explanation
  std::vector<StorageColumn> columns;
  std::vector<int> identity;  // indices into columns
  int row_id = -1;            // index of __pgt_row_id, or -1 when identity is NOT NULL
  Node full_select;           // produces every storage column, in order
  Node delta_final;           // produces every storage column and __pgt_op; CTEs in the generator
  bool updates = true;        // the MERGE has an UPDATE branch
  // Leave room in each page for updated rows, so a refresh's updates of an
  // aggregate row stay on its page (HOT: no index writes). 0 = default.
  int fillfactor = 0;
  // Operators whose delta the apply step computes itself (by op id), with
  // how: shown in the explanation instead of the generic strategy.
  std::map<int, std::string> strategy_overrides;
  // When set, the MERGE computes the new rows itself from the stored row
  // (t) and the delta row (d), instead of the delta carrying whole new rows
  // and __pgt_op. Values are indexed like `columns`.
  struct ComputedMerge {
    Node delete_condition;              // over t and d; unset: never delete
    std::vector<Node> matched_values;   // over t and d
    std::vector<Node> inserted_values;  // over d only
    Node insert_condition;              // over d
  };
  std::optional<ComputedMerge> computed;
};

std::vector<int> Visible(const Op& op) {
  std::vector<int> v;
  for (size_t k = 0; k < op.columns.size(); ++k) {
    if (!op.columns[k].hidden) v.push_back(k);
  }
  return v;
}

Node Ref(const std::string& alias, int k) { return b::Col(alias, ColName(k)); }

// 'D' when `is_delete`, else 'U'.
Node OpColumn(Node is_delete) {
  Node u = b::Str("U");
  return b::Case({{std::move(is_delete), b::Str("D")}}, &u);
}

// Storage-table match between alias t (storage) and alias d (delta rows, with
// identity values under the storage names).
Node IdentityMatch(const StoragePlan& p, const std::string& t, const std::string& d) {
  b::NodeList conds;
  if (p.row_id >= 0) {
    conds.push_back(b::Eq(b::Col(t, kRowId), b::Col(d, kRowId)));
    for (int k : p.identity) {
      conds.push_back(b::IsNotDistinct(b::Col(t, p.columns[k].name), b::Col(d, p.columns[k].name)));
    }
  } else {
    for (int k : p.identity) {
      conds.push_back(b::Eq(b::Col(t, p.columns[k].name), b::Col(d, p.columns[k].name)));
    }
  }
  return b::And(std::move(conds));
}

bool IsAlgebraic(const AggCall& a) {
  if (a.distinct || a.ordered) return false;
  // Only the built-in aggregates: unqualified (pg_catalog is searched first)
  // or pg_catalog-qualified.
  const auto& name = a.call.func_call().funcname();
  if (name.size() > 2 || (name.size() == 2 && name[0].string().sval() != "pg_catalog"))
    return false;
  const auto& args = a.call.func_call().args();
  if (a.name == "count") return a.star || args.size() == 1;
  if (a.name == "sum" || a.name == "avg") {
    // Integer arguments only: their sums are exact and their scale is 0, so
    // old + delta equals a fresh sum bit for bit. Floating-point sums drift
    // and numeric sums change scale; those are recomputed per group.
    return args.size() == 1 &&
           (a.arg_type == "integer" || a.arg_type == "bigint" || a.arg_type == "smallint");
  }
  return false;
}

// MIN / MAX: maintained from the stored extreme while no deleted value
// reaches it; a group whose extreme may have been deleted is rescanned.
bool IsExtreme(const AggCall& a) {
  if (a.distinct || a.ordered || (a.name != "min" && a.name != "max")) return false;
  const auto& name = a.call.func_call().funcname();
  if (name.size() > 2 || (name.size() == 2 && name[0].string().sval() != "pg_catalog"))
    return false;
  return a.call.func_call().args_size() == 1;
}

std::string SumType(const AggCall& a) { return a.arg_type == "bigint" ? "numeric" : "bigint"; }

Node RenamedCall(const AggCall& a, const std::string& name) {
  Node n = a.call;
  auto* fc = n.mutable_func_call();
  fc->clear_funcname();
  fc->add_funcname()->mutable_string()->set_sval("pg_catalog");
  fc->add_funcname()->mutable_string()->set_sval(name);
  return n;
}

class PlanBuilder {
 public:
  PlanBuilder(const StreamTableSpec& spec, const LoweredQuery& q,
              const std::vector<std::string>& names)
      : spec_(spec), q_(q), names_(names), gen_(q.sources) {}

  absl::StatusOr<StoragePlan> Build() {
    const Op& top = *q_.root;
    if (top.kind == OpKind::kProject) {
      const Op* post = top.inputs[0].get();  // the aggregate, or HAVING over it
      const Op* agg = post;
      if (agg->kind == OpKind::kFilter && agg->inputs[0]->kind == OpKind::kAggregate) {
        agg = agg->inputs[0].get();
      }
      if (agg->kind == OpKind::kAggregate) {
        bool algebraic = post == agg;
        for (const auto& a : agg->aggs) algebraic &= IsAlgebraic(a) || IsExtreme(a);
        if (algebraic) return AggregateAlgebraic(top, *agg);
        if (!agg->group_exprs.empty()) return AggregateRecompute(top, *post, *agg);
      }
    }
    if (top.kind == OpKind::kDistinct) return DistinctCount(top);
    if (top.key.has_value()) return Keyed(top);
    return Multiset(top);
  }

  SqlGenerator& gen() { return gen_; }

 private:
  Node Storage(const std::string& alias) const { return b::Table(spec_.schema, spec_.name, alias); }

  StoragePlan Keyed(const Op& top);
  StoragePlan Multiset(const Op& top);
  StoragePlan AggregateAlgebraic(const Op& project, const Op& agg);
  StoragePlan AggregateRecompute(const Op& project, const Op& post, const Op& agg);
  StoragePlan DistinctCount(const Op& distinct);
  // The storage columns of a grouped aggregate: the visible ones, then a
  // hidden __pgt_g<j> for each group key no visible column is exactly; the
  // identity is the group key. Returns each group key's storage column and
  // whether any group key can be NULL.
  std::pair<std::vector<int>, bool> GroupIdentity(const Op& project, const std::vector<int>& vis, const Op& agg,
                                                  StoragePlan* p);

  const StreamTableSpec& spec_;
  const LoweredQuery& q_;
  const std::vector<std::string>& names_;
  SqlGenerator gen_;
};

// Rows keyed by a unique key of the output (carried source keys, group keys):
// consolidate the delta per row, then per key keep the new row if there is
// one (an upsert) or delete.
StoragePlan PlanBuilder::Keyed(const Op& top) {
  StoragePlan p;
  p.mode = "keyed: one storage row per output row, identified by its key";
  std::vector<int> stored;  // top column per storage column
  auto vis = Visible(top);
  for (size_t j = 0; j < vis.size(); ++j) {
    p.columns.push_back({names_[j], false});
    stored.push_back(vis[j]);
  }
  bool nullable = false;
  int hidden_n = 0;
  for (int k : *top.key) {
    int idx = -1;
    for (size_t j = 0; j < stored.size(); ++j) {
      if (stored[j] == k) idx = j;
    }
    if (idx < 0) {
      p.columns.push_back({absl::StrCat("__pgt_k", ++hidden_n), true});
      stored.push_back(k);
      idx = stored.size() - 1;
    }
    p.identity.push_back(idx);
    nullable |= !top.columns[k].not_null;
  }
  b::NodeList key_refs_i, key_refs_c;
  for (int k : *top.key) {
    key_refs_i.push_back(Ref("i", k));
    key_refs_c.push_back(Ref("c", k));
  }
  if (nullable) {
    p.columns.push_back({kRowId, true});
    p.row_id = p.columns.size() - 1;
  }
  {
    b::Select s;
    for (size_t j = 0; j < stored.size(); ++j)
      s.targets.push_back(b::Target(Ref("i", stored[j]), p.columns[j].name));
    if (nullable) s.targets.push_back(b::Target(b::RowHash(key_refs_i), kRowId));
    s.from.push_back(b::Subquery(gen_.Eval(top, State::kPost), "i"));
    p.full_select = s.Build();
  }
  std::string d = gen_.Delta(top);
  b::Select c;
  for (int k : stored) {
    c.targets.push_back(b::Target(Ref("i", k), ColName(k)));
    c.group_by.push_back(Ref("i", k));
  }
  Node dm_sum = b::Agg("sum", {b::Col("i", "__pgt_dm")});
  c.targets.push_back(b::Target(dm_sum, "__pgt_n"));
  c.having.push_back(b::Op("<>", dm_sum, b::Int(0)));
  c.from.push_back(b::Table("", d, "i"));
  std::string cname = gen_.AddCte("c", c.Build());
  b::Select f;
  for (size_t j = 0; j < stored.size(); ++j)
    f.targets.push_back(b::Target(Ref("c", stored[j]), p.columns[j].name));
  if (nullable) f.targets.push_back(b::Target(b::RowHash(key_refs_c), kRowId));
  f.targets.push_back(b::Target(OpColumn(b::Op("<", b::Col("c", "__pgt_n"), b::Int(0))), kOp));
  f.from.push_back(b::Table("", cname, "c"));
  // Per key at most one row with +1 (its new version) and one with -1 (its
  // old version): the new one wins; a lone -1 is a delete.
  if (top.key->empty()) {
    f.limit = 1;
  } else {
    f.distinct_on = key_refs_c;
    for (const auto& k : key_refs_c) f.order_by.push_back(b::SortBy(k, false));
  }
  f.order_by.push_back(b::SortBy(b::Col("c", "__pgt_n"), true));
  p.delta_final = f.Build();
  return p;
}

// No key: rows are stored with an ordinal among equal rows (__pgt_dup), so
// duplicates are exact. A net change of +n for a row value inserts ordinals
// old+1..old+n; -n deletes old-n+1..old.
StoragePlan PlanBuilder::Multiset(const Op& top) {
  StoragePlan p;
  p.mode = "multiset: rows identified by their values and an ordinal among equal rows";
  p.updates = false;
  auto vis = Visible(top);
  b::NodeList vis_i, vis_c;
  for (size_t j = 0; j < vis.size(); ++j) {
    p.columns.push_back({names_[j], false});
    p.identity.push_back(j);
    vis_i.push_back(Ref("i", vis[j]));
    vis_c.push_back(Ref("c", vis[j]));
  }
  p.columns.push_back({kRowId, true});
  p.row_id = p.columns.size() - 1;
  p.columns.push_back({kDup, true});
  p.identity.push_back(p.columns.size() - 1);
  {
    b::Select s;
    for (size_t j = 0; j < vis.size(); ++j) s.targets.push_back(b::Target(vis_i[j], names_[j]));
    s.targets.push_back(b::Target(b::RowHash(vis_i), kRowId));
    s.targets.push_back(b::Target(b::RowNumberOver(vis_i), kDup));
    s.from.push_back(b::Subquery(gen_.Eval(top, State::kPost), "i"));
    p.full_select = s.Build();
  }
  std::string d = gen_.Delta(top);
  b::Select c;
  for (int k : vis) {
    c.targets.push_back(b::Target(Ref("i", k), ColName(k)));
    c.group_by.push_back(Ref("i", k));
  }
  Node dm_sum = b::Agg("sum", {b::Col("i", "__pgt_dm")});
  c.targets.push_back(b::Target(dm_sum, "__pgt_n"));
  c.having.push_back(b::Op("<>", dm_sum, b::Int(0)));
  c.from.push_back(b::Table("", d, "i"));
  std::string cname = gen_.AddCte("c", c.Build());
  // How many copies the storage table holds now.
  b::Select old;
  old.targets.push_back(b::Target(b::CountStar()));
  old.from.push_back(Storage("t"));
  old.where.push_back(b::Eq(b::Col("t", kRowId), b::RowHash(vis_c)));
  for (size_t j = 0; j < vis.size(); ++j) {
    old.where.push_back(b::IsNotDistinct(b::Col("t", names_[j]), vis_c[j]));
  }
  b::Select o;
  for (int k : vis) o.targets.push_back(b::Target(Ref("c", k), ColName(k)));
  o.targets.push_back(b::Target(b::Col("c", "__pgt_n"), "__pgt_n"));
  o.targets.push_back(b::Target(b::RowHash(vis_c), "__pgt_h"));
  o.targets.push_back(b::Target(b::ScalarSubquery(old.Build()), "__pgt_old"));
  o.from.push_back(b::Table("", cname, "c"));
  std::string oname = gen_.AddCte("o", o.Build());
  Node n = b::Col("o", "__pgt_n");
  Node old_n = b::Col("o", "__pgt_old");
  Node positive = b::Op(">", n, b::Int(0));
  Node lo_neg = b::Op("+", b::Op("+", old_n, n), b::Int(1));
  Node lo = b::Case({{positive, b::Op("+", old_n, b::Int(1))}}, &lo_neg);
  Node hi = b::Case({{positive, b::Op("+", old_n, n)}}, &old_n);
  b::Select f;
  for (size_t j = 0; j < vis.size(); ++j)
    f.targets.push_back(b::Target(Ref("o", vis[j]), names_[j]));
  f.targets.push_back(b::Target(b::Col("o", "__pgt_h"), kRowId));
  f.targets.push_back(b::Target(b::Func("generate_series", {lo, hi}), kDup));
  f.targets.push_back(b::Target(OpColumn(b::Op("<", n, b::Int(0))), kOp));
  f.from.push_back(b::Table("", oname, "o"));
  p.delta_final = f.Build();
  return p;
}

// GROUP BY with only COUNT / SUM / AVG over integers: the storage row keeps
// each aggregate's state (hidden count and sum columns); a group's new state
// is its old state plus the delta's, and the visible columns are the select
// list evaluated over the new state.
std::pair<std::vector<int>, bool> PlanBuilder::GroupIdentity(const Op& project, const std::vector<int>& vis,
                                                             const Op& agg, StoragePlan* p) {
  const int g = agg.group_exprs.size();
  for (size_t j = 0; j < vis.size(); ++j) p->columns.push_back({names_[j], false});
  std::vector<int> group_storage(g, -1);
  bool nullable = false;
  for (int j = 0; j < g; ++j) {
    for (size_t v = 0; v < vis.size(); ++v) {
      const Node& e = project.exprs[vis[v]];
      if (e.has_column_ref() && CanonicalKey(e) == CanonicalKey(Ref("i", j))) {
        group_storage[j] = v;
        break;
      }
    }
    if (group_storage[j] < 0) {
      p->columns.push_back({absl::StrCat("__pgt_g", j + 1), true});
      group_storage[j] = p->columns.size() - 1;
    }
    p->identity.push_back(group_storage[j]);
    nullable |= !agg.columns[j].not_null;
  }
  return {std::move(group_storage), nullable};
}

StoragePlan PlanBuilder::AggregateAlgebraic(const Op& project, const Op& agg) {
  StoragePlan p;
  bool extremes = false;
  for (const auto& a : agg.aggs) extremes |= IsExtreme(a);
  p.mode = extremes ? "algebraic aggregate: hidden count/sum/extreme state per group, new = old + "
                      "delta; a group whose MIN/MAX may have been deleted is rescanned"
                    : "algebraic aggregate: hidden count/sum state per group, new = old + delta";
  p.fillfactor = 90;
  p.strategy_overrides[agg.id] =
      extremes ? "algebraic: hidden count/sum/extreme state += the input delta; MIN/MAX rescan "
                 "only groups whose extreme was deleted"
               : "algebraic: per group, hidden count/sum state += the input delta's sums (no "
                 "rescan)";
  const int g = agg.group_exprs.size();
  auto vis = Visible(project);
  auto [group_storage, nullable] = GroupIdentity(project, vis, agg, &p);
  const int count_col = p.columns.size();
  p.columns.push_back({kCount, true});
  std::vector<int> state_a(agg.aggs.size(), -1), state_n(agg.aggs.size(), -1);
  for (size_t k = 0; k < agg.aggs.size(); ++k) {
    state_a[k] = p.columns.size();
    p.columns.push_back({absl::StrCat("__pgt_a", k + 1), true});
    if (agg.aggs[k].name == "sum" || agg.aggs[k].name == "avg") {
      state_n[k] = p.columns.size();
      p.columns.push_back({absl::StrCat("__pgt_n", k + 1), true});
    }
  }
  if (nullable) {
    p.columns.push_back({kRowId, true});
    p.row_id = p.columns.size() - 1;
  }
  b::NodeList groups_i;
  for (int j = 0; j < g; ++j) groups_i.push_back(Ref("i", j));

  // The full refresh's outer select: the select list over `i` (the
  // aggregate's output c1.. and the state columns), hidden group columns,
  // the state, the hash.
  auto finish = [&]() {
    b::Select s;
    for (size_t v = 0; v < vis.size(); ++v)
      s.targets.push_back(b::Target(project.exprs[vis[v]], p.columns[v].name));
    for (int j = 0; j < g; ++j) {
      if (group_storage[j] >= static_cast<int>(vis.size())) {
        s.targets.push_back(b::Target(Ref("i", j), p.columns[group_storage[j]].name));
      }
    }
    s.targets.push_back(b::Target(b::Col("i", kCount), kCount));
    for (size_t k = 0; k < agg.aggs.size(); ++k) {
      s.targets.push_back(
          b::Target(b::Col("i", p.columns[state_a[k]].name), p.columns[state_a[k]].name));
      if (state_n[k] >= 0) {
        s.targets.push_back(
            b::Target(b::Col("i", p.columns[state_n[k]].name), p.columns[state_n[k]].name));
      }
    }
    if (nullable) s.targets.push_back(b::Target(b::RowHash(groups_i), kRowId));
    return s;
  };

  // Full refresh: aggregate values and their state in one pass.
  {
    b::Select inner;
    for (int j = 0; j < g; ++j) {
      inner.targets.push_back(b::Target(agg.group_exprs[j], ColName(j)));
      inner.group_by.push_back(agg.group_exprs[j]);
    }
    for (size_t k = 0; k < agg.aggs.size(); ++k) {
      inner.targets.push_back(b::Target(agg.aggs[k].call, ColName(g + k)));
    }
    inner.targets.push_back(b::Target(b::CountStar(), kCount));
    for (size_t k = 0; k < agg.aggs.size(); ++k) {
      const AggCall& a = agg.aggs[k];
      Node state = a.call;
      if (a.name == "avg") state = b::Cast(RenamedCall(a, "sum"), "numeric");
      inner.targets.push_back(b::Target(state, p.columns[state_a[k]].name));
      if (state_n[k] >= 0)
        inner.targets.push_back(b::Target(RenamedCall(a, "count"), p.columns[state_n[k]].name));
    }
    inner.from.push_back(b::Subquery(gen_.Eval(*agg.inputs[0], State::kPost), "i"));
    b::Select outer = finish();
    outer.from.push_back(b::Subquery(inner.Build(), "i"));
    p.full_select = outer.Build();
  }

  // Delta: per touched group, the change of every state column. Group
  // values are __pgt_gv<j> here (user column names can be anything).
  std::string din = gen_.Delta(*agg.inputs[0]);
  Node dm = b::Col("i", "__pgt_dm");
  auto gv = [](int j) { return absl::StrCat("__pgt_gv", j + 1); };
  b::Select da;
  for (int j = 0; j < g; ++j) {
    da.targets.push_back(b::Target(agg.group_exprs[j], gv(j)));
    da.group_by.push_back(agg.group_exprs[j]);
  }
  da.targets.push_back(b::Target(b::Agg("sum", {dm}), "__pgt_dcount"));
  for (size_t k = 0; k < agg.aggs.size(); ++k) {
    const AggCall& a = agg.aggs[k];
    const auto& fc = a.call.func_call();
    b::NodeList filter;
    if (fc.has_agg_filter()) filter.push_back(fc.agg_filter());
    b::NodeList nonnull = filter;
    if (!a.star) nonnull.push_back(b::IsNotNullValue(fc.args(0)));
    Node fa = b::And(filter), fn = b::And(nonnull);
    const Node* fa_ptr = filter.empty() ? nullptr : &fa;
    const Node* fn_ptr = nonnull.empty() ? nullptr : &fn;
    if (IsExtreme(a)) {
      // The extreme of the values gained and of the values lost.
      b::NodeList gained = filter, lost = filter;
      gained.push_back(b::Op(">", dm, b::Int(0)));
      lost.push_back(b::Op("<", dm, b::Int(0)));
      Node fg = b::And(gained), fl = b::And(lost);
      da.targets.push_back(
          b::Target(b::Agg(a.name, {fc.args(0)}, &fg), absl::StrCat("__pgt_ins", k + 1)));
      da.targets.push_back(
          b::Target(b::Agg(a.name, {fc.args(0)}, &fl), absl::StrCat("__pgt_del", k + 1)));
    } else if (a.name == "count") {
      da.targets.push_back(b::Target(b::Agg("sum", {dm}, fn_ptr), absl::StrCat("__pgt_da", k + 1)));
    } else {
      // Inside a delta every multiplicity is +1 or -1 (scans give ±1 and
      // joins multiply them), so an int2/int4 argument times it fits a
      // bigint, whose sum PostgreSQL accumulates in 128 bits; an int8
      // argument goes through numeric (-(-2^63) would not fit).
      Node term =
          b::Op("*", b::Cast(fc.args(0), a.arg_type == "bigint" ? "numeric" : "bigint"), dm);
      da.targets.push_back(
          b::Target(b::Agg("sum", {term}, fa_ptr), absl::StrCat("__pgt_da", k + 1)));
      da.targets.push_back(b::Target(b::Agg("sum", {dm}, fn_ptr), absl::StrCat("__pgt_dn", k + 1)));
    }
  }
  da.from.push_back(b::Table("", din, "i"));
  std::string da_name = gen_.AddCte("a", da.Build());

  // The MERGE's source: one row per touched group, its identity under the
  // storage names, and the state changes.
  b::Select src;
  b::NodeList gvals;
  for (int j = 0; j < g; ++j) gvals.push_back(b::Col("a", gv(j)));
  for (int j = 0; j < g; ++j)
    src.targets.push_back(b::Target(gvals[j], p.columns[group_storage[j]].name));
  if (nullable) src.targets.push_back(b::Target(b::RowHash(gvals), kRowId));
  for (int j = 0; j < g; ++j) src.targets.push_back(b::Target(gvals[j], gv(j)));
  src.targets.push_back(b::Target(b::Col("a", "__pgt_dcount"), "__pgt_dcount"));
  for (size_t k = 0; k < agg.aggs.size(); ++k) {
    std::vector<std::string> cols;
    if (IsExtreme(agg.aggs[k])) {
      cols = {"__pgt_ins", "__pgt_del"};
    } else {
      cols = {"__pgt_da"};
      if (state_n[k] >= 0) cols.push_back("__pgt_dn");
    }
    for (const auto& col : cols) {
      std::string name = absl::StrCat(col, k + 1);
      src.targets.push_back(b::Target(b::Col("a", name), name));
    }
  }
  src.from.push_back(b::Table("", da_name, "a"));
  if (!extremes) {
    p.delta_final = src.Build();
  } else {
    // MIN / MAX: a group needs a rescan when a lost value reaches its stored
    // extreme (it may have been the extreme); otherwise the new extreme is
    // the stored one or a gained value, whichever is more extreme.
    b::NodeList rescan;
    for (size_t k = 0; k < agg.aggs.size(); ++k) {
      if (!IsExtreme(agg.aggs[k])) continue;
      Node lost = b::Col("d", absl::StrCat("__pgt_del", k + 1));
      Node stored = b::Col("t", p.columns[state_a[k]].name);
      rescan.push_back(
          b::And({b::IsNotNullValue(lost),
                  b::Or({b::IsNullValue(stored),
                         b::Op(agg.aggs[k].name == "min" ? "<=" : ">=", lost, stored)})}));
    }
    b::Select flagged;
    flagged.targets.push_back(b::Target(b::Star("d")));
    flagged.targets.push_back(b::Target(b::Or(rescan), "__pgt_rescan"));
    flagged.from.push_back(b::Join(pg_query::JOIN_LEFT, b::Subquery(src.Build(), "d"), Storage("t"),
                                   IdentityMatch(p, "t", "d")));
    std::string f = gen_.AddCte("f", flagged.Build());
    // The rescanned groups, aggregated again from the live tables.
    Node recomputed;
    if (g > 0) {
      b::Select keys;
      for (int j = 0; j < g; ++j)
        keys.targets.push_back(b::Target(b::Col("f", gv(j)), absl::StrCat("k", j + 1)));
      keys.from.push_back(b::Table("", f, "f"));
      keys.where.push_back(b::Col("f", "__pgt_rescan"));
      Restriction r;
      for (int j = 0; j < g; ++j) {
        r.exprs.push_back(Ref("i", j));
        r.nullable.push_back(!agg.columns[j].not_null);
      }
      r.keys_cte = gen_.AddCte("k", keys.Build());
      recomputed = gen_.Eval(agg, State::kPost, &r);
    } else {
      b::Select gate;
      gate.targets.push_back(b::Target(b::Int(1)));
      gate.from.push_back(b::Table("", f, "f"));
      gate.where.push_back(b::Col("f", "__pgt_rescan"));
      b::Select all;
      const int n = agg.columns.size();
      for (int c = 0; c < n; ++c) all.targets.push_back(b::Target(Ref("x", c), ColName(c)));
      all.from.push_back(b::Subquery(gen_.Eval(agg, State::kPost), "x"));
      all.where.push_back(b::Exists(gate.Build()));
      recomputed = all.Build();
    }
    b::Select rows;
    for (int c = 0; c < static_cast<int>(agg.columns.size()); ++c)
      rows.targets.push_back(b::Target(Ref("i", c), ColName(c)));
    rows.targets.push_back(b::Target(b::RowHash(groups_i), "__pgt_h"));
    rows.from.push_back(b::Subquery(recomputed, "i"));
    std::string r = gen_.AddCte("r", rows.Build());
    b::Select out;
    out.targets.push_back(b::Target(b::Star("f")));
    for (size_t k = 0; k < agg.aggs.size(); ++k) {
      if (IsExtreme(agg.aggs[k])) {
        out.targets.push_back(b::Target(Ref("r", g + k), absl::StrCat("__pgt_r", k + 1)));
      }
    }
    b::NodeList match;
    b::NodeList fvals;
    for (int j = 0; j < g; ++j) fvals.push_back(b::Col("f", gv(j)));
    if (g > 0) {
      match.push_back(b::Eq(b::Col("r", "__pgt_h"), b::RowHash(fvals)));
      for (int j = 0; j < g; ++j) match.push_back(b::IsNotDistinct(Ref("r", j), fvals[j]));
    }
    out.from.push_back(b::Join(pg_query::JOIN_LEFT, b::Table("", f, "f"), b::Table("", r, "r"),
                               b::And(std::move(match))));
    p.delta_final = out.Build();
  }

  // The new row, as expressions over the stored row (t) and the delta row
  // (d); `stored` false means no stored row (the NOT MATCHED branch, where
  // the target cannot be referenced): the old state is zero.
  auto zero_if_null = [](Node n) { return b::Coalesce({std::move(n), b::Int(0)}); };
  auto new_row = [&](bool stored) {
    auto old = [&](int col) { return stored ? b::Col("t", p.columns[col].name) : b::Null(); };
    std::vector<Node> v(p.columns.size());
    v[count_col] =
        b::Op("+", zero_if_null(old(count_col)), zero_if_null(b::Col("d", "__pgt_dcount")));
    std::vector<Node> agg_values;
    for (size_t k = 0; k < agg.aggs.size(); ++k) {
      const AggCall& a = agg.aggs[k];
      if (IsExtreme(a)) {
        b::NodeList both = {old(state_a[k]), b::Col("d", absl::StrCat("__pgt_ins", k + 1))};
        Node kept = a.name == "min" ? b::Least(both) : b::Greatest(both);
        Node rescanned = b::Col("d", absl::StrCat("__pgt_r", k + 1));
        v[state_a[k]] = b::Case({{b::Col("d", "__pgt_rescan"), rescanned}}, &kept);
        agg_values.push_back(v[state_a[k]]);
        continue;
      }
      Node add_a = b::Op("+", zero_if_null(old(state_a[k])),
                         zero_if_null(b::Col("d", absl::StrCat("__pgt_da", k + 1))));
      if (a.name == "count") {
        v[state_a[k]] = b::Cast(add_a, "bigint");
        agg_values.push_back(v[state_a[k]]);
        continue;
      }
      Node new_n = b::Cast(b::Op("+", zero_if_null(old(state_n[k])),
                                 zero_if_null(b::Col("d", absl::StrCat("__pgt_dn", k + 1)))),
                           "bigint");
      Node null = b::Null();
      Node sum = b::Cast(add_a, a.name == "avg" ? "numeric" : SumType(a));
      v[state_a[k]] = b::Case({{b::Eq(new_n, b::Int(0)), null}}, &sum);
      v[state_n[k]] = new_n;
      if (a.name == "sum") {
        agg_values.push_back(v[state_a[k]]);
      } else {  // avg: numeric sum / count, as int8_avg and numeric_poly_avg compute it
        Node div = b::Op("/", b::Cast(sum, "numeric"), b::Cast(new_n, "numeric"));
        agg_values.push_back(b::Case({{b::Eq(new_n, b::Int(0)), null}}, &div));
      }
    }
    // The select list over the new aggregate values (i.c<k> of the
    // aggregate's output: group values, then aggregates).
    std::vector<Node> agg_output;
    for (int j = 0; j < g; ++j) agg_output.push_back(b::Col("d", gv(j)));
    for (auto& x : agg_values) agg_output.push_back(x);
    for (size_t c = 0; c < vis.size(); ++c)
      v[c] = Substitute(project.exprs[vis[c]], "i", agg_output);
    for (int j = 0; j < g; ++j) v[group_storage[j]] = b::Col("d", gv(j));
    if (nullable) v[p.row_id] = b::Col("d", kRowId);
    return v;
  };
  StoragePlan::ComputedMerge cm;
  cm.matched_values = new_row(true);
  cm.inserted_values = new_row(false);
  if (g > 0) {
    // A group whose count reaches zero is gone (the DELETE branch comes
    // first, so the select list is never evaluated over an empty group).
    cm.delete_condition = b::Eq(cm.matched_values[count_col], b::Int(0));
    cm.insert_condition = b::Op(">", cm.inserted_values[count_col], b::Int(0));
  } else {
    cm.insert_condition = b::Bool(true);  // the one row of a whole-input aggregate always exists
  }
  p.computed = std::move(cm);
  return p;
}

// GROUP BY with other aggregates (COUNT(DISTINCT), numeric or floating
// SUM/AVG, BOOL_AND, string_agg, ...) or HAVING: the groups the input delta touches are
// recomputed from the live tables (the aggregate's input restricted to those
// group keys, pushed down to index scans) and replace their storage rows; a
// touched group that no longer exists (or fails HAVING) is deleted. The
// storage table is the old state, so no pre-state is evaluated.
StoragePlan PlanBuilder::AggregateRecompute(const Op& project, const Op& post, const Op& agg) {
  StoragePlan p;
  p.mode = "group recompute: touched groups recomputed from the live tables, replacing their rows";
  const int g = agg.group_exprs.size();
  auto vis = Visible(project);
  auto [group_storage, nullable] = GroupIdentity(project, vis, agg, &p);
  if (nullable) {
    p.columns.push_back({kRowId, true});
    p.row_id = p.columns.size() - 1;
  }
  p.strategy_overrides[agg.id] =
      "group recompute: the touched groups are aggregated again from the live tables";
  auto rows = [&](Node input, bool keys) {
    b::Select s;
    b::NodeList groups;
    for (int j = 0; j < g; ++j) groups.push_back(Ref("i", j));
    for (size_t v = 0; v < vis.size(); ++v)
      s.targets.push_back(b::Target(project.exprs[vis[v]], names_[v]));
    for (int j = 0; j < g; ++j) {
      if (group_storage[j] >= static_cast<int>(vis.size())) {
        s.targets.push_back(b::Target(Ref("i", j), p.columns[group_storage[j]].name));
      }
    }
    if (keys) {
      for (int j = 0; j < g; ++j)
        s.targets.push_back(b::Target(Ref("i", j), absl::StrCat("__pgt_key", j + 1)));
      s.targets.push_back(b::Target(b::RowHash(groups), "__pgt_h"));
    } else if (nullable) {
      s.targets.push_back(b::Target(b::RowHash(groups), kRowId));
    }
    s.from.push_back(b::Subquery(std::move(input), "i"));
    return s.Build();
  };
  p.full_select = rows(gen_.Eval(post, State::kPost), false);

  std::string din = gen_.Delta(*agg.inputs[0]);
  b::Select k;
  for (int j = 0; j < g; ++j)
    k.targets.push_back(b::Target(agg.group_exprs[j], absl::StrCat("k", j + 1)));
  k.distinct = true;
  k.from.push_back(b::Table("", din, "i"));
  std::string kname = gen_.AddCte("k", k.Build());
  Restriction r;
  for (int j = 0; j < g; ++j) {
    r.exprs.push_back(Ref("i", j));
    r.nullable.push_back(!agg.columns[j].not_null);
  }
  r.keys_cte = kname;
  std::string nname = gen_.AddCte("r", rows(gen_.Eval(post, State::kPost, &r), true));
  b::NodeList kvals, match;
  for (int j = 0; j < g; ++j) kvals.push_back(b::Col("k", absl::StrCat("k", j + 1)));
  match.push_back(b::Eq(b::Col("n", "__pgt_h"), b::RowHash(kvals)));
  for (int j = 0; j < g; ++j) {
    match.push_back(b::IsNotDistinct(b::Col("n", absl::StrCat("__pgt_key", j + 1)), kvals[j]));
  }
  b::Select f;
  for (size_t c = 0; c < p.columns.size(); ++c) {
    if (static_cast<int>(c) == p.row_id) {
      f.targets.push_back(b::Target(b::RowHash(kvals), kRowId));
      continue;
    }
    int group = -1;
    for (int j = 0; j < g; ++j) {
      if (group_storage[j] == static_cast<int>(c)) group = j;
    }
    Node v = group >= 0 ? kvals[group] : b::Col("n", p.columns[c].name);
    f.targets.push_back(b::Target(v, p.columns[c].name));
  }
  f.targets.push_back(b::Target(OpColumn(b::IsNull(b::Col("n", "__pgt_h"))), kOp));
  f.from.push_back(b::Join(pg_query::JOIN_LEFT, b::Table("", kname, "k"), b::Table("", nname, "n"),
                           b::And(std::move(match))));
  p.delta_final = f.Build();
  return p;
}

// SELECT DISTINCT (and UNION): a hidden count of how many input rows each
// output row stands for; it is present while the count is positive.
StoragePlan PlanBuilder::DistinctCount(const Op& distinct) {
  StoragePlan p;
  p.mode = "distinct: hidden count of input rows per output row, present while positive";
  p.fillfactor = 90;
  p.strategy_overrides[distinct.id] = "counting: hidden count per row += the input delta's sum";
  const Op& in = *distinct.inputs[0];
  auto vis = Visible(in);
  bool nullable = false;
  for (size_t j = 0; j < vis.size(); ++j) {
    p.columns.push_back({names_[j], false});
    p.identity.push_back(j);
    nullable |= !in.columns[vis[j]].not_null;
  }
  p.columns.push_back({kCount, true});
  if (nullable) {
    p.columns.push_back({kRowId, true});
    p.row_id = p.columns.size() - 1;
  }
  b::NodeList vis_i;
  for (int k : vis) vis_i.push_back(Ref("i", k));
  {
    b::Select s;
    for (size_t j = 0; j < vis.size(); ++j) {
      s.targets.push_back(b::Target(vis_i[j], names_[j]));
      s.group_by.push_back(vis_i[j]);
    }
    s.targets.push_back(b::Target(b::CountStar(), kCount));
    if (nullable) s.targets.push_back(b::Target(b::RowHash(vis_i), kRowId));
    s.from.push_back(b::Subquery(gen_.Eval(in, State::kPost), "i"));
    p.full_select = s.Build();
  }
  std::string d = gen_.Delta(in);
  b::Select a;
  for (size_t j = 0; j < vis.size(); ++j) {
    a.targets.push_back(b::Target(vis_i[j], names_[j]));
    a.group_by.push_back(vis_i[j]);
  }
  a.targets.push_back(b::Target(b::Agg("sum", {b::Col("i", "__pgt_dm")}), "__pgt_d"));
  if (nullable) a.targets.push_back(b::Target(b::RowHash(vis_i), kRowId));
  a.from.push_back(b::Table("", d, "i"));
  std::string aname = gen_.AddCte("a", a.Build());
  b::Select f;
  for (size_t j = 0; j < vis.size(); ++j)
    f.targets.push_back(b::Target(b::Col("d", names_[j]), names_[j]));
  Node count = b::Op("+", b::Coalesce({b::Col("t", kCount), b::Int(0)}), b::Col("d", "__pgt_d"));
  f.targets.push_back(b::Target(b::Cast(count, "bigint"), kCount));
  if (nullable) f.targets.push_back(b::Target(b::Col("d", kRowId), kRowId));
  f.targets.push_back(b::Target(OpColumn(b::Op("<=", count, b::Int(0))), kOp));
  f.from.push_back(b::Join(pg_query::JOIN_LEFT, b::Table("", aname, "d"), Storage("t"),
                           IdentityMatch(p, "t", "d")));
  p.delta_final = f.Build();
  return p;
}

// --- statements -----------------------------------------------------------------

Node CreateTableAs(const StreamTableSpec& spec, Node query, int fillfactor = 0) {
  Node n;
  auto* c = n.mutable_create_table_as_stmt();
  *c->mutable_query() = std::move(query);
  *c->mutable_into()->mutable_rel() = b::RangeVarNode(spec.schema, spec.name).range_var();
  if (fillfactor > 0) {
    auto* d = c->mutable_into()->add_options()->mutable_def_elem();
    d->set_defname("fillfactor");
    d->mutable_arg()->mutable_integer()->set_ival(fillfactor);
    d->set_defaction(pg_query::DEFELEM_UNSPEC);
  }
  c->mutable_into()->set_on_commit(pg_query::ONCOMMIT_NOOP);
  c->mutable_into()->set_skip_data(true);
  c->set_objtype(pg_query::OBJECT_TABLE);
  return n;
}

Node CreateIndex(const StreamTableSpec& spec, const std::vector<std::string>& cols, bool unique) {
  Node n;
  auto* i = n.mutable_index_stmt();
  *i->mutable_relation() = b::RangeVarNode(spec.schema, spec.name).range_var();
  i->set_access_method("btree");
  for (const auto& c : cols) {
    auto* e = i->add_index_params()->mutable_index_elem();
    e->set_name(c);
    e->set_ordering(pg_query::SORTBY_DEFAULT);
    e->set_nulls_ordering(pg_query::SORTBY_NULLS_DEFAULT);
  }
  i->set_unique(unique);
  i->set_nulls_not_distinct(unique);
  return n;
}

Node Truncate(const StreamTableSpec& spec) {
  Node n;
  auto* t = n.mutable_truncate_stmt();
  *t->add_relations() = b::RangeVarNode(spec.schema, spec.name);
  t->set_behavior(pg_query::DROP_RESTRICT);
  return n;
}

Node InsertSelect(const StreamTableSpec& spec, const std::vector<StorageColumn>& cols,
                  Node select) {
  Node n;
  auto* ins = n.mutable_insert_stmt();
  *ins->mutable_relation() = b::RangeVarNode(spec.schema, spec.name).range_var();
  for (const auto& c : cols) ins->add_cols()->mutable_res_target()->set_name(c.name);
  *ins->mutable_select_stmt() = std::move(select);
  ins->set_override(pg_query::OVERRIDING_NOT_SET);
  return n;
}

Node Merge(const StreamTableSpec& spec, const StoragePlan& p, Node delta) {
  Node n;
  auto* m = n.mutable_merge_stmt();
  Node target = b::Table(spec.schema, spec.name, "t");
  *m->mutable_relation() = target.range_var();
  *m->mutable_source_relation() = b::Subquery(std::move(delta), "d");
  *m->mutable_join_condition() = IdentityMatch(p, "t", "d");
  const auto* computed = p.computed.has_value() ? &*p.computed : nullptr;
  Node delete_condition =
      computed != nullptr ? computed->delete_condition : b::Eq(b::Col("d", kOp), b::Str("D"));
  if (delete_condition.node_case() != Node::NODE_NOT_SET) {
    auto* w = m->add_merge_when_clauses()->mutable_merge_when_clause();
    w->set_matched(true);
    w->set_command_type(pg_query::CMD_DELETE);
    w->set_override(pg_query::OVERRIDING_NOT_SET);
    *w->mutable_condition() = delete_condition;
  }
  std::set<int> identity(p.identity.begin(), p.identity.end());
  b::NodeList tv, dv;
  std::vector<std::string> update_cols;
  for (size_t k = 0; k < p.columns.size(); ++k) {
    if (identity.count(k) || static_cast<int>(k) == p.row_id) continue;
    update_cols.push_back(p.columns[k].name);
    tv.push_back(b::Col("t", p.columns[k].name));
    dv.push_back(computed != nullptr ? computed->matched_values[k]
                                     : b::Col("d", p.columns[k].name));
  }
  if (p.updates && !update_cols.empty()) {
    // No-op updates are suppressed: a downstream publication sees only real changes.
    auto* w = m->add_merge_when_clauses()->mutable_merge_when_clause();
    w->set_matched(true);
    w->set_command_type(pg_query::CMD_UPDATE);
    w->set_override(pg_query::OVERRIDING_NOT_SET);
    *w->mutable_condition() = b::IsDistinct(b::Row(tv), b::Row(dv));
    for (size_t k = 0; k < update_cols.size(); ++k)
      *w->add_target_list() = b::Target(dv[k], update_cols[k]);
  }
  {
    auto* w = m->add_merge_when_clauses()->mutable_merge_when_clause();
    w->set_matched(false);
    w->set_command_type(pg_query::CMD_INSERT);
    w->set_override(pg_query::OVERRIDING_NOT_SET);
    *w->mutable_condition() = computed != nullptr ? computed->insert_condition
                                                  : b::Op("<>", b::Col("d", kOp), b::Str("D"));
    for (size_t k = 0; k < p.columns.size(); ++k) {
      w->add_target_list()->mutable_res_target()->set_name(p.columns[k].name);
      *w->add_values() =
          computed != nullptr ? computed->inserted_values[k] : b::Col("d", p.columns[k].name);
    }
  }
  return n;
}

Node DeltaTableDdl(const SourceRelation& s, const RelationFacts* facts) {
  Node n;
  auto* c = n.mutable_create_stmt();
  std::string schema, name = s.delta_table;
  auto dot = name.find('.');
  if (dot != std::string::npos) {
    schema = name.substr(0, dot);
    name = name.substr(dot + 1);
  }
  *c->mutable_relation() = b::RangeVarNode(schema, name).range_var();
  c->mutable_relation()->set_relpersistence("t");
  auto add_col = [&](const std::string& col, const std::string& type, bool not_null) {
    auto* d = c->add_table_elts()->mutable_column_def();
    d->set_colname(col);
    *d->mutable_type_name() = b::Cast(b::Null(), type).type_cast().type_name();
    d->set_is_local(true);
    if (not_null) d->add_constraints()->mutable_constraint()->set_contype(pg_query::CONSTR_NOTNULL);
  };
  add_col("__op", "\"char\"", true);
  if (facts != nullptr) {
    for (const auto& col : facts->columns) add_col(col.name, col.type, false);
  }
  c->set_oncommit(pg_query::ONCOMMIT_DROP);
  return n;
}

// --- explanation ------------------------------------------------------------------

ExplainNode ExplainOp(const Op& op, const std::vector<SourceRelation>& sources,
                      const std::map<int, std::string>& overrides) {
  ExplainNode e;
  e.op = OpName(op);
  e.detail = OpDetail(op, sources);
  auto it = overrides.find(op.id);
  e.strategy = it != overrides.end() ? it->second : SqlGenerator::Strategy(op);
  for (const auto& in : op.inputs) e.children.push_back(ExplainOp(*in, sources, overrides));
  return e;
}

void ExplainText(const ExplainNode& e, int depth, std::string* out) {
  absl::StrAppend(out, std::string(depth * 2, ' '), e.op);
  if (!e.detail.empty()) absl::StrAppend(out, " ", e.detail);
  if (!e.strategy.empty()) absl::StrAppend(out, "  [", e.strategy, "]");
  absl::StrAppend(out, "\n");
  for (const auto& c : e.children) ExplainText(c, depth + 1, out);
}

const RelationFacts* FindFacts(const CatalogFacts& facts, const std::string& schema,
                               const std::string& name) {
  for (const auto& r : facts.relations) {
    if (r.schema == schema && r.name == name) return &r;
  }
  return nullptr;
}

std::string DefaultDeltaTable(const SourceRelation& s) {
  return absl::StrCat("__trickle_delta_", s.oid);
}

void FillDeltaTables(const CatalogFacts& facts, const PlanOptions& options,
                     std::vector<SourceRelation>* sources) {
  for (auto& s : *sources) {
    auto it = options.delta_tables.find(absl::StrCat(s.schema, ".", s.name));
    s.delta_table = it != options.delta_tables.end() ? it->second : DefaultDeltaTable(s);
    auto ddl = DeparseStatement(DeltaTableDdl(s, FindFacts(facts, s.schema, s.name)));
    s.delta_table_ddl = ddl.ok() ? *ddl : "";
  }
}

// 1-based character position for a byte offset into UTF-8 text.
int CharPosition(const std::string& text, int byte_offset) {
  if (byte_offset < 0) return 0;
  int chars = 0;
  for (int i = 0; i < byte_offset && i < static_cast<int>(text.size()); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++chars;
  }
  return chars + 1;
}

absl::StatusOr<DeltaPlan> FullOnlyPlan(const StreamTableSpec& spec, const CatalogFacts& facts,
                                       const PlanOptions& options, const Node& stmt,
                                       const std::string& construct, int position) {
  DeltaPlan plan;
  plan.maintained_mode = RefreshMode::kFull;
  plan.unsupported_construct = construct;
  plan.unsupported_position = position;
  plan.full_refresh_reason =
      position > 0 ? absl::StrCat(construct, " at position ", position) : construct;
  TRICKLE_ASSIGN_OR_RETURN(QueryReferences refs, ListQueryReferences(spec.query));
  for (const auto& r : refs.relations) {
    const RelationFacts* rel = nullptr;
    if (!r.schema.empty()) {
      rel = FindFacts(facts, r.schema, r.name);
    } else {
      for (const auto& sp : facts.search_path) {
        if ((rel = FindFacts(facts, sp, r.name)) != nullptr) break;
      }
    }
    if (rel == nullptr) continue;
    bool seen = false;
    for (const auto& s : plan.sources) seen |= s.schema == rel->schema && s.name == rel->name;
    if (seen) continue;
    SourceRelation s;
    s.schema = rel->schema;
    s.name = rel->name;
    s.oid = rel->oid;
    for (const auto& c : rel->columns) {
      s.columns.push_back(c.name);
      s.column_types.push_back(c.type);
    }
    s.key = rel->key;
    plan.sources.push_back(std::move(s));
  }
  FillDeltaTables(facts, options, &plan.sources);
  // The query itself, unchanged: deparsed (and verified) when possible, else
  // its own text, which parsed as exactly one SELECT.
  auto ctas = DeparseStatement(CreateTableAs(spec, stmt));
  auto ins = DeparseStatement(InsertSelect(spec, {}, stmt));
  TRICKLE_ASSIGN_OR_RETURN(std::string trunc, DeparseStatement(Truncate(spec)));
  auto select = DeparseStatement(stmt);
  if (ctas.ok() && ins.ok() && select.ok()) {
    plan.storage_ddl.push_back(*ctas);
    plan.full_refresh_sql = {trunc, *ins};
    plan.full_select_sql = *select;
  } else {
    std::string query = spec.query;
    while (!query.empty() && (query.back() == ';' || absl::ascii_isspace(query.back()))) {
      query.pop_back();
    }
    // The table name comes from the deparser (quoted); only the user's own,
    // already validated query text is appended.
    std::string qualified = trunc.substr(std::string("TRUNCATE ").size());
    plan.storage_ddl.push_back(
        absl::StrCat("CREATE TABLE ", qualified, " AS\n", query, "\nWITH NO DATA"));
    plan.full_refresh_sql = {trunc, absl::StrCat("INSERT INTO ", qualified, "\n", query, "\n")};
    plan.full_select_sql = query;
  }
  if (!facts.output_column_names.empty()) {
    for (const auto& n : facts.output_column_names) plan.columns.push_back({n, false});
  } else {
    for (const auto& t : stmt.select_stmt().target_list()) {
      const auto& rt = t.res_target();
      plan.columns.push_back({rt.name().empty() ? FigureColname(rt.val()) : rt.name(), false});
    }
  }
  plan.explain_tree.op = "FullRefresh";
  plan.explain_tree.detail = plan.full_refresh_reason;
  plan.explain_tree.strategy = "full refresh only";
  plan.explanation = absl::StrCat("full refresh only: ", plan.full_refresh_reason, "\n");
  return plan;
}

}  // namespace

absl::StatusOr<QueryReferences> ListQueryReferences(const std::string& query) {
  TRICKLE_ASSIGN_OR_RETURN(pg_query::ParseResult tree, ParseSql(query));
  QueryReferences refs;
  std::set<std::string> ctes;
  std::set<std::string> functions;
  auto collect_ctes = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_common_table_expr()) ctes.insert(n->common_table_expr().ctename());
    return true;
  };
  TRICKLE_RETURN_IF_ERROR(WalkNodes(&tree, collect_ctes));
  auto add_relation = [&](const pg_query::RangeVar& rv) {
    if (rv.schemaname().empty() && ctes.count(rv.relname())) return;
    for (const auto& r : refs.relations) {
      if (r.schema == rv.schemaname() && r.name == rv.relname()) return;
    }
    refs.relations.push_back({rv.schemaname(), rv.relname()});
  };
  // RangeVars appear both as tree nodes (FROM items) and as plain fields
  // (INSERT/MERGE targets, CREATE TABLE AS): walk every message.
  std::function<void(const google::protobuf::Message&)> walk =
      [&](const google::protobuf::Message& m) {
        if (m.GetDescriptor() == pg_query::RangeVar::descriptor()) {
          add_relation(static_cast<const pg_query::RangeVar&>(m));
        }
        if (m.GetDescriptor() == pg_query::FuncCall::descriptor()) {
          functions.insert(FunctionName(static_cast<const pg_query::FuncCall&>(m)));
        }
        const auto* r = m.GetReflection();
        std::vector<const google::protobuf::FieldDescriptor*> fields;
        r->ListFields(m, &fields);
        for (const auto* f : fields) {
          if (f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) continue;
          if (f->is_repeated()) {
            for (int i = 0; i < r->FieldSize(m, f); ++i) walk(r->GetRepeatedMessage(m, f, i));
          } else {
            walk(r->GetMessage(m, f));
          }
        }
      };
  walk(tree);
  refs.functions.assign(functions.begin(), functions.end());
  return refs;
}

absl::StatusOr<std::string> RewrittenQuery(const std::string& query, const CatalogFacts& facts,
                                           std::vector<std::string>* notes) {
  TRICKLE_ASSIGN_OR_RETURN(pg_query::ParseResult parsed, ParseSql(query));
  if (parsed.stmts_size() != 1 || !parsed.stmts(0).stmt().has_select_stmt()) {
    return absl::InvalidArgumentError("the query must be exactly one SELECT statement");
  }
  std::vector<RewriteNote> rewrites;
  TRICKLE_ASSIGN_OR_RETURN(Node out, RewriteQuery(parsed.stmts(0).stmt(), facts, &rewrites));
  if (notes != nullptr) {
    for (const auto& r : rewrites) {
      int position = CharPosition(query, r.location);
      notes->push_back(position > 0 ? absl::StrCat(r.what, " (position ", position, ")") : r.what);
    }
  }
  return DeparseStatement(out);
}

absl::StatusOr<DeltaPlan> BuildDeltaPlan(const StreamTableSpec& spec, const CatalogFacts& facts,
                                         const PlanOptions& options) {
  if (spec.name.empty()) return absl::InvalidArgumentError("stream table name is empty");
  const std::string st_name =
      spec.schema.empty() ? spec.name : absl::StrCat(spec.schema, ".", spec.name);
  auto parsed = ParseSql(spec.query);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("defining query of stream table ", st_name, ": ", parsed.status().message()));
  }
  if (parsed->stmts_size() != 1 || !parsed->stmts(0).stmt().has_select_stmt()) {
    return absl::InvalidArgumentError(absl::StrCat("defining query of stream table ", st_name,
                                                   " must be exactly one SELECT statement"));
  }
  const Node& stmt = parsed->stmts(0).stmt();

  std::vector<RewriteNote> rewrites;
  auto rewritten = RewriteQuery(stmt, facts, &rewrites);
  if (!rewritten.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("defining query of stream table ", st_name, ": ",
                                                   rewritten.status().message()));
  }
  UnsupportedConstruct unsupported;
  auto lowered = LowerQuery(*rewritten, facts, &unsupported);
  auto not_differential = [&](const std::string& construct,
                              int position) -> absl::StatusOr<DeltaPlan> {
    if (spec.mode == RefreshMode::kDifferential) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream table ", st_name, " cannot be maintained differentially: ", construct,
          position > 0 ? absl::StrCat(" at position ", position) : "",
          " is not supported by the delta engine; use refresh mode FULL or AUTO"));
    }
    return FullOnlyPlan(spec, facts, options, stmt, construct, position);
  };
  if (!lowered.ok()) {
    if (absl::IsUnimplemented(lowered.status())) {
      return not_differential(unsupported.construct,
                              CharPosition(spec.query, unsupported.location));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("defining query of stream table ", st_name, ": ", lowered.status().message()));
  }
  LoweredQuery& q = *lowered;

  std::vector<std::string> names = q.output_names;
  if (!facts.output_column_names.empty()) {
    if (facts.output_column_names.size() != names.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "catalog facts give ", facts.output_column_names.size(),
          " output column names but the query of ", st_name, " has ", names.size(), " columns"));
    }
    names = facts.output_column_names;
  }
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (!seen.insert(n).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("column \"", n, "\" appears more than once in the output of ", st_name,
                       "; give the select-list entries distinct aliases"));
    }
    if (n.rfind("__pgt_", 0) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("output column \"", n, "\" of ", st_name,
                       " uses the prefix __pgt_, which the engine reserves for its own columns"));
    }
  }
  // Types without an equality operator cannot be grouped, compared or
  // matched: refuse them where the engine needs equality (output rows, and
  // every column of a source without a key, whose pre-state is EXCEPT ALL).
  auto no_equality = [](const std::string& type) {
    static const std::set<std::string> kTypes = {"json",   "xml",    "point", "line",
                                                 "lseg",   "box",    "path",  "polygon",
                                                 "circle", "json[]", "xml[]"};
    return kTypes.count(type) > 0;
  };
  for (size_t k = 0, v = 0; k < q.root->columns.size(); ++k) {
    const auto& c = q.root->columns[k];
    if (c.hidden) continue;
    if (no_equality(c.type)) {
      return not_differential(
          absl::StrCat("output column \"", names[v], "\" of type ", c.type,
                       " (no equality operator; jsonb or a cast to text has one)"),
          0);
    }
    ++v;
  }
  for (const auto& src : q.sources) {
    if (!src.key.empty()) continue;
    const RelationFacts* rel = FindFacts(facts, src.schema, src.name);
    for (const auto& c : rel != nullptr ? rel->columns : std::vector<ColumnFacts>{}) {
      if (no_equality(c.type)) {
        return not_differential(
            absl::StrCat("column ", src.schema, ".", src.name, ".", c.name, " of type ", c.type,
                         " in a source without a primary key or replica "
                         "identity index (rows are matched on all columns)"),
            0);
      }
    }
  }
  FillDeltaTables(facts, options, &q.sources);

  PlanBuilder builder(spec, q, names);
  TRICKLE_ASSIGN_OR_RETURN(StoragePlan sp, builder.Build());

  DeltaPlan plan;
  plan.maintained_mode = RefreshMode::kDifferential;
  plan.sources = q.sources;
  plan.columns = sp.columns;
  for (int k : sp.identity) plan.identity_columns.push_back(sp.columns[k].name);

  // Every statement goes through the deparser's round-trip check; a failure
  // means the plan cannot be printed faithfully.
  auto deparse_all = [&]() -> absl::Status {
    TRICKLE_ASSIGN_OR_RETURN(std::string ctas,
                             DeparseStatement(CreateTableAs(spec, sp.full_select, sp.fillfactor)));
    plan.storage_ddl.push_back(ctas);
    if (!sp.identity.empty()) {
      TRICKLE_ASSIGN_OR_RETURN(std::string idx,
                               DeparseStatement(CreateIndex(spec, plan.identity_columns, true)));
      plan.storage_ddl.push_back(idx);
    }
    if (sp.row_id >= 0) {
      TRICKLE_ASSIGN_OR_RETURN(std::string idx,
                               DeparseStatement(CreateIndex(spec, {kRowId}, false)));
      plan.storage_ddl.push_back(idx);
    }
    TRICKLE_ASSIGN_OR_RETURN(std::string trunc, DeparseStatement(Truncate(spec)));
    TRICKLE_ASSIGN_OR_RETURN(std::string ins,
                             DeparseStatement(InsertSelect(spec, sp.columns, sp.full_select)));
    plan.full_refresh_sql = {trunc, ins};
    TRICKLE_ASSIGN_OR_RETURN(plan.full_select_sql, DeparseStatement(sp.full_select));
    Node delta = b::WithCtes(builder.gen().ctes(), sp.delta_final, builder.gen().inlined_ctes());
    TRICKLE_ASSIGN_OR_RETURN(plan.delta_sql, DeparseStatement(delta));
    TRICKLE_ASSIGN_OR_RETURN(plan.merge_sql, DeparseStatement(Merge(spec, sp, delta)));
    return absl::OkStatus();
  };
  absl::Status st = deparse_all();
  if (!st.ok()) {
    return not_differential(
        absl::StrCat("an expression libpg_query cannot deparse faithfully (", st.message(), ")"),
        0);
  }
  plan.explain_tree = ExplainOp(*q.root, q.sources, sp.strategy_overrides);
  for (const auto& r : rewrites) {
    int position = CharPosition(spec.query, r.location);
    absl::StrAppend(&plan.explanation, "rewrite: ", r.what,
                    position > 0 ? absl::StrCat(" (position ", position, ")") : "", "\n");
  }
  ExplainText(plan.explain_tree, 0, &plan.explanation);
  absl::StrAppend(&plan.explanation, "apply: ", sp.mode, "; identity (",
                  absl::StrJoin(plan.identity_columns, ", "), ")",
                  sp.row_id >= 0 ? " matched through __pgt_row_id (a hash) and then exactly" : "",
                  "\n");
  return plan;
}

}  // namespace trickle::delta
