#include "scheduler/catalog.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trickle_scheduler_sql.h"

namespace trickle::scheduler {

const char* StatusName(Status s) {
  switch (s) {
    case Status::kActive: return "ACTIVE";
    case Status::kError: return "ERROR";
    case Status::kSuspended: return "SUSPENDED";
    case Status::kReinit: return "REINIT";
  }
  return "ACTIVE";
}

const char* ModeName(delta::RefreshMode m) {
  switch (m) {
    case delta::RefreshMode::kFull: return "FULL";
    case delta::RefreshMode::kDifferential: return "DIFFERENTIAL";
    case delta::RefreshMode::kAuto: return "AUTO";
  }
  return "AUTO";
}

absl::StatusOr<delta::RefreshMode> ParseMode(absl::string_view text) {
  std::string upper = absl::AsciiStrToUpper(text);
  if (upper == "FULL") return delta::RefreshMode::kFull;
  if (upper == "DIFFERENTIAL") return delta::RefreshMode::kDifferential;
  if (upper == "AUTO") return delta::RefreshMode::kAuto;
  return absl::InvalidArgumentError(
      absl::StrCat("refresh mode \"", text, "\" is not FULL, DIFFERENTIAL or AUTO"));
}

namespace {
Status ParseStatus(absl::string_view s) {
  if (s == "ERROR") return Status::kError;
  if (s == "SUSPENDED") return Status::kSuspended;
  if (s == "REINIT") return Status::kReinit;
  return Status::kActive;
}

// The migrations in order; index + 1 is the schema version.
const absl::string_view kMigrations[] = {sql::kMigration001, sql::kMigration002, sql::kMigration003,
                                         sql::kMigration004, sql::kMigration005};

constexpr char kSelectColumns[] =
    "SELECT id, schema_name, table_name, query, requested_mode, effective_mode, "
    "coalesce(full_refresh_reason, ''), schedule, status, verify, frontier, needs_full, "
    "coalesce(last_error, ''), consecutive_failures, fuse_max_rows, fuse_max_multiple, "
    "fuse_state, coalesce(fuse_reason, ''), coalesce(fuse_delta_rows, 0), sla_ms, "
    "coalesce(downstream_publication, '') "
    "FROM pgtrickle.stream_tables";

std::optional<std::string> SlaText(const StreamTableRow& row) {
  if (!row.sla) return std::nullopt;
  return std::to_string(absl::ToInt64Milliseconds(*row.sla));
}

absl::StatusOr<StreamTableRow> RowFrom(const PgResult& r, int i) {
  StreamTableRow row;
  absl::SimpleAtoi(r.Get(i, 0), &row.id);
  row.schema = std::string(r.Get(i, 1));
  row.name = std::string(r.Get(i, 2));
  row.query = std::string(r.Get(i, 3));
  TRICKLE_ASSIGN_OR_RETURN(row.requested_mode, ParseMode(r.Get(i, 4)));
  TRICKLE_ASSIGN_OR_RETURN(row.effective_mode, ParseMode(r.Get(i, 5)));
  row.full_refresh_reason = std::string(r.Get(i, 6));
  row.schedule = std::string(r.Get(i, 7));
  row.status = ParseStatus(r.Get(i, 8));
  row.verify = r.Get(i, 9) == "t";
  if (!r.IsNull(i, 10)) {
    TRICKLE_ASSIGN_OR_RETURN(Frontier f, Frontier::Decode(r.Get(i, 10)));
    row.frontier = f;
  }
  row.needs_full = r.Get(i, 11) == "t";
  row.last_error = std::string(r.Get(i, 12));
  absl::SimpleAtoi(r.Get(i, 13), &row.consecutive_failures);
  absl::SimpleAtoi(r.Get(i, 14), &row.fuse.max_rows);
  absl::SimpleAtod(r.Get(i, 15), &row.fuse.max_multiple);
  row.fuse_blown = r.Get(i, 16) == "BLOWN";
  row.fuse_reason = std::string(r.Get(i, 17));
  absl::SimpleAtoi(r.Get(i, 18), &row.fuse_delta_rows);
  if (!r.IsNull(i, 19)) {
    int64_t ms = 0;
    absl::SimpleAtoi(r.Get(i, 19), &ms);
    row.sla = absl::Milliseconds(ms);
  }
  row.downstream_publication = std::string(r.Get(i, 20));
  return row;
}
}  // namespace

namespace catalog {

absl::StatusOr<int> Migrate(PgConnection& conn) {
  TRICKLE_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  auto body = [&]() -> absl::StatusOr<int> {
    // Serialises concurrent starters; released at COMMIT.
    TRICKLE_RETURN_IF_ERROR(
        conn.Exec("SELECT pg_advisory_xact_lock(hashtext('pgtrickle.migrate'))").status());
    TRICKLE_RETURN_IF_ERROR(conn.Exec("CREATE SCHEMA IF NOT EXISTS pgtrickle;"
                                      "CREATE TABLE IF NOT EXISTS pgtrickle.schema_version ("
                                      " version int PRIMARY KEY,"
                                      " applied_at timestamptz NOT NULL DEFAULT now())")
                                .status());
    TRICKLE_ASSIGN_OR_RETURN(PgResult v,
                             conn.Exec("SELECT coalesce(max(version), 0) FROM pgtrickle.schema_version"));
    int version = 0;
    absl::SimpleAtoi(v.Get(0, 0), &version);
    const int latest = static_cast<int>(std::size(kMigrations));
    if (version > latest) {
      return absl::FailedPreconditionError(absl::StrCat(
          "catalog schema pgtrickle is at version ", version, " but this trickled knows only up to ",
          latest, "; run a newer trickled"));
    }
    for (int next = version + 1; next <= latest; ++next) {
      auto applied = conn.Exec(kMigrations[next - 1]);
      if (!applied.ok()) {
        return absl::Status(applied.status().code(),
                            absl::StrCat("catalog migration ", next, ": ", applied.status().message()));
      }
      TRICKLE_RETURN_IF_ERROR(conn.ExecParams("INSERT INTO pgtrickle.schema_version (version) VALUES ($1)",
                                              {std::to_string(next)})
                                  .status());
    }
    return latest;
  };
  auto result = body();
  if (!result.ok()) {
    (void)conn.Exec("ROLLBACK");
    return result.status();
  }
  TRICKLE_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  return result;
}

absl::StatusOr<std::vector<StreamTableRow>> LoadAll(PgConnection& conn) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(absl::StrCat(kSelectColumns, " ORDER BY id")));
  std::vector<StreamTableRow> rows;
  for (int i = 0; i < r.rows(); ++i) {
    TRICKLE_ASSIGN_OR_RETURN(StreamTableRow row, RowFrom(r, i));
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<std::optional<StreamTableRow>> Find(PgConnection& conn, const std::string& schema,
                                                   const std::string& name) {
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r, conn.ExecParams(absl::StrCat(kSelectColumns, " WHERE schema_name = $1 AND table_name = $2"),
                                  {schema, name}));
  if (r.rows() == 0) return std::optional<StreamTableRow>();
  TRICKLE_ASSIGN_OR_RETURN(StreamTableRow row, RowFrom(r, 0));
  return std::optional<StreamTableRow>(std::move(row));
}

absl::StatusOr<int64_t> Insert(PgConnection& conn, const StreamTableRow& row) {
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r,
      conn.ExecParams(
          "INSERT INTO pgtrickle.stream_tables (schema_name, table_name, query, requested_mode,"
          " effective_mode, full_refresh_reason, schedule, status, verify, needs_full,"
          " fuse_max_rows, fuse_max_multiple, sla_ms)"
          " VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, true, $10, $11, $12) RETURNING id",
          {row.schema, row.name, row.query, ModeName(row.requested_mode),
           ModeName(row.effective_mode), row.full_refresh_reason, row.schedule,
           StatusName(row.status), row.verify ? "true" : "false", std::to_string(row.fuse.max_rows),
           std::to_string(row.fuse.max_multiple), SlaText(row)}));
  int64_t id = 0;
  absl::SimpleAtoi(r.Get(0, 0), &id);
  return id;
}

