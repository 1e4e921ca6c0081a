// trickle: the command-line client of trickled's admin RPC (trickle.admin.v1).
// A thin client: every command is one RPC; tables for people by default,
// the RPC's response as JSON with --json, and exit codes scripts can rely
// on (docs/cli.md):
//
//   0 success                      5 conflict (already exists, a dependent
//   1 failed (anything else)         blocks it, wrong state)
//   2 usage error                  6 trickled unreachable or timed out
//   3 not found                    7 not authorized (token missing or wrong)
//   4 invalid request (e.g. an     8 health: trickled is not ready
//     unsupported query)
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "admin.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"

namespace v1 = trickle::admin::v1;

namespace {

enum ExitCode {
  kOk = 0,
  kFailed = 1,
  kUsage = 2,
  kNotFound = 3,
  kInvalid = 4,
  kConflict = 5,
  kUnreachable = 6,
  kUnauthorized = 7,
  kNotReady = 8,
};

constexpr char kDefaultAddress[] = "127.0.0.1:7433";

constexpr char kUsageText[] =
    R"(trickle: drive and watch trickled (stream tables for PostgreSQL) over its admin RPC.

Usage: trickle [global options] COMMAND [arguments] [options]

Commands:
  create NAME QUERY       create a stream table (QUERY '-' reads it from stdin)
  alter NAME              change its query, mode, schedule or verify flag
  drop NAME               drop a stream table
  refresh NAME            refresh now and wait for the result
  list                    every stream table, one line each
  status NAME             one stream table in detail, with recent refreshes
  explain NAME            how it is maintained: operator tree, delta SQL, MERGE
  health                  the service's health (exit 8 when not ready)
  fuse reset NAME         reset a blown fuse
  publish NAME            publish its changes for subscribers (Debezium, CREATE SUBSCRIPTION)
  unpublish NAME          drop its downstream publication
  publications            every downstream publication

Global options (anywhere on the line):
  --address=HOST:PORT     trickled's admin RPC (env TRICKLE_ADDRESS; default 127.0.0.1:7433)
  --token-file=FILE       bearer token file (else env TRICKLE_AUTH_TOKEN)
  --json                  print the RPC response as JSON
  --timeout=DURATION      give up after this long (default 10m)
  -h, --help              help (also after a command: trickle create --help)
  --version

Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 invalid request,
5 conflict, 6 unreachable/timeout, 7 not authorized, 8 not ready (health).
)";

