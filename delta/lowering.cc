#include "delta/lowering.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "delta/pg_parser.h"
#include "delta/sql_builder.h"

namespace trickle::delta {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using pg_query::Node;

absl::Status WalkNodes(Message* message, const std::function<absl::StatusOr<bool>(Node*)>& fn) {
  const Reflection* reflection = message->GetReflection();
  const auto* descriptor = message->GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->type() != FieldDescriptor::TYPE_MESSAGE) continue;
    auto visit = [&](Message* child) -> absl::Status {
      if (child->GetDescriptor() == Node::descriptor()) {
        auto* node = static_cast<Node*>(child);
        TRICKLE_ASSIGN_OR_RETURN(bool descend, fn(node));
        if (descend) return WalkNodes(node, fn);
        return absl::OkStatus();
      }
      return WalkNodes(child, fn);
    };
    if (field->is_repeated()) {
      int n = reflection->FieldSize(*message, field);
      for (int j = 0; j < n; ++j) {
        TRICKLE_RETURN_IF_ERROR(visit(reflection->MutableRepeatedMessage(message, field, j)));
      }
    } else if (reflection->HasField(*message, field)) {
      TRICKLE_RETURN_IF_ERROR(visit(reflection->MutableMessage(message, field)));
    }
  }
  return absl::OkStatus();
}

std::string FunctionName(const pg_query::FuncCall& call) {
  // The parser already folded an unquoted name to lower case; a quoted
  // "MyFunc" is another function than myfunc.
  if (call.funcname_size() == 0) return "";
  return call.funcname(call.funcname_size() - 1).string().sval();
}

namespace {

constexpr std::string_view kScalarPlaceholder = "__pgt_scalar";

// ---------------------------------------------------------------------------
// Function classification (facts first, then built-in lists).

const std::set<std::string>& BuiltinAggregates() {
  static const auto* s = new std::set<std::string>{"count",
                                                   "sum",
                                                   "avg",
                                                   "min",
                                                   "max",
                                                   "bool_and",
                                                   "bool_or",
                                                   "every",
                                                   "string_agg",
                                                   "array_agg",
                                                   "json_agg",
                                                   "jsonb_agg",
                                                   "json_object_agg",
                                                   "jsonb_object_agg",
                                                   "stddev",
                                                   "stddev_pop",
                                                   "stddev_samp",
                                                   "variance",
                                                   "var_pop",
                                                   "var_samp",
                                                   "bit_and",
                                                   "bit_or",
                                                   "bit_xor",
                                                   "corr",
                                                   "covar_pop",
                                                   "covar_samp",
                                                   "regr_avgx",
                                                   "regr_avgy",
                                                   "regr_count",
                                                   "regr_intercept",
                                                   "regr_r2",
                                                   "regr_slope",
                                                   "regr_sxx",
                                                   "regr_sxy",
                                                   "regr_syy",
                                                   "xmlagg",
                                                   "percentile_cont",
                                                   "percentile_disc",
                                                   "mode",
                                                   "range_agg",
                                                   "range_intersect_agg",
                                                   "json_agg_strict",
                                                   "jsonb_agg_strict",
                                                   "any_value"};
  return *s;
}

const std::set<std::string>& BuiltinNonImmutable() {
  static const auto* s = new std::set<std::string>{"random",
                                                   "random_normal",
                                                   "setseed",
                                                   "now",
                                                   "statement_timestamp",
                                                   "transaction_timestamp",
                                                   "clock_timestamp",
                                                   "timeofday",
                                                   "nextval",
                                                   "currval",
                                                   "lastval",
                                                   "gen_random_uuid",
                                                   "uuid_generate_v1",
                                                   "uuid_generate_v1mc",
                                                   "uuid_generate_v4",
                                                   "txid_current",
                                                   "txid_current_if_assigned",
                                                   "pg_current_xact_id",
                                                   "pg_current_xact_id_if_assigned",
                                                   "pg_backend_pid",
                                                   "pg_sleep",
                                                   "current_setting",
                                                   "inet_client_addr",
                                                   "inet_client_port",
                                                   "pg_postmaster_start_time",
                                                   "age",
                                                   "pg_current_snapshot",
                                                   "txid_current_snapshot",
                                                   "pg_current_wal_lsn",
                                                   "pg_current_wal_insert_lsn",
                                                   "pg_read_file",
                                                   "pg_ls_dir",
                                                   "dblink",
                                                   "pg_stat_get_activity",
                                                   "to_regclass",
                                                   "nextval",
                                                   "pg_notify"};
  return *s;
}

// Built-in functions PostgreSQL marks STABLE only because they call type
// output functions (whose results depend on settings such as DateStyle or
// TimeZone, fixed for the service's session): they read no tables and no
// clock, so their results do not change between refreshes.
const std::set<std::string>& StableButDeterministic() {
  static const auto* s = new std::set<std::string>{"concat",
                                                   "concat_ws",
                                                   "format",
                                                   "to_char",
                                                   "to_date",
                                                   "to_number",
                                                   "to_timestamp",
                                                   "date_part",
                                                   "date_trunc",
                                                   "extract",
                                                   "timezone",
                                                   "array_to_string",
                                                   "json_build_object",
                                                   "json_build_array",
                                                   "jsonb_build_object",
                                                   "jsonb_build_array",
                                                   "to_json",
                                                   "to_jsonb",
                                                   "row_to_json",
                                                   "array_to_json",
                                                   "json_object",
                                                   "jsonb_object",
                                                   "string_to_array",
                                                   "quote_literal",
                                                   "quote_nullable"};
  return *s;
}

const std::set<std::string>& BuiltinSetReturning() {
  static const auto* s = new std::set<std::string>{"generate_series",
                                                   "generate_subscripts",
                                                   "unnest",
                                                   "regexp_matches",
                                                   "regexp_split_to_table",
                                                   "string_to_table",
                                                   "json_array_elements",
                                                   "json_array_elements_text",
                                                   "jsonb_array_elements",
                                                   "jsonb_array_elements_text",
                                                   "json_each",
                                                   "json_each_text",
                                                   "jsonb_each",
                                                   "jsonb_each_text",
                                                   "json_object_keys",
                                                   "jsonb_object_keys",
                                                   "json_populate_recordset",
                                                   "jsonb_populate_recordset",
                                                   "json_to_recordset",
                                                   "jsonb_to_recordset",
                                                   "jsonb_path_query",
                                                   "pg_listening_channels",
                                                   "txid_snapshot_xip",
                                                   "pg_snapshot_xip",
                                                   "ts_stat",
                                                   "ts_parse",
                                                   "ts_token_type",
                                                   "aclexplode",
                                                   "pg_get_keywords",
                                                   "pg_options_to_table",
                                                   "json_to_record"};
  return *s;
}

// ---------------------------------------------------------------------------
// Scopes.

struct RangeEntry {
  std::string name;    // range name: alias, else relation (or CTE) name
  std::string schema;  // schema of an unaliased base table (for schema.table.col)
  std::vector<std::string> cols;
  std::vector<int> pos;  // position of each column in the FROM operator's output
};

struct MergedColumn {  // a JOIN ... USING / NATURAL column, referenced unqualified
  std::string name;
  int left_pos = -1;
  int right_pos = -1;
  JoinKind kind = JoinKind::kInner;
};

struct Scope {
  std::vector<RangeEntry> entries;
  std::vector<MergedColumn> merged;
};

struct FromResult {
  std::unique_ptr<Op> op;
  Scope scope;
};

struct CteEnv {
  const CteEnv* parent = nullptr;
  const pg_query::CommonTableExpr* cte = nullptr;  // one definition per link
  const CteEnv* defined_in = nullptr;              // env the CTE's query sees
};

// Where a name resolved to.
struct Resolved {
  int pos = -1;
  int pos2 = -1;  // FULL JOIN USING: COALESCE(pos, pos2)
};

// Maps FROM-output positions to bound column references.
using RefFn = std::function<Node(int)>;

Node RefI(int pos) { return sqlb::Col("i", ColName(pos)); }

std::string NormalizeType(const pg_query::TypeName& tn) {
  if (tn.names_size() == 0 || tn.array_bounds_size() > 0) return "";
  std::string last = tn.names(tn.names_size() - 1).string().sval();
  if (last == "int4" || last == "integer") return "integer";
  if (last == "int8" || last == "bigint") return "bigint";
  if (last == "int2" || last == "smallint") return "smallint";
  if (last == "numeric" || last == "decimal") return "numeric";
  if (last == "bool" || last == "boolean") return "boolean";
  return "";
}

bool IsIntegerType(const std::string& t) {
  return t == "integer" || t == "bigint" || t == "smallint";
}

std::string WiderInt(const std::string& a, const std::string& b) {
  if (a == "bigint" || b == "bigint") return "bigint";
  if (a == "integer" || b == "integer") return "integer";
  return "smallint";
}

// A small type inference for the expressions algebraic aggregates accept:
// integer columns, casts to integer types, integer literals and + - * / of
// those. Anything else is "unknown" ("") and gets the recompute strategy.
std::string InferType(const Node& expr, const std::vector<OpColumn>& input) {
  if (expr.has_column_ref()) {
    const auto& f = expr.column_ref().fields();
    if (f.size() == 2 && f[0].string().sval() == "i") {
      const std::string& c = f[1].string().sval();
      if (c.size() > 1 && c[0] == 'c') {
        int k = std::atoi(c.c_str() + 1) - 1;
        if (k >= 0 && k < static_cast<int>(input.size())) return input[k].type;
      }
    }
    return "";
  }
  if (expr.has_type_cast()) return NormalizeType(expr.type_cast().type_name());
  if (expr.has_a_const()) {
    if (expr.a_const().has_ival()) return "integer";
    return "";
  }
  if (expr.has_a_expr() && expr.a_expr().kind() == pg_query::AEXPR_OP &&
      expr.a_expr().name_size() == 1) {
    const std::string& op = expr.a_expr().name(0).string().sval();
    if (op == "+" || op == "-" || op == "*" || op == "/") {
      if (!expr.a_expr().has_lexpr()) {
        std::string t = InferType(expr.a_expr().rexpr(), input);
        return (op == "-" && IsIntegerType(t)) ? t : "";
      }
      std::string l = InferType(expr.a_expr().lexpr(), input);
      std::string r = InferType(expr.a_expr().rexpr(), input);
      if (IsIntegerType(l) && IsIntegerType(r)) return WiderInt(l, r);
    }
  }
  return "";
}

bool IsPlainRef(const Node& expr, std::string_view alias, int* pos) {
  if (!expr.has_column_ref()) return false;
  const auto& f = expr.column_ref().fields();
  if (f.size() != 2 || !f[0].has_string() || !f[1].has_string()) return false;
  if (f[0].string().sval() != alias) return false;
  const std::string& c = f[1].string().sval();
  if (c.size() < 2 || c[0] != 'c') return false;
  for (size_t i = 1; i < c.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(c[i]))) return false;
  }
  *pos = std::atoi(c.c_str() + 1) - 1;
  return true;
}