absl::Status UpdateDefinition(PgConnection& conn, const StreamTableRow& row) {
  return conn
      .ExecParams(
          "UPDATE pgtrickle.stream_tables SET query = $2, requested_mode = $3, effective_mode = $4,"
          " full_refresh_reason = nullif($5, ''), schedule = $6, verify = $7, fuse_max_rows = $8,"
          " fuse_max_multiple = $9, sla_ms = $10 WHERE id = $1",
          {std::to_string(row.id), row.query, ModeName(row.requested_mode),
           ModeName(row.effective_mode), row.full_refresh_reason, row.schedule,
           row.verify ? "true" : "false", std::to_string(row.fuse.max_rows),
           std::to_string(row.fuse.max_multiple), SlaText(row)})
      .status();
}

absl::Status ReplaceDependencies(PgConnection& conn, int64_t id, const std::vector<Dependency>& deps) {
  TRICKLE_RETURN_IF_ERROR(
      conn.ExecParams("DELETE FROM pgtrickle.dependencies WHERE stream_table_id = $1",
                      {std::to_string(id)})
          .status());
  for (const Dependency& d : deps) {
    std::optional<std::string> upstream;
    if (d.source_stream_table_id) upstream = std::to_string(*d.source_stream_table_id);
    TRICKLE_RETURN_IF_ERROR(
        conn.ExecParams("INSERT INTO pgtrickle.dependencies (stream_table_id, source_oid,"
                        " source_schema, source_name, source_stream_table_id, source_columns)"
                        " VALUES ($1, $2, $3, $4, $5, nullif($6, ''))",
                        {std::to_string(id), std::to_string(d.source_oid), d.source_schema,
                         d.source_name, upstream, d.source_columns})
            .status());
  }
  return absl::OkStatus();
}

