#include "service/admin_service.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "scheduler/catalog.h"
#include "scheduler/policy.h"
#include "spdlog/spdlog.h"
#include "trickle_service_admin_sql.h"

namespace trickle::service {

namespace v1 = admin::v1;

namespace {

constexpr int kIdleConnections = 4;
constexpr int kDefaultHistory = 10;
constexpr int kMaxHistory = 1000;

void SetTimestamp(double unix_seconds, google::protobuf::Timestamp* ts) {
  int64_t micros = static_cast<int64_t>(unix_seconds * 1e6);
  ts->set_seconds(micros / 1000000);
  ts->set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  if (ts->nanos() < 0) {
    ts->set_seconds(ts->seconds() - 1);
    ts->set_nanos(ts->nanos() + 1000000000);
  }
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  SetTimestamp(absl::ToDoubleSeconds(t - absl::UnixEpoch()), ts);
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

std::optional<double> OptionalDouble(const PgResult& r, int row, int col) {
  if (r.IsNull(row, col)) return std::nullopt;
  double v = 0;
  if (!absl::SimpleAtod(r.Get(row, col), &v)) return std::nullopt;
  return v;
}

v1::RefreshMode ModeToProto(absl::string_view mode) {
  if (mode == "FULL") return v1::REFRESH_MODE_FULL;
  if (mode == "DIFFERENTIAL") return v1::REFRESH_MODE_DIFFERENTIAL;
  if (mode == "AUTO") return v1::REFRESH_MODE_AUTO;
  return v1::REFRESH_MODE_UNSPECIFIED;
}

v1::RefreshMode ModeToProto(delta::RefreshMode mode) { return ModeToProto(scheduler::ModeName(mode)); }

std::optional<delta::RefreshMode> ModeFromProto(v1::RefreshMode mode) {
  switch (mode) {
    case v1::REFRESH_MODE_FULL: return delta::RefreshMode::kFull;
    case v1::REFRESH_MODE_DIFFERENTIAL: return delta::RefreshMode::kDifferential;
    case v1::REFRESH_MODE_AUTO: return delta::RefreshMode::kAuto;
    default: return std::nullopt;
  }
}

v1::StreamTableStatus StatusToProto(absl::string_view status) {
  if (status == "ACTIVE") return v1::STREAM_TABLE_STATUS_ACTIVE;
  if (status == "ERROR") return v1::STREAM_TABLE_STATUS_ERROR;
  if (status == "SUSPENDED") return v1::STREAM_TABLE_STATUS_SUSPENDED;
  if (status == "REINIT") return v1::STREAM_TABLE_STATUS_REINIT;
  return v1::STREAM_TABLE_STATUS_UNSPECIFIED;
}

v1::RefreshAction ActionToProto(absl::string_view action) {
  if (action == "FULL") return v1::REFRESH_ACTION_FULL;
  if (action == "DIFFERENTIAL") return v1::REFRESH_ACTION_DIFFERENTIAL;
  if (action == "NO_DATA") return v1::REFRESH_ACTION_NO_DATA;
  if (action == "SKIPPED") return v1::REFRESH_ACTION_SKIPPED;
  return v1::REFRESH_ACTION_UNSPECIFIED;
}

void FrontierToProto(const scheduler::Frontier& f, v1::Frontier* out) {
  out->set_lsn(FormatLsn(f.lsn));
  for (Lsn e : f.exceptions) out->add_exceptions(FormatLsn(e));
}

void ExplainNodeToProto(const delta::ExplainNode& node, v1::ExplainNode* out) {
  out->set_op(node.op);
  out->set_detail(node.detail);
  out->set_strategy(node.strategy);
  for (const delta::ExplainNode& child : node.children) ExplainNodeToProto(child, out->add_children());
}

absl::StatusOr<std::set<std::string>> StreamTableNames(PgConnection& conn) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql::kStreamTableNames));
  std::set<std::string> names;
  for (int i = 0; i < r.rows(); ++i) names.insert(std::string(r.Get(i, 0)));
  return names;
}