struct CommandSpec {
  const char* name;
  const char* usage;
  std::map<std::string, bool> options;  // name -> takes a value
  size_t min_positional;
  size_t max_positional;
};

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {"create",
       R"(Usage: trickle create NAME QUERY [--mode=auto|full|differential] [--schedule=SCHEDULE]
                                 [--sla=DURATION] [--fuse-max-rows=N] [--fuse-max-multiple=X] [--verify]

Creates stream table NAME ("name" or "schema.name") holding QUERY's result,
runs its initial FULL refresh and prints it. QUERY '-' reads the query from
standard input.
  --mode               AUTO (default) lets the scheduler choose per refresh; DIFFERENTIAL
                       refuses queries it cannot maintain incrementally, naming the construct
  --schedule           when to refresh: unset = as soon as a source changes; an interval
                       (500ms, 5s, 1m); a cron expression ('*/5 * * * *'); or downstream
  --sla                freshness deadline, e.g. 5s: the scheduler picks a tier to meet it
  --fuse-max-rows      stop refreshing (fuse blown) when a delta exceeds N rows
  --fuse-max-multiple  ... or exceeds X times the recent average delta
  --verify             check after every refresh that it equals its query (slow)
)",
       {{"mode", true}, {"schedule", true}, {"verify", false}, {"sla", true}, {"fuse-max-rows", true},
        {"fuse-max-multiple", true}},
       2,
       2},
      {"alter",
       R"(Usage: trickle alter NAME [--query=QUERY] [--mode=MODE] [--schedule=SCHEDULE] [--verify=true|false]
                         [--sla=DURATION] [--fuse-max-rows=N] [--fuse-max-multiple=X]

Changes what is given; a new query rebuilds the stream table. --sla=0 removes
the SLA. The fuse options replace the fuse settings together (both 0 = off).
)",
       {{"query", true}, {"mode", true}, {"schedule", true}, {"verify", true}, {"sla", true},
        {"fuse-max-rows", true}, {"fuse-max-multiple", true}},
       1,
       1},
      {"drop",
       R"(Usage: trickle drop NAME [--cascade]

Drops the stream table. Refused (exit 5) when another stream table reads it,
unless --cascade, which drops the readers too.
)",
       {{"cascade", false}},
       1,
       1},
      {"refresh",
       R"(Usage: trickle refresh NAME [--full]

Refreshes now and waits; prints what the refresh did.
  --full   a FULL refresh instead of applying the changes
)",
       {{"full", false}},
       1,
       1},
      {"list", "Usage: trickle list\n\nEvery stream table: status, mode, schedule, staleness, last refresh.\n", {}, 0, 0},
      {"status",
       R"(Usage: trickle status NAME [--history=N]

One stream table in detail and its N latest refreshes (default 10).
)",
       {{"history", true}},
       1,
       1},
      {"explain",
       R"(Usage: trickle explain NAME [--analyze]

The operator tree with each operator's delta strategy, the delta SQL and the
MERGE. --analyze also runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of the delta
SQL on the changes pending now, in a transaction that is rolled back.
)",
       {{"analyze", false}},
       1,
       1},
      {"health",
       "Usage: trickle health\n\nCapture, slot, change log and workers. Exit 8 when trickled is not ready.\n",
       {},
       0,
       0},
      {"fuse",
       R"(Usage: trickle fuse reset NAME --action=apply|reinitialize|skip-changes

Resets a blown fuse and says what happens to the delta that blew it:
  apply          apply it after all
  reinitialize   rebuild the stream table with a FULL refresh
  skip-changes   discard it; the stream table keeps its data
)",
       {{"action", true}},
       2,
       2},
      {"publish",
       R"(Usage: trickle publish NAME [--publication=PUBLICATION]

Creates a PostgreSQL publication of stream table NAME for downstream
consumers (CREATE SUBSCRIPTION, Debezium, Kafka Connect): its visible
columns, inserts, updates, deletes and truncates; the stream table's natural
key becomes its primary key where it has one. Each refresh that changes it
also emits a logical message 'trickle.refresh'. See docs/publications.md.
  --publication   the publication's name (default NAME_pub; SCHEMA_NAME_pub outside public)
)",
       {{"publication", true}},
       1,
       1},
      {"unpublish",
       R"(Usage: trickle unpublish NAME

Drops the downstream publication of stream table NAME (exit 3 when it has
none). A publication trickle did not create is never dropped (exit 5).
)",
       {},
       1,
       1},
      {"publications",
       "Usage: trickle publications\n\nEvery downstream publication: stream table, columns, replica identity.\n",
       {},
       0,
       0},
  };
  return *commands;
}

const std::map<std::string, bool>& GlobalOptions() {
  static const auto* options = new std::map<std::string, bool>{
      {"address", true}, {"token-file", true}, {"json", false}, {"timeout", true}, {"help", false}};
  return *options;
}

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  bool Has(const std::string& name) const { return options.contains(name); }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
};

class UsageError {
 public:
  explicit UsageError(std::string message) : message(std::move(message)) {}
  std::string message;
};

// Parses options anywhere among the arguments ("--name=value", "--name
// value", "--flag", "-h"); "--" ends the options.
std::optional<Args> Parse(const std::vector<std::string>& argv, const std::map<std::string, bool>& spec,
                          std::string* error) {
  Args args;
  bool options_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (options_done || a.size() < 2 || a[0] != '-' || a == "-") {
      args.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "-h") {
      args.options["help"] = "";
      continue;
    }
    if (!absl::StartsWith(a, "--")) {
      *error = absl::StrCat("unknown option ", a);
      return std::nullopt;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    auto it = spec.find(name);
    if (it == spec.end()) {
      *error = absl::StrCat("unknown option --", name);
      return std::nullopt;
    }
    if (it->second && !has_value) {
      if (i + 1 >= argv.size()) {
        *error = absl::StrCat("--", name, " needs a value");
        return std::nullopt;
      }
      value = argv[++i];
    } else if (!it->second && has_value) {
      *error = absl::StrCat("--", name, " takes no value");
      return std::nullopt;
    }
    args.options[name] = value;
  }
  return args;
}

// ---- Formatting

std::string FormatDuration(const google::protobuf::Duration& d) {
  double seconds = static_cast<double>(d.seconds()) + d.nanos() / 1e9;
  if (seconds == 0) return "0s";
  if (seconds < 1e-3) return absl::StrFormat("%.0fus", seconds * 1e6);
  if (seconds < 1) return absl::StrFormat("%.1fms", seconds * 1e3);
  if (seconds < 60) return absl::StrFormat("%.1fs", seconds);
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  return absl::StrFormat("%dh%02dm", static_cast<int>(seconds) / 3600, (static_cast<int>(seconds) % 3600) / 60);
}

