// A small RAII layer over libpg_query: parse SQL into the protobuf tree and
// deparse trees back to SQL text.
//
// Internal to delta/: this header includes pg_query.pb.h, which no other
// folder may see.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pg_query.pb.h"

namespace trickle::delta {

// Parses one or more SQL statements. The error names the position (1-based
// character offset) when the parser reports one.
absl::StatusOr<pg_query::ParseResult> ParseSql(std::string_view sql);

// Deparses one statement node (SelectStmt, MergeStmt, CreateTableAsStmt, ...)
// to SQL text. libpg_query's deparser quotes every identifier that needs it,
// but it has gaps (for example it prints `a IS DISTINCT FROM (b IS DISTINCT
// FROM c)` without the parentheses, which no longer parses). So the text is
// parsed again and must give back the same tree (locations aside); when it
// does not, the deparser is not trusted and an error is returned: a plan that
// cannot be printed faithfully is refused, never run with different meaning.
absl::StatusOr<std::string> DeparseStatement(const pg_query::Node& stmt);

// Deparses an expression (by deparsing `SELECT <expr>` and removing the
// SELECT). For explanations and messages; checked like DeparseStatement.
absl::StatusOr<std::string> DeparseExpression(const pg_query::Node& expr);

// Clears every `location` field (and the statement offsets of RawStmt) in a
// tree, so that two trees can be compared by structure.
void ClearLocations(google::protobuf::Message* message);

// A byte string that is equal for two trees exactly when they are equal
// ignoring locations. Used to match expressions (GROUP BY keys against
// select-list subexpressions) and to verify deparsed text.
std::string CanonicalKey(const google::protobuf::Message& message);

}  // namespace trickle::delta
