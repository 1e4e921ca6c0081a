#include "delta/operator_tree.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
    case OpKind::kScan: return "Scan";
    case OpKind::kValues: return "Values";
    case OpKind::kFilter: return "Filter";
    case OpKind::kProject: return "Project";
    case OpKind::kJoin:
      switch (op.join) {
        case JoinKind::kInner: return "InnerJoin";
        case JoinKind::kLeft: return "LeftJoin";
        case JoinKind::kRight: return "RightJoin";
        case JoinKind::kFull: return "FullJoin";
        case JoinKind::kSemi: return "SemiJoin";
        case JoinKind::kAnti: return "AntiJoin";
        case JoinKind::kNotIn: return "NotInJoin";
      }
      return "Join";
    case OpKind::kAggregate: return "Aggregate";
    case OpKind::kDistinct: return "Distinct";
    case OpKind::kSetOp:
      switch (op.setop) {
        case SetOpKind::kUnionAll: return "UnionAll";
        case SetOpKind::kIntersect: return op.all ? "IntersectAll" : "Intersect";
        case SetOpKind::kExcept: return op.all ? "ExceptAll" : "Except";
      }
      return "SetOp";
    case OpKind::kScalar: return op.array ? "ArraySubquery" : "ScalarSubquery";
  }
  return "?";
}

static std::string Expr(const pg_query::Node& n) {
  auto text = DeparseExpression(n);
  return text.ok() ? *text : "<expression>";
}

std::string OpDetail(const Op& op, const std::vector<SourceRelation>& sources) {
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
    case OpKind::kFilter: return Expr(op.predicate);
    case OpKind::kProject: {
      std::vector<std::string> parts;
      for (size_t k = 0; k < op.exprs.size(); ++k) {
        std::string name = op.columns[k].hidden ? "(key)" : op.columns[k].user_name;
        parts.push_back(absl::StrCat(Expr(op.exprs[k]), " AS ", name));
      }
      return absl::StrJoin(parts, ", ");
    }
    case OpKind::kJoin:
      if (op.join == JoinKind::kNotIn) return absl::StrCat(Expr(op.condition), " NOT IN (r.c1)");
      return absl::StrCat("ON ", Expr(op.condition));
    case OpKind::kAggregate: {
      std::vector<std::string> g, a;
      for (const auto& e : op.group_exprs) g.push_back(Expr(e));
      for (const auto& c : op.aggs) a.push_back(Expr(c.call));
      return absl::StrCat("GROUP BY (", absl::StrJoin(g, ", "), ") ", absl::StrJoin(a, ", "));
    }
    default: return "";
  }
}

}  // namespace trickle::delta
