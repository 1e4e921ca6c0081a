// The HTTP endpoints of a real trickled: /metrics parsed by a real parser
// (promtool check metrics) and covering the service, /healthz and /readyz,
// hostile HTTP that must get a 4xx and never crash the service; and
// monitoring/: the alert rules checked and unit-tested with promtool, and
// every metric the rules and the Grafana dashboard use present in /metrics.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/admin/trickled_process.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command with `input` on stdin; stdout and stderr together.
CommandResult Shell(const std::string& command, const std::string& input = "") {
  std::string dir = MakeTempDir("trickle-obs-");
  std::ofstream(dir + "/in") << input;
  int status = std::system(absl::StrCat(command, " <", dir, "/in >", dir, "/out 2>&1").c_str());
  CommandResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(dir + "/out")};
  std::filesystem::remove_all(dir);
  return r;
}

std::string Promtool() {
  std::string path = PROMTOOL_PATH;
  if (path.empty() || absl::EndsWith(path, "NOTFOUND")) {
    ADD_FAILURE() << "promtool not found: install the Debian package prometheus (scripts/install-deps.sh)";
    return "";
  }
  return path;
}

// Metric names /metrics declares (# TYPE lines), with the series names a
// histogram adds.
std::set<std::string> ExportedNames(const std::string& metrics) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() < 4) continue;
    names.insert(parts[2]);
    if (parts[3] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(parts[2] + suffix);
    }
  }
  return names;
}

