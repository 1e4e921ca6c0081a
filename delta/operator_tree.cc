#include "delta/operator_tree.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "delta/lowering.h"
#include "delta/pg_parser.h"

namespace trickle::delta {

int Op::VisibleCount() const {
  int n = 0;
  for (const auto& c : columns) n += c.hidden ? 0 : 1;
  return n;
}

std::string ColName(int k) { return absl::StrCat("c", k + 1); }

std::string OpName(const Op& op) {
  switch (op.kind) {
    case OpKind::kScan:
      return "Scan";
    case OpKind::kValues:
      return "Values";
    case OpKind::kFilter:
      return "Filter";
    case OpKind::kProject:
      return "Project";
    case OpKind::kJoin:
      switch (op.join) {
        case JoinKind::kInner:
          return "InnerJoin";
        case JoinKind::kLeft:
          return "LeftJoin";
        case JoinKind::kRight:
          return "RightJoin";
        case JoinKind::kFull:
          return "FullJoin";
        case JoinKind::kSemi:
          return "SemiJoin";
        case JoinKind::kAnti:
          return "AntiJoin";
        case JoinKind::kNotIn:
          return "NotInJoin";
      }
      return "Join";
    case OpKind::kAggregate:
      return "Aggregate";
    case OpKind::kDistinct:
      return "Distinct";
    case OpKind::kSetOp:
      switch (op.setop) {
        case SetOpKind::kUnionAll:
          return "UnionAll";
        case SetOpKind::kIntersect:
          return op.all ? "IntersectAll" : "Intersect";
        case SetOpKind::kExcept:
          return op.all ? "ExceptAll" : "Except";
      }
      return "SetOp";
    case OpKind::kScalar:
      return op.array ? "ArraySubquery" : "ScalarSubquery";
  }
  return "?";
}

namespace {

using Displays = std::map<std::string, std::vector<std::string>>;

// Deparses `n` with every bound reference (alias.c<k>) shown as the column
// it stands for, e.g. "o.amount" instead of "i.c3". For explanations only.
std::string Render(const pg_query::Node& n, const Displays& inputs) {
  pg_query::Node copy = n;
  std::vector<std::string> shown;
  auto visit = [&](pg_query::Node* x) -> absl::StatusOr<bool> {
    if (x->has_column_ref() && x->column_ref().fields_size() == 2 &&
        x->column_ref().fields(0).has_string() && x->column_ref().fields(1).has_string()) {
      auto it = inputs.find(x->column_ref().fields(0).string().sval());
      const std::string& c = x->column_ref().fields(1).string().sval();
      if (it != inputs.end() && c.size() > 1 && c[0] == 'c') {
        size_t k = std::atoi(c.c_str() + 1) - 1;
        if (k < it->second.size()) {
          std::string placeholder = absl::StrCat("pgtdisplay", shown.size(), "x");
          shown.push_back(it->second[k]);
          pg_query::Node ref;
          ref.mutable_column_ref()->add_fields()->mutable_string()->set_sval(placeholder);
          *x = ref;
          return false;
        }
      }
    }
    return true;
  };
  (void)WalkNodes(&copy, visit);
  if (copy.has_column_ref()) (void)visit(&copy);
  auto text = DeparseExpression(copy);
  if (!text.ok()) return "<expression>";
  std::string out = *text;
  for (size_t i = shown.size(); i-- > 0;) {
    out = absl::StrReplaceAll(out, {{absl::StrCat("pgtdisplay", i, "x"), shown[i]}});
  }
  return out;
}

}  // namespace

std::vector<std::string> ColumnDisplays(const Op& op, const std::vector<SourceRelation>& sources) {
  std::vector<std::string> out;
  auto in = [&](size_t i) { return ColumnDisplays(*op.inputs[i], sources); };
  switch (op.kind) {
    case OpKind::kScan:
      for (const auto& c : sources[op.source].columns)
        out.push_back(absl::StrCat(op.alias, ".", c));
      return out;
    case OpKind::kValues:
      for (const auto& c : op.columns) out.push_back(c.user_name.empty() ? "1" : c.user_name);
      return out;
    case OpKind::kFilter:
      return in(0);
    case OpKind::kProject: {
      auto d = in(0);
      for (size_t k = 0; k < op.columns.size(); ++k) {
        out.push_back(op.columns[k].hidden ? Render(op.exprs[k], {{"i", d}})
                                           : op.columns[k].user_name);
      }
      return out;
    }
    case OpKind::kJoin: {
      out = in(0);
      if (op.join == JoinKind::kInner || op.join == JoinKind::kLeft ||
          op.join == JoinKind::kRight || op.join == JoinKind::kFull) {
        auto r = in(1);
        out.insert(out.end(), r.begin(), r.end());
      }
      return out;
    }
    case OpKind::kAggregate: {
      auto d = in(0);
      for (const auto& g : op.group_exprs) out.push_back(Render(g, {{"i", d}}));
      for (const auto& a : op.aggs) out.push_back(Render(a.call, {{"i", d}}));
      return out;
    }
    case OpKind::kDistinct: {
      auto d = in(0);
      for (size_t k = 0; k < op.inputs[0]->columns.size(); ++k) {
        if (!op.inputs[0]->columns[k].hidden) out.push_back(d[k]);
      }
      return out;
    }
    case OpKind::kSetOp: {
      auto d = in(0);
      for (size_t k = 0; k < op.inputs[0]->columns.size(); ++k) {
        if (!op.inputs[0]->columns[k].hidden) out.push_back(d[k]);
      }
      while (out.size() < op.columns.size()) out.push_back("(branch key)");
      return out;
    }
    case OpKind::kScalar:
      out.push_back("(subquery)");
      return out;
  }
  return out;
}

std::string OpDetail(const Op& op, const std::vector<SourceRelation>& sources) {
  auto in = [&](size_t i) { return ColumnDisplays(*op.inputs[i], sources); };
  switch (op.kind) {
    case OpKind::kScan: {
      const auto& s = sources[op.source];
      std::string d = absl::StrCat(s.schema, ".", s.name);
      if (op.alias != s.name) absl::StrAppend(&d, " AS ", op.alias);
      if (!s.key.empty()) {
        absl::StrAppend(&d, " key (", absl::StrJoin(s.key, ", "), ")");
      } else {
        absl::StrAppend(&d, " (no key)");
      }
      return d;
    }
    case OpKind::kFilter:
      return Render(op.predicate, {{"i", in(0)}});
    case OpKind::kProject: {
      auto d = in(0);
      std::vector<std::string> parts;
      for (size_t k = 0; k < op.exprs.size(); ++k) {
        std::string e = Render(op.exprs[k], {{"i", d}});
        const bool key = op.key.has_value() &&
                         std::find(op.key->begin(), op.key->end(), k) != op.key->end();
        if (op.columns[k].hidden) {
          parts.push_back(absl::StrCat(e, key ? " (carried key)" : " (for ORDER BY)"));
        } else if (e == op.columns[k].user_name) {
          parts.push_back(e);
        } else {
          parts.push_back(absl::StrCat(e, " AS ", op.columns[k].user_name));
        }
      }
      return absl::StrJoin(parts, ", ");
    }
    case OpKind::kJoin: {
      Displays d = {{"l", in(0)}, {"r", in(1)}};
      if (op.join == JoinKind::kNotIn) {
        return absl::StrCat(Render(op.condition, d), " NOT IN (", d["r"][0], ")");
      }
      return absl::StrCat("ON ", Render(op.condition, d));
    }
    case OpKind::kScalar: {
      const Op& sub = *op.inputs[0];
      if (sub.order.empty()) return "";
      auto d = in(0);
      std::vector<std::string> items;
      for (const auto& o : sub.order) {
        const auto& sb = o.sort_by();
        std::string item = Render(sb.node(), {{"i", d}});
        if (sb.sortby_dir() == pg_query::SORTBY_DESC) absl::StrAppend(&item, " DESC");
        if (sb.sortby_dir() == pg_query::SORTBY_USING) absl::StrAppend(&item, " USING ...");
        if (sb.sortby_nulls() == pg_query::SORTBY_NULLS_FIRST) absl::StrAppend(&item, " NULLS FIRST");
        if (sb.sortby_nulls() == pg_query::SORTBY_NULLS_LAST) absl::StrAppend(&item, " NULLS LAST");
        items.push_back(item);
      }
      return absl::StrCat("ORDER BY ", absl::StrJoin(items, ", "));
    }
    case OpKind::kAggregate: {
      auto d = in(0);
      std::vector<std::string> g, a;
      for (const auto& e : op.group_exprs) g.push_back(Render(e, {{"i", d}}));
      for (const auto& c : op.aggs) a.push_back(Render(c.call, {{"i", d}}));
      return absl::StrCat(
          g.empty() ? "whole input" : absl::StrCat("GROUP BY ", absl::StrJoin(g, ", ")), ": ",
          absl::StrJoin(a, ", "));
    }
    default:
      return "";
  }
}

}  // namespace trickle::delta