google::protobuf::Duration Since(const google::protobuf::Timestamp& t) {
  absl::Duration d = absl::Now() - absl::FromUnixSeconds(t.seconds()) - absl::Nanoseconds(t.nanos());
  google::protobuf::Duration out;
  int64_t nanos = absl::ToInt64Nanoseconds(std::max(d, absl::ZeroDuration()));
  out.set_seconds(nanos / 1000000000);
  out.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return out;
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f %s", bytes, units[u]) : absl::StrFormat("%.1f %s", bytes, units[u]);
}

std::string EnumName(const std::string& full, const std::string& prefix) {
  std::string s = absl::StartsWith(full, prefix) ? full.substr(prefix.size()) : full;
  return s == "UNSPECIFIED" ? "-" : s;
}
std::string Mode(v1::RefreshMode m) { return EnumName(v1::RefreshMode_Name(m), "REFRESH_MODE_"); }
std::string Status(v1::StreamTableStatus s) { return EnumName(v1::StreamTableStatus_Name(s), "STREAM_TABLE_STATUS_"); }
std::string Action(v1::RefreshAction a) { return EnumName(v1::RefreshAction_Name(a), "REFRESH_ACTION_"); }

std::string FormatFrontier(const v1::StreamTable& st) {
  if (!st.has_frontier()) return "- (not refreshed yet)";
  std::string s = st.frontier().lsn();
  if (st.frontier().exceptions_size() > 0) {
    absl::StrAppend(&s, " except ", absl::StrJoin(st.frontier().exceptions(), ", "));
  }
  return s;
}

// A table with left-aligned columns, two spaces apart.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

void PrintField(const std::string& name, const std::string& value) {
  std::printf("%-16s %s\n", (name + ":").c_str(), value.c_str());
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::printf("%s", json.c_str());
  if (json.empty() || json.back() != '\n') std::printf("\n");
}

void PrintRefresh(const std::string& name, const v1::RefreshRecord& r) {
  if (r.action() == v1::REFRESH_ACTION_NO_DATA) {
    std::printf("refreshed %s: nothing to apply (NO_DATA)\n", name.c_str());
    return;
  }
  std::string reason = r.reason().empty() ? "" : " (" + r.reason() + ")";
  if (r.action() == v1::REFRESH_ACTION_DIFFERENTIAL) {
    std::printf("refreshed %s: DIFFERENTIAL, %lld delta rows from %lld transactions, %lld rows written in %s\n",
                name.c_str(), static_cast<long long>(r.delta_rows()), static_cast<long long>(r.transactions()),
                static_cast<long long>(r.rows_affected()), FormatDuration(r.duration()).c_str());
  } else if (r.action() == v1::REFRESH_ACTION_SKIPPED) {
    std::printf("refreshed %s: SKIPPED %lld delta rows from %lld transactions%s\n", name.c_str(),
                static_cast<long long>(r.delta_rows()), static_cast<long long>(r.transactions()), reason.c_str());
  } else {
    std::printf("refreshed %s: %s, %lld rows written in %s%s\n", name.c_str(), Action(r.action()).c_str(),
                static_cast<long long>(r.rows_affected()), FormatDuration(r.duration()).c_str(), reason.c_str());
  }
}

std::string PublicationIdentity(const v1::Publication& pub) {
  if (pub.replica_identity() == "PRIMARY KEY") {
    return absl::StrCat("primary key (", absl::StrJoin(pub.primary_key(), ", "), ")");
  }
  std::string out = pub.replica_identity().empty() ? "-" : pub.replica_identity();
  if (!pub.primary_key().empty()) absl::StrAppend(&out, "; key (", absl::StrJoin(pub.primary_key(), ", "), ")");
  return out;
}