std::set<std::string> TrickleNamesIn(const std::string& text) {
  std::set<std::string> names;
  std::regex re(R"(\btrickle_[a-z0-9_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sql = TestPostgres().Connect();
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
  }
  void StartService(const std::string& name) {
    TrickledOptions options;
    options.name = name;
    auto started = TrickledProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    trickled_ = std::move(*started);
  }
  // A stream table with one FULL and one DIFFERENTIAL refresh behind it, so
  // every per-table series exists.
  void MakeStreamTable(const std::string& prefix) {
    ASSERT_TRUE(sql_->Exec(absl::StrCat("CREATE TABLE ", prefix, "_src (id int PRIMARY KEY, g int);"
                                        "ALTER TABLE ", prefix, "_src REPLICA IDENTITY FULL;"
                                        "INSERT INTO ", prefix, "_src SELECT i, i % 4 FROM generate_series(1, 20) i"))
                    .ok());
    CliResult r = RunCli({"create", prefix + "_st", absl::StrCat("SELECT g, count(*) AS n FROM ", prefix, "_src GROUP BY g"),
                          "--schedule=downstream"},
                         {{"TRICKLE_ADDRESS", trickled_->grpc_address()}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(sql_->Exec(absl::StrCat("DELETE FROM ", prefix, "_src WHERE id = 1")).ok());
    r = RunCli({"refresh", prefix + "_st"}, {{"TRICKLE_ADDRESS", trickled_->grpc_address()}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // /metrics once the status collector has seen `expect` (it reads the
  // catalog every 2 s).
  std::string ScrapeUntil(const std::string& expect) {
    std::string body;
    for (int i = 0; i < 100; ++i) {
      auto reply = HttpGet(trickled_->http_port(), "/metrics");
      if (reply.ok()) body = reply->body;
      if (absl::StrContains(body, expect)) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    EXPECT_THAT(body, HasSubstr(expect));
    return body;
  }

  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<TrickledProcess> trickled_;
};

TEST_F(ObservabilityTest, MetricsPassPromtoolAndDescribeTheService) {
  StartService("obsmetrics");
  MakeStreamTable("obsm");
  std::string metrics = ScrapeUntil(
      "trickle_refreshes_total{stream_table=\"public.obsm_st\",action=\"DIFFERENTIAL\",outcome=\"success\"} 1");
  auto reply = HttpGet(trickled_->http_port(), "/metrics");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");

  std::string promtool = Promtool();
  ASSERT_FALSE(promtool.empty());
  CommandResult check = Shell(promtool + " check metrics", metrics);
  EXPECT_EQ(check.exit_code, 0) << check.output << "\n" << metrics;

  // What the issue asks the service to export, per stream table and for the capture.
  for (const std::string& series : {
           std::string("trickle_refreshes_total{stream_table=\"public.obsm_st\",action=\"FULL\",outcome=\"success\"} 1"),
           std::string("trickle_refresh_duration_seconds_count{stream_table=\"public.obsm_st\",action=\"FULL\"} 1"),
           std::string("trickle_refresh_delta_rows_total{stream_table=\"public.obsm_st\"} 1"),
           std::string("trickle_stream_table_staleness_seconds{stream_table=\"public.obsm_st\"} 0"),
           std::string("trickle_stream_table_status{stream_table=\"public.obsm_st\",status=\"ACTIVE\"} 1"),
           std::string("trickle_stream_table_status{stream_table=\"public.obsm_st\",status=\"ERROR\"} 0"),
           std::string("trickle_stream_table_fuse_blown{stream_table=\"public.obsm_st\"} 0"),
           std::string("trickle_stream_table_consecutive_failures{stream_table=\"public.obsm_st\"} 0"),
           std::string("trickle_capture_streaming 1"),
           std::string("trickle_slot_active 1"),
           std::string("trickle_ready 1"),
           std::string("trickle_database_up 1"),
       }) {
    EXPECT_THAT(metrics, HasSubstr(series + "\n"));
  }
  for (const char* family :
       {"trickle_capture_received_lsn", "trickle_capture_written_lsn", "trickle_capture_durable_lsn",
        "trickle_capture_transactions_total", "trickle_slot_lag_bytes", "trickle_slot_lag_seconds",
        "trickle_slot_retained_wal_bytes", "trickle_change_log_bytes", "trickle_change_log_oldest_lsn",
        "trickle_refresh_workers", "trickle_refresh_workers_busy", "trickle_refresh_worker_busy_seconds_total",
        "trickle_stream_table_last_refresh_timestamp_seconds", "trickle_build_info"}) {
    EXPECT_THAT(metrics, HasSubstr(absl::StrCat("\n", family))) << family;
  }

  // A dropped stream table takes its series with it.
  CliResult r = RunCli({"drop", "obsm_st"}, {{"TRICKLE_ADDRESS", trickled_->grpc_address()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 100 && absl::StrContains(metrics, "obsm_st"); ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    metrics = HttpGet(trickled_->http_port(), "/metrics")->body;
  }
  EXPECT_THAT(metrics, ::testing::Not(HasSubstr("obsm_st")));
}

TEST_F(ObservabilityTest, HealthzAndReadyz) {
  StartService("obshealth");
  auto healthz = HttpGet(trickled_->http_port(), "/healthz");
  ASSERT_TRUE(healthz.ok());
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, "ok\n");
  auto readyz = HttpGet(trickled_->http_port(), "/readyz?verbose=1");
  ASSERT_TRUE(readyz.ok());
  EXPECT_EQ(readyz->status, 200);
  EXPECT_EQ(readyz->body, "ready\ndatabase: ok\nslot_streaming: ok\ncatalog: ok\n");
  // HEAD: the headers of GET, no body.
  std::string head = SendRaw(trickled_->http_port(), "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(head), 200);
  EXPECT_THAT(head, HasSubstr("Content-Length: 3\r\n"));
  EXPECT_TRUE(absl::EndsWith(head, "\r\n\r\n")) << head;
  // Keep-alive: two requests on one connection.
  std::string two = SendRaw(trickled_->http_port(),
                            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\n\r\n");
  EXPECT_EQ(std::count(two.begin(), two.end(), '\n') >= 8, true) << two;
  EXPECT_EQ(two.find("HTTP/1.1 200", 10) != std::string::npos, true) << two;
}

TEST_F(ObservabilityTest, MalformedAndHostileHttpGets4xxAndNeverCrashes) {
  StartService("obshostile");
  const int port = trickled_->http_port();
  struct Case {
    std::string name;
    std::string request;
    int status;
  };
  std::vector<Case> cases = {
      {"unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404},
      {"POST", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 405},
      {"DELETE", "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405},
      {"absolute-form target", "GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n", 400},
      {"no version", "GET /metrics\r\n\r\n", 400},
      {"bad version", "GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", 400},
      {"header without colon", "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", 400},
      {"NUL in the target", std::string("GET /met\0rics HTTP/1.1\r\nHost: x\r\n\r\n", 38), 400},
      {"huge header", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n", 431},
      {"many headers", "GET /metrics HTTP/1.1\r\n" + [] {
         std::string h;
         for (int i = 0; i < 2000; ++i) h += "X-H" + std::to_string(i) + ": v\r\n";
         return h;
       }() + "\r\n", 431},
      {"huge URL", "GET /" + std::string(100 * 1024, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
      {"body over the limit", "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                                  std::string(100000, 'b'), 413},
      {"chunked body over the limit", "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "10000\r\n" + std::string(0x10000, 'c') + "\r\n0\r\n\r\n", 413},
      {"bad chunk size", "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"negative length", "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400},
      {"two lengths", "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
  };
  for (const Case& c : cases) {
    std::string reply = SendRaw(port, c.request);
    EXPECT_EQ(StatusOf(reply), c.status) << c.name << ": " << reply.substr(0, 200);
  }

  // Random bytes and random mutations of a good request (seeded; printed on failure).
  uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const std::string good = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
  for (int i = 0; i < 300; ++i) {
    std::string req;
    if (i % 2 == 0) {
      req.resize(1 + rng() % 2000);
      for (char& ch : req) ch = static_cast<char>(rng());
    } else {
      req = good;
      for (int m = 0; m < 1 + static_cast<int>(rng() % 8); ++m) {
        size_t at = rng() % req.size();
        switch (rng() % 3) {
          case 0: req[at] = static_cast<char>(rng()); break;
          case 1: req.insert(at, std::string(1 + rng() % 64, static_cast<char>(rng()))); break;
          default: req.erase(at, 1 + rng() % 8); break;
        }
      }
    }
    std::string reply = SendRaw(port, req, absl::Milliseconds(300));
    int status = StatusOf(reply);
    // Whatever it is: no 5xx; a reply, when there is one, is a real HTTP status.
    EXPECT_TRUE(status == 0 || (status >= 200 && status < 500)) << "status " << status << " for case " << i;
  }

  // Idle connections that send nothing, beyond the connection limit: the
  // server closes them or refuses the surplus, and keeps serving.
  std::vector<std::thread> idle;
  for (int i = 0; i < 100; ++i) idle.emplace_back([port] { SendRaw(port, "", absl::Seconds(1)); });
  for (auto& t : idle) t.join();
  // A request dribbled in slowly still works.
  std::string slow = SendRaw(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(slow), 200);

  ASSERT_TRUE(trickled_->Alive()) << trickled_->Log();
  auto healthz = HttpGet(port, "/healthz");
  ASSERT_TRUE(healthz.ok());
  EXPECT_EQ(healthz->status, 200);
  auto metrics = HttpGet(port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
}

TEST_F(ObservabilityTest, AlertRulesPassPromtoolCheckAndTheirUnitTests) {
  std::string promtool = Promtool();
  ASSERT_FALSE(promtool.empty());
  std::string rules = std::string(MONITORING_DIR) + "/prometheus/trickle-alerts.yml";
  CommandResult check = Shell(promtool + " check rules " + rules);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr("SUCCESS"));
  // The unit tests (series in, alerts out) live next to the rules.
  CommandResult test = Shell("cd " + std::string(MONITORING_DIR) + "/prometheus && " + promtool +
                             " test rules trickle-alerts.test.yml");
  EXPECT_EQ(test.exit_code, 0) << test.output;
  EXPECT_THAT(test.output, HasSubstr("SUCCESS"));
}

TEST_F(ObservabilityTest, DashboardAndRulesUseOnlyExportedMetrics) {
  StartService("obsnames");
  MakeStreamTable("obsn");
  std::string metrics = ScrapeUntil("trickle_refreshes_total{stream_table=\"public.obsn_st\",action=\"DIFFERENTIAL\"");
  std::set<std::string> exported = ExportedNames(metrics);
  ASSERT_GT(exported.size(), 20u);

  std::string dashboard_path = std::string(MONITORING_DIR) + "/grafana/trickle-dashboard.json";
  std::string rules_path = std::string(MONITORING_DIR) + "/prometheus/trickle-alerts.yml";
  std::string dashboard = ReadFile(dashboard_path);
  std::string rules = ReadFile(rules_path);
  ASSERT_FALSE(dashboard.empty());
  ASSERT_FALSE(rules.empty());
  std::set<std::string> used = TrickleNamesIn(dashboard);
  std::set<std::string> in_rules = TrickleNamesIn(rules);
  EXPECT_GT(used.size(), 10u);
  EXPECT_GT(in_rules.size(), 5u);
  used.insert(in_rules.begin(), in_rules.end());
  for (const std::string& name : used) {
    EXPECT_TRUE(exported.contains(name)) << name << " is used by the dashboard or the rules but not exported";
  }
  // Besides trickle_*, the rules' expressions may select Prometheus' own `up` only.
  std::regex selector(R"(\b([a-z_][a-z0-9_]*)\{)");
  int expressions = 0;
  for (absl::string_view line : absl::StrSplit(rules, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::StartsWith(line, "expr:")) continue;
    ++expressions;
    std::string expr(line);
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), selector); it != std::sregex_iterator(); ++it) {
      std::string name = (*it)[1];
      EXPECT_TRUE(absl::StartsWith(name, "trickle_") || name == "up") << "rules select " << name;
    }
  }
  EXPECT_GE(expressions, 10);

  // The dashboard is valid JSON with a query on every panel.
  CommandResult json = Shell(
      "python3 -c 'import json,sys\n"
      "d = json.load(open(sys.argv[1]))\n"
      "panels = [p for p in d[\"panels\"] if p[\"type\"] != \"row\"]\n"
      "assert len(panels) >= 10, len(panels)\n"
      "ids = [p[\"id\"] for p in d[\"panels\"]]\n"
      "assert len(ids) == len(set(ids)), \"duplicate panel ids\"\n"
      "for p in panels:\n"
      "    assert p[\"targets\"] and all(t[\"expr\"] for t in p[\"targets\"]), p[\"title\"]\n"
      "print(\"ok\", len(panels))' " + dashboard_path);
  EXPECT_EQ(json.exit_code, 0) << json.output;
}

}  // namespace
}  // namespace trickle::testing
