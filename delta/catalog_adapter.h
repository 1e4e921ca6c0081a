// Gathers the CatalogFacts a defining query needs from a live database: the
// only part of delta/ that talks to PostgreSQL (a thin, separate target), so
// the engine itself stays a pure function of its inputs.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"

namespace trickle::delta {

// Resolves every relation and function `query` references (with the
// connection's search_path) and asks the server for the query's output
// column names. Errors name the missing relation.
absl::StatusOr<CatalogFacts> GatherCatalogFacts(PgConnection& conn, const std::string& query);

}  // namespace trickle::delta
