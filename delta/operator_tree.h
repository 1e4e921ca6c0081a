// The engine's operator tree (its IR): what a defining query computes, as
// relational operators over the source relations. Lowering (lowering.h)
// builds it from libpg_query's parse tree; delta_sql.h turns it into SQL.
//
// Conventions every operator follows, so SQL generation stays uniform:
//  * Output column k (0-based) of any operator is named "c<k+1>" in the SQL
//    generated for it. Delta relations add one column, __pgt_dm: the signed
//    multiplicity (+n: n more copies of the row, -n: n fewer).
//  * Expressions are the user's own expression trees with every column
//    reference rebound to an input column: `i.c<k>` for a unary operator's
//    input, `l.c<k>` / `r.c<k>` for a join's left and right inputs. So the
//    SQL for an operator is always `SELECT ... FROM (<input>) i` or
//    `... FROM (<left>) l JOIN (<right>) r ...`, and PostgreSQL evaluates
//    every expression, type, collation and function exactly as in the query.
//  * Hidden columns carry a key of the input through projections (so a
//    parent can identify rows); user names never resolve to them.
//
// Internal to delta/ (includes pg_query.pb.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delta/delta_engine.h"
#include "pg_query.pb.h"

namespace trickle::delta {

enum class OpKind {
  kScan,       // a source relation
  kValues,     // a constant relation: VALUES (...), or no FROM at all
  kFilter,     // WHERE / HAVING
  kProject,    // the select list
  kJoin,       // inner/left/right/full, semi (EXISTS, IN), anti (NOT EXISTS), NOT IN
  kAggregate,  // GROUP BY + aggregates (or a whole-input aggregate)
  kDistinct,   // SELECT DISTINCT, and UNION (as DISTINCT over UNION ALL)
  kSetOp,      // UNION ALL, INTERSECT [ALL], EXCEPT [ALL]
  kScalar,     // an uncorrelated scalar (or ARRAY) subquery: exactly one row
};

enum class JoinKind { kInner, kLeft, kRight, kFull, kSemi, kAnti, kNotIn };
enum class SetOpKind { kUnionAll, kIntersect, kExcept };

struct OpColumn {
  std::string user_name;  // the name the query gives the column ("" for hidden)
  bool hidden = false;    // a carried key column
  bool not_null = false;  // provably never NULL
  std::string type;       // inferred type ("integer", "bigint", ...), "" when unknown
};

struct AggCall {
  std::string name;       // lower-case function name
  pg_query::Node call;    // the FuncCall, arguments bound to input `i`
  bool star = false;      // count(*)
  bool distinct = false;  // agg(DISTINCT ...)
  bool ordered = false;   // ORDER BY inside the call or WITHIN GROUP
  bool has_filter = false;
  std::string arg_type;  // inferred type of the single argument, "" when unknown
};

struct Op {
  int id = 0;
  OpKind kind = OpKind::kScan;
  std::vector<OpColumn> columns;
  // Output columns forming a unique key (NULLs equal), when one is known.
  // An engaged empty vector means "at most one row" (a whole-input aggregate).
  std::optional<std::vector<int>> key;
  std::vector<std::unique_ptr<Op>> inputs;
  int location = -1;  // byte offset in the query, for messages
  // SortBy nodes over this operator's output (i.c<k>): the order the query
  // asks its rows in. Set only where the order is observable (the input of
  // an ARRAY subquery); a table has no order.
  std::vector<pg_query::Node> order;

  // kScan
  int source = -1;    // index into the plan's sources
  std::string alias;  // the range name the query uses
  bool inh = true;    // false for ONLY
  // kValues: a SELECT producing the constant rows as c1..cn.
  pg_query::Node values;
  // kFilter
  pg_query::Node predicate;
  // kProject: one expression per output column
  std::vector<pg_query::Node> exprs;
  // kJoin
  JoinKind join = JoinKind::kInner;
  pg_query::Node condition;  // over l./r.; for kNotIn: the left test expression (over l.)
  std::vector<std::pair<pg_query::Node, pg_query::Node>> equi;  // (left expr, right expr)
  // kAggregate: output = group columns, then one column per aggregate
  std::vector<pg_query::Node> group_exprs;
  std::vector<AggCall> aggs;
  // kSetOp
  SetOpKind setop = SetOpKind::kUnionAll;
  bool all = false;
  // kScalar
  bool array = false;  // ARRAY(subquery) rather than (subquery)

  int VisibleCount() const;
};

// "c<k+1>": the SQL name of output column k.
std::string ColName(int k);

// Operator name and detail for explanations. Expressions are shown with the
// query's own column names (o.amount), not the generated ones (i.c3).
std::string OpName(const Op& op);
std::string OpDetail(const Op& op, const std::vector<SourceRelation>& sources);
// What each output column of `op` stands for, for explanations.
std::vector<std::string> ColumnDisplays(const Op& op, const std::vector<SourceRelation>& sources);

}  // namespace trickle::delta
