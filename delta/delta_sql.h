// SQL generation over the operator tree: each operator's output at the
// post-state (live tables) or pre-state (live tables with the changes
// undone), and each operator's delta as a signed multiset.
//
// The rules (docs/delta_engine.md has the derivations):
//   Scan       Δ = the delta table, 'I' as +1 and 'D' as -1
//   Filter     Δ = σ(Δin)                       (linear)
//   Project    Δ = π(Δin)                       (linear)
//   InnerJoin  Δ = ΔL⋈R₁ + L₁⋈ΔR − ΔL⋈ΔR        (bilinear, post-state only)
//   UnionAll   Δ = ΔL + ΔR                      (linear)
//   everything else (outer/semi/anti/NOT IN joins, nested aggregates,
//   DISTINCT, INTERSECT/EXCEPT, scalar subqueries): affected-key recompute,
//   Δ = op(inputs₁ restricted to K) − op(inputs₀ restricted to K), where K is
//   the set of partition keys (join keys, group keys, whole rows) that the
//   inputs' deltas touch; NULL keys are matched as equal.
//
// Delta relations are CTEs (__pgt_d<op id>), so one operator's delta is
// computed once however many terms use it. Post-state relations are inlined
// subqueries, so PostgreSQL can push the delta's join keys into index scans.
//
// Internal to delta/.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "delta/delta_engine.h"
#include "delta/operator_tree.h"
#include "pg_query.pb.h"

namespace trickle::delta {

enum class State { kPost, kPre };

// Rows of a relation whose `exprs` (over its output, as i.c<k>) are in the
// key set `keys_cte` (columns k1..kn), NULLs matching NULLs.
struct Restriction {
  std::vector<pg_query::Node> exprs;
  std::vector<bool> nullable;
  std::string keys_cte;
};

class SqlGenerator {
 public:
  // `sources` must outlive the generator; their delta_table names are read.
  explicit SqlGenerator(const std::vector<SourceRelation>& sources) : sources_(sources) {}

  // A SELECT producing op's output (columns c1..cn) at `state`, restricted
  // when `restriction` is given.
  pg_query::Node Eval(const Op& op, State state, const Restriction* restriction = nullptr);

  // The name of a CTE holding Δ(op): columns c1..cn and __pgt_dm (bigint).
  std::string Delta(const Op& op);

  // Adds a CTE; returns its name. An inlined CTE (NOT MATERIALIZED) is one
  // that is cheap to evaluate again: PostgreSQL then plans it inside each
  // query that reads it, with the statistics of the tables under it (a
  // delta table's row count and distinct keys choose the join strategy).
  std::string AddCte(const std::string& prefix, pg_query::Node select, bool inlined = false);
  const std::set<std::string>& inlined_ctes() const { return inlined_; }

  // The CTEs generated so far, in dependency order.
  const std::vector<std::pair<std::string, pg_query::Node>>& ctes() const { return ctes_; }

  // How op's delta is computed, for explanations.
  static std::string Strategy(const Op& op);

  // A relation for one source's delta table.
  pg_query::Node DeltaTable(int source, const std::string& alias) const;
  // OR of "the delta table is not empty" over every source under `op`.
  pg_query::Node SourcesChanged(const Op& op) const;

 private:
  pg_query::Node Build(const Op& op, State state, const std::vector<const Restriction*>& in);
  pg_query::Node EvalScan(const Op& op, State state, const Restriction* r);
  pg_query::Node Restrict(pg_query::Node select, int ncols, const Restriction& r);
  std::string Recompute(const Op& op, std::vector<const Restriction*> in, pg_query::Node gate);
  std::string DeltaJoinInner(const Op& op);
  std::string DeltaByKeys(const Op& op);
  std::string DeltaNotIn(const Op& op);
  std::string DeltaScalar(const Op& op);

  const std::vector<SourceRelation>& sources_;
  std::vector<std::pair<std::string, pg_query::Node>> ctes_;
  std::map<int, std::string> delta_cte_;
  std::set<std::string> inlined_;
  int next_cte_ = 0;
};

// Column refs alias.c<k> inside `expr` become to_alias.c<k - shift>.
pg_query::Node Rebase(const pg_query::Node& expr, const std::string& from_alias,
                      const std::string& to_alias, int shift);
// Column refs alias.c<k> inside `expr` are replaced by replacements[k].
pg_query::Node Substitute(const pg_query::Node& expr, const std::string& alias,
                          const std::vector<pg_query::Node>& replacements);

}  // namespace trickle::delta