void PrintStreamTable(const v1::StreamTable& st) {
  PrintField("name", st.name());
  PrintField("status", Status(st.status()));
  std::string mode = Mode(st.effective_mode());
  if (st.requested_mode() != st.effective_mode()) absl::StrAppend(&mode, " (requested ", Mode(st.requested_mode()), ")");
  if (!st.full_refresh_reason().empty()) absl::StrAppend(&mode, "; full refresh because ", st.full_refresh_reason());
  PrintField("mode", mode);
  std::string schedule = st.schedule().empty() ? "on change" : st.schedule();
  if (st.has_effective_interval()) {
    absl::StrAppend(&schedule, " (falling behind: every ", FormatDuration(st.effective_interval()), ")");
  }
  PrintField("schedule", schedule);
  PrintField("staleness", st.has_staleness() ? FormatDuration(st.staleness()) : "-");
  PrintField("last refresh", st.has_last_refresh_time()
                                 ? absl::StrCat(FormatTime(st.last_refresh_time()), " (",
                                                FormatDuration(Since(st.last_refresh_time())), " ago)")
                                 : "-");
  PrintField("frontier", FormatFrontier(st));
  const v1::RefreshCounts& c = st.counts();
  PrintField("refreshes", absl::StrFormat("%d (full %d, differential %d), failures %d, average %.1fms",
                                          c.refreshes(), c.full(), c.differential(), c.failures(),
                                          c.average_duration_ms()));
  PrintField("failing", absl::StrCat(st.consecutive_failures(), " in a row"));
  PrintField("sources", st.sources().empty() ? "-" : absl::StrJoin(st.sources(), ", "));
  PrintField("verify", st.verify() ? "on" : "off");
  std::string fuse;
  switch (st.fuse().state()) {
    case v1::FUSE_STATE_OFF: fuse = "off"; break;
    case v1::FUSE_STATE_ARMED:
      fuse = absl::StrFormat("armed (max %d rows, max %.1fx recent)", st.fuse().settings().max_rows(),
                             st.fuse().settings().max_multiple());
      break;
    case v1::FUSE_STATE_BLOWN: fuse = absl::StrCat("BLOWN: ", st.fuse().reason()); break;
    default: fuse = "not reported";
  }
  PrintField("fuse", fuse);
  const v1::CostModel& cost = st.cost_model();
  std::string model = cost.fitted()
                          ? absl::StrFormat("%.2fms + %.4fms/row (%d samples)", cost.intercept_ms(),
                                            cost.slope_ms_per_row(), cost.samples())
                          : absl::StrFormat("not fitted (%d samples)", cost.samples());
  if (cost.last_full_ms() > 0) absl::StrAppend(&model, absl::StrFormat("; last FULL %.1fms", cost.last_full_ms()));
  PrintField("cost model", model);
  std::string sla = "none";
  if (st.sla().has_freshness()) {
    sla = absl::StrCat(FormatDuration(st.sla().freshness()), " (tier ",
                       EnumName(v1::SlaTier_Name(st.sla().tier()), "SLA_TIER_"), ")");
  }
  PrintField("sla", sla);
  PrintField("last error", st.last_error().empty() ? "-" : st.last_error());
  if (!st.downstream_publication().empty()) PrintField("publication", st.downstream_publication());
  if (st.has_next_retry_at()) PrintField("next retry", FormatTime(st.next_retry_at()));
  std::printf("query:\n");
  for (absl::string_view line : absl::StrSplit(st.query(), '\n')) {
    std::printf("  %s\n", std::string(line).c_str());
  }
}

// ---- The RPC side

class Client {
 public:
  Client(std::string address, std::string token, absl::Duration timeout)
      : address_(std::move(address)), token_(std::move(token)), timeout_(timeout) {
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(4 << 20);
    stub_ = v1::TrickleAdmin::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), channel_args));
  }

  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout_)));
    if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
    return context;
  }
  v1::TrickleAdmin::Stub& stub() { return *stub_; }
  const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::string token_;
  absl::Duration timeout_;
  std::unique_ptr<v1::TrickleAdmin::Stub> stub_;
};

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kOk;
    case grpc::StatusCode::NOT_FOUND: return kNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE: return kInvalid;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED: return kConflict;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED: return kUnreachable;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return kUnauthorized;
    default: return kFailed;
  }
}

int Fail(const std::string& command, const grpc::Status& status, const Client& client) {
  static const char* const kCodeNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int code = static_cast<int>(status.error_code());
  const char* name = code >= 0 && code <= 16 ? kCodeNames[code] : "UNKNOWN";
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = absl::StrCat("cannot reach trickled at ", client.address(), " (", message,
                           "); is it running? Set --address or TRICKLE_ADDRESS");
  }
  std::fprintf(stderr, "trickle %s: %s: %s\n", command.c_str(), name, message.c_str());
  return ExitCodeFor(status.error_code());
}

std::optional<v1::RefreshMode> ParseMode(const std::string& text) {
  std::string upper = absl::AsciiStrToUpper(text);
  if (upper == "AUTO") return v1::REFRESH_MODE_AUTO;
  if (upper == "FULL") return v1::REFRESH_MODE_FULL;
  if (upper == "DIFFERENTIAL") return v1::REFRESH_MODE_DIFFERENTIAL;
  return std::nullopt;
}

int Usage(const CommandSpec* spec, const std::string& message) {
  std::fprintf(stderr, "trickle: %s\n\n%s", message.c_str(), spec != nullptr ? spec->usage : kUsageText);
  return kUsage;
}

