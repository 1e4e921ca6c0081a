#include "common/pg_connection.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace trickle {
namespace {
constexpr char kSqlStatePayload[] = "trickle.sqlstate";

absl::Status WithSqlState(absl::Status status, absl::string_view sqlstate) {
  if (!sqlstate.empty()) status.SetPayload(kSqlStatePayload, absl::Cord(sqlstate));
  return status;
}

std::string TrimTrailingNewline(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}
}  // namespace

absl::StatusCode StatusCodeForSqlState(absl::string_view s) {
  if (s.size() != 5) return absl::StatusCode::kUnknown;
  if (absl::StartsWith(s, "08") || s == "57P01" || s == "57P02" || s == "57P03" ||
      s == "53300") {
    return absl::StatusCode::kUnavailable;
  }
  if (s == "40001" || s == "40P01") return absl::StatusCode::kAborted;
  if (s == "57014") return absl::StatusCode::kCancelled;  // query_canceled
  if (absl::StartsWith(s, "42") || absl::StartsWith(s, "22")) {
    return absl::StatusCode::kInvalidArgument;
  }
  if (absl::StartsWith(s, "23") || absl::StartsWith(s, "55")) {
    return absl::StatusCode::kFailedPrecondition;
  }
  if (absl::StartsWith(s, "53")) return absl::StatusCode::kResourceExhausted;
  return absl::StatusCode::kInternal;
}

bool IsTransient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kAborted;
}

constexpr char kOutagePayload[] = "trickle.outage";

absl::Status OutageError(absl::Status status) {
  status.SetPayload(kOutagePayload, absl::Cord("1"));
  return status;
}

bool IsOutage(const absl::Status& status) { return status.GetPayload(kOutagePayload).has_value(); }

std::string SqlStateOf(const absl::Status& status) {
  auto payload = status.GetPayload(kSqlStatePayload);
  return payload ? std::string(*payload) : std::string();
}

int64_t PgResult::AffectedRows() const {
  const char* tuples = PQcmdTuples(result_.get());
  return tuples && *tuples ? std::atoll(tuples) : 0;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& dsn) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = TrimTrailingNewline(PQerrorMessage(conn));
    PQfinish(conn);
    return OutageError(WithSqlState(
        absl::UnavailableError(absl::StrCat(
            "cannot connect to PostgreSQL: ", error,
            "; check the DSN (host, port, user, dbname) and that the server accepts connections")),
        "08006"));
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

std::string PgConnection::Describe() const {
  const char* host = PQhost(conn_);
  return absl::StrCat("host=", host ? host : "", " port=", PQport(conn_),
                      " dbname=", PQdb(conn_), " user=", PQuser(conn_));
}

absl::Status PgConnection::ErrorFromResult(const PGresult* result, absl::string_view what) const {
  std::string sqlstate;
  std::string message;
  if (result != nullptr) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (state) sqlstate = state;
    message = TrimTrailingNewline(PQresultErrorMessage(result));
  }
  if (message.empty()) message = TrimTrailingNewline(PQerrorMessage(conn_));
  if (sqlstate.empty() && PQstatus(conn_) != CONNECTION_OK) sqlstate = "08006";
  absl::StatusCode code = sqlstate.empty() ? absl::StatusCode::kInternal
                                           : StatusCodeForSqlState(sqlstate);
  std::string text = absl::StrCat(what, " failed");
  if (!sqlstate.empty()) absl::StrAppend(&text, " (SQLSTATE ", sqlstate, ")");
  absl::StrAppend(&text, ": ", message);
  return WithSqlState(absl::Status(code, text), sqlstate);
}

absl::StatusOr<PgResult> PgConnection::Exec(absl::string_view sql) {
  std::string query(sql);
  if (!PQsendQuery(conn_, query.c_str())) return ErrorFromResult(nullptr, "sending query");
  std::optional<PgResult> last;
  absl::Status error;
  while (PGresult* r = PQgetResult(conn_)) {
    PgResult result(r);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
      if (error.ok()) error = ErrorFromResult(r, "query");
      continue;
    }
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      return absl::InvalidArgumentError("Exec() cannot run COPY; use CopyIn()");
    }
    last.emplace(std::move(result));
  }
  if (!error.ok()) return error;
  if (!last) return ErrorFromResult(nullptr, "query");
  return std::move(*last);
}

absl::StatusOr<PgResult> PgConnection::ExecParams(
    absl::string_view sql, const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string query(sql);
  PgResult result(PQexecParams(conn_, query.c_str(), static_cast<int>(params.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  ExecStatusType st = PQresultStatus(result.raw());
  if (result.raw() == nullptr || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
    return ErrorFromResult(result.raw(), "query");
  }
  return result;
}

absl::Status PgConnection::CopyIn(absl::string_view copy_sql, absl::string_view data) {
  std::string query(copy_sql);
  {
    PgResult start(PQexec(conn_, query.c_str()));
    if (PQresultStatus(start.raw()) != PGRES_COPY_IN) return ErrorFromResult(start.raw(), "COPY");
  }
  constexpr size_t kChunk = 1 << 20;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    size_t n = std::min(kChunk, data.size() - off);
    if (PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) != 1) {
      return ErrorFromResult(nullptr, "COPY data");
    }
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) return ErrorFromResult(nullptr, "COPY end");
  absl::Status error;
  while (PGresult* r = PQgetResult(conn_)) {
    PgResult result(r);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && error.ok()) error = ErrorFromResult(r, "COPY");
  }
  return error;
}

std::string PgConnection::QuoteIdentifier(absl::string_view name) const {
  char* quoted = PQescapeIdentifier(conn_, name.data(), name.size());
  std::string out = quoted ? quoted : "";
  PQfreemem(quoted);
  return out;
}

std::string PgConnection::QuoteLiteral(absl::string_view value) const {
  char* quoted = PQescapeLiteral(conn_, value.data(), value.size());
  std::string out = quoted ? quoted : "";
  PQfreemem(quoted);
  return out;
}

absl::Status InTransaction(PgConnection& conn, absl::FunctionRef<absl::Status()> body, absl::string_view begin) {
  TRICKLE_RETURN_IF_ERROR(conn.Exec(begin).status());
  absl::Status s = body();
  if (!s.ok()) {
    (void)conn.Exec("ROLLBACK");
    return s;
  }
  return conn.Exec("COMMIT").status();
}

void AppendCopyText(absl::string_view value, std::string* out) {
  for (char c : value) {
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      default: out->push_back(c);
    }
  }
}

}  // namespace trickle