absl::Status SetSourceColumns(PgConnection& conn, int64_t id, uint32_t source_oid, const std::string& columns) {
  return conn
      .ExecParams("UPDATE pgtrickle.dependencies SET source_columns = $3"
                  " WHERE stream_table_id = $1 AND source_oid = $2",
                  {std::to_string(id), std::to_string(source_oid), columns})
      .status();
}

absl::StatusOr<std::vector<Dependency>> Dependencies(PgConnection& conn, int64_t id) {
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r, conn.ExecParams("SELECT source_oid, source_schema, source_name, source_stream_table_id,"
                                  " coalesce(source_columns, '')"
                                  " FROM pgtrickle.dependencies WHERE stream_table_id = $1"
                                  " ORDER BY source_oid",
                                  {std::to_string(id)}));
  std::vector<Dependency> deps;
  for (int i = 0; i < r.rows(); ++i) {
    Dependency d;
    absl::SimpleAtoi(r.Get(i, 0), &d.source_oid);
    d.source_schema = std::string(r.Get(i, 1));
    d.source_name = std::string(r.Get(i, 2));
    if (!r.IsNull(i, 3)) {
      int64_t up = 0;
      absl::SimpleAtoi(r.Get(i, 3), &up);
      d.source_stream_table_id = up;
    }
    d.source_columns = std::string(r.Get(i, 4));
    deps.push_back(std::move(d));
  }
  return deps;
}

absl::StatusOr<std::vector<std::string>> Dependents(PgConnection& conn, int64_t id) {
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r, conn.ExecParams("SELECT st.schema_name || '.' || st.table_name"
                                  " FROM pgtrickle.dependencies d JOIN pgtrickle.stream_tables st"
                                  " ON st.id = d.stream_table_id"
                                  " WHERE d.source_stream_table_id = $1 ORDER BY 1",
                                  {std::to_string(id)}));
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.Get(i, 0));
  return out;
}

