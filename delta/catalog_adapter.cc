#include "delta/catalog_adapter.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "trickle_delta_catalog_sql.h"

namespace trickle::delta {

absl::StatusOr<CatalogFacts> GatherCatalogFacts(PgConnection& conn, const std::string& query) {
  TRICKLE_ASSIGN_OR_RETURN(QueryReferences refs, ListQueryReferences(query));
  CatalogFacts facts;
  TRICKLE_ASSIGN_OR_RETURN(PgResult path, conn.Exec("SELECT array_to_string(current_schemas(false), ',')"));
  facts.search_path.clear();
  for (absl::string_view s : absl::StrSplit(path.Get(0, 0), ',', absl::SkipEmpty())) {
    facts.search_path.emplace_back(s);
  }
  for (const QueryReferences::Relation& r : refs.relations) {
    std::string name = r.schema.empty()
                           ? conn.QuoteIdentifier(r.name)
                           : absl::StrCat(conn.QuoteIdentifier(r.schema), ".", conn.QuoteIdentifier(r.name));
    TRICKLE_ASSIGN_OR_RETURN(PgResult cols, conn.ExecParams(sql::kRelationColumns, {name}));
    if (cols.rows() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "relation \"", r.schema.empty() ? r.name : absl::StrCat(r.schema, ".", r.name),
          "\" referenced by the query does not exist"));
    }
    RelationFacts rel;
    absl::SimpleAtoi(cols.Get(0, 0), &rel.oid);
    rel.schema = std::string(cols.Get(0, 1));
    rel.name = std::string(cols.Get(0, 2));
    bool seen = false;
    for (const RelationFacts& existing : facts.relations) seen = seen || existing.oid == rel.oid;
    if (seen) continue;
    for (int i = 0; i < cols.rows(); ++i) {
      rel.columns.push_back({std::string(cols.Get(i, 3)), std::string(cols.Get(i, 4)), cols.Get(i, 5) == "t"});
    }
    TRICKLE_ASSIGN_OR_RETURN(PgResult key, conn.ExecParams(sql::kRelationKey, {std::to_string(rel.oid)}));
    for (int i = 0; i < key.rows(); ++i) rel.key.emplace_back(key.Get(i, 0));
    facts.relations.push_back(std::move(rel));
  }
  for (const std::string& fn : refs.functions) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult f, conn.ExecParams(sql::kFunctionFacts, {fn}));
    if (f.Get(0, 5) == "0") continue;  // unknown here: the engine's built-in list decides
    FunctionFacts ff;
    ff.volatility = f.Get(0, 0) == "t" ? 'v' : f.Get(0, 1) == "t" ? 's' : 'i';
    ff.is_aggregate = f.Get(0, 2) == "t";
    ff.is_window = f.Get(0, 3) == "t";
    ff.returns_set = f.Get(0, 4) == "t";
    facts.functions[fn] = ff;
  }
  // The names PostgreSQL gives the output columns: describe without running.
  PGresult* prepared = PQprepare(conn.raw(), "", query.c_str(), 0, nullptr);
  bool ok = PQresultStatus(prepared) == PGRES_COMMAND_OK;
  std::string error = ok ? "" : PQresultErrorMessage(prepared);
  PQclear(prepared);
  if (!ok) {
    while (!error.empty() && error.back() == '\n') error.pop_back();
    return absl::InvalidArgumentError(absl::StrCat("the defining query does not run: ", error));
  }
  PgResult described(PQdescribePrepared(conn.raw(), ""));
  for (int i = 0; i < PQnfields(described.raw()); ++i) {
    facts.output_column_names.emplace_back(PQfname(described.raw(), i));
  }
  return facts;
}

}  // namespace trickle::delta