void RefreshRecordFromResult(const scheduler::RefreshResult& result, v1::RefreshRecord* record) {
  const scheduler::HistoryRow& h = result.history;
  record->set_action(result.committed ? ActionToProto(h.action) : v1::REFRESH_ACTION_NO_DATA);
  record->set_delta_rows(h.delta_rows);
  record->set_transactions(h.transactions);
  record->set_rows_affected(h.rows_affected);
  SetDuration(absl::Milliseconds(h.duration_ms), record->mutable_duration());
  record->set_reason(h.reason);
  record->set_error(h.error);
  SetTimestamp(absl::Now(), record->mutable_finished_at());
  if (result.committed) record->set_frontier(result.frontier.Encode());
}

absl::StatusOr<scheduler::FuseSettings> FuseFromProto(const v1::FuseSettings& f) {
  if (f.max_rows() < 0 || f.max_multiple() < 0 || f.min_rows() < 0) {
    return absl::InvalidArgumentError("fuse ceilings must not be negative (0 = no ceiling)");
  }
  scheduler::FuseSettings settings;
  settings.max_rows = f.max_rows();
  settings.max_multiple = f.max_multiple();
  if (f.min_rows() > 0) settings.min_rows = f.min_rows();
  return settings;
}

absl::StatusOr<std::optional<absl::Duration>> SlaFromProto(const v1::Sla& sla) {
  if (!sla.has_freshness()) return std::nullopt;
  absl::Duration d = absl::Seconds(sla.freshness().seconds()) + absl::Nanoseconds(sla.freshness().nanos());
  if (d < absl::ZeroDuration()) return absl::InvalidArgumentError("an SLA freshness must not be negative");
  return d;
}

// Constant-time comparison: how long a wrong token takes to refuse says
// nothing about how much of it was right.
bool SameSecret(absl::string_view presented, absl::string_view secret) {
  if (secret.empty()) return false;
  unsigned char diff = presented.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) diff |= presented[i] ^ secret[i % secret.size()];
  return diff == 0;
}

int64_t ToInt64(absl::string_view text) {
  int64_t n = 0;
  return absl::SimpleAtoi(text, &n) ? n : 0;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode mirrors google.rpc.Code, as grpc::StatusCode does.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<std::pair<std::string, std::string>> SplitStreamTableName(const std::string& name) {
  std::vector<std::string> parts = absl::StrSplit(name, absl::MaxSplits('.', 1));
  if (name.empty() || parts.size() > 2 || parts.front().empty() || parts.back().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream table name \"", name, "\" is not of the form name or schema.name"));
  }
  if (parts.size() == 1) return std::make_pair(std::string("public"), parts[0]);
  return std::make_pair(parts[0], parts[1]);
}

// ---- Connections for catalog reads

class AdminService::Lease {
 public:
  Lease(AdminService* owner, std::unique_ptr<PgConnection> conn) : owner_(owner), conn_(std::move(conn)) {}
  Lease(Lease&& other) = default;
  ~Lease() {
    if (conn_ != nullptr) owner_->Return(std::move(conn_));
  }
  PgConnection& operator*() { return *conn_; }
  PgConnection* operator->() { return conn_.get(); }

 private:
  AdminService* owner_;
  std::unique_ptr<PgConnection> conn_;
};

absl::StatusOr<AdminService::Lease> AdminService::Connection() {
  {
    absl::MutexLock lock(&pool_mu_);
    while (!idle_.empty()) {
      std::unique_ptr<PgConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->ok()) return Lease(this, std::move(conn));
    }
  }
  TRICKLE_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(options_.dsn));
  TRICKLE_RETURN_IF_ERROR(conn->Exec("SET application_name = 'trickle-admin'").status());
  return Lease(this, std::move(conn));
}

void AdminService::Return(std::unique_ptr<PgConnection> conn) {
  // A connection left inside a transaction (an error mid-way) is not reused.
  if (!conn->ok() || PQtransactionStatus(conn->raw()) != PQTRANS_IDLE) return;
  absl::MutexLock lock(&pool_mu_);
  if (static_cast<int>(idle_.size()) < kIdleConnections) idle_.push_back(std::move(conn));
}

