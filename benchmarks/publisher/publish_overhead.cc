// publish_overhead: what publishing a stream table costs its refreshes, and
// what the diffed FULL refresh saves, as ratios against an unpublished twin
// measured in the same run (same query, same source changes, refreshes
// alternated A/B and B/A).
//
// Two pairs of stream tables on one source (orders: id, customer, amount):
//   agg:  SELECT customer, count(*), sum(amount) GROUP BY customer  (natural key)
//   proj: SELECT id, customer, amount WHERE amount >= 10             (carried key)
//   nullkey: SELECT amount, count(*), max(id) GROUP BY amount         (nullable key)
// each once unpublished ("plain") and once published ("pub"). Per round:
//   differential  --changes source rows updated, then each table refreshed;
//   full_same     a FULL refresh with nothing changed (pub: diff, emits
//                 nothing; plain: TRUNCATE + INSERT);
//   full_changed  --changes rows updated, then a FULL refresh.
// Reported per case: median refresh wall time and WAL bytes written by the
// refresh (pg_current_wal_lsn around it; the fence of both is included),
// pub / plain. Starts its own throwaway PostgreSQL (tests/support).
//
//   publish_overhead [--rows=200000] [--changes=200] [--rounds=7] [--json=FILE]
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "benchmarks/refresh/in_process_capture.h"
#include "benchmarks/refresh/proc_cpu.h"
#include "common/status_macros.h"
#include "scheduler/stream_table_manager.h"
#include "spdlog/spdlog.h"
#include "tests/support/postgres_server.h"

ABSL_FLAG(int, rows, 200000, "Source rows.");
ABSL_FLAG(int, customers, 2000, "Distinct customers (groups of agg).");
ABSL_FLAG(int, changes, 200, "Source rows updated before each differential and full_changed refresh.");
ABSL_FLAG(int, rounds, 7, "Rounds (each alternates which twin refreshes first).");
ABSL_FLAG(std::string, json, "", "Also write the results as JSON to this file.");

