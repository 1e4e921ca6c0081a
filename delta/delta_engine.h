// The delta engine: from a stream table's defining query and catalog facts to
// the SQL that creates, fully refreshes and incrementally refreshes it.
//
//   BuildDeltaPlan(spec, facts, options) -> DeltaPlan
//
// The engine never opens a connection: CatalogFacts are gathered by the
// caller (delta/catalog_adapter.h does it from a live database), so every
// plan is a pure function of its inputs and can be tested with golden files.
// How the SQL works, and why it is correct, is in docs/delta_engine.md.
//
// Using a plan (the refresh engine's side of the contract):
//  * Create the stream table once: run `storage_ddl` in order.
//  * FULL refresh: run `full_refresh_sql` in order, in one transaction.
//  * DIFFERENTIAL refresh, in one REPEATABLE READ transaction whose snapshot
//    the changes are consistent with:
//      1. for each source in `sources`, create the delta table named in
//         `PlanOptions::delta_tables` (`SourceRelation::delta_table_ddl` does
//         it as a temp table) and fill it with the source's CONSOLIDATED
//         changes since the last refresh: columns `__op` ('D' or 'I') and all
//         of the source's columns; a row is 'D' only if it was in the old
//         state and is not in the current one, 'I' conversely, and one exact
//         row never appears both as 'D' and 'I'. An UPDATE is a 'D' of the
//         old row plus an 'I' of the new row. A source without changes gets
//         an empty table. ANALYZE the delta tables (the planner needs sizes).
//      2. run `merge_sql` (one MERGE; its USING clause is `delta_sql`).
//    The live source tables, read in the same snapshot, are the post-state.
//  * The stream table's invariant: after every refresh it equals the
//    defining query evaluated in that snapshot, as a multiset, on the visible
//    columns. Hidden columns (prefix `__pgt_`) hold row identity and
//    aggregate state; readers ignore them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace trickle::delta {

// How a stream table is refreshed. AUTO lets the scheduler pick FULL or
// DIFFERENTIAL per refresh (by its cost model); FULL never uses the delta SQL.
enum class RefreshMode { kFull, kDifferential, kAuto };

struct StreamTableSpec {
  std::string schema;  // schema of the stream table (the storage table)
  std::string name;    // name of the stream table
  std::string query;   // the defining query: one SELECT statement
  RefreshMode mode = RefreshMode::kAuto;
};

// One column of a source relation.
struct ColumnFacts {
  std::string name;
  std::string type;  // format_type(atttypid, atttypmod), e.g. "integer", "numeric(10,2)"
  bool not_null = false;
};

// One relation the defining query references.
struct RelationFacts {
  std::string schema;
  std::string name;
  uint32_t oid = 0;
  std::vector<ColumnFacts> columns;  // attnum order, dropped columns left out
  // The primary key, else the replica-identity index: unique and NOT NULL
  // columns. Empty when the relation has neither (then it is maintained as a
  // multiset, matched on all columns).
  std::vector<std::string> key;
};

// What the engine needs to know about one function name (worst case over
// its overloads): volatile or stable functions cannot be maintained
// incrementally; aggregates, window and set-returning functions are treated
// as such.
struct FunctionFacts {
  char volatility = 'i';  // 'i' immutable, 's' stable, 'v' volatile
  bool is_aggregate = false;
  bool is_window = false;
  bool returns_set = false;
  // Overloads of this name differ in kind (say an aggregate and a plain
  // function): a call cannot be classified without resolving it, so it is
  // not maintained differentially.
  bool mixed_kinds = false;
};

struct CatalogFacts {
  std::vector<RelationFacts> relations;
  // Unqualified names are resolved in this order (current_schemas(false)).
  std::vector<std::string> search_path = {"public"};
  // Keyed by function name without schema, as the parser spells it (folded
  // to lower case unless quoted). Functions missing here
  // fall back to a built-in list of well-known aggregates and volatile functions.
  std::map<std::string, FunctionFacts> functions;
  // The names PostgreSQL gives the query's output columns, when known (the
  // adapter asks the server). Empty: the engine names them as PostgreSQL's
  // FigureColname does.
  std::vector<std::string> output_column_names;
};

// The relations and functions a defining query mentions, for the adapter.
struct QueryReferences {
  struct Relation {
    std::string schema;  // "" when unqualified
    std::string name;
  };
  std::vector<Relation> relations;
  std::vector<std::string> functions;  // unqualified, as the parser spells them
};

