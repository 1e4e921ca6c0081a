#include "delta/rewrite_scope.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "delta/lowering.h"

namespace trickle::delta {

using pg_query::Node;

CteList NameResolver::WithCtes(const pg_query::SelectStmt& stmt, const CteList& outer) {
  CteList out = outer;
  if (stmt.has_with_clause()) {
    for (const auto& c : stmt.with_clause().ctes()) out.push_back(&c.common_table_expr());
  }
  return out;
}

const RelationFacts* NameResolver::FindRelation(const pg_query::RangeVar& rv) const {
  if (!rv.catalogname().empty()) return nullptr;
  if (!rv.schemaname().empty()) {
    for (const auto& r : facts_.relations) {
      if (r.schema == rv.schemaname() && r.name == rv.relname()) return &r;
    }
    return nullptr;
  }
  for (const auto& schema : facts_.search_path) {
    for (const auto& r : facts_.relations) {
      if (r.schema == schema && r.name == rv.relname()) return &r;
    }
  }
  const RelationFacts* found = nullptr;
  int matches = 0;
  for (const auto& r : facts_.relations) {
    if (r.name == rv.relname()) {
      found = &r;
      ++matches;
    }
  }
  return matches == 1 ? found : nullptr;
}

namespace {

// Renames the first columns as an alias column list says.
bool Rename(std::vector<std::string>* columns, const pg_query::Alias* alias) {
  if (alias == nullptr) return true;
  if (alias->colnames_size() > static_cast<int>(columns->size())) return false;
  for (int i = 0; i < alias->colnames_size(); ++i)
    (*columns)[i] = alias->colnames(i).string().sval();
  return true;
}

}  // namespace

std::optional<NameScope> NameResolver::ItemScope(const Node& item, const CteList& ctes) const {
  NameScope scope;
  if (item.has_range_var()) {
    const auto& rv = item.range_var();
    const pg_query::Alias* alias = rv.has_alias() ? &rv.alias() : nullptr;
    NameEntry e;
    e.name = alias != nullptr ? alias->aliasname() : rv.relname();
    bool found = false;
    if (rv.schemaname().empty()) {
      for (size_t i = ctes.size(); i-- > 0 && !found;) {
        const auto& cte = *ctes[i];
        if (cte.ctename() != rv.relname()) continue;
        if (!cte.ctequery().has_select_stmt()) return std::nullopt;
        // A CTE sees the ones defined before it.
        CteList before(ctes.begin(), ctes.begin() + i);
        auto names = OutputNames(cte.ctequery().select_stmt(), before);
        if (!names.has_value()) return std::nullopt;
        e.columns = *names;
        for (int k = 0; k < cte.aliascolnames_size() && k < static_cast<int>(e.columns.size()); ++k)
          e.columns[k] = cte.aliascolnames(k).string().sval();
        found = true;
      }
    }
    if (!found) {
      const RelationFacts* rel = FindRelation(rv);
      if (rel == nullptr) return std::nullopt;
      for (const auto& c : rel->columns) e.columns.push_back(c.name);
      e.relation = rel;
      if (alias == nullptr) e.schema = rel->schema;
    }
    if (!Rename(&e.columns, alias)) return std::nullopt;
    scope.entries.push_back(std::move(e));
    return scope;
  }
  if (item.has_range_subselect()) {
    const auto& rs = item.range_subselect();
    if (!rs.subquery().has_select_stmt() || !rs.has_alias()) return std::nullopt;
    auto names = OutputNames(rs.subquery().select_stmt(), ctes);
    if (!names.has_value()) return std::nullopt;
    NameEntry e;
    e.name = rs.alias().aliasname();
    e.columns = *names;
    if (!Rename(&e.columns, &rs.alias())) return std::nullopt;
    scope.entries.push_back(std::move(e));
    return scope;
  }
  if (item.has_join_expr()) {
    const auto& j = item.join_expr();
    if (j.has_alias() || j.has_join_using_alias()) return std::nullopt;
    auto left = ItemScope(j.larg(), ctes);
    auto right = ItemScope(j.rarg(), ctes);
    if (!left.has_value() || !right.has_value()) return std::nullopt;
    const bool left_nullable =
        j.jointype() == pg_query::JOIN_RIGHT || j.jointype() == pg_query::JOIN_FULL;
    const bool right_nullable =
        j.jointype() == pg_query::JOIN_LEFT || j.jointype() == pg_query::JOIN_FULL;
    scope = std::move(*left);
    for (auto& e : scope.entries) e.nullable = e.nullable || left_nullable;
    for (auto& e : right->entries) {
      e.nullable = e.nullable || right_nullable;
      scope.entries.push_back(std::move(e));
    }
    scope.merged_columns = scope.merged_columns || right->merged_columns || j.is_natural() ||
                           j.using_clause_size() > 0;
    return scope;
  }
  return std::nullopt;
}

std::optional<NameScope> NameResolver::FromScope(
    const google::protobuf::RepeatedPtrField<Node>& from, const CteList& ctes) const {
  NameScope scope;
  for (const auto& item : from) {
    auto s = ItemScope(item, ctes);
    if (!s.has_value()) return std::nullopt;
    for (auto& e : s->entries) scope.entries.push_back(std::move(e));
    scope.merged_columns = scope.merged_columns || s->merged_columns;
  }
  return scope;
}

std::optional<std::vector<std::string>> NameResolver::OutputNames(const pg_query::SelectStmt& stmt,
                                                                  const CteList& ctes) const {
  CteList inner = WithCtes(stmt, ctes);
  if (stmt.op() != pg_query::SETOP_NONE) return OutputNames(stmt.larg(), inner);
  std::vector<std::string> out;
  if (stmt.values_lists_size() > 0) {
    for (int k = 0; k < stmt.values_lists(0).list().items_size(); ++k)
      out.push_back(absl::StrCat("column", k + 1));
    return out;
  }
  auto scope = FromScope(stmt.from_clause(), inner);
  if (!scope.has_value()) return std::nullopt;
  for (const auto& t : stmt.target_list()) {
    const auto& rt = t.res_target();
    const Node& v = rt.val();
    if (v.has_column_ref() && v.column_ref().fields_size() > 0 &&
        v.column_ref().fields(v.column_ref().fields_size() - 1).has_a_star()) {
      const auto& f = v.column_ref().fields();
      if (f.size() == 1) {
        if (scope->merged_columns) return std::nullopt;
        for (const auto& e : scope->entries)
          out.insert(out.end(), e.columns.begin(), e.columns.end());
      } else if (f.size() == 2 && f[0].has_string()) {
        bool found = false;
        for (const auto& e : scope->entries) {
          if (e.name != f[0].string().sval()) continue;
          out.insert(out.end(), e.columns.begin(), e.columns.end());
          found = true;
          break;
        }
        if (!found) return std::nullopt;
      } else {
        return std::nullopt;
      }
      continue;
    }
    out.push_back(rt.name().empty() ? FigureColname(v) : rt.name());
  }
  return out;
}

namespace {

// The entries a qualified reference (rel.col or schema.rel.col) can name.
bool EntryMatches(const NameEntry& e, const std::vector<std::string>& names) {
  const std::string& rel = names[names.size() - 2];
  if (e.name != rel) return false;
  return names.size() == 2 || e.schema == names[0];
}

std::optional<std::vector<std::string>> Names(const pg_query::ColumnRef& ref) {
  std::vector<std::string> names;
  for (const auto& f : ref.fields()) {
    if (!f.has_string()) return std::nullopt;
    names.push_back(f.string().sval());
  }
  if (names.empty() || names.size() > 3) return std::nullopt;
  return names;
}

// 1: resolves, 0: does not, -1: names an entry that has no such column.
int Resolves(const std::vector<std::string>& names, const NameScope& scope) {
  if (names.size() == 1) {
    for (const auto& e : scope.entries) {
      if (std::find(e.columns.begin(), e.columns.end(), names[0]) != e.columns.end()) return 1;
    }
    return 0;
  }
  for (const auto& e : scope.entries) {
    if (!EntryMatches(e, names)) continue;
    return std::find(e.columns.begin(), e.columns.end(), names.back()) != e.columns.end() ? 1 : -1;
  }
  return 0;
}

}  // namespace

bool ResolvesIn(const pg_query::ColumnRef& ref, const NameScope& scope) {
  auto names = Names(ref);
  return names.has_value() && Resolves(*names, scope) == 1;
}

bool NeverNull(const Node& expr, const NameScope& scope) {
  if (!expr.has_column_ref()) return false;
  auto names = Names(expr.column_ref());
  if (!names.has_value()) return false;
  const NameEntry* found = nullptr;
  for (const auto& e : scope.entries) {
    if (names->size() > 1 && !EntryMatches(e, *names)) continue;
    if (std::find(e.columns.begin(), e.columns.end(), names->back()) == e.columns.end()) continue;
    if (found != nullptr) return false;  // ambiguous
    found = &e;
  }
  if (found == nullptr || found->relation == nullptr || found->nullable) return false;
  auto it = std::find(found->columns.begin(), found->columns.end(), names->back());
  return found->relation->columns[it - found->columns.begin()].not_null;
}

NameOrigin ClassifyRef(const pg_query::ColumnRef& ref, const NameScope& inner,
                       const NameScope& outer) {
  auto names = Names(ref);
  if (!names.has_value()) return NameOrigin::kUnknown;
  int in = Resolves(*names, inner);
  if (in == 1) return NameOrigin::kInner;
  if (in == -1) return NameOrigin::kUnknown;  // the inner entry shadows the outer one
  return Resolves(*names, outer) == 1 ? NameOrigin::kOuter : NameOrigin::kUnknown;
}

bool ForEachColumnRef(const Node& expr, const std::function<void(const pg_query::ColumnRef&)>& fn) {
  bool no_subquery = true;
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_sub_link()) {
      no_subquery = false;
      return false;
    }
    if (n->has_column_ref()) fn(n->column_ref());
    return true;
  };
  Node copy = expr;
  auto descend = visit(&copy);
  if (descend.ok() && *descend) (void)WalkNodes(&copy, visit);
  return no_subquery;
}

}  // namespace trickle::delta