// --sla, --fuse-max-rows, --fuse-max-multiple into the request's messages.
int SchedulingOptions(const CommandSpec& spec, const Args& args, v1::Sla* sla, v1::FuseSettings* fuse) {
  if (args.Has("sla")) {
    absl::Duration d;
    if (!absl::ParseDuration(args.Get("sla"), &d) || d < absl::ZeroDuration()) {
      return Usage(&spec, absl::StrCat("--sla=", args.Get("sla"), " is not a duration like 5s or 1m"));
    }
    int64_t nanos = absl::ToInt64Nanoseconds(d);
    sla->mutable_freshness()->set_seconds(nanos / 1000000000);
    sla->mutable_freshness()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  }
  if (args.Has("fuse-max-rows")) {
    int64_t rows = 0;
    if (!absl::SimpleAtoi(args.Get("fuse-max-rows"), &rows) || rows < 0) {
      return Usage(&spec, absl::StrCat("--fuse-max-rows=", args.Get("fuse-max-rows"), " is not a row count"));
    }
    fuse->set_max_rows(rows);
  }
  if (args.Has("fuse-max-multiple")) {
    double multiple = 0;
    if (!absl::SimpleAtod(args.Get("fuse-max-multiple"), &multiple) || multiple < 0) {
      return Usage(&spec, absl::StrCat("--fuse-max-multiple=", args.Get("fuse-max-multiple"), " is not a number"));
    }
    fuse->set_max_multiple(multiple);
  }
  return kOk;
}

