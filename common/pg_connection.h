// A small RAII layer over libpq, shared by every folder that talks SQL
// (the replication stream has its own loop but connects through this too).
//
// Errors carry the server's SQLSTATE; the retry policy derived from it lives
// in one place: StatusCodeForSqlState().
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trickle {

// Retry policy by SQLSTATE:
//  * connection classes (08xxx, 57P01..57P03) -> kUnavailable (transient: reconnect)
//  * 40001 serialization failure, 40P01 deadlock -> kAborted (retry the transaction)
//  * 42xxx (syntax, undefined object, privilege), 22xxx, 23xxx -> kInvalidArgument /
//    kFailedPrecondition (definite: report, don't loop)
absl::StatusCode StatusCodeForSqlState(absl::string_view sqlstate);

// True for errors worth retrying after a reconnect or a new transaction.
bool IsTransient(const absl::Status& status);

// The SQLSTATE an error Status carries ("" when none).
std::string SqlStateOf(const absl::Status& status);

// An outage: the database could not be reached at all (a connection refused
// or not made), or the replication stream is not connected, so the work
// never started. Not the fault of the work it was for: callers retry it
// without counting it against that work. A connection lost *during* the
// work is not marked (the work itself may have brought the server down).
// PgConnection::Connect marks every failure to connect.
absl::Status OutageError(absl::Status status);
bool IsOutage(const absl::Status& status);

class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result) {}
  PgResult(PgResult&&) = default;
  PgResult& operator=(PgResult&&) = default;

  int rows() const { return PQntuples(result_.get()); }
  int columns() const { return PQnfields(result_.get()); }
  bool IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column); }
  // The value in text form; "" for NULL (check IsNull).
  absl::string_view Get(int row, int column) const {
    return {PQgetvalue(result_.get(), row, column),
            static_cast<size_t>(PQgetlength(result_.get(), row, column))};
  }
  std::optional<std::string> GetOptional(int row, int column) const {
    if (IsNull(row, column)) return std::nullopt;
    return std::string(Get(row, column));
  }
  std::string ColumnName(int column) const { return PQfname(result_.get(), column); }
  // Rows affected by INSERT/UPDATE/DELETE/MERGE/COPY; 0 otherwise.
  int64_t AffectedRows() const;
  PGresult* raw() const { return result_.get(); }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> result_;
};

class PgConnection {
 public:
  // Connects with a libpq connection string (key=value or URI). The error
  // names the target (never the password) and what to check.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& dsn);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements (simple query protocol); returns the last
  // result. Any failing statement gives an error with its SQLSTATE.
  absl::StatusOr<PgResult> Exec(absl::string_view sql);
  // Runs one statement with text parameters ($1, $2, ...); nullopt is NULL.
  absl::StatusOr<PgResult> ExecParams(absl::string_view sql,
                                      const std::vector<std::optional<std::string>>& params);
  // COPY ... FROM STDIN with `data` in text COPY format.
  absl::Status CopyIn(absl::string_view copy_sql, absl::string_view data);

  // Quoting through libpq (never paste names or values unquoted).
  std::string QuoteIdentifier(absl::string_view name) const;
  std::string QuoteLiteral(absl::string_view value) const;

  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  int BackendPid() const { return PQbackendPID(conn_); }
  PGconn* raw() const { return conn_; }
  // "host=... port=... dbname=..." without secrets, for messages.
  std::string Describe() const;

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  absl::Status ErrorFromResult(const PGresult* result, absl::string_view what) const;
  PGconn* conn_;  // owned
};

// Runs `body` in a transaction on `conn`, opened with `begin` (e.g. "BEGIN
// ISOLATION LEVEL REPEATABLE READ READ ONLY"): COMMIT when the body
// succeeds, else ROLLBACK and the body's error.
absl::Status InTransaction(PgConnection& conn, absl::FunctionRef<absl::Status()> body,
                           absl::string_view begin = "BEGIN");

// Escapes one value for the text COPY format (backslash, tab, newline, CR).
void AppendCopyText(absl::string_view value, std::string* out);

}  // namespace trickle