int Location(const Node& n) {
  // Most node kinds have a `location` field; find it by reflection.
  const Message* inner = nullptr;
  const Reflection* r = n.GetReflection();
  const auto* oneof = n.GetDescriptor()->FindOneofByName("node");
  if (oneof == nullptr) return -1;
  const FieldDescriptor* f = r->GetOneofFieldDescriptor(n, oneof);
  if (f == nullptr) return -1;
  inner = &r->GetMessage(n, f);
  const auto* loc = inner->GetDescriptor()->FindFieldByName("location");
  if (loc == nullptr || loc->cpp_type() != FieldDescriptor::CPPTYPE_INT32) return -1;
  return inner->GetReflection()->GetInt32(*inner, loc);
}

// Equality conjuncts of a join condition between its sides: the partition
// keys of the affected-key strategies.
void ExtractEqui(Op* op) {
  op->equi.clear();
  if (op->join == JoinKind::kNotIn) return;
  std::vector<const Node*> conjuncts;
  const Node& condition = op->condition;
  if (condition.has_bool_expr() && condition.bool_expr().boolop() == pg_query::AND_EXPR) {
    for (const auto& a : condition.bool_expr().args()) conjuncts.push_back(&a);
  } else {
    conjuncts.push_back(&condition);
  }
  auto sides = [](const Node& e) {
    int mask = 0;
    auto visit = [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_column_ref() && n->column_ref().fields_size() == 2 &&
          n->column_ref().fields(0).has_string()) {
        const std::string& q = n->column_ref().fields(0).string().sval();
        if (q == "l") mask |= 1;
        if (q == "r") mask |= 2;
      }
      if (n->has_sub_link()) mask |= 4;
      return true;
    };
    Node copy = e;
    (void)visit(&copy);
    (void)WalkNodes(&copy, visit);
    return mask;
  };
  for (const Node* c : conjuncts) {
    if (!c->has_a_expr() || c->a_expr().kind() != pg_query::AEXPR_OP ||
        c->a_expr().name_size() != 1 || c->a_expr().name(0).string().sval() != "=" ||
        !c->a_expr().has_lexpr()) {
      continue;
    }
    int lm = sides(c->a_expr().lexpr());
    int rm = sides(c->a_expr().rexpr());
    if (lm == 1 && rm == 2) {
      op->equi.emplace_back(c->a_expr().lexpr(), c->a_expr().rexpr());
    } else if (lm == 2 && rm == 1) {
      op->equi.emplace_back(c->a_expr().rexpr(), c->a_expr().lexpr());
    }
  }
}

// Positions k of the `i.c<k>` references in `expr`.
std::set<int> RefPositions(const Node& expr) {
  std::set<int> out;
  auto visit = [&](Node* n) -> absl::StatusOr<bool> {
    int pos;
    if (IsPlainRef(*n, "i", &pos)) out.insert(pos);
    return true;
  };
  Node copy = expr;
  (void)visit(&copy);
  (void)WalkNodes(&copy, visit);
  return out;
}

// Moves a WHERE conjunct (over the FROM output, as i.c<k>) into the
// condition of the lowest inner join on the FROM tree's left spine whose two
// sides it compares: `FROM a, b WHERE a.x = b.y` becomes a join on a.x = b.y,
// so its delta is driven by the key instead of a cross product. Returns
// false (the conjunct stays in the Filter) when no such join exists.
bool AttachToJoin(Op* op, const Node& conjunct) {
  std::set<int> refs = RefPositions(conjunct);
  if (refs.empty()) return false;
  while (op->kind == OpKind::kJoin && op->join == JoinKind::kInner) {
    const int nl = op->inputs[0]->columns.size();
    if (*refs.rbegin() < nl) {
      op = op->inputs[0].get();
      continue;
    }
    if (*refs.begin() >= nl) return false;
    Node cond = conjunct;
    auto visit = [&](Node* n) -> absl::StatusOr<bool> {
      int pos;
      if (IsPlainRef(*n, "i", &pos)) {
        *n = pos < nl ? sqlb::Col("l", ColName(pos)) : sqlb::Col("r", ColName(pos - nl));
        return false;
      }
      return true;
    };
    auto root = visit(&cond);
    if (root.ok() && *root) (void)WalkNodes(&cond, visit);
    const bool trivial = op->condition.has_a_const() && op->condition.a_const().has_boolval() &&
                         op->condition.a_const().boolval().boolval();
    op->condition = trivial ? cond : sqlb::And({op->condition, cond});
    ExtractEqui(op);
    return true;
  }
  return false;
}

// The ORDER BY item `item` (direction, NULLS, USING) applied to output column
// `column` of an operator.
Node OrderItem(const pg_query::SortBy& item, int column) {
  Node n;
  *n.mutable_sort_by() = item;
  *n.mutable_sort_by()->mutable_node() = RefI(column);
  n.mutable_sort_by()->set_location(-1);
  return n;
}

// ---------------------------------------------------------------------------

class Lowerer {
 public:
  Lowerer(const CatalogFacts& facts, UnsupportedConstruct* unsupported)
      : facts_(facts), unsupported_(unsupported) {}

  // `keep_order`: the rows' order is observable (an ARRAY subquery), so the
  // ORDER BY is kept as Op::order (its expressions as hidden columns).
  absl::StatusOr<std::unique_ptr<Op>> LowerSelect(const pg_query::SelectStmt& stmt,
                                                  const CteEnv* env, bool keep_order);

  std::vector<SourceRelation> TakeSources() { return std::move(sources_); }
  int op_count() const { return next_id_; }

 private:
  absl::Status Unsupported(std::string construct, int location) {
    if (unsupported_ != nullptr && unsupported_->construct.empty()) {
      unsupported_->construct = construct;
      unsupported_->location = location;
    }
    return absl::UnimplementedError(construct);
  }

  std::unique_ptr<Op> NewOp(OpKind kind) {
    auto op = std::make_unique<Op>();
    op->id = next_id_++;
    op->kind = kind;
    return op;
  }

  // Builders that also derive columns, keys and NOT NULL facts.
  std::unique_ptr<Op> MakeFilter(std::unique_ptr<Op> input, Node predicate);
  std::unique_ptr<Op> MakeProject(std::unique_ptr<Op> input, std::vector<Node> exprs,
                                  std::vector<std::string> names);
  std::unique_ptr<Op> MakeJoin(JoinKind kind, std::unique_ptr<Op> left, std::unique_ptr<Op> right,
                               Node condition);
  std::unique_ptr<Op> MakeDistinct(std::unique_ptr<Op> input);

  absl::StatusOr<std::unique_ptr<Op>> LowerSetOp(const pg_query::SelectStmt& stmt,
                                                 const CteEnv* env);
  absl::StatusOr<FromResult> LowerFromList(const google::protobuf::RepeatedPtrField<Node>& from,
                                           const CteEnv* env);
  absl::StatusOr<FromResult> LowerFromItem(const Node& item, const CteEnv* env);
  absl::StatusOr<FromResult> LowerRangeVar(const pg_query::RangeVar& rv, const CteEnv* env);
  absl::StatusOr<FromResult> LowerJoinExpr(const pg_query::JoinExpr& j, const CteEnv* env);
  absl::StatusOr<FromResult> SubqueryItem(std::unique_ptr<Op> op, const std::string& name,
                                          const pg_query::Alias* alias,
                                          const std::vector<std::string>* cte_cols);

  // Expression binding.
  absl::StatusOr<Resolved> Resolve(const pg_query::ColumnRef& ref, const Scope& scope, bool* found);
  absl::StatusOr<Node> Bind(const Node& expr, const Scope& scope, const RefFn& ref,
                            const Scope* outer = nullptr, const RefFn* outer_ref = nullptr,
                            bool* used_inner = nullptr, bool* used_outer = nullptr);
  absl::Status CheckFunction(const pg_query::FuncCall& call, const Node& node, bool agg_allowed);
  bool IsAggregate(const pg_query::FuncCall& call) const;

  // Replaces uncorrelated scalar/ARRAY subqueries under `expr` by references
  // to one-row operators cross-joined to *op.
  absl::StatusOr<Node> ExtractScalars(const Node& expr, std::unique_ptr<Op>* op, const CteEnv* env);

  absl::Status LowerWhere(const Node& where, FromResult* from, const CteEnv* env);
  absl::StatusOr<bool> LowerSublinkConjunct(const Node& conjunct, FromResult* from,
                                            const CteEnv* env);
  absl::StatusOr<std::unique_ptr<Op>> LowerExistsInner(const pg_query::SelectStmt& sub,
                                                       const CteEnv* env, FromResult* outer,
                                                       Node* condition);

  absl::StatusOr<std::vector<std::pair<Node, std::string>>> ExpandTargets(
      const pg_query::SelectStmt& stmt, const Scope& scope);
  // The select-list entry an ORDER BY item sorts by: an output column
  // (position or name, among the first `visible`), else the expression
  // appended to *targets.
  absl::StatusOr<int> SortTarget(const pg_query::SortBy& item, size_t visible,
                                 std::vector<std::pair<Node, std::string>>* targets);
  // ORDER BY of a set operation: by output columns only.
  absl::Status OrderOverOutput(const pg_query::SelectStmt& stmt, Op* op);

  absl::StatusOr<std::unique_ptr<Op>> LowerAggregateBlock(
      const pg_query::SelectStmt& stmt, FromResult from,
      std::vector<std::pair<Node, std::string>> targets, const CteEnv* env);

  int SourceIndex(const RelationFacts& rel);

  const CatalogFacts& facts_;
  UnsupportedConstruct* unsupported_;
  int next_id_ = 0;
  std::vector<SourceRelation> sources_;
  std::deque<CteEnv> envs_;  // stable addresses
};

int Lowerer::SourceIndex(const RelationFacts& rel) {
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (sources_[i].schema == rel.schema && sources_[i].name == rel.name) return i;
  }
  SourceRelation s;
  s.schema = rel.schema;
  s.name = rel.name;
  s.oid = rel.oid;
  for (const auto& c : rel.columns) {
    s.columns.push_back(c.name);
    s.column_types.push_back(c.type);
  }
  s.key = rel.key;
  sources_.push_back(std::move(s));
  return sources_.size() - 1;
}

// --- operator builders -------------------------------------------------------

std::unique_ptr<Op> Lowerer::MakeFilter(std::unique_ptr<Op> input, Node predicate) {
  auto op = NewOp(OpKind::kFilter);
  op->columns = input->columns;
  op->key = input->key;
  op->predicate = std::move(predicate);
  op->inputs.push_back(std::move(input));
  return op;
}

