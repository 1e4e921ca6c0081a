#include "delta/sql_builder.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "delta/pg_parser.h"

namespace trickle::delta::sqlb {
namespace {

Node StringNode(std::string_view s) {
  Node n;
  n.mutable_string()->set_sval(std::string(s));
  return n;
}

Node FuncNamed(NodeList names, NodeList args) {
  Node n;
  auto* f = n.mutable_func_call();
  for (auto& name : names) *f->add_funcname() = std::move(name);
  for (auto& a : args) *f->add_args() = std::move(a);
  f->set_funcformat(pg_query::COERCE_EXPLICIT_CALL);
  return n;
}

Node SubLinkNode(pg_query::SubLinkType type, Node select) {
  Node n;
  auto* s = n.mutable_sub_link();
  s->set_sub_link_type(type);
  *s->mutable_subselect() = std::move(select);
  return n;
}

}  // namespace

Node Col(std::string_view qualifier, std::string_view column) {
  Node n;
  auto* c = n.mutable_column_ref();
  *c->add_fields() = StringNode(qualifier);
  *c->add_fields() = StringNode(column);
  return n;
}

Node Col(std::string_view column) {
  Node n;
  *n.mutable_column_ref()->add_fields() = StringNode(column);
  return n;
}

Node Star(std::string_view qualifier) {
  Node n;
  auto* c = n.mutable_column_ref();
  *c->add_fields() = StringNode(qualifier);
  c->add_fields()->mutable_a_star();
  return n;
}

Node Int(int64_t value) {
  Node n;
  if (value >= INT32_MIN && value <= INT32_MAX) {
    n.mutable_a_const()->mutable_ival()->set_ival(static_cast<int32_t>(value));
  } else {
    n.mutable_a_const()->mutable_fval()->set_fval(std::to_string(value));
  }
  return n;
}

Node Str(std::string_view value) {
  Node n;
  n.mutable_a_const()->mutable_sval()->set_sval(std::string(value));
  return n;
}

Node Bool(bool value) {
  Node n;
  n.mutable_a_const()->mutable_boolval()->set_boolval(value);
  return n;
}

Node Null() {
  Node n;
  n.mutable_a_const()->set_isnull(true);
  return n;
}

Node Cast(Node arg, std::string_view type) {
  // Type names are parsed by PostgreSQL's grammar once and cached, so the
  // TypeName has exactly the parser's shape (e.g. bigint -> pg_catalog.int8).
  static std::mutex mu;
  static auto* cache = new std::map<std::string, pg_query::TypeName, std::less<>>();
  pg_query::TypeName type_name;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(type);
    if (it == cache->end()) {
      auto parsed = ParseSql(std::string("SELECT NULL::") + std::string(type));
      pg_query::TypeName tn;
      if (parsed.ok() && parsed->stmts_size() == 1 &&
          parsed->stmts(0).stmt().select_stmt().target_list_size() == 1 &&
          parsed->stmts(0).stmt().select_stmt().target_list(0).res_target().val().has_type_cast()) {
        tn = parsed->stmts(0)
                 .stmt()
                 .select_stmt()
                 .target_list(0)
                 .res_target()
                 .val()
                 .type_cast()
                 .type_name();
        ClearLocations(&tn);
      } else {
        // Not a type name PostgreSQL's grammar accepts (facts are external
        // input): keep it as one quoted name, so the server rejects it with
        // "type does not exist" instead of the text being spliced into SQL.
        tn.add_names()->mutable_string()->set_sval(std::string(type));
        tn.set_typemod(-1);
      }
      it = cache->emplace(std::string(type), tn).first;
    }
    type_name = it->second;
  }
  Node n;
  auto* c = n.mutable_type_cast();
  *c->mutable_arg() = std::move(arg);
  *c->mutable_type_name() = std::move(type_name);
  return n;
}

Node Op(std::string_view op, Node left, Node right) {
  Node n;
  auto* e = n.mutable_a_expr();
  e->set_kind(pg_query::AEXPR_OP);
  *e->add_name() = StringNode(op);
  *e->mutable_lexpr() = std::move(left);
  *e->mutable_rexpr() = std::move(right);
  return n;
}

Node Neg(Node arg) {
  Node n;
  auto* e = n.mutable_a_expr();
  e->set_kind(pg_query::AEXPR_OP);
  *e->add_name() = StringNode("-");
  *e->mutable_rexpr() = std::move(arg);
  return n;
}

Node Eq(Node left, Node right) { return Op("=", std::move(left), std::move(right)); }

Node IsDistinct(Node left, Node right) {
  Node n;
  auto* e = n.mutable_a_expr();
  e->set_kind(pg_query::AEXPR_DISTINCT);
  *e->add_name() = StringNode("=");
  *e->mutable_lexpr() = std::move(left);
  *e->mutable_rexpr() = std::move(right);
  return n;
}