int Run(const CommandSpec& spec, const Args& args, Client& client, bool json) {
  const std::string command = spec.name;
  const auto& p = args.positional;
  if (command == "create") {
    v1::CreateStreamTableRequest req;
    req.set_name(p[0]);
    std::string query = p[1];
    if (query == "-") query.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    req.set_query(query);
    if (args.Has("mode")) {
      auto mode = ParseMode(args.Get("mode"));
      if (!mode) return Usage(&spec, absl::StrCat("--mode=", args.Get("mode"), " is not auto, full or differential"));
      req.set_mode(*mode);
    }
    req.set_schedule(args.Get("schedule"));
    req.set_verify(args.Has("verify"));
    if (int rc = SchedulingOptions(spec, args, req.mutable_sla(), req.mutable_fuse()); rc != kOk) return rc;
    if (!args.Has("sla")) req.clear_sla();
    if (!args.Has("fuse-max-rows") && !args.Has("fuse-max-multiple")) req.clear_fuse();
    v1::CreateStreamTableResponse resp;
    grpc::Status s = client.stub().CreateStreamTable(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    const v1::StreamTable& st = resp.stream_table();
    std::printf("created %s (%s, schedule %s)\n", st.name().c_str(), Mode(st.effective_mode()).c_str(),
                st.schedule().empty() ? "on change" : st.schedule().c_str());
    return kOk;
  }
  if (command == "alter") {
    v1::AlterStreamTableRequest req;
    req.set_name(p[0]);
    if (args.Has("query")) req.set_query(args.Get("query"));
    if (args.Has("schedule")) req.set_schedule(args.Get("schedule"));
    if (args.Has("mode")) {
      auto mode = ParseMode(args.Get("mode"));
      if (!mode) return Usage(&spec, absl::StrCat("--mode=", args.Get("mode"), " is not auto, full or differential"));
      req.set_mode(*mode);
    }
    if (args.Has("verify")) {
      bool verify = false;
      if (!absl::SimpleAtob(args.Get("verify"), &verify)) {
        return Usage(&spec, absl::StrCat("--verify=", args.Get("verify"), " is not true or false"));
      }
      req.set_verify(verify);
    }
    if (int rc = SchedulingOptions(spec, args, req.mutable_sla(), req.mutable_fuse()); rc != kOk) return rc;
    if (!args.Has("sla")) req.clear_sla();
    if (!args.Has("fuse-max-rows") && !args.Has("fuse-max-multiple")) req.clear_fuse();
    if (!args.Has("query") && !args.Has("schedule") && !args.Has("mode") && !args.Has("verify") &&
        !req.has_sla() && !req.has_fuse()) {
      return Usage(&spec, "nothing to change: give --query, --mode, --schedule, --verify, --sla or a fuse option");
    }
    v1::AlterStreamTableResponse resp;
    grpc::Status s = client.stub().AlterStreamTable(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    const v1::StreamTable& st = resp.stream_table();
    std::printf("altered %s (%s, schedule %s)\n", st.name().c_str(), Mode(st.effective_mode()).c_str(),
                st.schedule().empty() ? "on change" : st.schedule().c_str());
    return kOk;
  }
  if (command == "drop") {
    v1::DropStreamTableRequest req;
    req.set_name(p[0]);
    req.set_behavior(args.Has("cascade") ? v1::DROP_BEHAVIOR_CASCADE : v1::DROP_BEHAVIOR_RESTRICT);
    v1::DropStreamTableResponse resp;
    grpc::Status s = client.stub().DropStreamTable(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    std::printf("dropped %s\n", absl::StrJoin(resp.dropped(), ", ").c_str());
    return kOk;
  }
  if (command == "refresh") {
    v1::RefreshStreamTableRequest req;
    req.set_name(p[0]);
    req.set_full(args.Has("full"));
    v1::RefreshStreamTableResponse resp;
    grpc::Status s = client.stub().RefreshStreamTable(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    PrintRefresh(p[0], resp.refresh());
    return kOk;
  }
  if (command == "list") {
    v1::ListStreamTablesResponse resp;
    grpc::Status s = client.stub().ListStreamTables(client.Context().get(), v1::ListStreamTablesRequest(), &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    if (resp.stream_tables().empty()) {
      std::printf("no stream tables\n");
      return kOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "STATUS", "MODE", "SCHEDULE", "STALENESS", "LAST REFRESH", "REFRESHES", "FAILURES"}};
    for (const v1::StreamTable& st : resp.stream_tables()) {
      rows.push_back({st.name(), Status(st.status()), Mode(st.effective_mode()),
                      st.schedule().empty() ? "on change" : st.schedule(),
                      st.has_staleness() ? FormatDuration(st.staleness()) : "-",
                      st.has_last_refresh_time() ? FormatDuration(Since(st.last_refresh_time())) + " ago" : "-",
                      absl::StrCat(st.counts().refreshes()), absl::StrCat(st.counts().failures())});
    }
    PrintTable(rows);
    return kOk;
  }
  if (command == "status") {
    v1::GetStreamTableRequest req;
    req.set_name(p[0]);
    if (args.Has("history")) {
      int n = 0;
      if (!absl::SimpleAtoi(args.Get("history"), &n) || n < 0) {
        return Usage(&spec, absl::StrCat("--history=", args.Get("history"), " is not a count"));
      }
      req.set_history_limit(n);
    }
    v1::GetStreamTableResponse resp;
    grpc::Status s = client.stub().GetStreamTable(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    PrintStreamTable(resp.stream_table());
    if (!resp.recent_refreshes().empty()) {
      std::printf("recent refreshes:\n");
      std::vector<std::vector<std::string>> rows = {
          {"  FINISHED", "ACTION", "DELTA ROWS", "TXNS", "ROWS", "DURATION", "REASON / ERROR"}};
      for (const v1::RefreshRecord& r : resp.recent_refreshes()) {
        rows.push_back({"  " + FormatTime(r.finished_at()), Action(r.action()), absl::StrCat(r.delta_rows()),
                        absl::StrCat(r.transactions()), absl::StrCat(r.rows_affected()),
                        FormatDuration(r.duration()), r.error().empty() ? r.reason() : "ERROR: " + r.error()});
      }
      PrintTable(rows);
    }
    return kOk;
  }
  if (command == "explain") {
    v1::ExplainRequest req;
    req.set_name(p[0]);
    req.set_analyze(args.Has("analyze"));
    v1::ExplainResponse resp;
    grpc::Status s = client.stub().Explain(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    std::printf("%s: maintained by %s refresh%s\n", p[0].c_str(), Mode(resp.maintained_mode()).c_str(),
                resp.full_refresh_reason().empty() ? "" : (" (" + resp.full_refresh_reason() + ")").c_str());
    std::printf("\n%s", resp.explanation().c_str());
    if (resp.explanation().empty() || resp.explanation().back() != '\n') std::printf("\n");
    if (!resp.delta_sql().empty()) std::printf("\n-- delta SQL\n%s\n", resp.delta_sql().c_str());
    if (!resp.merge_sql().empty()) std::printf("\n-- MERGE\n%s\n", resp.merge_sql().c_str());
    if (resp.delta_sql().empty()) {
      std::printf("\n-- full refresh SQL\n%s\n", absl::StrJoin(resp.full_refresh_sql(), ";\n").c_str());
    }
    if (req.analyze()) {
      std::printf("\n-- EXPLAIN (ANALYZE, BUFFERS) of the delta SQL on %lld pending delta rows from %lld "
                  "transactions (rolled back)\n%s\n",
                  static_cast<long long>(resp.analyzed_delta_rows()),
                  static_cast<long long>(resp.analyzed_transactions()), resp.analyze_json().c_str());
    }
    return kOk;
  }
  if (command == "health") {
    v1::GetHealthResponse resp;
    grpc::Status s = client.stub().GetHealth(client.Context().get(), v1::GetHealthRequest(), &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) {
      PrintJson(resp);
      return resp.ready() ? kOk : kNotReady;
    }
    PrintField("ready", resp.ready() ? "yes" : "NO");
    for (const v1::HealthCheck& c : resp.checks()) {
      std::printf("  %-16s %s%s\n", c.name().c_str(), c.ok() ? "ok" : "FAIL",
                  c.detail().empty() ? "" : (" (" + c.detail() + ")").c_str());
    }
    const v1::CaptureHealth& cap = resp.capture();
    PrintField("capture", absl::StrCat(cap.streaming() ? "streaming" : "NOT streaming", ", received ",
                                       cap.received_lsn(), ", stored ", cap.written_lsn(), ", durable ",
                                       cap.durable_lsn(), "; ", cap.transactions(), " transactions, ",
                                       cap.changes(), " changes since start"));
    const v1::SlotHealth& slot = resp.slot();
    PrintField("slot", absl::StrCat(slot.active() ? "active" : "INACTIVE", ", lag ",
                                    FormatBytes(static_cast<double>(slot.lag_bytes())), " (",
                                    FormatDuration(slot.lag()), "), retains ",
                                    FormatBytes(static_cast<double>(slot.retained_wal_bytes())), " of WAL",
                                    slot.wal_status().empty() ? "" : ", wal_status " + slot.wal_status()));
    const v1::ChangeLogHealth& log = resp.change_log();
    PrintField("change log", absl::StrCat(FormatBytes(static_cast<double>(log.approximate_bytes())), ", ",
                                          log.transactions(), " transactions, oldest ", log.oldest_retained_lsn()));
    PrintField("workers", absl::StrCat(resp.workers().busy(), " of ", resp.workers().total(), " busy"));
    std::vector<std::string> by_status;
    for (const char* st : {"ACTIVE", "ERROR", "SUSPENDED", "REINIT"}) {
      auto it = resp.stream_tables_by_status().find(st);
      if (it != resp.stream_tables_by_status().end()) by_status.push_back(absl::StrCat(it->second, " ", st));
    }
    PrintField("stream tables", by_status.empty() ? "none" : absl::StrJoin(by_status, ", "));
    PrintField("last error", resp.last_error().empty()
                                 ? "-"
                                 : absl::StrCat(resp.last_error(), " (", FormatDuration(Since(resp.last_error_time())),
                                                " ago)"));
    PrintField("version", resp.version());
    return resp.ready() ? kOk : kNotReady;
  }
  if (command == "fuse") {
    if (p[0] != "reset") return Usage(&spec, absl::StrCat("unknown fuse command \"", p[0], "\"; use fuse reset"));
    v1::ResetFuseRequest req;
    req.set_name(p[1]);
    std::string action = absl::AsciiStrToLower(args.Get("action"));
    if (action == "apply") req.set_action(v1::FUSE_RESET_ACTION_APPLY);
    else if (action == "reinitialize") req.set_action(v1::FUSE_RESET_ACTION_REINITIALIZE);
    else if (action == "skip-changes" || action == "skip_changes") req.set_action(v1::FUSE_RESET_ACTION_SKIP_CHANGES);
    else return Usage(&spec, "--action must be apply, reinitialize or skip-changes");
    v1::ResetFuseResponse resp;
    grpc::Status s = client.stub().ResetFuse(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail("fuse reset", s, client);
    if (json) return PrintJson(resp), kOk;
    std::printf("fuse of %s reset (%s)\n", resp.stream_table().name().c_str(), action.c_str());
    PrintRefresh(resp.stream_table().name(), resp.refresh());
    return kOk;
  }
  if (command == "publish") {
    v1::CreatePublicationRequest req;
    req.set_name(p[0]);
    req.set_publication(args.Get("publication"));
    v1::CreatePublicationResponse resp;
    grpc::Status s = client.stub().CreatePublication(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    const v1::Publication& pub = resp.publication();
    std::printf("published %s as publication %s\n", pub.stream_table().c_str(), pub.name().c_str());
    PrintField("columns", absl::StrJoin(pub.columns(), ", "));
    PrintField("identity", PublicationIdentity(pub));
    PrintField("operations", absl::StrJoin(pub.operations(), ", "));
    return kOk;
  }
  if (command == "unpublish") {
    v1::DropPublicationRequest req;
    req.set_name(p[0]);
    v1::DropPublicationResponse resp;
    grpc::Status s = client.stub().DropPublication(client.Context().get(), req, &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    std::printf("dropped publication %s of %s\n", resp.publication().c_str(), p[0].c_str());
    return kOk;
  }
  if (command == "publications") {
    v1::ListPublicationsResponse resp;
    grpc::Status s = client.stub().ListPublications(client.Context().get(), v1::ListPublicationsRequest(), &resp);
    if (!s.ok()) return Fail(command, s, client);
    if (json) return PrintJson(resp), kOk;
    std::vector<std::vector<std::string>> rows = {{"PUBLICATION", "STREAM TABLE", "IDENTITY", "COLUMNS"}};
    for (const v1::Publication& pub : resp.publications()) {
      rows.push_back({pub.name(), pub.stream_table(), PublicationIdentity(pub), absl::StrJoin(pub.columns(), ",")});
    }
    PrintTable(rows);
    return kOk;
  }
  return Usage(nullptr, absl::StrCat("unknown command \"", command, "\""));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> argv_rest(argv + 1, argv + argc);
  if (argv_rest.empty()) return Usage(nullptr, "no command given");
  // The command is the first argument that is neither an option nor the
  // value of a global option; its own options are checked afterwards.
  std::optional<std::string> command_name;
  bool help = false, version = false;
  for (size_t i = 0; i < argv_rest.size(); ++i) {
    const std::string& a = argv_rest[i];
    if (a == "-h" || a == "--help") {
      help = true;
    } else if (a == "--version") {
      version = true;
    } else if (absl::StartsWith(a, "--")) {
      std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
      auto global = GlobalOptions().find(name);
      if (global != GlobalOptions().end() && global->second && a.find('=') == std::string::npos) ++i;
    } else if (a != "-" && !a.empty() && a[0] == '-') {
      // an unknown short option: reported below, with the command's usage
    } else {
      command_name = a;
      break;
    }
  }
  if (!command_name) {
    if (version) return std::printf("trickle 0.1.0\n"), kOk;
    if (help) return std::printf("%s", kUsageText), kOk;
    return Usage(nullptr, "no command given");
  }
  if (*command_name == "help") {
    std::vector<std::string> rest;
    for (const std::string& a : argv_rest) {
      if (a[0] != '-' && a != "help") rest.push_back(a);
    }
    if (!rest.empty()) {
      for (const CommandSpec& c : Commands()) {
        if (rest[0] == c.name) return std::printf("%s", c.usage), kOk;
      }
      return Usage(nullptr, absl::StrCat("unknown command \"", rest[0], "\""));
    }
    return std::printf("%s", kUsageText), kOk;
  }
  std::string error;
  const std::string command = *command_name;
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& c : Commands()) {
    if (command == c.name) spec = &c;
  }
  if (spec == nullptr) return Usage(nullptr, absl::StrCat("unknown command \"", command, "\""));

  // Again, with only this command's options.
  std::map<std::string, bool> allowed = GlobalOptions();
  allowed.insert(spec->options.begin(), spec->options.end());
  auto args = Parse(argv_rest, allowed, &error);
  if (!args) return Usage(spec, error);
  if (args->Has("help")) return std::printf("%s", spec->usage), kOk;
  args->positional.erase(args->positional.begin());
  if (args->positional.size() < spec->min_positional || args->positional.size() > spec->max_positional) {
    return Usage(spec, absl::StrCat(command, " takes ", spec->min_positional,
                                    spec->min_positional == spec->max_positional ? "" : " or more",
                                    " argument", spec->max_positional == 1 ? "" : "s", ", got ",
                                    args->positional.size()));
  }

  std::string address = args->Get("address");
  if (address.empty()) {
    const char* env = std::getenv("TRICKLE_ADDRESS");
    address = env != nullptr && *env != '\0' ? env : kDefaultAddress;
  }
  std::string token;
  if (args->Has("token-file")) {
    std::ifstream in(args->Get("token-file"));
    if (!in) return Usage(spec, absl::StrCat("cannot read --token-file=", args->Get("token-file")));
    token.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (const char* env = std::getenv("TRICKLE_AUTH_TOKEN")) {
    token = env;
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  absl::Duration timeout = absl::Minutes(10);
  if (args->Has("timeout") && (!absl::ParseDuration(args->Get("timeout"), &timeout) || timeout <= absl::ZeroDuration())) {
    return Usage(spec, absl::StrCat("--timeout=", args->Get("timeout"), " is not a duration like 30s or 5m"));
  }
  Client client(address, token, timeout);
  return Run(*spec, *args, client, args->Has("json"));
}