std::unique_ptr<Op> Lowerer::MakeProject(std::unique_ptr<Op> input, std::vector<Node> exprs,
                                         std::vector<std::string> names) {
  auto op = NewOp(OpKind::kProject);
  const Op& in = *input;
  for (size_t k = 0; k < exprs.size(); ++k) {
    OpColumn c;
    c.user_name = names[k];
    int pos;
    if (IsPlainRef(exprs[k], "i", &pos) && pos < static_cast<int>(in.columns.size())) {
      c.not_null = in.columns[pos].not_null;
      c.type = in.columns[pos].type;
    } else {
      c.not_null = exprs[k].has_a_const() && !exprs[k].a_const().isnull();
      c.type = InferType(exprs[k], in.columns);
    }
    op->columns.push_back(c);
  }
  // Carry the input's key, so the parent (or the stream table) can identify
  // rows even when the query does not select the key columns.
  if (in.key.has_value()) {
    std::vector<int> key;
    for (int k : *in.key) {
      int found = -1;
      for (size_t j = 0; j < exprs.size(); ++j) {
        int pos;
        if (IsPlainRef(exprs[j], "i", &pos) && pos == k) {
          found = j;
          break;
        }
      }
      if (found < 0) {
        exprs.push_back(RefI(k));
        OpColumn c = in.columns[k];
        c.hidden = true;
        c.user_name = "";
        op->columns.push_back(c);
        found = exprs.size() - 1;
      }
      key.push_back(found);
    }
    op->key = key;
  }
  op->exprs = std::move(exprs);
  op->inputs.push_back(std::move(input));
  return op;
}

std::unique_ptr<Op> Lowerer::MakeJoin(JoinKind kind, std::unique_ptr<Op> left,
                                      std::unique_ptr<Op> right, Node condition) {
  auto op = NewOp(OpKind::kJoin);
  op->join = kind;
  const int nl = left->columns.size();
  for (auto c : left->columns) {
    if (kind == JoinKind::kRight || kind == JoinKind::kFull) c.not_null = false;
    op->columns.push_back(c);
  }
  const bool semi_like =
      kind == JoinKind::kSemi || kind == JoinKind::kAnti || kind == JoinKind::kNotIn;
  if (semi_like) {
    op->key = left->key;
  } else {
    for (auto c : right->columns) {
      if (kind == JoinKind::kLeft || kind == JoinKind::kFull) c.not_null = false;
      op->columns.push_back(c);
    }
    // (left key, right key) identifies a joined row. Under FULL JOIN a row
    // kept from either side has NULLs for the other side's key, so the pair
    // is unique only when neither key can itself be NULL; LEFT and RIGHT are
    // safe (the preserved row decides whether its partner is NULL).
    bool keys_ok = left->key.has_value() && right->key.has_value();
    if (keys_ok && kind == JoinKind::kFull) {
      for (int k : *left->key) keys_ok &= left->columns[k].not_null;
      for (int k : *right->key) keys_ok &= right->columns[k].not_null;
      keys_ok &= !left->key->empty() && !right->key->empty();
    }
    if (keys_ok) {
      std::vector<int> key = *left->key;
      for (int k : *right->key) key.push_back(nl + k);
      op->key = key;
    }
  }
  op->condition = std::move(condition);
  ExtractEqui(op.get());
  op->inputs.push_back(std::move(left));
  op->inputs.push_back(std::move(right));
  return op;
}

std::unique_ptr<Op> Lowerer::MakeDistinct(std::unique_ptr<Op> input) {
  auto op = NewOp(OpKind::kDistinct);
  std::vector<int> key;
  for (const auto& c : input->columns) {
    if (c.hidden) continue;
    key.push_back(op->columns.size());
    op->columns.push_back(c);
  }
  op->key = key;
  op->inputs.push_back(std::move(input));
  return op;
}

// --- names --------------------------------------------------------------------

absl::StatusOr<Resolved> Lowerer::Resolve(const pg_query::ColumnRef& ref, const Scope& scope,
                                          bool* found) {
  *found = false;
  std::vector<std::string> names;
  for (const auto& f : ref.fields()) {
    if (!f.has_string()) {
      return Unsupported("whole-row reference (.*) inside an expression", ref.location());
    }
    names.push_back(f.string().sval());
  }
  if (names.size() == 1) {
    for (const auto& m : scope.merged) {
      if (m.name == names[0]) {
        *found = true;
        if (m.kind == JoinKind::kFull) return Resolved{m.left_pos, m.right_pos};
        return Resolved{m.kind == JoinKind::kRight ? m.right_pos : m.left_pos, -1};
      }
    }
    Resolved result;
    int matches = 0;
    for (const auto& e : scope.entries) {
      for (size_t k = 0; k < e.cols.size(); ++k) {
        if (e.cols[k] == names[0]) {
          ++matches;
          result.pos = e.pos[k];
        }
      }
    }
    if (matches > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column reference \"", names[0], "\" is ambiguous at position ", ref.location() + 1));
    }
    *found = matches == 1;
    return result;
  }
  if (names.size() == 2 || names.size() == 3) {
    const std::string& rel = names[names.size() - 2];
    const std::string& col = names.back();
    for (const auto& e : scope.entries) {
      if (e.name != rel) continue;
      if (names.size() == 3 && e.schema != names[0]) continue;
      for (size_t k = 0; k < e.cols.size(); ++k) {
        if (e.cols[k] == col) {
          *found = true;
          return Resolved{e.pos[k], -1};
        }
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "column ", rel, ".", col, " does not exist (position ", ref.location() + 1, ")"));
    }
    return Resolved{};
  }
  return Unsupported("column reference with a database name", ref.location());
}

bool Lowerer::IsAggregate(const pg_query::FuncCall& call) const {
  return IsAggregateCall(call, facts_);
}

absl::Status Lowerer::CheckFunction(const pg_query::FuncCall& call, const Node& node,
                                    bool agg_allowed) {
  std::string name = FunctionName(call);
  if (call.has_over()) {
    return Unsupported(absl::StrCat("window function ", name, "()"), call.location());
  }
  auto it = facts_.functions.find(name);
  if (it != facts_.functions.end()) {
    if (it->second.mixed_kinds) {
      return Unsupported(absl::StrCat("function ", name,
                                      "() (it has overloads of different kinds, e.g. an aggregate "
                                      "and a plain function)"),
                         call.location());
    }
    if (it->second.returns_set) {
      return Unsupported(absl::StrCat("set-returning function ", name, "()"), call.location());
    }
    if (it->second.volatility == 'v') {
      return Unsupported(absl::StrCat("volatile function ", name, "()"), call.location());
    }
    if (it->second.volatility == 's' && !StableButDeterministic().count(name)) {
      return Unsupported(absl::StrCat("stable function ", name,
                                      "() (its result can change without any source change)"),
                         call.location());
    }
  } else {
    if (BuiltinSetReturning().count(name)) {
      return Unsupported(absl::StrCat("set-returning function ", name, "()"), call.location());
    }
    if (BuiltinNonImmutable().count(name)) {
      return Unsupported(absl::StrCat("volatile or stable function ", name, "()"), call.location());
    }
  }
  if (!agg_allowed && IsAggregate(call)) {
    return absl::InvalidArgumentError(absl::StrCat("aggregate function ", name,
                                                   "() is not allowed here (position ",
                                                   call.location() + 1, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Node> Lowerer::Bind(const Node& expr, const Scope& scope, const RefFn& ref,
                                   const Scope* outer, const RefFn* outer_ref, bool* used_inner,
                                   bool* used_outer) {
  Node out = expr;
  auto bind_one = [&](Node* n) -> absl::StatusOr<bool> {
    if (n->has_column_ref()) {
      const auto& fields = n->column_ref().fields();
      if (fields.size() == 2 && fields[0].has_string() &&
          fields[0].string().sval() == kScalarPlaceholder) {
        *n = ref(std::atoi(fields[1].string().sval().c_str()));
        if (used_inner) *used_inner = true;
        return false;
      }
      bool found = false;
      TRICKLE_ASSIGN_OR_RETURN(Resolved r, Resolve(n->column_ref(), scope, &found));
      if (found) {
        if (used_inner) *used_inner = true;
        if (r.pos2 >= 0) {
          *n = sqlb::Coalesce({ref(r.pos), ref(r.pos2)});
        } else {
          *n = ref(r.pos);
        }
        return false;
      }
      if (outer != nullptr) {
        TRICKLE_ASSIGN_OR_RETURN(Resolved r2, Resolve(n->column_ref(), *outer, &found));
        if (found) {
          if (used_outer) *used_outer = true;
          if (r2.pos2 >= 0) {
            *n = sqlb::Coalesce({(*outer_ref)(r2.pos), (*outer_ref)(r2.pos2)});
          } else {
            *n = (*outer_ref)(r2.pos);
          }
          return false;
        }
      }
      std::vector<std::string> parts;
      for (const auto& f : fields) parts.push_back(f.has_string() ? f.string().sval() : "*");
      return absl::InvalidArgumentError(
          absl::StrCat("column \"", absl::StrJoin(parts, "."),
                       "\" does not exist or is a reference to an outer query the engine "
                       "cannot follow (position ",
                       n->column_ref().location() + 1, ")"));
    }
    if (n->has_func_call()) {
      TRICKLE_RETURN_IF_ERROR(CheckFunction(n->func_call(), *n, /*agg_allowed=*/false));
      return true;
    }
    if (n->has_sub_link()) {
      return Unsupported(
          "subquery inside an expression (only uncorrelated scalar subqueries, "
          "and EXISTS / IN / NOT IN as WHERE conjuncts, are maintained)",
          n->sub_link().location());
    }
    if (n->has_sqlvalue_function()) {
      return Unsupported(
          "stable SQL value function (CURRENT_DATE, CURRENT_TIMESTAMP, "
          "CURRENT_USER, ...)",
          n->sqlvalue_function().location());
    }
    if (n->has_param_ref()) {
      return Unsupported("query parameter", n->param_ref().location());
    }
    if (n->has_grouping_func()) {
      return Unsupported("GROUPING()", n->grouping_func().location());
    }
    if (n->has_a_indirection()) {
      for (const auto& ind : n->a_indirection().indirection()) {
        if (ind.has_a_star()) return Unsupported("(expression).*", -1);
      }
    }
    return true;
  };
  // The root itself may be a column reference.
  TRICKLE_ASSIGN_OR_RETURN(bool descend, bind_one(&out));
  if (descend) TRICKLE_RETURN_IF_ERROR(WalkNodes(&out, bind_one));
  return out;
}

// --- FROM ------------------------------------------------------------------------

absl::StatusOr<FromResult> Lowerer::SubqueryItem(std::unique_ptr<Op> op, const std::string& name,
                                                 const pg_query::Alias* alias,
                                                 const std::vector<std::string>* cte_cols) {
  FromResult r;
  RangeEntry e;
  e.name = name;
  std::vector<std::string> renames;
  if (cte_cols != nullptr) renames = *cte_cols;
  if (alias != nullptr && alias->colnames_size() > 0) {
    renames.clear();
    for (const auto& c : alias->colnames()) renames.push_back(c.string().sval());
  }
  int visible = 0;
  for (size_t k = 0; k < op->columns.size(); ++k) {
    if (op->columns[k].hidden) continue;
    std::string n =
        visible < static_cast<int>(renames.size()) ? renames[visible] : op->columns[k].user_name;
    ++visible;
    e.cols.push_back(n);
    e.pos.push_back(k);
  }
  if (static_cast<int>(renames.size()) > visible) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" has ", visible,
                                                   " columns available but ", renames.size(),
                                                   " columns specified"));
  }
  r.scope.entries.push_back(std::move(e));
  r.op = std::move(op);
  return r;
}

absl::StatusOr<FromResult> Lowerer::LowerRangeVar(const pg_query::RangeVar& rv, const CteEnv* env) {
  if (!rv.catalogname().empty()) {
    return Unsupported("relation name with a database name", rv.location());
  }
  if (rv.schemaname().empty()) {
    for (const CteEnv* e = env; e != nullptr; e = e->parent) {
      if (e->cte == nullptr || e->cte->ctename() != rv.relname()) continue;
      const auto& cte = *e->cte;
      if (!cte.ctequery().has_select_stmt()) {
        return Unsupported("data-modifying statement in WITH", cte.location());
      }
      TRICKLE_ASSIGN_OR_RETURN(auto op,
                               LowerSelect(cte.ctequery().select_stmt(), e->defined_in, false));
      std::vector<std::string> cols;
      for (const auto& c : cte.aliascolnames()) cols.push_back(c.string().sval());
      std::string name = rv.has_alias() ? rv.alias().aliasname() : rv.relname();
      return SubqueryItem(std::move(op), name, rv.has_alias() ? &rv.alias() : nullptr, &cols);
    }
  }
  // A base relation.
  const RelationFacts* rel = nullptr;
  if (!rv.schemaname().empty()) {
    for (const auto& r : facts_.relations) {
      if (r.schema == rv.schemaname() && r.name == rv.relname()) rel = &r;
    }
  } else {
    for (const auto& schema : facts_.search_path) {
      for (const auto& r : facts_.relations) {
        if (r.schema == schema && r.name == rv.relname()) rel = &r;
      }
      if (rel != nullptr) break;
    }
    if (rel == nullptr) {
      int matches = 0;
      for (const auto& r : facts_.relations) {
        if (r.name == rv.relname()) {
          rel = &r;
          ++matches;
        }
      }
      if (matches > 1) rel = nullptr;
    }
  }
  if (rel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "relation \"", rv.schemaname().empty() ? "" : rv.schemaname() + ".", rv.relname(),
        "\" is not in the catalog facts (position ", rv.location() + 1, ")"));
  }
  auto op = NewOp(OpKind::kScan);
  op->source = SourceIndex(*rel);
  op->location = rv.location();
  op->inh = rv.inh();
  op->alias = rv.has_alias() ? rv.alias().aliasname() : rv.relname();
  for (const auto& c : rel->columns) {
    if (c.name.rfind("__pgt_", 0) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("source column ", rel->schema, ".", rel->name, ".", c.name,
                       " uses the prefix __pgt_, which the engine reserves for its own columns"));
    }
    OpColumn oc;
    oc.user_name = c.name;
    oc.not_null = c.not_null;
    oc.type = c.type;
    op->columns.push_back(oc);
  }
  if (!rel->key.empty()) {
    std::vector<int> key;
    for (const auto& k : rel->key) {
      int found = -1;
      for (size_t j = 0; j < rel->columns.size(); ++j) {
        if (rel->columns[j].name == k) found = j;
      }
      if (found < 0) {
        return absl::InvalidArgumentError(absl::StrCat("key column ", k, " of ", rel->schema, ".",
                                                       rel->name, " is not a column"));
      }
      key.push_back(found);
      op->columns[found].not_null = true;
    }
    op->key = key;
  }
  FromResult r;
  RangeEntry e;
  e.name = op->alias;
  if (!rv.has_alias()) e.schema = rel->schema;
  std::vector<std::string> renames;
  if (rv.has_alias()) {
    for (const auto& c : rv.alias().colnames()) renames.push_back(c.string().sval());
  }
  if (renames.size() > rel->columns.size()) {
    return absl::InvalidArgumentError(absl::StrCat("table \"", op->alias, "\" has ",
                                                   rel->columns.size(), " columns but ",
                                                   renames.size(), " columns specified"));
  }
  for (size_t k = 0; k < rel->columns.size(); ++k) {
    e.cols.push_back(k < renames.size() ? renames[k] : rel->columns[k].name);
    e.pos.push_back(k);
  }
  r.scope.entries.push_back(std::move(e));
  r.op = std::move(op);
  return r;
}