Node IsNotDistinct(Node left, Node right) {
  Node n;
  auto* e = n.mutable_a_expr();
  e->set_kind(pg_query::AEXPR_NOT_DISTINCT);
  *e->add_name() = StringNode("=");
  *e->mutable_lexpr() = std::move(left);
  *e->mutable_rexpr() = std::move(right);
  return n;
}

static Node BoolOp(pg_query::BoolExprType type, NodeList args) {
  Node n;
  auto* b = n.mutable_bool_expr();
  b->set_boolop(type);
  for (auto& a : args) {
    // Flatten nested ANDs/ORs the way the parser does for `a AND b AND c`.
    if (a.has_bool_expr() && a.bool_expr().boolop() == type && type != pg_query::NOT_EXPR) {
      for (const auto& inner : a.bool_expr().args()) *b->add_args() = inner;
    } else {
      *b->add_args() = std::move(a);
    }
  }
  return n;
}

Node And(NodeList args) {
  if (args.empty()) return Bool(true);
  if (args.size() == 1) return std::move(args[0]);
  return BoolOp(pg_query::AND_EXPR, std::move(args));
}

Node Or(NodeList args) {
  if (args.empty()) return Bool(false);
  if (args.size() == 1) return std::move(args[0]);
  return BoolOp(pg_query::OR_EXPR, std::move(args));
}

Node Not(Node arg) {
  NodeList args;
  args.push_back(std::move(arg));
  return BoolOp(pg_query::NOT_EXPR, std::move(args));
}

Node IsNull(Node arg) {
  Node n;
  auto* t = n.mutable_null_test();
  *t->mutable_arg() = std::move(arg);
  t->set_nulltesttype(pg_query::IS_NULL);
  return n;
}

Node IsNotNull(Node arg) {
  Node n;
  auto* t = n.mutable_null_test();
  *t->mutable_arg() = std::move(arg);
  t->set_nulltesttype(pg_query::IS_NOT_NULL);
  return n;
}

Node IsNullValue(Node arg) { return IsNotDistinct(std::move(arg), Null()); }

Node IsNotNullValue(Node arg) { return IsDistinct(std::move(arg), Null()); }

Node Func(std::string_view name, NodeList args) {
  NodeList names;
  names.push_back(StringNode("pg_catalog"));
  names.push_back(StringNode(name));
  return FuncNamed(std::move(names), std::move(args));
}

Node Agg(std::string_view name, NodeList args, const Node* filter) {
  Node n = Func(name, std::move(args));
  if (filter != nullptr) *n.mutable_func_call()->mutable_agg_filter() = *filter;
  return n;
}

Node CountStar(const Node* filter) {
  Node n = Func("count", {});
  n.mutable_func_call()->set_agg_star(true);
  if (filter != nullptr) *n.mutable_func_call()->mutable_agg_filter() = *filter;
  return n;
}

Node Case(std::vector<std::pair<Node, Node>> whens, const Node* otherwise) {
  Node n;
  auto* c = n.mutable_case_expr();
  for (auto& [cond, result] : whens) {
    auto* w = c->add_args()->mutable_case_when();
    *w->mutable_expr() = std::move(cond);
    *w->mutable_result() = std::move(result);
  }
  if (otherwise != nullptr) *c->mutable_defresult() = *otherwise;
  return n;
}

Node Coalesce(NodeList args) {
  Node n;
  auto* c = n.mutable_coalesce_expr();
  for (auto& a : args) *c->add_args() = std::move(a);
  return n;
}

static Node MinMax(pg_query::MinMaxOp op, NodeList args) {
  Node n;
  auto* m = n.mutable_min_max_expr();
  m->set_op(op);
  for (auto& a : args) *m->add_args() = std::move(a);
  return n;
}

Node Least(NodeList args) { return MinMax(pg_query::IS_LEAST, std::move(args)); }
Node Greatest(NodeList args) { return MinMax(pg_query::IS_GREATEST, std::move(args)); }

Node Row(NodeList args) {
  Node n;
  auto* r = n.mutable_row_expr();
  for (auto& a : args) *r->add_args() = std::move(a);
  r->set_row_format(pg_query::COERCE_EXPLICIT_CALL);
  return n;
}

Node Exists(Node select) { return SubLinkNode(pg_query::EXISTS_SUBLINK, std::move(select)); }
Node ScalarSubquery(Node select) { return SubLinkNode(pg_query::EXPR_SUBLINK, std::move(select)); }
Node ArraySubquery(Node select) { return SubLinkNode(pg_query::ARRAY_SUBLINK, std::move(select)); }

Node NotIn(Node test, Node select) {
  Node in = SubLinkNode(pg_query::ANY_SUBLINK, std::move(select));
  *in.mutable_sub_link()->mutable_testexpr() = std::move(test);
  return Not(std::move(in));
}

Node RowNumberOver(NodeList partition) {
  Node n = Func("row_number", {});
  auto* over = n.mutable_func_call()->mutable_over();
  for (auto& p : partition) *over->add_partition_clause() = std::move(p);
  over->set_frame_options(1058);  // FRAMEOPTION_DEFAULTS, as the parser sets it
  return n;
}