absl::Status RecordRefresh(PgConnection& conn, int64_t id, const Frontier& frontier,
                           const HistoryRow& h, std::optional<int64_t> last_change_commit_time,
                           absl::string_view started_at) {
  std::optional<std::string> commit_time;
  if (last_change_commit_time) {
    // PostgreSQL-epoch microseconds -> timestamptz.
    commit_time = std::to_string(*last_change_commit_time);
  }
  TRICKLE_RETURN_IF_ERROR(
      conn.ExecParams(
              "UPDATE pgtrickle.stream_tables SET frontier = $2, needs_full = false,"
              " status = 'ACTIVE', last_error = NULL, consecutive_failures = 0,"
              " refresh_count = refresh_count + 1,"
              " full_count = full_count + ($5 = 'FULL')::int,"
              " differential_count = differential_count + ($5 = 'DIFFERENTIAL')::int,"
              " refresh_duration_ms = refresh_duration_ms + $6::float8,"
              " last_refresh_at = clock_timestamp(), data_snapshot_time = $3::timestamptz,"
              " last_change_commit_time = coalesce("
              "   timestamptz '2000-01-01 00:00:00+00' + ($4::bigint * interval '1 microsecond'),"
              "   last_change_commit_time)"
              " WHERE id = $1",
              {std::to_string(id), frontier.Encode(), std::string(started_at), commit_time, h.action,
               std::to_string(h.duration_ms)})
          .status());
  return conn
      .ExecParams(
          "INSERT INTO pgtrickle.refresh_history (stream_table_id, started_at, action, delta_rows,"
          " transactions, rows_affected, duration_ms, frontier, reason)"
          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, ''))",
          {std::to_string(id), std::string(started_at), h.action, std::to_string(h.delta_rows),
           std::to_string(h.transactions), std::to_string(h.rows_affected),
           std::to_string(h.duration_ms), frontier.Encode(), h.reason})
      .status();
}

absl::Status RecordNoData(PgConnection& conn, int64_t id, double duration_ms) {
  TRICKLE_RETURN_IF_ERROR(
      conn.ExecParams("UPDATE pgtrickle.stream_tables SET refresh_count = refresh_count + 1,"
                      " refresh_duration_ms = refresh_duration_ms + $2::float8 WHERE id = $1",
                      {std::to_string(id), std::to_string(duration_ms)})
          .status());
  return conn
      .ExecParams("INSERT INTO pgtrickle.refresh_history (stream_table_id, started_at, action, duration_ms)"
                  " VALUES ($1, clock_timestamp() - $2::float8 * interval '1 millisecond', 'NO_DATA', $2)",
                  {std::to_string(id), std::to_string(duration_ms)})
      .status();
}

absl::Status RecordFailure(PgConnection& conn, int64_t id, const HistoryRow& h, int max_failures) {
  TRICKLE_RETURN_IF_ERROR(
      conn.ExecParams(
              "UPDATE pgtrickle.stream_tables SET consecutive_failures = consecutive_failures + 1,"
              " failure_count = failure_count + 1, last_error = $2,"
              " status = CASE WHEN consecutive_failures + 1 >= $3 THEN 'ERROR' ELSE status END"
              " WHERE id = $1",
              {std::to_string(id), h.error, std::to_string(max_failures)})
          .status());
  return conn
      .ExecParams(
          "INSERT INTO pgtrickle.refresh_history (stream_table_id, started_at, action,"
          " duration_ms, reason, error) VALUES ($1, clock_timestamp() - $3::float8 * interval '1 millisecond',"
          " $2, $3, nullif($4, ''), $5)",
          {std::to_string(id), h.action, std::to_string(h.duration_ms), h.reason, h.error})
      .status();
}

absl::Status SetStatus(PgConnection& conn, int64_t id, Status status, absl::string_view error) {
  return conn
      .ExecParams("UPDATE pgtrickle.stream_tables SET status = $2, last_error = nullif($3, '')"
                  " WHERE id = $1",
                  {std::to_string(id), StatusName(status), std::string(error)})
      .status();
}

absl::Status SetNeedsFull(PgConnection& conn, int64_t id, bool needs_full) {
  return conn
      .ExecParams("UPDATE pgtrickle.stream_tables SET needs_full = $2 WHERE id = $1",
                  {std::to_string(id), needs_full ? "true" : "false"})
      .status();
}