absl::StatusOr<FromResult> Lowerer::LowerJoinExpr(const pg_query::JoinExpr& j, const CteEnv* env) {
  if (j.has_alias()) return Unsupported("alias on a JOIN", -1);
  if (j.has_join_using_alias()) return Unsupported("JOIN USING ... AS alias", -1);
  TRICKLE_ASSIGN_OR_RETURN(FromResult left, LowerFromItem(j.larg(), env));
  TRICKLE_ASSIGN_OR_RETURN(FromResult right, LowerFromItem(j.rarg(), env));
  JoinKind kind;
  switch (j.jointype()) {
    case pg_query::JOIN_INNER:
      kind = JoinKind::kInner;
      break;
    case pg_query::JOIN_LEFT:
      kind = JoinKind::kLeft;
      break;
    case pg_query::JOIN_RIGHT:
      kind = JoinKind::kRight;
      break;
    case pg_query::JOIN_FULL:
      kind = JoinKind::kFull;
      break;
    default:
      return Unsupported("join type", -1);
  }
  const int nl = left.op->columns.size();
  Scope scope = left.scope;
  for (auto e : right.scope.entries) {
    for (int& p : e.pos) p += nl;
    scope.entries.push_back(std::move(e));
  }
  for (auto m : right.scope.merged) {
    m.left_pos += nl;
    if (m.right_pos >= 0) m.right_pos += nl;
    scope.merged.push_back(m);
  }
  RefFn join_ref = [nl](int pos) {
    return pos < nl ? sqlb::Col("l", ColName(pos)) : sqlb::Col("r", ColName(pos - nl));
  };
  std::vector<std::string> using_cols;
  if (j.is_natural()) {
    // Common visible column names, in the left input's order.
    std::vector<std::string> lnames, rnames;
    for (const auto& m : left.scope.merged) lnames.push_back(m.name);
    for (const auto& e : left.scope.entries)
      lnames.insert(lnames.end(), e.cols.begin(), e.cols.end());
    for (const auto& m : right.scope.merged) rnames.push_back(m.name);
    for (const auto& e : right.scope.entries)
      rnames.insert(rnames.end(), e.cols.begin(), e.cols.end());
    for (const auto& n : lnames) {
      if (std::find(rnames.begin(), rnames.end(), n) != rnames.end() &&
          std::find(using_cols.begin(), using_cols.end(), n) == using_cols.end()) {
        using_cols.push_back(n);
      }
    }
  }
  for (const auto& u : j.using_clause()) using_cols.push_back(u.string().sval());
  std::vector<Node> conds;
  std::vector<MergedColumn> new_merged;
  for (const auto& name : using_cols) {
    Node ref;
    *ref.mutable_column_ref()->add_fields() = sqlb::Col(name).column_ref().fields(0);
    bool found_l = false, found_r = false;
    TRICKLE_ASSIGN_OR_RETURN(Resolved rl, Resolve(ref.column_ref(), left.scope, &found_l));
    TRICKLE_ASSIGN_OR_RETURN(Resolved rr, Resolve(ref.column_ref(), right.scope, &found_r));
    if (!found_l || !found_r) {
      return absl::InvalidArgumentError(
          absl::StrCat("column \"", name, "\" of JOIN USING is not in both sides"));
    }
    auto bound = [&](const Resolved& r, int shift) {
      if (r.pos2 >= 0) return sqlb::Coalesce({join_ref(r.pos + shift), join_ref(r.pos2 + shift)});
      return join_ref(r.pos + shift);
    };
    conds.push_back(sqlb::Eq(bound(rl, 0), bound(rr, nl)));
    if (rl.pos2 >= 0 || rr.pos2 >= 0) {
      return Unsupported("JOIN USING over the merged column of a FULL JOIN USING", -1);
    }
    new_merged.push_back(MergedColumn{name, rl.pos, rr.pos + nl, kind});
  }
  // Merged names hide the sides' own unqualified merged names.
  std::vector<MergedColumn> merged;
  for (const auto& m : new_merged) merged.push_back(m);
  for (const auto& m : scope.merged) {
    bool shadowed = false;
    for (const auto& n : new_merged) shadowed |= n.name == m.name;
    if (!shadowed) merged.push_back(m);
  }
  scope.merged = merged;
  if (j.has_quals()) {
    Node quals = j.quals();
    bool has_sublink = false;
    (void)WalkNodes(&quals, [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_sub_link()) has_sublink = true;
      return true;
    });
    if (has_sublink || quals.has_sub_link()) {
      return Unsupported("subquery in a JOIN condition", -1);
    }
    TRICKLE_ASSIGN_OR_RETURN(Node bound, Bind(quals, scope, join_ref));
    conds.push_back(std::move(bound));
  }
  Node condition = conds.empty() ? sqlb::Bool(true) : sqlb::And(conds);
  FromResult r;
  r.op = MakeJoin(kind, std::move(left.op), std::move(right.op), std::move(condition));
  r.scope = std::move(scope);
  return r;
}

absl::StatusOr<FromResult> Lowerer::LowerFromItem(const Node& item, const CteEnv* env) {
  if (item.has_range_var()) return LowerRangeVar(item.range_var(), env);
  if (item.has_join_expr()) return LowerJoinExpr(item.join_expr(), env);
  if (item.has_range_subselect()) {
    const auto& rs = item.range_subselect();
    if (rs.lateral()) return Unsupported("LATERAL subquery", -1);
    if (!rs.subquery().has_select_stmt()) return Unsupported("subquery kind", -1);
    TRICKLE_ASSIGN_OR_RETURN(auto op, LowerSelect(rs.subquery().select_stmt(), env, false));
    std::string name = rs.has_alias() ? rs.alias().aliasname() : "";
    return SubqueryItem(std::move(op), name, rs.has_alias() ? &rs.alias() : nullptr, nullptr);
  }
  if (item.has_range_function()) {
    const auto& rf = item.range_function();
    if (rf.lateral()) return Unsupported("LATERAL function", -1);
    return Unsupported("function in FROM", -1);
  }
  if (item.has_range_table_sample()) return Unsupported("TABLESAMPLE", -1);
  return Unsupported("FROM item kind", -1);
}

absl::StatusOr<FromResult> Lowerer::LowerFromList(
    const google::protobuf::RepeatedPtrField<Node>& from, const CteEnv* env) {
  if (from.empty()) {
    // No FROM: one row of no columns, modeled as a constant relation with one
    // hidden dummy column.
    auto op = NewOp(OpKind::kValues);
    sqlb::Select s;
    s.targets.push_back(sqlb::Target(sqlb::Int(1), ColName(0)));
    op->values = s.Build();
    OpColumn c;
    c.hidden = true;
    c.not_null = true;
    c.type = "integer";
    op->columns.push_back(c);
    op->key = std::vector<int>{};
    FromResult r;
    r.op = std::move(op);
    return r;
  }
  std::optional<FromResult> acc;
  for (const auto& item : from) {
    TRICKLE_ASSIGN_OR_RETURN(FromResult next, LowerFromItem(item, env));
    if (!acc.has_value()) {
      acc = std::move(next);
      continue;
    }
    const int nl = acc->op->columns.size();
    Scope scope = std::move(acc->scope);
    for (auto e : next.scope.entries) {
      for (int& p : e.pos) p += nl;
      scope.entries.push_back(std::move(e));
    }
    for (auto m : next.scope.merged) {
      m.left_pos += nl;
      if (m.right_pos >= 0) m.right_pos += nl;
      scope.merged.push_back(m);
    }
    FromResult joined;
    joined.op =
        MakeJoin(JoinKind::kInner, std::move(acc->op), std::move(next.op), sqlb::Bool(true));
    joined.scope = std::move(scope);
    acc = std::move(joined);
  }
  return std::move(*acc);
}