Node RowHash(NodeList args) {
  NodeList fargs;
  fargs.push_back(Row(std::move(args)));
  fargs.push_back(Int(0));
  return Func("hash_record_extended", std::move(fargs));
}

Node RangeVarNode(std::string_view schema, std::string_view name) {
  Node n;
  auto* r = n.mutable_range_var();
  r->set_schemaname(std::string(schema));
  r->set_relname(std::string(name));
  r->set_inh(true);
  r->set_relpersistence("p");
  return n;
}

Node Table(std::string_view schema, std::string_view name, std::string_view alias, bool inh) {
  Node n = RangeVarNode(schema, name);
  n.mutable_range_var()->set_inh(inh);
  if (!alias.empty()) n.mutable_range_var()->mutable_alias()->set_aliasname(std::string(alias));
  return n;
}

Node Subquery(Node select, std::string_view alias, const std::vector<std::string>& colnames) {
  Node n;
  auto* s = n.mutable_range_subselect();
  *s->mutable_subquery() = std::move(select);
  s->mutable_alias()->set_aliasname(std::string(alias));
  for (const auto& c : colnames) *s->mutable_alias()->add_colnames() = StringNode(c);
  return n;
}

Node Join(pg_query::JoinType type, Node left, Node right, Node quals) {
  Node n;
  auto* j = n.mutable_join_expr();
  j->set_jointype(type);
  *j->mutable_larg() = std::move(left);
  *j->mutable_rarg() = std::move(right);
  *j->mutable_quals() = std::move(quals);
  return n;
}

Node Target(Node value, std::string_view name) {
  Node n;
  auto* t = n.mutable_res_target();
  t->set_name(std::string(name));
  *t->mutable_val() = std::move(value);
  return n;
}

Node Target(Node value) {
  Node n;
  *n.mutable_res_target()->mutable_val() = std::move(value);
  return n;
}

Node SortBy(Node node, bool descending) {
  Node n;
  auto* s = n.mutable_sort_by();
  *s->mutable_node() = std::move(node);
  s->set_sortby_dir(descending ? pg_query::SORTBY_DESC : pg_query::SORTBY_DEFAULT);
  s->set_sortby_nulls(pg_query::SORTBY_NULLS_DEFAULT);
  return n;
}

Node Select::Build() const {
  Node n;
  auto* s = n.mutable_select_stmt();
  for (const auto& t : targets) *s->add_target_list() = t;
  for (const auto& f : from) *s->add_from_clause() = f;
  if (!where.empty()) *s->mutable_where_clause() = And(where);
  for (const auto& g : group_by) *s->add_group_clause() = g;
  if (!having.empty()) *s->mutable_having_clause() = And(having);
  if (distinct) s->add_distinct_clause();  // an empty Node: plain DISTINCT
  for (const auto& d : distinct_on) *s->add_distinct_clause() = d;
  for (const auto& o : order_by) *s->add_sort_clause() = o;
  if (limit >= 0) {
    *s->mutable_limit_count() = Int(limit);
    s->set_limit_option(pg_query::LIMIT_OPTION_COUNT);
  } else {
    s->set_limit_option(pg_query::LIMIT_OPTION_DEFAULT);
  }
  s->set_op(pg_query::SETOP_NONE);
  return n;
}

Node SetOp(pg_query::SetOperation op, bool all, Node left, Node right) {
  Node n;
  auto* s = n.mutable_select_stmt();
  s->set_op(op);
  s->set_all(all);
  *s->mutable_larg() = std::move(*left.mutable_select_stmt());
  *s->mutable_rarg() = std::move(*right.mutable_select_stmt());
  s->set_limit_option(pg_query::LIMIT_OPTION_DEFAULT);
  return n;
}

Node UnionAll(NodeList selects) {
  if (selects.empty()) {
    std::fprintf(stderr, "sqlb::UnionAll of nothing\n");
    std::abort();
  }
  Node acc = std::move(selects[0]);
  for (size_t i = 1; i < selects.size(); ++i) {
    acc = SetOp(pg_query::SETOP_UNION, true, std::move(acc), std::move(selects[i]));
  }
  return acc;
}

Node WithCtes(std::vector<std::pair<std::string, Node>> ctes, Node select,
              const std::set<std::string>& not_materialized) {
  if (ctes.empty()) return select;
  auto* w = select.mutable_select_stmt()->mutable_with_clause();
  for (auto& [name, query] : ctes) {
    auto* c = w->add_ctes()->mutable_common_table_expr();
    c->set_ctename(name);
    c->set_ctematerialized(not_materialized.count(name) ? pg_query::CTEMaterializeNever
                                                        : pg_query::CTEMaterializeDefault);
    *c->mutable_ctequery() = std::move(query);
  }
  return select;
}

}  // namespace trickle::delta::sqlb