absl::Status SetFuse(PgConnection& conn, int64_t id, bool blown, absl::string_view reason,
                     int64_t delta_rows) {
  return conn
      .ExecParams(
          "UPDATE pgtrickle.stream_tables SET fuse_state = $2, fuse_reason = nullif($3, ''),"
          " fuse_delta_rows = $4, status = CASE WHEN $2 = 'BLOWN' THEN 'SUSPENDED'"
          "   WHEN status = 'SUSPENDED' THEN 'ACTIVE' ELSE status END WHERE id = $1",
          {std::to_string(id), blown ? "BLOWN" : "OK", std::string(reason),
           blown ? std::optional<std::string>(std::to_string(delta_rows)) : std::nullopt})
      .status();
}

absl::Status WriteSchedulerState(PgConnection& conn, int64_t id, const SchedulerState& st) {
  std::optional<std::string> tier, slope, intercept, retry;
  if (st.tier) tier = TierName(*st.tier);
  if (st.cost.fitted()) {
    slope = std::to_string(st.cost.slope_ms_per_row);
    intercept = std::to_string(st.cost.intercept_ms);
  }
  if (st.next_retry_at) retry = absl::FormatTime(absl::RFC3339_full, *st.next_retry_at, absl::UTCTimeZone());
  std::optional<std::string> interval;
  if (st.effective_interval > absl::ZeroDuration()) {
    interval = std::to_string(absl::ToInt64Milliseconds(st.effective_interval));
  }
  return conn
      .ExecParams(
          "UPDATE pgtrickle.stream_tables SET tier = $2, effective_interval_ms = $3,"
          " cost_samples = $4, cost_slope_ms_per_row = $5, cost_intercept_ms = $6,"
          " next_retry_at = $7::timestamptz WHERE id = $1",
          {std::to_string(id), tier, interval, std::to_string(st.cost.samples), slope, intercept, retry})
      .status();
}

absl::StatusOr<CostHistory> LoadCostHistory(PgConnection& conn, int64_t id, absl::Duration window) {
  CostHistory h;
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r,
      conn.ExecParams("SELECT delta_rows, duration_ms FROM pgtrickle.refresh_history"
                      " WHERE stream_table_id = $1 AND action = 'DIFFERENTIAL' AND error IS NULL"
                      " AND started_at > now() - $2::bigint * interval '1 millisecond'"
                      " ORDER BY id DESC LIMIT 1000",
                      {std::to_string(id), std::to_string(absl::ToInt64Milliseconds(window))}));
  double total = 0;
  for (int i = 0; i < r.rows(); ++i) {
    CostSample s{};
    absl::SimpleAtod(r.Get(i, 0), &s.delta_rows);
    absl::SimpleAtod(r.Get(i, 1), &s.duration_ms);
    total += s.delta_rows;
    h.samples.push_back(s);
  }
  if (!h.samples.empty()) h.average_delta_rows = total / h.samples.size();
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult f, conn.ExecParams("SELECT duration_ms FROM pgtrickle.refresh_history WHERE stream_table_id = $1"
                                  " AND action = 'FULL' AND error IS NULL ORDER BY id DESC LIMIT 1",
                                  {std::to_string(id)}));
  if (f.rows() == 1) {
    double ms = 0;
    absl::SimpleAtod(f.Get(0, 0), &ms);
    h.last_full_ms = ms;
  }
  return h;
}

absl::Status SetDownstreamPublication(PgConnection& conn, int64_t id, absl::string_view publication) {
  return conn
      .ExecParams("UPDATE pgtrickle.stream_tables SET downstream_publication = nullif($2, '')"
                  " WHERE id = $1",
                  {std::to_string(id), std::string(publication)})
      .status();
}

absl::Status Delete(PgConnection& conn, int64_t id) {
  return conn.ExecParams("DELETE FROM pgtrickle.stream_tables WHERE id = $1", {std::to_string(id)})
      .status();
}

}  // namespace catalog
}  // namespace trickle::scheduler