// --- WHERE -----------------------------------------------------------------------

absl::StatusOr<Node> Lowerer::ExtractScalars(const Node& expr, std::unique_ptr<Op>* op,
                                             const CteEnv* env) {
  Node out = expr;
  absl::Status status;
  auto fn = [&](Node* n) -> absl::StatusOr<bool> {
    if (!n->has_sub_link()) return true;
    const auto& sl = n->sub_link();
    if (sl.sub_link_type() != pg_query::EXPR_SUBLINK &&
        sl.sub_link_type() != pg_query::ARRAY_SUBLINK) {
      return true;  // Bind() reports it
    }
    if (!sl.subselect().has_select_stmt()) return Unsupported("subquery kind", sl.location());
    const bool array = sl.sub_link_type() == pg_query::ARRAY_SUBLINK;
    auto sub = LowerSelect(sl.subselect().select_stmt(), env, /*keep_order=*/array);
    if (!sub.ok()) {
      if (absl::IsInvalidArgument(sub.status()) &&
          sub.status().message().find("outer query") != std::string::npos) {
        return Unsupported("correlated scalar subquery", sl.location());
      }
      return sub.status();
    }
    if ((*sub)->VisibleCount() != 1) {
      return absl::InvalidArgumentError("subquery must return only one column");
    }
    auto scalar = NewOp(OpKind::kScalar);
    scalar->array = array;
    scalar->location = sl.location();
    OpColumn c;
    c.user_name = "?column?";
    scalar->columns.push_back(c);
    scalar->key = std::vector<int>{};
    scalar->inputs.push_back(std::move(*sub));
    int pos = (*op)->columns.size();
    *op = MakeJoin(JoinKind::kInner, std::move(*op), std::move(scalar), sqlb::Bool(true));
    *n = sqlb::Col(kScalarPlaceholder, std::to_string(pos));
    return false;
  };
  TRICKLE_ASSIGN_OR_RETURN(bool descend, fn(&out));
  if (descend) TRICKLE_RETURN_IF_ERROR(WalkNodes(&out, fn));
  return out;
}

void SplitConjuncts(const Node& n, std::vector<Node>* out) {
  if (n.has_bool_expr() && n.bool_expr().boolop() == pg_query::AND_EXPR) {
    for (const auto& a : n.bool_expr().args()) SplitConjuncts(a, out);
  } else {
    out->push_back(n);
  }
}

absl::StatusOr<std::unique_ptr<Op>> Lowerer::LowerExistsInner(const pg_query::SelectStmt& sub,
                                                              const CteEnv* env, FromResult* outer,
                                                              Node* condition) {
  if (sub.op() != pg_query::SETOP_NONE) return Unsupported("set operation inside EXISTS", -1);
  if (sub.group_clause_size() > 0 || sub.has_having_clause()) {
    return Unsupported("GROUP BY / HAVING inside EXISTS", -1);
  }
  if (sub.has_limit_offset()) return Unsupported("OFFSET inside EXISTS", -1);
  if (sub.has_limit_count()) {
    // EXISTS (... LIMIT n) with n >= 1 is EXISTS (...).
    const Node& lc = sub.limit_count();
    if (!(lc.has_a_const() && lc.a_const().has_ival() && lc.a_const().ival().ival() >= 1)) {
      return Unsupported("LIMIT inside EXISTS", -1);
    }
  }
  if (sub.window_clause_size() > 0) return Unsupported("WINDOW inside EXISTS", -1);
  const CteEnv* inner_env = env;
  if (sub.has_with_clause()) {
    if (sub.with_clause().recursive())
      return Unsupported("recursive WITH", sub.with_clause().location());
    for (const auto& c : sub.with_clause().ctes()) {
      envs_.push_back(CteEnv{inner_env, &c.common_table_expr(), inner_env});
      inner_env = &envs_.back();
    }
  }
  for (const auto& t : sub.target_list()) {
    Node v = t.res_target().val();
    bool agg = false;
    (void)WalkNodes(&v, [&](Node* n) -> absl::StatusOr<bool> {
      if (n->has_sub_link()) return false;
      if (n->has_func_call() && IsAggregate(n->func_call())) agg = true;
      return true;
    });
    if (v.has_sub_link()) agg = false;  // only the subquery's own aggregates were seen
    if (v.has_func_call() && IsAggregate(v.func_call())) agg = true;
    if (agg) return Unsupported("aggregate in an EXISTS subquery's select list", -1);
  }
  TRICKLE_ASSIGN_OR_RETURN(FromResult inner, LowerFromList(sub.from_clause(), inner_env));
  std::vector<Node> conjuncts;
  if (sub.has_where_clause()) SplitConjuncts(sub.where_clause(), &conjuncts);
  std::vector<Node> correlated;
  std::vector<Node> local;
  RefFn outer_ref = [](int pos) { return sqlb::Col("l", ColName(pos)); };
  RefFn inner_r = [](int pos) { return sqlb::Col("r", ColName(pos)); };
  for (const auto& c : conjuncts) {
    // Nested EXISTS / IN over the inner relation only.
    TRICKLE_ASSIGN_OR_RETURN(bool handled, LowerSublinkConjunct(c, &inner, inner_env));
    if (handled) continue;
    bool used_inner = false, used_outer = false;
    TRICKLE_ASSIGN_OR_RETURN(Node probe, Bind(c, inner.scope, inner_r, &outer->scope, &outer_ref,
                                              &used_inner, &used_outer));
    if (used_outer) {
      correlated.push_back(std::move(probe));
    } else {
      TRICKLE_ASSIGN_OR_RETURN(Node e, ExtractScalars(c, &inner.op, inner_env));
      TRICKLE_ASSIGN_OR_RETURN(Node bound, Bind(e, inner.scope, RefI));
      local.push_back(std::move(bound));
    }
  }
  std::unique_ptr<Op> right = std::move(inner.op);
  if (!local.empty()) right = MakeFilter(std::move(right), sqlb::And(std::move(local)));
  *condition = correlated.empty() ? sqlb::Bool(true) : sqlb::And(std::move(correlated));
  return right;
}

absl::StatusOr<bool> Lowerer::LowerSublinkConjunct(const Node& conjunct, FromResult* from,
                                                   const CteEnv* env) {
  bool negated = false;
  const Node* n = &conjunct;
  if (n->has_bool_expr() && n->bool_expr().boolop() == pg_query::NOT_EXPR &&
      n->bool_expr().args_size() == 1 && n->bool_expr().args(0).has_sub_link()) {
    negated = true;
    n = &n->bool_expr().args(0);
  }
  if (!n->has_sub_link()) return false;
  const auto& sl = n->sub_link();
  if (!sl.subselect().has_select_stmt()) return Unsupported("subquery kind", sl.location());
  const auto& sub = sl.subselect().select_stmt();
  if (sl.sub_link_type() == pg_query::EXISTS_SUBLINK) {
    Node condition;
    auto inner = LowerExistsInner(sub, env, from, &condition);
    if (!inner.ok() && absl::IsInvalidArgument(inner.status()) &&
        inner.status().message().find("outer query") != std::string::npos) {
      // A reference two or more query levels out (or a misspelled column:
      // PostgreSQL decides when the query runs in FULL mode).
      return Unsupported("reference to an outer query from a nested subquery", sl.location());
    }
    if (!inner.ok()) return inner.status();
    auto right = std::move(*inner);
    from->op = MakeJoin(negated ? JoinKind::kAnti : JoinKind::kSemi, std::move(from->op),
                        std::move(right), std::move(condition));
    from->op->location = sl.location();
    return true;
  }
  if (sl.sub_link_type() == pg_query::ANY_SUBLINK || sl.sub_link_type() == pg_query::ALL_SUBLINK) {
    std::string op = "=";
    if (sl.oper_name_size() > 0) op = sl.oper_name(sl.oper_name_size() - 1).string().sval();
    if (sl.oper_name_size() > 1)
      return Unsupported("schema-qualified operator in ANY/ALL", sl.location());
    bool all = sl.sub_link_type() == pg_query::ALL_SUBLINK;
    // x <> ALL (q) is x NOT IN (q); NOT (x = ANY (q)) likewise.
    bool not_in = (all && op == "<>" && !negated) || (!all && op == "=" && negated);
    if (all && !not_in) return Unsupported("ALL (subquery)", sl.location());
    if (negated && !not_in) return Unsupported("NOT (... ANY (subquery))", sl.location());
    auto right = LowerSelect(sub, env, false);
    if (!right.ok()) {
      if (absl::IsInvalidArgument(right.status()) &&
          right.status().message().find("outer query") != std::string::npos) {
        return Unsupported("correlated IN subquery", sl.location());
      }
      return right.status();
    }
    std::vector<Node> tests;
    if (sl.testexpr().has_row_expr()) {
      for (const auto& a : sl.testexpr().row_expr().args()) tests.push_back(a);
    } else {
      tests.push_back(sl.testexpr());
    }
    if ((*right)->VisibleCount() != static_cast<int>(tests.size())) {
      return absl::InvalidArgumentError(absl::StrCat("subquery has ", (*right)->VisibleCount(),
                                                     " columns but the IN test has ", tests.size(),
                                                     " (position ", sl.location() + 1, ")"));
    }
    RefFn left_ref = [](int pos) { return sqlb::Col("l", ColName(pos)); };
    std::vector<int> rvis;
    for (size_t k = 0; k < (*right)->columns.size(); ++k) {
      if (!(*right)->columns[k].hidden) rvis.push_back(k);
    }
    if (not_in) {
      if (tests.size() != 1) return Unsupported("multi-column NOT IN", sl.location());
      TRICKLE_ASSIGN_OR_RETURN(Node t, ExtractScalars(tests[0], &from->op, env));
      TRICKLE_ASSIGN_OR_RETURN(Node bound, Bind(t, from->scope, left_ref));
      if (rvis[0] != 0)
        return Unsupported("NOT IN over a subquery with hidden columns", sl.location());
      from->op =
          MakeJoin(JoinKind::kNotIn, std::move(from->op), std::move(*right), std::move(bound));
      from->op->location = sl.location();
      return true;
    }
    std::vector<Node> conds;
    for (size_t k = 0; k < tests.size(); ++k) {
      TRICKLE_ASSIGN_OR_RETURN(Node t, ExtractScalars(tests[k], &from->op, env));
      TRICKLE_ASSIGN_OR_RETURN(Node bound, Bind(t, from->scope, left_ref));
      conds.push_back(sqlb::Op(op, std::move(bound), sqlb::Col("r", ColName(rvis[k]))));
    }
    from->op = MakeJoin(JoinKind::kSemi, std::move(from->op), std::move(*right),
                        sqlb::And(std::move(conds)));
    from->op->location = sl.location();
    return true;
  }
  return false;
}