namespace trickle::bench {
namespace {

struct Sample {
  double ms = 0;
  double wal_bytes = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

absl::StatusOr<Sample> TimedRefresh(scheduler::StreamTableManager& m, PgConnection& sql,
                                    const std::string& name, scheduler::RefreshKind kind) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult before, sql.Exec("SELECT pg_current_wal_lsn()::text"));
  std::string from(before.Get(0, 0));
  absl::Time start = absl::Now();
  TRICKLE_RETURN_IF_ERROR(m.RefreshNow(name, kind).status());
  Sample s;
  s.ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  TRICKLE_ASSIGN_OR_RETURN(PgResult wal,
                           sql.ExecParams("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)", {from}));
  absl::SimpleAtod(wal.Get(0, 0), &s.wal_bytes);
  return s;
}

absl::Status Run() {
  testing::PostgresServer server;
  TRICKLE_RETURN_IF_ERROR(server.Start());
  TRICKLE_ASSIGN_OR_RETURN(auto sql, server.Connect());
  const int rows = absl::GetFlag(FLAGS_rows), changes = absl::GetFlag(FLAGS_changes);
  TRICKLE_RETURN_IF_ERROR(
      sql->Exec(absl::StrCat("CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, amount int);"
                             "ALTER TABLE orders REPLICA IDENTITY FULL;"
                             "INSERT INTO orders SELECT i, i % ",
                             absl::GetFlag(FLAGS_customers), ", i % 100 FROM generate_series(1, ", rows,
                             ") i; ANALYZE orders"))
          .status());
  std::string dir = testing::MakeTempDir("trickle-publish-bench-");
  InProcessCaptureOptions capture_options;
  capture_options.dsn = server.Dsn();
  capture_options.slot_name = "trickle";
  capture_options.publication_name = "trickle_sources";
  capture_options.data_dir = dir;
  TRICKLE_ASSIGN_OR_RETURN(auto capture, InProcessCapture::Start(capture_options));
  scheduler::ManagerOptions options;
  options.dsn = server.Dsn();
  options.publication_name = capture_options.publication_name;
  options.set_replica_identity = true;
  TRICKLE_ASSIGN_OR_RETURN(auto manager,
                           scheduler::StreamTableManager::Open(options, &capture->log(), capture->fence_fn()));
  const std::map<std::string, std::string> queries = {
      {"agg", "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer"},
      {"proj", "SELECT id, customer, amount FROM orders WHERE amount >= 10"},
      // amount is nullable: identity through __pgt_row_id, the temp-table diff
      {"nullkey", "SELECT amount, count(*) AS n, max(id) AS top FROM orders GROUP BY amount"},
  };
  for (const auto& [name, query] : queries) {
    for (const char* twin : {"plain", "pub"}) {
      scheduler::CreateRequest request;
      request.name = absl::StrCat(name, "_", twin);
      request.query = query;
      request.mode = delta::RefreshMode::kDifferential;
      request.schedule = "1h";
      TRICKLE_RETURN_IF_ERROR(manager->Create(request).status());
    }
    TRICKLE_RETURN_IF_ERROR(manager->CreatePublication(absl::StrCat(name, "_pub"), "").status());
  }
  auto change = [&]() -> absl::Status {
    return sql
        ->Exec(absl::StrCat("UPDATE orders SET amount = (amount + 7) % 100 WHERE id IN (SELECT (random() * ",
                            rows - 1, ")::int + 1 FROM generate_series(1, ", changes, "))"))
        .status();
  };
  // case -> query -> twin -> samples
  std::map<std::string, std::map<std::string, std::map<std::string, std::vector<Sample>>>> results;
  const int rounds = absl::GetFlag(FLAGS_rounds);
  for (int round = 0; round < rounds + 1; ++round) {  // round 0 warms up
    for (const std::string c : {"differential", "full_same", "full_changed"}) {
      if (c != "full_same") TRICKLE_RETURN_IF_ERROR(change());
      // The capture has the changes before either twin refreshes: its lag
      // is not charged to whichever refreshes first.
      TRICKLE_RETURN_IF_ERROR(capture->fences().Emit().status());
      scheduler::RefreshKind kind = c == "differential" ? scheduler::RefreshKind::kAuto : scheduler::RefreshKind::kFull;
      for (const auto& [name, query] : queries) {
        std::vector<std::string> order = {"plain", "pub"};
        if (round % 2 == 1) std::swap(order[0], order[1]);
        for (const std::string& twin : order) {
          TRICKLE_ASSIGN_OR_RETURN(Sample s, TimedRefresh(*manager, *sql, absl::StrCat(name, "_", twin), kind));
          if (round > 0) results[c][name][twin].push_back(s);
        }
      }
    }
  }

  std::string load = LoadAverage();
  std::printf("publish_overhead: %d source rows, %d changed per round, %d rounds (median), load average %s\n\n",
              rows, changes, rounds, load.c_str());
  std::printf("| case | stream table | plain ms | published ms | time pub/plain | plain WAL | published WAL | WAL pub/plain |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::string json = absl::StrCat("{\"rows\": ", rows, ", \"changes\": ", changes, ", \"rounds\": ", rounds,
                                   ", \"load_average\": \"", load, "\", \"results\": [");
  bool first = true;
  for (const auto& [c, by_query] : results) {
    for (const auto& [name, twins] : by_query) {
      auto med = [&](const std::string& twin, bool wal) {
        std::vector<double> v;
        for (const Sample& s : twins.at(twin)) v.push_back(wal ? s.wal_bytes : s.ms);
        return Median(v);
      };
      double pm = med("plain", false), bm = med("pub", false), pw = med("plain", true), bw = med("pub", true);
      std::printf("| %s | %s | %.1f | %.1f | %.2f | %.0f | %.0f | %.3f |\n", c.c_str(), name.c_str(), pm, bm,
                  bm / pm, pw, bw, pw > 0 ? bw / pw : 0);
      absl::StrAppend(&json, first ? "" : ", ",
                      absl::StrFormat("{\"case\": \"%s\", \"stream_table\": \"%s\", \"plain_ms\": %.2f, "
                                      "\"published_ms\": %.2f, \"plain_wal_bytes\": %.0f, "
                                      "\"published_wal_bytes\": %.0f}",
                                      c, name, pm, bm, pw, bw));
      first = false;
    }
  }
  absl::StrAppend(&json, "]}\n");
  if (!absl::GetFlag(FLAGS_json).empty()) std::ofstream(absl::GetFlag(FLAGS_json)) << json;
  manager.reset();
  capture.reset();
  return absl::OkStatus();
}

}  // namespace
}  // namespace trickle::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  absl::Status s = trickle::bench::Run();
  if (!s.ok()) {
    std::fprintf(stderr, "publish_overhead: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
