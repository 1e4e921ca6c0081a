// Multi-column NOT IN as a NOT EXISTS that keeps SQL's NULL rules.
//
//   WHERE (a, b) NOT IN (SELECT y1, y2 FROM q)
//
// is true exactly when, for every row of q, the row comparison
// (a, b) = (y1, y2) is false, i.e. some field pair is definitely unequal
// (both not NULL, not equal); a field with a NULL on either side makes that
// row's comparison NULL at best, which NOT IN does not pass. So
//
//   WHERE NOT EXISTS (SELECT 1 FROM (SELECT y1, y2 FROM q) __pgt_not_in (__pgt_c1, __pgt_c2)
//                     WHERE (__pgt_c1 = a OR __pgt_c1 IS NULL OR a IS NULL)
//                       AND (__pgt_c2 = b OR __pgt_c2 IS NULL OR b IS NULL))
//
// which lowering makes an anti-join. A field whose two sides are known never
// NULL (NOT NULL columns of base tables, not under an outer join) keeps only
// its equality, which becomes the anti-join's key (affected-key recompute);
// without any such field the anti-join has no equi key and is recomputed
// whenever an input changes. An empty q gives true, NULLs or not, as NOT IN
// does.
//
// Only a top-level WHERE conjunct `(row) NOT IN (uncorrelated subquery)`
// (one value per outer row, so its position in the conjunction does not
// matter); correlated or nested ones are left to lowering, which refuses
// them.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "delta/lowering.h"
#include "delta/rewrite.h"
#include "delta/rewrite_correlation.h"
#include "delta/rewrite_scope.h"
#include "delta/sql_builder.h"

namespace trickle::delta {
namespace {

using pg_query::Node;
namespace b = sqlb;

// The subquery of `NOT ((row) IN (subquery))`, else nullptr.
const pg_query::SubLink* MultiColumnNotIn(const Node& conjunct) {
  if (!conjunct.has_bool_expr() || conjunct.bool_expr().boolop() != pg_query::NOT_EXPR ||
      conjunct.bool_expr().args_size() != 1 || !conjunct.bool_expr().args(0).has_sub_link()) {
    return nullptr;
  }
  const auto& sl = conjunct.bool_expr().args(0).sub_link();
  if (sl.sub_link_type() != pg_query::ANY_SUBLINK || !sl.testexpr().has_row_expr()) return nullptr;
  if (sl.oper_name_size() > 1) return nullptr;
  if (sl.oper_name_size() == 1 && sl.oper_name(0).string().sval() != "=") return nullptr;
  if (!sl.subselect().has_select_stmt()) return nullptr;
  return &sl;
}

class NotInRewriter {
 public:
  NotInRewriter(const CatalogFacts& facts, std::vector<RewriteNote>* notes)
      : names_(facts), notes_(notes) {}

  void Block(pg_query::SelectStmt* s, const CteList& outer_ctes) {
    if (s->has_with_clause()) {
      for (auto& c : *s->mutable_with_clause()->mutable_ctes()) {
        auto* q = c.mutable_common_table_expr()->mutable_ctequery();
        if (q->has_select_stmt()) Block(q->mutable_select_stmt(), outer_ctes);
      }
    }
    const CteList ctes = NameResolver::WithCtes(*s, outer_ctes);
    if (s->op() != pg_query::SETOP_NONE) {
      Block(s->mutable_larg(), ctes);
      Block(s->mutable_rarg(), ctes);
      return;
    }
    // Every block below (subqueries in FROM and in expressions), then this.
    auto visit = [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_select_stmt()) {
        Block(n->mutable_select_stmt(), ctes);
        return false;
      }
      return true;
    };
    for (auto& item : *s->mutable_from_clause()) (void)WalkNodes(&item, visit);
    for (auto& t : *s->mutable_target_list()) (void)WalkNodes(&t, visit);
    if (s->has_having_clause()) (void)WalkNodes(s->mutable_having_clause(), visit);
    if (!s->has_where_clause()) return;
    (void)WalkNodes(s->mutable_where_clause(), visit);
    auto outer = names_.FromScope(s->from_clause(), ctes);
    if (!outer.has_value()) return;
    std::vector<Node> conjuncts;
    SplitAnd(s->where_clause(), &conjuncts);
    bool changed = false;
    for (auto& c : conjuncts) {
      const pg_query::SubLink* sl = MultiColumnNotIn(c);
      if (sl == nullptr) continue;
      auto rewritten = Rewrite(*sl, *outer, ctes);
      if (!rewritten.has_value()) continue;
      c = std::move(*rewritten);
      changed = true;
    }
    if (changed) *s->mutable_where_clause() = b::And(std::move(conjuncts));
  }