absl::Status Lowerer::LowerWhere(const Node& where, FromResult* from, const CteEnv* env) {
  std::vector<Node> conjuncts;
  SplitConjuncts(where, &conjuncts);
  std::vector<Node> bound;  // over the FROM output: stays valid as joins are added above
  std::vector<Node> with_subqueries;
  // Plain conjuncts first, while the FROM tree is still only joins: those
  // comparing two sides of an inner join become its condition.
  for (const auto& c : conjuncts) {
    bool has_sublink = c.has_sub_link();
    Node copy = c;
    (void)WalkNodes(&copy, [&](Node* n) -> absl::StatusOr<bool> {
      has_sublink |= n->has_sub_link();
      return !has_sublink;
    });
    if (has_sublink) {
      with_subqueries.push_back(c);
      continue;
    }
    TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(c, from->scope, RefI));
    if (!AttachToJoin(from->op.get(), b)) bound.push_back(std::move(b));
  }
  for (const auto& c : with_subqueries) {
    TRICKLE_ASSIGN_OR_RETURN(bool handled, LowerSublinkConjunct(c, from, env));
    if (handled) continue;
    TRICKLE_ASSIGN_OR_RETURN(Node e, ExtractScalars(c, &from->op, env));
    TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(e, from->scope, RefI));
    bound.push_back(std::move(b));
  }
  if (!bound.empty()) from->op = MakeFilter(std::move(from->op), sqlb::And(std::move(bound)));
  return absl::OkStatus();
}

// --- select list -------------------------------------------------------------------

absl::StatusOr<std::vector<std::pair<Node, std::string>>> Lowerer::ExpandTargets(
    const pg_query::SelectStmt& stmt, const Scope& scope) {
  std::vector<std::pair<Node, std::string>> out;
  for (const auto& t : stmt.target_list()) {
    const auto& rt = t.res_target();
    if (rt.indirection_size() > 0) return Unsupported("select-list indirection", rt.location());
    const Node& v = rt.val();
    if (v.has_column_ref() && v.column_ref().fields_size() > 0 &&
        v.column_ref().fields(v.column_ref().fields_size() - 1).has_a_star()) {
      const auto& f = v.column_ref().fields();
      if (f.size() == 1) {
        // *: merged USING columns first, then every entry's other columns.
        std::set<int> merged_pos;
        for (const auto& m : scope.merged) {
          Node ref = sqlb::Col(m.name);
          out.emplace_back(ref, m.name);
          merged_pos.insert(m.left_pos);
          if (m.right_pos >= 0) merged_pos.insert(m.right_pos);
        }
        for (const auto& e : scope.entries) {
          for (size_t k = 0; k < e.cols.size(); ++k) {
            if (merged_pos.count(e.pos[k])) continue;
            Node ref;
            auto* cr = ref.mutable_column_ref();
            if (!e.name.empty()) *cr->add_fields() = sqlb::Col(e.name).column_ref().fields(0);
            *cr->add_fields() = sqlb::Col(e.cols[k]).column_ref().fields(0);
            out.emplace_back(ref, e.cols[k]);
          }
        }
        if (scope.entries.empty()) {
          return absl::InvalidArgumentError("SELECT * with no tables specified");
        }
      } else if (f.size() == 2) {
        const std::string& rel = f[0].string().sval();
        bool found = false;
        for (const auto& e : scope.entries) {
          if (e.name != rel) continue;
          found = true;
          for (size_t k = 0; k < e.cols.size(); ++k) {
            out.emplace_back(sqlb::Col(rel, e.cols[k]), e.cols[k]);
          }
        }
        if (!found) {
          return absl::InvalidArgumentError(
              absl::StrCat("missing FROM-clause entry for table \"", rel, "\""));
        }
      } else {
        return Unsupported("schema-qualified .*", v.column_ref().location());
      }
      continue;
    }
    std::string name = rt.name().empty() ? FigureColname(v) : rt.name();
    out.emplace_back(v, name);
  }
  return out;
}

// --- aggregate blocks --------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Op>> Lowerer::LowerAggregateBlock(
    const pg_query::SelectStmt& stmt, FromResult from,
    std::vector<std::pair<Node, std::string>> targets, const CteEnv* env) {
  // 1. GROUP BY expressions, bound over the core (FROM + WHERE).
  std::vector<Node> group_exprs;
  std::vector<std::string> group_keys;  // canonical keys
  auto add_group = [&](Node bound) {
    std::string key = CanonicalKey(bound);
    for (size_t j = 0; j < group_keys.size(); ++j) {
      if (group_keys[j] == key) return static_cast<int>(j);
    }
    group_keys.push_back(key);
    group_exprs.push_back(std::move(bound));
    return static_cast<int>(group_exprs.size() - 1);
  };
  for (const auto& g : stmt.group_clause()) {
    if (g.has_grouping_set())
      return Unsupported("GROUPING SETS / ROLLUP / CUBE", g.grouping_set().location());
    Node expr = g;
    if (g.has_a_const() && g.a_const().has_ival()) {
      int k = g.a_const().ival().ival();
      if (k < 1 || k > static_cast<int>(targets.size())) {
        return absl::InvalidArgumentError(
            absl::StrCat("GROUP BY position ", k, " is not in select list"));
      }
      expr = targets[k - 1].first;
    } else if (g.has_column_ref() && g.column_ref().fields_size() == 1 &&
               g.column_ref().fields(0).has_string()) {
      // SQL92: a bare name that is not an input column may name an output column.
      bool found = false;
      TRICKLE_ASSIGN_OR_RETURN(Resolved r, Resolve(g.column_ref(), from.scope, &found));
      (void)r;
      if (!found) {
        for (const auto& [e, name] : targets) {
          if (name == g.column_ref().fields(0).string().sval()) {
            expr = e;
            break;
          }
        }
      }
    }
    TRICKLE_ASSIGN_OR_RETURN(Node e, ExtractScalars(expr, &from.op, env));
    TRICKLE_ASSIGN_OR_RETURN(Node bound, Bind(e, from.scope, RefI));
    add_group(std::move(bound));
  }

  // 2. Aggregates in the select list and HAVING, and bare column references
  // outside aggregates that match no GROUP BY expression (PostgreSQL accepts
  // those when they are functionally dependent on a grouped primary key, so
  // grouping by them too changes nothing).
  std::vector<AggCall> aggs;
  std::vector<std::string> agg_keys;         // canonical keys of the bound calls
  std::map<std::string, int> agg_by_source;  // canonical key of the call as written -> index
  // The bound form of a pure subtree (no aggregates, no subqueries), or nullopt.
  auto try_bind_pure = [&](const Node& n) -> std::optional<Node> {
    bool impure = false;
    Node copy = n;
    auto check = [&](Node* x) -> absl::StatusOr<bool> {
      if (x->has_sub_link()) impure = true;
      if (x->has_func_call() && IsAggregate(x->func_call())) impure = true;
      return !impure;
    };
    (void)check(&copy);
    if (!impure) (void)WalkNodes(&copy, check);
    if (impure) return std::nullopt;
    auto bound = Bind(n, from.scope, RefI);
    if (!bound.ok()) return std::nullopt;
    return *bound;
  };
  auto group_index = [&](const Node& bound) {
    std::string key = CanonicalKey(bound);
    for (size_t j = 0; j < group_keys.size(); ++j) {
      if (group_keys[j] == key) return static_cast<int>(j);
    }
    return -1;
  };
  // Pass 1: register aggregates and functionally dependent columns.
  std::function<absl::Status(const Node&)> collect = [&](const Node& n) -> absl::Status {
    if (auto pure = try_bind_pure(n); pure.has_value()) {
      if (group_index(*pure) >= 0) return absl::OkStatus();
      if (n.has_column_ref()) {
        add_group(*pure);
        return absl::OkStatus();
      }
    }
    if (n.has_func_call() && IsAggregate(n.func_call())) {
      const auto& call = n.func_call();
      TRICKLE_RETURN_IF_ERROR(CheckFunction(call, n, /*agg_allowed=*/true));
      std::string source_key = CanonicalKey(n);
      if (agg_by_source.count(source_key)) return absl::OkStatus();
      // Arguments, FILTER and ORDER BY are evaluated per input row.
      Node bound_call = n;
      auto* fc = bound_call.mutable_func_call();
      for (auto& a : *fc->mutable_args()) {
        bool nested = false;
        // A subquery's aggregates are its own.
        if (!a.has_sub_link()) {
          (void)WalkNodes(&a, [&](Node* x) -> absl::StatusOr<bool> {
            if (x->has_sub_link()) return false;
            if (x->has_func_call() && IsAggregate(x->func_call())) nested = true;
            return true;
          });
        }
        if (nested || (a.has_func_call() && IsAggregate(a.func_call()))) {
          return absl::InvalidArgumentError("aggregate function calls cannot be nested");
        }
        TRICKLE_ASSIGN_OR_RETURN(Node e, ExtractScalars(a, &from.op, env));
        TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(e, from.scope, RefI));
        a = std::move(b);
      }
      if (fc->has_agg_filter()) {
        TRICKLE_ASSIGN_OR_RETURN(Node e, ExtractScalars(fc->agg_filter(), &from.op, env));
        TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(e, from.scope, RefI));
        *fc->mutable_agg_filter() = std::move(b);
      }
      for (auto& o : *fc->mutable_agg_order()) {
        TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(o.sort_by().node(), from.scope, RefI));
        *o.mutable_sort_by()->mutable_node() = std::move(b);
      }
      std::string key = CanonicalKey(bound_call);
      for (size_t k = 0; k < agg_keys.size(); ++k) {
        if (agg_keys[k] == key) {
          agg_by_source[source_key] = k;
          return absl::OkStatus();
        }
      }
      AggCall a;
      a.name = FunctionName(call);
      a.call = bound_call;
      a.star = call.agg_star();
      a.distinct = call.agg_distinct();
      a.ordered = call.agg_order_size() > 0 || call.agg_within_group();
      a.has_filter = call.has_agg_filter();
      if (fc->args_size() == 1) a.arg_type = InferType(fc->args(0), from.op->columns);
      agg_keys.push_back(key);
      agg_by_source[source_key] = aggs.size();
      aggs.push_back(std::move(a));
      return absl::OkStatus();
    }
    if (n.has_sub_link()) return absl::OkStatus();  // a post-aggregate scalar: pass 2
    if (n.has_column_ref()) {
      TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(n, from.scope, RefI));
      add_group(std::move(b));
      return absl::OkStatus();
    }
    if (n.has_func_call()) TRICKLE_RETURN_IF_ERROR(CheckFunction(n.func_call(), n, false));
    Node copy = n;
    absl::Status st;
    (void)WalkNodes(&copy, [&](Node* child) -> absl::StatusOr<bool> {
      if (st.ok()) st = collect(*child);
      return false;
    });
    return st;
  };
  for (const auto& [e, name] : targets) TRICKLE_RETURN_IF_ERROR(collect(e));
  if (stmt.has_having_clause()) TRICKLE_RETURN_IF_ERROR(collect(stmt.having_clause()));

  // 3. The Aggregate operator: group columns, then one column per aggregate.
  auto agg = NewOp(OpKind::kAggregate);
  const Op& in = *from.op;
  for (const auto& ge : group_exprs) {
    OpColumn c;
    int pos;
    if (IsPlainRef(ge, "i", &pos)) {
      c = in.columns[pos];
      c.hidden = false;
    } else {
      c.type = InferType(ge, in.columns);
    }
    c.user_name = "";
    agg->columns.push_back(c);
  }
  for (const auto& a : aggs) {
    OpColumn c;
    c.user_name = a.name;
    c.not_null = a.name == "count";
    agg->columns.push_back(c);
  }
  std::vector<int> key;
  for (size_t j = 0; j < group_exprs.size(); ++j) key.push_back(j);
  agg->key = key;
  agg->group_exprs = group_exprs;
  agg->aggs = aggs;
  agg->inputs.push_back(std::move(from.op));
  std::unique_ptr<Op> post = std::move(agg);
  const int g = group_exprs.size();

  // 4. Pass 2: HAVING and the select list over the aggregate's output.
  // Group expressions and aggregates become placeholders for their output
  // positions; uncorrelated scalar subqueries join above the aggregate.
  std::function<absl::StatusOr<Node>(const Node&)> rewrite =
      [&](const Node& n) -> absl::StatusOr<Node> {
    if (auto pure = try_bind_pure(n); pure.has_value()) {
      int j = group_index(*pure);
      if (j >= 0) return sqlb::Col(kScalarPlaceholder, std::to_string(j));
    }
    if (n.has_func_call() && IsAggregate(n.func_call())) {
      auto it = agg_by_source.find(CanonicalKey(n));
      if (it == agg_by_source.end()) return absl::InternalError("aggregate not registered");
      return sqlb::Col(kScalarPlaceholder, std::to_string(g + it->second));
    }
    if (n.has_sub_link()) {
      const auto& sl = n.sub_link();
      if (sl.sub_link_type() == pg_query::EXPR_SUBLINK ||
          sl.sub_link_type() == pg_query::ARRAY_SUBLINK) {
        return ExtractScalars(n, &post, env);
      }
      return Unsupported("subquery inside an expression", sl.location());
    }
    if (n.has_column_ref()) {
      TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(n, from.scope, RefI));
      int j = group_index(b);
      if (j < 0) return absl::InternalError("ungrouped column after pass 1");
      return sqlb::Col(kScalarPlaceholder, std::to_string(j));
    }
    Node copy = n;
    absl::Status st;
    (void)WalkNodes(&copy, [&](Node* child) -> absl::StatusOr<bool> {
      if (!st.ok()) return false;
      auto r = rewrite(*child);
      if (!r.ok()) {
        st = r.status();
        return false;
      }
      *child = std::move(*r);
      return false;
    });
    TRICKLE_RETURN_IF_ERROR(st);
    return copy;
  };
  // Placeholders -> i.c<k> over `post`; everything else was checked in pass 1.
  Scope empty_scope;
  auto finish = [&](const Node& n) { return Bind(n, empty_scope, RefI); };

  if (stmt.has_having_clause()) {
    TRICKLE_ASSIGN_OR_RETURN(Node h, rewrite(stmt.having_clause()));
    TRICKLE_ASSIGN_OR_RETURN(Node b, finish(h));
    post = MakeFilter(std::move(post), std::move(b));
  }
  std::vector<Node> exprs;
  std::vector<std::string> names;
  for (const auto& [e, name] : targets) {
    TRICKLE_ASSIGN_OR_RETURN(Node r, rewrite(e));
    TRICKLE_ASSIGN_OR_RETURN(Node b, finish(r));
    exprs.push_back(std::move(b));
    names.push_back(name);
  }
  return MakeProject(std::move(post), std::move(exprs), std::move(names));
}

