#include "delta/catalog_adapter.h"

#include <libpq-fe.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trickle_delta_catalog_sql.h"

namespace trickle::delta {
namespace {

absl::StatusOr<std::vector<std::string>> OutputNames(PgConnection& conn, const std::string& query) {
  // Describe the unnamed prepared statement: names without executing anything.
  PGresult* prep = PQprepare(conn.raw(), "", query.c_str(), 0, nullptr);
  std::string error = PQresultStatus(prep) == PGRES_COMMAND_OK ? "" : PQresultErrorMessage(prep);
  PQclear(prep);
  if (!error.empty())
    return absl::InvalidArgumentError(absl::StrCat("cannot prepare the defining query: ", error));
  PGresult* desc = PQdescribePrepared(conn.raw(), "");
  if (PQresultStatus(desc) != PGRES_COMMAND_OK) {
    std::string e = PQresultErrorMessage(desc);
    PQclear(desc);
    return absl::InvalidArgumentError(absl::StrCat("cannot describe the defining query: ", e));
  }
  std::vector<std::string> names;
  for (int i = 0; i < PQnfields(desc); ++i) names.push_back(PQfname(desc, i));
  PQclear(desc);
  return names;
}

}  // namespace

absl::StatusOr<CatalogFacts> GatherCatalogFacts(PgConnection& conn, const std::string& query) {
  TRICKLE_ASSIGN_OR_RETURN(QueryReferences refs, ListQueryReferences(query));
  CatalogFacts facts;
  facts.search_path.clear();
  TRICKLE_ASSIGN_OR_RETURN(PgResult sp, conn.Exec(sql::kSearchPath));
  for (int i = 0; i < sp.rows(); ++i) facts.search_path.emplace_back(sp.Get(i, 0));
  for (const auto& ref : refs.relations) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult rel,
                             conn.ExecParams(sql::kResolveRelation, {ref.schema, ref.name}));
    std::string shown = ref.schema.empty() ? ref.name : absl::StrCat(ref.schema, ".", ref.name);
    if (rel.rows() != 1) {
      return absl::NotFoundError(absl::StrCat("relation \"", shown,
                                              "\" referenced by the defining query does not exist "
                                              "(or is not on the search_path)"));
    }
    RelationFacts r;
    r.oid = static_cast<uint32_t>(std::stoul(std::string(rel.Get(0, 0))));
    r.schema = std::string(rel.Get(0, 1));
    r.name = std::string(rel.Get(0, 2));
    std::string kind(rel.Get(0, 3));
    if (kind != "r" && kind != "p") {
      return absl::InvalidArgumentError(
          absl::StrCat("relation ", r.schema, ".", r.name, " is not a table (relkind '", kind,
                       "'); stream tables can read tables and other stream tables only"));
    }
    bool seen = false;
    for (const auto& x : facts.relations) seen |= x.oid == r.oid;
    if (seen) continue;
    std::string oid = std::to_string(r.oid);
    TRICKLE_ASSIGN_OR_RETURN(PgResult cols, conn.ExecParams(sql::kRelationColumns, {oid}));
    for (int i = 0; i < cols.rows(); ++i) {
      r.columns.push_back(
          {std::string(cols.Get(i, 0)), std::string(cols.Get(i, 1)), cols.Get(i, 2) == "t"});
    }
    TRICKLE_ASSIGN_OR_RETURN(PgResult key, conn.ExecParams(sql::kRelationKey, {oid}));
    for (int i = 0; i < key.rows(); ++i) r.key.emplace_back(key.Get(i, 0));
    facts.relations.push_back(std::move(r));
  }
  for (const auto& f : refs.functions) {
    TRICKLE_ASSIGN_OR_RETURN(PgResult fr, conn.ExecParams(sql::kFunctionFacts, {f}));
    if (fr.rows() != 1 || fr.IsNull(0, 0)) continue;  // unknown: the built-in lists decide
    FunctionFacts ff;
    ff.volatility = fr.Get(0, 0).empty() ? 'v' : fr.Get(0, 0)[0];
    ff.is_aggregate = fr.Get(0, 1) == "t";
    ff.is_window = fr.Get(0, 2) == "t";
    ff.returns_set = fr.Get(0, 3) == "t";
    ff.mixed_kinds = fr.Get(0, 4) == "t";
    facts.functions[f] = ff;
  }
  TRICKLE_ASSIGN_OR_RETURN(facts.output_column_names, OutputNames(conn, query));
  return facts;
}

}  // namespace trickle::delta