 private:
  std::optional<Node> Rewrite(const pg_query::SubLink& sl, const NameScope& outer,
                              const CteList& ctes) {
    const auto& sub = sl.subselect().select_stmt();
    const auto& tests = sl.testexpr().row_expr().args();
    auto columns = names_.OutputNames(sub, ctes);
    if (!columns.has_value() || columns->size() != static_cast<size_t>(tests.size())) {
      return std::nullopt;
    }
    // Uncorrelated: every name inside resolves in the subquery's own FROM
    // (nested blocks are not looked into: give up when there are any).
    const CteList inner_ctes = NameResolver::WithCtes(sub, ctes);
    if (sub.op() != pg_query::SETOP_NONE) return std::nullopt;
    auto inner = names_.FromScope(sub.from_clause(), inner_ctes);
    if (!inner.has_value()) return std::nullopt;
    bool own = true;
    auto check = [&](const Node& e) {
      bool plain = ForEachColumnRef(e, [&](const pg_query::ColumnRef& ref) {
        const bool star = ref.fields_size() > 0 && ref.fields(ref.fields_size() - 1).has_a_star();
        if (!star && !ResolvesIn(ref, *inner)) own = false;
      });
      if (!plain) own = false;
    };
    for (const auto& t : sub.target_list()) check(t.res_target().val());
    if (sub.has_where_clause()) check(sub.where_clause());
    for (const auto& g : sub.group_clause()) check(g);
    if (sub.has_having_clause()) check(sub.having_clause());
    if (!own) return std::nullopt;

    const std::string alias = "__pgt_not_in";
    std::vector<std::string> names;
    b::NodeList fields;
    int keyed = 0;
    for (int i = 0; i < tests.size(); ++i) {
      names.push_back(absl::StrCat("__pgt_c", i + 1));
      Node y = b::Col(alias, names.back());
      const Node& a = tests[i];
      // The subquery's i-th column is a plain NOT NULL column when its
      // select-list entry is one.
      const Node& target = sub.target_list(i).res_target().val();
      if (NeverNull(a, outer) && NeverNull(target, *inner)) {
        fields.push_back(b::Eq(y, a));
        ++keyed;
      } else {
        fields.push_back(b::Or({b::Eq(y, a), b::IsNull(y), b::IsNull(a)}));
      }
    }
    b::Select probe;
    probe.targets.push_back(b::Target(b::Int(1)));
    Node from;
    *from.mutable_range_subselect()->mutable_subquery() = sl.subselect();
    auto* a = from.mutable_range_subselect()->mutable_alias();
    a->set_aliasname(alias);
    for (const auto& n : names) a->add_colnames()->mutable_string()->set_sval(n);
    probe.from.push_back(std::move(from));
    probe.where.push_back(b::And(std::move(fields)));
    notes_->push_back(
        {absl::StrCat("multi-column NOT IN as NOT EXISTS with SQL's NULL rules (", keyed, " of ",
                      tests.size(), " columns never NULL on both sides, compared by equality)"),
         sl.location()});
    return b::Not(b::Exists(probe.Build()));
  }

  NameResolver names_;
  std::vector<RewriteNote>* notes_;
};

}  // namespace

void RewriteMultiColumnNotIn(Node* select_stmt, const CatalogFacts& facts,
                             std::vector<RewriteNote>* notes) {
  if (!select_stmt->has_select_stmt()) return;
  NotInRewriter r(facts, notes);
  r.Block(select_stmt->mutable_select_stmt(), {});
}

}  // namespace trickle::delta