// --- blocks ----------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Op>> Lowerer::LowerSetOp(const pg_query::SelectStmt& stmt,
                                                        const CteEnv* env) {
  TRICKLE_ASSIGN_OR_RETURN(auto left, LowerSelect(stmt.larg(), env, false));
  TRICKLE_ASSIGN_OR_RETURN(auto right, LowerSelect(stmt.rarg(), env, false));
  if (left->VisibleCount() != right->VisibleCount()) {
    return absl::InvalidArgumentError(
        "each side of a set operation must have the same number "
        "of columns");
  }
  SetOpKind kind;
  switch (stmt.op()) {
    case pg_query::SETOP_UNION:
      kind = SetOpKind::kUnionAll;
      break;
    case pg_query::SETOP_INTERSECT:
      kind = SetOpKind::kIntersect;
      break;
    case pg_query::SETOP_EXCEPT:
      kind = SetOpKind::kExcept;
      break;
    default:
      return Unsupported("set operation", -1);
  }
  auto op = NewOp(OpKind::kSetOp);
  op->setop = kind;
  op->all = stmt.all() || kind == SetOpKind::kUnionAll;
  std::vector<int> lvis, rvis;
  for (size_t k = 0; k < left->columns.size(); ++k) {
    if (!left->columns[k].hidden) lvis.push_back(k);
  }
  for (size_t k = 0; k < right->columns.size(); ++k) {
    if (!right->columns[k].hidden) rvis.push_back(k);
  }
  for (size_t k = 0; k < lvis.size(); ++k) {
    OpColumn c = left->columns[lvis[k]];
    const OpColumn& rc = right->columns[rvis[k]];
    if (kind == SetOpKind::kUnionAll) c.not_null = c.not_null && rc.not_null;
    if (kind == SetOpKind::kIntersect) c.not_null = c.not_null || rc.not_null;
    if (c.type != rc.type) c.type = "";
    op->columns.push_back(c);
  }
  if (kind == SetOpKind::kUnionAll && left->key.has_value() && right->key.has_value()) {
    // Identity of a UNION ALL row: which branch, plus that branch's key.
    // Columns: visible..., __pgt_branch, left key..., right key...
    std::vector<int> key;
    OpColumn branch;
    branch.hidden = true;
    branch.not_null = true;
    branch.type = "integer";
    key.push_back(op->columns.size());
    op->columns.push_back(branch);
    for (int k : *left->key) {
      OpColumn c = left->columns[k];
      c.hidden = true;
      c.user_name = "";
      c.not_null = false;
      key.push_back(op->columns.size());
      op->columns.push_back(c);
    }
    for (int k : *right->key) {
      OpColumn c = right->columns[k];
      c.hidden = true;
      c.user_name = "";
      c.not_null = false;
      key.push_back(op->columns.size());
      op->columns.push_back(c);
    }
    op->key = key;
  }
  op->inputs.push_back(std::move(left));
  op->inputs.push_back(std::move(right));
  if (stmt.op() == pg_query::SETOP_UNION && !stmt.all()) return MakeDistinct(std::move(op));
  if (kind != SetOpKind::kUnionAll && !op->all) {
    std::vector<int> key;
    for (size_t k = 0; k < op->columns.size(); ++k) key.push_back(k);
    op->key = key;
  }
  return op;
}

absl::StatusOr<std::unique_ptr<Op>> Lowerer::LowerSelect(const pg_query::SelectStmt& stmt,
                                                         const CteEnv* env, bool keep_order) {
  if (stmt.has_into_clause()) return Unsupported("SELECT INTO", -1);
  if (stmt.locking_clause_size() > 0) return Unsupported("FOR UPDATE / FOR SHARE", -1);
  if (stmt.has_limit_count() || stmt.has_limit_offset()) {
    return Unsupported("ORDER BY ... LIMIT / OFFSET (top-k)",
                       Location(stmt.has_limit_count() ? stmt.limit_count() : stmt.limit_offset()));
  }
  if (stmt.window_clause_size() > 0) return Unsupported("WINDOW clause", -1);
  const CteEnv* inner_env = env;
  if (stmt.has_with_clause()) {
    if (stmt.with_clause().recursive()) {
      return Unsupported("recursive WITH", stmt.with_clause().location());
    }
    for (const auto& c : stmt.with_clause().ctes()) {
      envs_.push_back(CteEnv{inner_env, &c.common_table_expr(), inner_env});
      inner_env = &envs_.back();
    }
  }
  if (stmt.op() != pg_query::SETOP_NONE) {
    TRICKLE_ASSIGN_OR_RETURN(auto op, LowerSetOp(stmt, inner_env));
    if (keep_order) TRICKLE_RETURN_IF_ERROR(OrderOverOutput(stmt, op.get()));
    return op;
  }
  if (keep_order && stmt.sort_clause_size() > 0 && stmt.values_lists_size() > 0) {
    return Unsupported("ORDER BY over VALUES in an ARRAY subquery", -1);
  }
  if (stmt.values_lists_size() > 0) {
    // VALUES (...), (...): a constant relation. PostgreSQL names its columns column1...
    auto op = NewOp(OpKind::kValues);
    const int n = stmt.values_lists(0).list().items_size();
    for (const auto& row : stmt.values_lists()) {
      Node r = row;
      TRICKLE_RETURN_IF_ERROR(WalkNodes(&r, [&](Node* x) -> absl::StatusOr<bool> {
        if (x->has_column_ref()) return absl::InvalidArgumentError("column reference in VALUES");
        if (x->has_sub_link()) return Unsupported("subquery in VALUES", -1);
        if (x->has_func_call()) TRICKLE_RETURN_IF_ERROR(CheckFunction(x->func_call(), *x, false));
        if (x->has_sqlvalue_function()) return Unsupported("stable SQL value function", -1);
        return true;
      }));
    }
    Node values;
    *values.mutable_select_stmt() = stmt;
    values.mutable_select_stmt()->clear_with_clause();
    sqlb::Select s;
    std::vector<std::string> cols;
    for (int k = 0; k < n; ++k) {
      cols.push_back(ColName(k));
      s.targets.push_back(sqlb::Target(sqlb::Col("v", ColName(k)), ColName(k)));
      OpColumn c;
      c.user_name = absl::StrCat("column", k + 1);
      op->columns.push_back(c);
    }
    s.from.push_back(sqlb::Subquery(values, "v", cols));
    op->values = s.Build();
    return op;
  }
  for (const auto& d : stmt.distinct_clause()) {
    if (d.node_case() != Node::NODE_NOT_SET) {
      return Unsupported("DISTINCT ON", Location(d));
    }
  }
  TRICKLE_ASSIGN_OR_RETURN(FromResult from, LowerFromList(stmt.from_clause(), inner_env));
  if (stmt.has_where_clause()) {
    TRICKLE_RETURN_IF_ERROR(LowerWhere(stmt.where_clause(), &from, inner_env));
  }
  TRICKLE_ASSIGN_OR_RETURN(auto targets, ExpandTargets(stmt, from.scope));
  const size_t visible_targets = targets.size();
  // ORDER BY, where it is kept: each item is an output column (a position, or
  // an output name as SQL92 allows) or an expression over the input, which
  // becomes an extra (hidden) column.
  std::vector<int> sort_targets;
  if (keep_order) {
    for (const auto& item : stmt.sort_clause()) {
      TRICKLE_ASSIGN_OR_RETURN(int index, SortTarget(item.sort_by(), visible_targets, &targets));
      sort_targets.push_back(index);
    }
  }
  // Window functions anywhere in the select list make the block unsupported.
  for (const auto& [e, name] : targets) {
    Node copy = e;
    auto check = [&](Node* x) -> absl::StatusOr<bool> {
      if (x->has_sub_link()) return false;
      if (x->has_func_call() && x->func_call().has_over()) {
        return Unsupported(absl::StrCat("window function ", FunctionName(x->func_call()), "()"),
                           x->func_call().location());
      }
      return true;
    };
    TRICKLE_ASSIGN_OR_RETURN(bool d, check(&copy));
    if (d) TRICKLE_RETURN_IF_ERROR(WalkNodes(&copy, check));
  }
  bool aggregate = stmt.group_clause_size() > 0 || stmt.has_having_clause();
  for (const auto& [e, name] : targets) {
    Node copy = e;
    auto check = [&](Node* x) -> absl::StatusOr<bool> {
      if (x->has_sub_link()) return false;
      if (x->has_func_call() && IsAggregate(x->func_call())) aggregate = true;
      return true;
    };
    // A subquery's own aggregates (even at the root) do not make this
    // block an aggregate.
    auto descend = check(&copy);
    if (descend.ok() && *descend) (void)WalkNodes(&copy, check);
  }
  std::unique_ptr<Op> op;
  if (aggregate) {
    TRICKLE_ASSIGN_OR_RETURN(op, LowerAggregateBlock(stmt, std::move(from), targets, inner_env));
  } else {
    std::vector<Node> exprs;
    std::vector<std::string> names;
    for (const auto& [e, name] : targets) {
      TRICKLE_ASSIGN_OR_RETURN(Node x, ExtractScalars(e, &from.op, inner_env));
      TRICKLE_ASSIGN_OR_RETURN(Node b, Bind(x, from.scope, RefI));
      exprs.push_back(std::move(b));
      names.push_back(name);
    }
    op = MakeProject(std::move(from.op), std::move(exprs), std::move(names));
  }
  // The extra ORDER BY columns are hidden; one equal to a visible column is
  // that column.
  std::vector<int> sort_columns;
  for (size_t k = visible_targets; k < targets.size(); ++k) {
    op->columns[k].hidden = true;
    op->columns[k].user_name = "";
  }
  for (int t : sort_targets) {
    int column = t;
    for (size_t k = 0; column >= static_cast<int>(visible_targets) && k < visible_targets; ++k) {
      if (CanonicalKey(op->exprs[k]) == CanonicalKey(op->exprs[t])) column = k;
    }
    sort_columns.push_back(column);
  }
  if (stmt.distinct_clause_size() > 0) {
    for (int c : sort_columns) {
      if (c >= static_cast<int>(visible_targets)) {
        return absl::InvalidArgumentError(
            "for SELECT DISTINCT, ORDER BY expressions must appear in select list");
      }
    }
    op = MakeDistinct(std::move(op));  // its column k is the k-th visible one
  }
  // ORDER BY where it is not observable does not change a table's contents:
  // ignored.
  for (size_t j = 0; j < sort_columns.size(); ++j) {
    op->order.push_back(OrderItem(stmt.sort_clause(j).sort_by(), sort_columns[j]));
  }
  return op;
}

