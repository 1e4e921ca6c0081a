// Gathers the CatalogFacts a defining query needs from a live database: the
// only part of delta/ that talks to PostgreSQL (the engine itself is pure).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/pg_connection.h"
#include "delta/delta_engine.h"

namespace trickle::delta {

// Resolves every relation the query references (through the connection's
// search_path), reads its columns and key (primary key, else replica-identity
// index), the facts about every function it calls, and the query's output
// column names (by describing it, without running it). Errors name the
// relation: a missing one, or one that is not a table (views, materialized
// views and foreign tables cannot be captured).
absl::StatusOr<CatalogFacts> GatherCatalogFacts(PgConnection& conn, const std::string& query);

}  // namespace trickle::delta