// ---- The service

AdminService::AdminService(AdminServiceOptions options, scheduler::StreamTableManager* manager,
                           storage::ChangeLog* log, scheduler::FenceFn fence, StatusCollector* status)
    : options_(std::move(options)), manager_(manager), log_(log), fence_(std::move(fence)), status_(status) {}

absl::Status AdminService::Authorize(const grpc::ServerContext& context) const {
  if (options_.auth_token.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this trickled requires a token: send metadata \"authorization: Bearer <token>\" (the "
        "trickle CLI reads it from --token-file or TRICKLE_AUTH_TOKEN)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      absl::AsciiStrToLower(std::string(value.substr(0, kScheme.size()))) != kScheme) {
    return absl::UnauthenticatedError("the authorization metadata must be \"Bearer <token>\"");
  }
  if (!SameSecret(value.substr(kScheme.size()), options_.auth_token)) {
    return absl::UnauthenticatedError("the token is not valid for this trickled");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::StreamTable>> AdminService::ReadStreamTables(PgConnection& conn,
                                                                          const std::string* name,
                                                                          std::vector<int64_t>* ids) {
  std::vector<std::optional<std::string>> params = {std::nullopt, std::nullopt};
  if (name != nullptr) {
    TRICKLE_ASSIGN_OR_RETURN(auto qualified, SplitStreamTableName(*name));
    params = {qualified.first, qualified.second};
  }
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.ExecParams(std::string(sql::kListStreamTables), params));
  if (name != nullptr && r.rows() == 0) {
    auto qualified = SplitStreamTableName(*name);
    return absl::NotFoundError(absl::StrCat("no stream table named ", qualified->first, ".",
                                            qualified->second, "; `trickle list` shows them all"));
  }
  std::optional<std::string> id_param;
  if (name != nullptr) id_param = std::string(r.Get(0, 0));
  TRICKLE_ASSIGN_OR_RETURN(PgResult src, conn.ExecParams(std::string(sql::kStreamTableSources), {id_param}));
  std::map<int64_t, std::vector<std::pair<std::string, uint32_t>>> sources;
  for (int i = 0; i < src.rows(); ++i) {
    sources[ToInt64(src.Get(i, 0))].emplace_back(std::string(src.Get(i, 1)),
                                                  static_cast<uint32_t>(ToInt64(src.Get(i, 2))));
  }

  absl::Time now = absl::Now();
  std::vector<v1::StreamTable> out;
  for (int i = 0; i < r.rows(); ++i) {
    v1::StreamTable st;
    int64_t id = ToInt64(r.Get(i, 0));
    if (ids != nullptr) ids->push_back(id);
    st.set_schema(std::string(r.Get(i, 1)));
    st.set_table(std::string(r.Get(i, 2)));
    st.set_name(absl::StrCat(st.schema(), ".", st.table()));
    st.set_query(std::string(r.Get(i, 3)));
    st.set_requested_mode(ModeToProto(r.Get(i, 4)));
    st.set_effective_mode(ModeToProto(r.Get(i, 5)));
    st.set_full_refresh_reason(std::string(r.Get(i, 6)));
    st.set_schedule(std::string(r.Get(i, 7)));
    st.set_status(StatusToProto(r.Get(i, 8)));
    st.set_verify(r.Get(i, 9) == "t");
    std::optional<scheduler::Frontier> frontier;
    if (!r.IsNull(i, 10)) {
      auto f = scheduler::Frontier::Decode(r.Get(i, 10));
      if (f.ok()) {
        frontier = *f;
        FrontierToProto(*f, st.mutable_frontier());
      }
    }
    st.set_last_error(std::string(r.Get(i, 11)));
    st.set_consecutive_failures(static_cast<int32_t>(ToInt64(r.Get(i, 12))));
    if (auto t = OptionalDouble(r, i, 13)) SetTimestamp(*t, st.mutable_created_at());
    if (auto t = OptionalDouble(r, i, 14)) SetTimestamp(*t, st.mutable_last_refresh_time());
    if (auto t = OptionalDouble(r, i, 15)) SetTimestamp(*t, st.mutable_last_change_commit_time());
    v1::RefreshCounts* counts = st.mutable_counts();
    counts->set_refreshes(ToInt64(r.Get(i, 16)));
    counts->set_full(ToInt64(r.Get(i, 17)));
    counts->set_differential(ToInt64(r.Get(i, 18)));
    counts->set_failures(ToInt64(r.Get(i, 19)));
    counts->set_average_duration_ms(OptionalDouble(r, i, 20).value_or(0));
    std::vector<uint32_t> oids;
    for (const auto& [source, oid] : sources[id]) {
      st.add_sources(source);
      oids.push_back(oid);
    }
    if (frontier) {
      TRICKLE_ASSIGN_OR_RETURN(std::optional<int64_t> oldest, OldestPendingCommitTime(*log_, *frontier, oids));
      absl::Duration staleness = oldest ? std::max(absl::ZeroDuration(), now - FromPgMicros(*oldest))
                                        : absl::ZeroDuration();
      SetDuration(staleness, st.mutable_staleness());
    }
    // The scheduler's state (catalog version 2): fuse, SLA tier, AUTO cost
    // model. NULL columns: a catalog without them, reported as unknown.
    v1::CostModel* cost = st.mutable_cost_model();
    cost->set_last_full_ms(OptionalDouble(r, i, 21).value_or(0));
    if (!r.IsNull(i, 22)) {
      v1::FuseStatus* fuse = st.mutable_fuse();
      v1::FuseSettings* settings = fuse->mutable_settings();
      settings->set_max_rows(ToInt64(r.Get(i, 24)));
      settings->set_max_multiple(OptionalDouble(r, i, 25).value_or(0));
      settings->set_enabled(settings->max_rows() > 0 || settings->max_multiple() > 0);
      if (r.Get(i, 22) == "BLOWN") {
        fuse->set_state(v1::FUSE_STATE_BLOWN);
      } else {
        fuse->set_state(settings->enabled() ? v1::FUSE_STATE_ARMED : v1::FUSE_STATE_OFF);
      }
      fuse->set_reason(std::string(r.Get(i, 23)));
    }
    if (auto sla_ms = OptionalDouble(r, i, 26)) {
      SetDuration(absl::Milliseconds(*sla_ms), st.mutable_sla()->mutable_freshness());
    }
    if (!r.IsNull(i, 27)) {
      absl::string_view tier = r.Get(i, 27);
      st.mutable_sla()->set_tier(tier == "hot" ? v1::SLA_TIER_HOT
                                 : tier == "warm" ? v1::SLA_TIER_WARM
                                 : tier == "cold" ? v1::SLA_TIER_COLD
                                                  : v1::SLA_TIER_UNSPECIFIED);
    }
    if (!r.IsNull(i, 28)) {
      int samples = static_cast<int>(ToInt64(r.Get(i, 28)));
      cost->set_samples(samples);
      cost->set_slope_ms_per_row(OptionalDouble(r, i, 29).value_or(0));
      cost->set_intercept_ms(OptionalDouble(r, i, 30).value_or(0));
      cost->set_fitted(samples >= scheduler::CostModel::kMinSamples);
    }
    if (auto ms = OptionalDouble(r, i, 31); ms && *ms > 0) {
      SetDuration(absl::Milliseconds(*ms), st.mutable_effective_interval());
    }
    if (auto t = OptionalDouble(r, i, 32)) SetTimestamp(*t, st.mutable_next_retry_at());
    st.set_downstream_publication(std::string(r.Get(i, 33)));
    out.push_back(std::move(st));
  }
  return out;
}

absl::StatusOr<v1::StreamTable> AdminService::ReadStreamTable(const std::string& name) {
  TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
  TRICKLE_ASSIGN_OR_RETURN(std::vector<v1::StreamTable> tables, ReadStreamTables(*conn, &name));
  return tables.front();
}

grpc::Status AdminService::CreateStreamTable(grpc::ServerContext* context,
                                             const v1::CreateStreamTableRequest* request,
                                             v1::CreateStreamTableResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    if (request->name().empty() || request->query().empty()) {
      return absl::InvalidArgumentError("a stream table needs a name and a query");
    }
    scheduler::CreateRequest create;
    if (request->has_fuse()) {
      TRICKLE_ASSIGN_OR_RETURN(create.fuse, FuseFromProto(request->fuse()));
    }
    TRICKLE_ASSIGN_OR_RETURN(create.sla, SlaFromProto(request->sla()));
    if (create.sla && *create.sla == absl::ZeroDuration()) create.sla.reset();
    create.name = request->name();
    create.query = request->query();
    if (auto mode = ModeFromProto(request->mode())) create.mode = *mode;
    if (!request->schedule().empty()) create.schedule = request->schedule();
    create.verify = request->verify();
    TRICKLE_ASSIGN_OR_RETURN(scheduler::StreamTableRow row, manager_->Create(create));
    TRICKLE_ASSIGN_OR_RETURN(*response->mutable_stream_table(), ReadStreamTable(row.QualifiedName()));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::AlterStreamTable(grpc::ServerContext* context,
                                            const v1::AlterStreamTableRequest* request,
                                            v1::AlterStreamTableResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    scheduler::AlterRequest alter;
    if (request->has_fuse()) {
      TRICKLE_ASSIGN_OR_RETURN(alter.fuse, FuseFromProto(request->fuse()));
    }
    if (request->has_sla()) {
      TRICKLE_ASSIGN_OR_RETURN(std::optional<absl::Duration> sla, SlaFromProto(request->sla()));
      alter.sla = sla.value_or(absl::ZeroDuration());  // zero removes the SLA
    }
    if (request->has_query()) alter.query = request->query();
    if (request->has_schedule()) alter.schedule = request->schedule();
    if (request->has_verify()) alter.verify = request->verify();
    alter.mode = ModeFromProto(request->mode());
    if (!alter.query && !alter.schedule && !alter.verify && !alter.mode && !alter.fuse && !alter.sla) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nothing to change for ", request->name(), ": set query, mode, schedule, verify, fuse or sla"));
    }
    TRICKLE_ASSIGN_OR_RETURN(scheduler::StreamTableRow row, manager_->Alter(request->name(), alter));
    TRICKLE_ASSIGN_OR_RETURN(*response->mutable_stream_table(), ReadStreamTable(row.QualifiedName()));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::DropStreamTable(grpc::ServerContext* context,
                                           const v1::DropStreamTableRequest* request,
                                           v1::DropStreamTableResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
    TRICKLE_ASSIGN_OR_RETURN(std::set<std::string> before, StreamTableNames(*conn));
    TRICKLE_RETURN_IF_ERROR(
        manager_->Drop(request->name(), request->behavior() == v1::DROP_BEHAVIOR_CASCADE));
    TRICKLE_ASSIGN_OR_RETURN(std::set<std::string> after, StreamTableNames(*conn));
    for (const std::string& name : before) {
      if (!after.contains(name)) response->add_dropped(name);
    }
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::RefreshStreamTable(grpc::ServerContext* context,
                                              const v1::RefreshStreamTableRequest* request,
                                              v1::RefreshStreamTableResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    absl::Time started = absl::Now();
    TRICKLE_ASSIGN_OR_RETURN(
        scheduler::RefreshResult result,
        manager_->RefreshNow(request->name(), request->full() ? scheduler::RefreshKind::kFull
                                                              : scheduler::RefreshKind::kAuto));
    v1::RefreshRecord* record = response->mutable_refresh();
    RefreshRecordFromResult(result, record);
    SetTimestamp(started, record->mutable_started_at());
    if (result.committed) FrontierToProto(result.frontier, response->mutable_frontier());
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::ListStreamTables(grpc::ServerContext* context,
                                            const v1::ListStreamTablesRequest* request,
                                            v1::ListStreamTablesResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
    TRICKLE_ASSIGN_OR_RETURN(std::vector<v1::StreamTable> tables, ReadStreamTables(*conn, nullptr));
    for (v1::StreamTable& t : tables) *response->add_stream_tables() = std::move(t);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::GetStreamTable(grpc::ServerContext* context, const v1::GetStreamTableRequest* request,
                                          v1::GetStreamTableResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    if (request->history_limit() < 0 || request->history_limit() > kMaxHistory) {
      return absl::InvalidArgumentError(
          absl::StrCat("history_limit ", request->history_limit(), " is out of range 0..", kMaxHistory));
    }
    int limit = request->history_limit() == 0 ? kDefaultHistory : request->history_limit();
    TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
    std::vector<int64_t> ids;
    TRICKLE_ASSIGN_OR_RETURN(std::vector<v1::StreamTable> tables,
                             ReadStreamTables(*conn, &request->name(), &ids));
    *response->mutable_stream_table() = tables.front();
    TRICKLE_ASSIGN_OR_RETURN(PgResult h, conn->ExecParams(std::string(sql::kRecentRefreshes),
                                                          {std::to_string(ids.front()), std::to_string(limit)}));
    for (int i = 0; i < h.rows(); ++i) {
      v1::RefreshRecord* rec = response->add_recent_refreshes();
      rec->set_action(ActionToProto(h.Get(i, 0)));
      rec->set_delta_rows(ToInt64(h.Get(i, 1)));
      rec->set_transactions(ToInt64(h.Get(i, 2)));
      rec->set_rows_affected(ToInt64(h.Get(i, 3)));
      SetDuration(absl::Milliseconds(OptionalDouble(h, i, 4).value_or(0)), rec->mutable_duration());
      rec->set_reason(std::string(h.Get(i, 5)));
      rec->set_error(std::string(h.Get(i, 6)));
      if (auto t = OptionalDouble(h, i, 7)) SetTimestamp(*t, rec->mutable_started_at());
      if (auto t = OptionalDouble(h, i, 8)) SetTimestamp(*t, rec->mutable_finished_at());
      rec->set_frontier(std::string(h.Get(i, 9)));
    }
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::Explain(grpc::ServerContext* context, const v1::ExplainRequest* request,
                                   v1::ExplainResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    TRICKLE_RETURN_IF_ERROR(SplitStreamTableName(request->name()).status());
    TRICKLE_ASSIGN_OR_RETURN(scheduler::StreamTable st, manager_->GetStreamTable(request->name()));
    const delta::DeltaPlan& plan = st.plan;
    response->set_maintained_mode(ModeToProto(plan.maintained_mode));
    response->set_full_refresh_reason(plan.full_refresh_reason);
    response->set_explanation(plan.explanation);
    ExplainNodeToProto(plan.explain_tree, response->mutable_tree());
    response->set_delta_sql(plan.delta_sql);
    response->set_merge_sql(plan.merge_sql);
    for (const std::string& s : plan.full_refresh_sql) response->add_full_refresh_sql(s);
    TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
    TRICKLE_ASSIGN_OR_RETURN(std::set<std::string> stream_tables, StreamTableNames(*conn));
    for (const delta::SourceRelation& s : plan.sources) {
      v1::Source* source = response->add_sources();
      source->set_name(absl::StrCat(s.schema, ".", s.name));
      source->set_oid(s.oid);
      for (const std::string& k : s.key) source->add_key(k);
      source->set_is_stream_table(stream_tables.contains(source->name()));
    }
    if (!request->analyze()) return absl::OkStatus();
    // The delta as the next refresh would see it, staged in a transaction
    // that is rolled back; a Refresher of our own, on our own connection.
    scheduler::Refresher refresher(log_, fence_);
    return refresher.StageDelta(
        *conn, st, [&](PgConnection& c, const scheduler::Refresher::StagedDelta& staged) -> absl::Status {
          TRICKLE_ASSIGN_OR_RETURN(
              PgResult plan_json,
              c.Exec(absl::StrCat("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ", plan.delta_sql)));
          response->set_analyze_json(std::string(plan_json.Get(0, 0)));
          response->set_analyzed_delta_rows(staged.delta_rows);
          response->set_analyzed_transactions(staged.transactions);
          return absl::OkStatus();
        });
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::GetHealth(grpc::ServerContext* context, const v1::GetHealthRequest* request,
                                     v1::GetHealthResponse* response) {
  // No Authorize: health is for probes and load balancers.
  // Fresh database-side figures (a failure shows in the checks below).
  (void)status_->CollectOnce();
  ServiceObservation obs = status_->Latest();
  bool ready = true;
  for (const HealthCheckResult& c : status_->ReadinessChecks()) {
    v1::HealthCheck* check = response->add_checks();
    check->set_name(c.name);
    check->set_ok(c.ok);
    check->set_detail(c.detail);
    ready = ready && c.ok;
  }
  response->set_ready(ready);
  v1::CaptureHealth* capture = response->mutable_capture();
  if (const pgoutput::ReplicationStream* stream = status_->stream()) {
    capture->set_streaming(stream->stats().streaming.load());
    capture->set_received_lsn(FormatLsn(stream->stats().received_lsn.load()));
    capture->set_connects(stream->stats().connects.load());
  }
  capture->set_written_lsn(FormatLsn(log_->high_water_lsn()));
  capture->set_durable_lsn(FormatLsn(log_->durable_lsn()));
  if (const Capture* c = status_->capture()) {
    capture->set_transactions(c->stats().transactions.load());
    capture->set_changes(c->stats().changes.load());
  }
  v1::SlotHealth* slot = response->mutable_slot();
  slot->set_active(obs.slot.active);
  if (obs.slot.confirmed_flush) slot->set_confirmed_flush_lsn(FormatLsn(*obs.slot.confirmed_flush));
  if (obs.slot.restart) slot->set_restart_lsn(FormatLsn(*obs.slot.restart));
  if (obs.slot.current_wal != 0) slot->set_current_wal_lsn(FormatLsn(obs.slot.current_wal));
  slot->set_lag_bytes(obs.slot.lag_bytes);
  slot->set_retained_wal_bytes(obs.slot.retained_wal_bytes);
  SetDuration(absl::Seconds(obs.slot.lag_seconds), slot->mutable_lag());
  slot->set_wal_status(obs.slot.wal_status);
  storage::ChangeLogStats stats = log_->Stats();
  v1::ChangeLogHealth* change_log = response->mutable_change_log();
  change_log->set_approximate_bytes(stats.approximate_bytes);
  change_log->set_transactions(stats.transaction_count);
  change_log->set_oldest_retained_lsn(FormatLsn(stats.oldest_commit_lsn));
  change_log->set_newest_lsn(FormatLsn(stats.newest_commit_lsn));
  response->mutable_workers()->set_total(status_->workers_total());
  response->mutable_workers()->set_busy(status_->workers_busy());
  auto [error, error_time] = status_->LastError();
  if (!error.empty()) {
    response->set_last_error(error);
    SetTimestamp(error_time, response->mutable_last_error_time());
  }
  for (const StreamTableObservation& st : obs.stream_tables) {
    (*response->mutable_stream_tables_by_status())[st.status]++;
  }
  response->set_version(kTrickleVersion);
  SetTimestamp(status_->started_at(), response->mutable_started_at());
  if (obs.collected_at != absl::InfinitePast()) SetTimestamp(obs.collected_at, response->mutable_collected_at());
  return grpc::Status::OK;
}

grpc::Status AdminService::ResetFuse(grpc::ServerContext* context, const v1::ResetFuseRequest* request,
                                     v1::ResetFuseResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    if (request->action() == v1::FUSE_RESET_ACTION_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          "choose what happens to the delta that blew the fuse: action APPLY, REINITIALIZE or "
          "SKIP_CHANGES");
    }
    scheduler::FuseAction action = scheduler::FuseAction::kApply;
    if (request->action() == v1::FUSE_RESET_ACTION_REINITIALIZE) action = scheduler::FuseAction::kReinitialize;
    if (request->action() == v1::FUSE_RESET_ACTION_SKIP_CHANGES) action = scheduler::FuseAction::kSkipChanges;
    TRICKLE_ASSIGN_OR_RETURN(scheduler::RefreshResult result, manager_->ResetFuse(request->name(), action));
    RefreshRecordFromResult(result, response->mutable_refresh());
    TRICKLE_ASSIGN_OR_RETURN(*response->mutable_stream_table(), ReadStreamTable(request->name()));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

absl::StatusOr<std::vector<v1::Publication>> AdminService::ReadPublications(PgConnection& conn,
                                                                           const std::string* name) {
  std::vector<std::optional<std::string>> params = {std::nullopt, std::nullopt};
  if (name != nullptr) {
    TRICKLE_ASSIGN_OR_RETURN(auto qualified, SplitStreamTableName(*name));
    params = {qualified.first, qualified.second};
  }
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.ExecParams(std::string(sql::kListPublications), params));
  std::vector<v1::Publication> out;
  for (int i = 0; i < r.rows(); ++i) {
    v1::Publication p;
    p.set_stream_table(std::string(r.Get(i, 0)));
    p.set_name(std::string(r.Get(i, 1)));
    for (absl::string_view c : absl::StrSplit(r.Get(i, 2), ',', absl::SkipEmpty())) p.add_columns(std::string(c));
    absl::string_view identity = r.Get(i, 3);
    for (absl::string_view c : absl::StrSplit(r.Get(i, 4), ',', absl::SkipEmpty())) {
      p.add_primary_key(std::string(c));
    }
    if (identity == "f") p.set_replica_identity("FULL");
    else if (identity == "d") p.set_replica_identity(p.primary_key().empty() ? "NOTHING" : "PRIMARY KEY");
    else if (identity == "i") p.set_replica_identity("INDEX");
    else if (identity == "n") p.set_replica_identity("NOTHING");
    for (absl::string_view op : absl::StrSplit(r.Get(i, 5), ',', absl::SkipEmpty())) {
      p.add_operations(std::string(op));
    }
    out.push_back(std::move(p));
  }
  return out;
}

grpc::Status AdminService::CreatePublication(grpc::ServerContext* context,
                                             const v1::CreatePublicationRequest* request,
                                             v1::CreatePublicationResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    TRICKLE_ASSIGN_OR_RETURN(scheduler::StreamTableRow row,
                             manager_->CreatePublication(request->name(), request->publication()));
    TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
    std::string name = row.QualifiedName();
    TRICKLE_ASSIGN_OR_RETURN(std::vector<v1::Publication> found, ReadPublications(*conn, &name));
    if (found.empty()) {
      return absl::InternalError(absl::StrCat("publication of ", name, " not found right after creating it"));
    }
    *response->mutable_publication() = std::move(found[0]);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::DropPublication(grpc::ServerContext* context,
                                           const v1::DropPublicationRequest* request,
                                           v1::DropPublicationResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    TRICKLE_ASSIGN_OR_RETURN(scheduler::StreamTable before, manager_->GetStreamTable(request->name()));
    TRICKLE_RETURN_IF_ERROR(manager_->DropPublication(request->name()).status());
    response->set_publication(before.row.downstream_publication);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status AdminService::ListPublications(grpc::ServerContext* context,
                                            const v1::ListPublicationsRequest* request,
                                            v1::ListPublicationsResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    TRICKLE_RETURN_IF_ERROR(Authorize(*context));
    TRICKLE_ASSIGN_OR_RETURN(Lease conn, Connection());
    TRICKLE_ASSIGN_OR_RETURN(std::vector<v1::Publication> all, ReadPublications(*conn, nullptr));
    for (auto& p : all) *response->add_publications() = std::move(p);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartAdminServer(const AdminServerOptions& options,
                                                               AdminService* service, int* port) {
  // Reflection lets grpcurl and similar tools discover the API; it is
  // registered through this call (the plugin's static initialiser alone
  // can be dropped by the linker).
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(kMaxAdminMessageBytes);
  builder.SetMaxSendMessageSize(kMaxAdminMessageBytes);
  // gRPC sets SO_REUSEPORT by default: a second trickled would then share
  // the port (and split the calls) instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", options.address,
                                               "; choose another --grpc-address"));
  }
  return server;
}

}  // namespace trickle::service