absl::StatusOr<int> Lowerer::SortTarget(const pg_query::SortBy& item, size_t visible,
                                        std::vector<std::pair<Node, std::string>>* targets) {
  const Node& e = item.node();
  if (e.has_a_const() && e.a_const().has_ival()) {
    int k = e.a_const().ival().ival();
    if (k < 1 || k > static_cast<int>(visible)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ORDER BY position ", k, " is not in select list"));
    }
    return k - 1;
  }
  if (e.has_column_ref() && e.column_ref().fields_size() == 1 &&
      e.column_ref().fields(0).has_string()) {
    const std::string& name = e.column_ref().fields(0).string().sval();
    int found = -1;
    for (size_t k = 0; k < visible; ++k) {
      if ((*targets)[k].second != name) continue;
      if (found >= 0 && CanonicalKey((*targets)[k].first) != CanonicalKey((*targets)[found].first)) {
        return absl::InvalidArgumentError(absl::StrCat("ORDER BY \"", name, "\" is ambiguous"));
      }
      if (found < 0) found = k;
    }
    if (found >= 0) return found;
  }
  targets->emplace_back(e, "");
  return static_cast<int>(targets->size()) - 1;
}

absl::Status Lowerer::OrderOverOutput(const pg_query::SelectStmt& stmt, Op* op) {
  std::vector<int> vis;
  for (size_t k = 0; k < op->columns.size(); ++k) {
    if (!op->columns[k].hidden) vis.push_back(k);
  }
  for (const auto& item : stmt.sort_clause()) {
    const auto& sb = item.sort_by();
    const Node& e = sb.node();
    int column = -1;
    if (e.has_a_const() && e.a_const().has_ival()) {
      int k = e.a_const().ival().ival();
      if (k < 1 || k > static_cast<int>(vis.size())) {
        return absl::InvalidArgumentError(
            absl::StrCat("ORDER BY position ", k, " is not in select list"));
      }
      column = vis[k - 1];
    } else if (e.has_column_ref() && e.column_ref().fields_size() == 1 &&
               e.column_ref().fields(0).has_string()) {
      for (int k : vis) {
        if (op->columns[k].user_name == e.column_ref().fields(0).string().sval()) column = k;
      }
    }
    if (column < 0) {
      return Unsupported("ORDER BY over a set operation by anything but an output column",
                         Location(e));
    }
    op->order.push_back(OrderItem(sb, column));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FigureColname(const Node& expr) {
  std::string name;
  std::function<int(const Node&)> figure = [&](const Node& n) -> int {
    switch (n.node_case()) {
      case Node::kColumnRef: {
        const auto& f = n.column_ref().fields();
        if (!f.empty() && f[f.size() - 1].has_string()) {
          name = f[f.size() - 1].string().sval();
          return 2;
        }
        return 0;
      }
      case Node::kAIndirection: {
        const auto& ind = n.a_indirection().indirection();
        if (!ind.empty() && ind[ind.size() - 1].has_string()) {
          name = ind[ind.size() - 1].string().sval();
          return 2;
        }
        return figure(n.a_indirection().arg());
      }
      case Node::kFuncCall:
        name = n.func_call().funcname(n.func_call().funcname_size() - 1).string().sval();
        return 2;
      case Node::kAExpr:
        if (n.a_expr().kind() == pg_query::AEXPR_NULLIF) {
          name = "nullif";
          return 2;
        }
        return 0;
      case Node::kTypeCast: {
        int strength = figure(n.type_cast().arg());
        if (strength <= 1) {
          const auto& names = n.type_cast().type_name().names();
          if (!names.empty()) {
            name = names[names.size() - 1].string().sval();
            return 1;
          }
        }
        return strength;
      }
      case Node::kCollateClause:
        return figure(n.collate_clause().arg());
      case Node::kGroupingFunc:
        name = "grouping";
        return 2;
      case Node::kSubLink:
        switch (n.sub_link().sub_link_type()) {
          case pg_query::EXISTS_SUBLINK:
            name = "exists";
            return 2;
          case pg_query::ARRAY_SUBLINK:
            name = "array";
            return 2;
          case pg_query::EXPR_SUBLINK:
          case pg_query::MULTIEXPR_SUBLINK: {
            const auto& sub = n.sub_link().subselect().select_stmt();
            if (sub.target_list_size() > 0) {
              const auto& rt = sub.target_list(0).res_target();
              if (!rt.name().empty()) {
                name = rt.name();
                return 2;
              }
              return figure(rt.val());
            }
            return 0;
          }
          default:
            return 0;
        }
      case Node::kCaseExpr: {
        int strength = n.case_expr().has_defresult() ? figure(n.case_expr().defresult()) : 0;
        if (strength <= 1) {
          name = "case";
          return 1;
        }
        return strength;
      }
      case Node::kAArrayExpr:
        name = "array";
        return 2;
      case Node::kRowExpr:
        name = "row";
        return 2;
      case Node::kCoalesceExpr:
        name = "coalesce";
        return 2;
      case Node::kMinMaxExpr:
        name = n.min_max_expr().op() == pg_query::IS_GREATEST ? "greatest" : "least";
        return 2;
      case Node::kSqlvalueFunction: {
        static const std::map<int, std::string> names = {
            {pg_query::SVFOP_CURRENT_DATE, "current_date"},
            {pg_query::SVFOP_CURRENT_TIME, "current_time"},
            {pg_query::SVFOP_CURRENT_TIME_N, "current_time"},
            {pg_query::SVFOP_CURRENT_TIMESTAMP, "current_timestamp"},
            {pg_query::SVFOP_CURRENT_TIMESTAMP_N, "current_timestamp"},
            {pg_query::SVFOP_LOCALTIME, "localtime"},
            {pg_query::SVFOP_LOCALTIME_N, "localtime"},
            {pg_query::SVFOP_LOCALTIMESTAMP, "localtimestamp"},
            {pg_query::SVFOP_LOCALTIMESTAMP_N, "localtimestamp"},
            {pg_query::SVFOP_CURRENT_ROLE, "current_role"},
            {pg_query::SVFOP_CURRENT_USER, "current_user"},
            {pg_query::SVFOP_USER, "user"},
            {pg_query::SVFOP_SESSION_USER, "session_user"},
            {pg_query::SVFOP_CURRENT_CATALOG, "current_catalog"},
            {pg_query::SVFOP_CURRENT_SCHEMA, "current_schema"}};
        auto it = names.find(n.sqlvalue_function().op());
        if (it != names.end()) {
          name = it->second;
          return 2;
        }
        return 0;
      }
      case Node::kXmlExpr:
      case Node::kXmlSerialize:
        name = "xml";
        return 1;
      default:
        return 0;
    }
  };
  figure(expr);
  return name.empty() ? "?column?" : name;
}

bool IsAggregateCall(const pg_query::FuncCall& call, const CatalogFacts& facts) {
  if (call.has_over()) return false;
  if (call.agg_within_group() || call.agg_star() || call.agg_distinct() ||
      call.agg_order_size() > 0 || call.has_agg_filter()) {
    return true;
  }
  std::string name = FunctionName(call);
  auto it = facts.functions.find(name);
  if (it != facts.functions.end()) return it->second.is_aggregate;
  return BuiltinAggregates().count(name) > 0;
}

absl::StatusOr<LoweredQuery> LowerQuery(const Node& select_stmt, const CatalogFacts& facts,
                                        UnsupportedConstruct* unsupported) {
  if (!select_stmt.has_select_stmt()) {
    return absl::InvalidArgumentError("the defining query must be a SELECT statement");
  }
  Lowerer lowerer(facts, unsupported);
  TRICKLE_ASSIGN_OR_RETURN(auto root, lowerer.LowerSelect(select_stmt.select_stmt(), nullptr,
                                                          /*keep_order=*/false));
  LoweredQuery out;
  for (const auto& c : root->columns) {
    if (!c.hidden) out.output_names.push_back(c.user_name);
  }
  out.root = std::move(root);
  out.sources = lowerer.TakeSources();
  out.op_count = lowerer.op_count();
  return out;
}

}  // namespace trickle::delta