// Parses `query` and lists what it references (CTE names are not relations).
absl::StatusOr<QueryReferences> ListQueryReferences(const std::string& query);

struct PlanOptions {
  // Delta table per source, keyed by "schema.name" of the source (unquoted);
  // the value is a table name, optionally schema-qualified ("pg_temp.d1" or
  // "d1"). A source missing here gets "__trickle_delta_<oid>".
  std::map<std::string, std::string> delta_tables;
};

// A source relation of the plan.
struct SourceRelation {
  std::string schema;
  std::string name;
  uint32_t oid = 0;
  std::vector<std::string> columns;  // columns a delta table must carry besides __op
  // Their types when the plan was made (format_type, like ColumnFacts::type),
  // one per column: a refresh that finds others rebuilds the stream table.
  std::vector<std::string> column_types;
  std::vector<std::string> key;      // how the pre-state is matched ("" = whole row)
  std::string delta_table;           // the delta table the delta SQL reads
  // CREATE TEMP TABLE <delta_table> (__op "char" NOT NULL, <source columns>)
  // ON COMMIT DROP: a ready-made delta table for one refresh transaction.
  std::string delta_table_ddl;
};

// One column of the storage table.
struct StorageColumn {
  std::string name;
  bool hidden = false;  // engine-maintained (prefix __pgt_), not part of the query's output
};

// One operator of the explanation tree.
struct ExplainNode {
  std::string op;        // "Scan", "Filter", "Project", "Join", "Aggregate", ...
  std::string detail;    // e.g. "public.orders AS o", "LEFT ON (l.c1 = r.c2)"
  std::string strategy;  // how its delta is computed
  std::vector<ExplainNode> children;
};

struct DeltaPlan {
  // The mode the plan maintains: kDifferential when the delta SQL is
  // available (the caller may still run a full refresh at any time), kFull
  // when the query can only be maintained by full refresh.
  RefreshMode maintained_mode = RefreshMode::kFull;
  // Why the plan is full-refresh only: the construct and its position
  // (1-based character offset into the query), e.g.
  // "window function row_number() at position 8". Empty when differential.
  std::string full_refresh_reason;
  std::string unsupported_construct;
  int unsupported_position = 0;

  std::vector<SourceRelation> sources;
  std::vector<StorageColumn> columns;         // storage table columns, in order
  std::vector<std::string> identity_columns;  // the row identity (unique index)

  std::vector<std::string> storage_ddl;       // CREATE TABLE ...; CREATE UNIQUE INDEX ...
  std::vector<std::string> full_refresh_sql;  // TRUNCATE ...; INSERT ... SELECT ...
  // The SELECT that full_refresh_sql inserts: every storage column, in
  // order, named as in the storage table. A caller that must not empty the
  // table (a published stream table) diffs it against the stored rows by
  // `identity_columns` instead.
  std::string full_select_sql;
  // SELECT: the MERGE's source, one row per changed row identity: the new
  // row and __pgt_op ('U' or 'D'); for an algebraic aggregate the group's
  // state change (count/sum deltas), which the MERGE adds to the stored
  // state. Empty when kFull.
  std::string delta_sql;
  std::string merge_sql;  // MERGE INTO <stream table> USING (<delta_sql>) ... (empty when kFull)

  ExplainNode explain_tree;
  std::string explanation;  // explain_tree as indented text, plus the apply strategy
};

// The query after the rewrites that run before lowering (delta/rewrite.h:
// correlated subqueries decorrelated, ...), deparsed; `notes`, when given,
// receives one line per rewrite. For tests and explanations: BuildDeltaPlan
// applies the same rewrites itself.
absl::StatusOr<std::string> RewrittenQuery(const std::string& query, const CatalogFacts& facts,
                                           std::vector<std::string>* notes = nullptr);

// Builds the plan. Errors:
//  * InvalidArgumentError for a query that does not parse, is not a single
//    SELECT, references an unknown relation or column, and (mode
//    DIFFERENTIAL) for a construct the engine cannot maintain
//    differentially: the message names the construct and its position.
//  * In modes FULL and AUTO an unsupported construct is not an error: the
//    plan is full-refresh only and says why.
absl::StatusOr<DeltaPlan> BuildDeltaPlan(const StreamTableSpec& spec, const CatalogFacts& facts,
                                         const PlanOptions& options = {});

}  // namespace trickle::delta
