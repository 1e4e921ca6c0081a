// The capture's client side alone, without a server: the pgoutput messages
// of the capture benchmark's workload (transactions of inserts into
// bench(id bigint, a int, b text, c numeric), text format) are encoded once,
// then fed to Capture::OnXLogData over a real change log in a temporary
// directory, syncing as the service does (group commit every --sync-ms) and
// at the end. Reports changes/s of the stream thread and the process CPU time
// per change (stream thread plus RocksDB's background flushes and
// compactions), which is what competes with the walsender for the cores.
//
// capture_bench.py measures the whole path against pg_recvlogical; this one
// says how much of a core the client needs for it.
//
// --relations N spreads each transaction's rows over N tables in turn (all
// of the same shape): `--txn-rows 4 --relations 4` is the shape of a pgbench
// transaction, where the cost per transaction rules, not the cost per row.
//
// Usage: capture_consumer_benchmark [--changes N] [--txn-rows N] [--relations N] [--sync-ms N]
//                                   [--rounds N]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "service/capture.h"
#include "storage/change_log.h"
#include "tests/pgoutput/message_builder.h"

namespace trickle {
namespace {

using pgoutput::testing::Encode;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long PeakRssKib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

struct Message {
  Lsn start;
  std::string bytes;
};

// The stream capture_bench.py makes the walsender send: Relation once, then
// transactions of `txn_rows` inserts (id, id % 100, md5-like text, id * 1.5),
// row i of a transaction into relation i % `relations`.
std::vector<Message> BuildStream(int changes, int txn_rows, int relations) {
  std::vector<Message> out;
  out.reserve(changes + 2 * (changes / txn_rows + 1) + 1);
  std::vector<pgoutput::RelationMessage> rels(relations);
  for (int r = 0; r < relations; ++r) {
    rels[r].relation_oid = 16384 + r;
    rels[r].namespace_name = "public";
    rels[r].relation_name = r == 0 ? "bench" : absl::StrCat("bench", r);
    rels[r].replica_identity = 'f';
    rels[r].columns = {{true, "id", 20, -1}, {true, "a", 23, -1}, {true, "b", 25, -1},
                       {true, "c", 1700, -1}};
  }
  Lsn lsn = 0x1000000;
  bool relation_sent = false;
  for (int first = 1; first <= changes; first += txn_rows) {
    int last = std::min(changes, first + txn_rows - 1);
    Lsn begin_lsn = lsn;
    Lsn commit_lsn = lsn + 200 * static_cast<Lsn>(last - first + 1);
    out.push_back({begin_lsn, Encode(pgoutput::BeginMessage{commit_lsn, 0, 1000u + first})});
    if (!relation_sent) {
      for (const auto& rel : rels) out.push_back({begin_lsn, Encode(rel)});
      relation_sent = true;
    }
    for (int id = first; id <= last; ++id) {
      pgoutput::InsertMessage ins;
      ins.relation_oid = rels[(id - first) % relations].relation_oid;
      char md5[33];
      std::snprintf(md5, sizeof(md5), "%08x%08x%08x%08x", id * 2654435761u, id ^ 0x5bd1e995,
                    id * 40503u, ~id);
      ins.new_tuple = {{pgoutput::ColumnKind::kText, absl::StrCat(id)},
                       {pgoutput::ColumnKind::kText, absl::StrCat(id % 100)},
                       {pgoutput::ColumnKind::kText, md5},
                       {pgoutput::ColumnKind::kText, absl::StrCat(id, ".", (id % 2) * 5)}};
      lsn += 200;
      out.push_back({lsn, Encode(ins)});
    }
    out.push_back({commit_lsn, Encode(pgoutput::CommitMessage{0, commit_lsn, commit_lsn + 48, 0})});
    lsn = commit_lsn + 48;
  }
  return out;
}

int Run(int changes, int txn_rows, int relations, int sync_ms, int rounds) {
  std::vector<Message> stream = BuildStream(changes, txn_rows, relations);
  uint64_t wire_bytes = 0;
  for (const Message& m : stream) wire_bytes += m.bytes.size();
  std::printf("workload: %d changes in transactions of %d rows over %d relations, %zu messages, "
              "%.1f MiB of pgoutput payload; sync every %d ms\n",
              changes, txn_rows, relations, stream.size(), wire_bytes / 1048576.0, sync_ms);
  for (int round = 0; round < rounds; ++round) {
    std::string dir = absl::StrCat(std::filesystem::temp_directory_path().string(),
                                   "/capture-consumer-bench-", getpid(), "-", round);
    std::filesystem::remove_all(dir);
    {
      storage::ChangeLogOptions options;
      options.path = dir;
      auto log = storage::ChangeLog::Open(options);
      if (!log.ok()) {
        std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
        return 1;
      }
      service::CaptureOptions capture_options;
      capture_options.sync_interval = absl::Milliseconds(sync_ms);
      auto capture = service::Capture::Create(log->get(), capture_options);
      if (!capture.ok()) {
        std::fprintf(stderr, "%s\n", capture.status().ToString().c_str());
        return 1;
      }
      const double cpu0 = CpuSeconds();
      const auto t0 = std::chrono::steady_clock::now();
      // The stream never pauses here: the capture syncs at commits every
      // sync interval, and once more at the end.
      for (size_t i = 0; i < stream.size(); ++i) {
        const Message& m = stream[i];
        absl::Status s = (*capture)->OnXLogData(m.start, m.start, m.bytes);
        if (!s.ok()) {
          std::fprintf(stderr, "message %zu: %s\n", i, s.ToString().c_str());
          return 1;
        }
      }
      if (absl::Status st = (*capture)->OnIdle(/*stopping=*/true); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = CpuSeconds() - cpu0;
      storage::ChangeLogStats stats = (*log)->Stats();
      std::printf("round %d: %.2f s, %.0f changes/s, CPU %.2f s (%.2f us/change), log %.1f MiB, "
                  "durable %s, peak RSS %.1f MiB (with the prepared stream)\n",
                  round, seconds, changes / seconds, cpu, cpu * 1e6 / changes,
                  stats.approximate_bytes / 1048576.0, FormatLsn(stats.durable_lsn).c_str(),
                  PeakRssKib() / 1024.0);
    }
    std::filesystem::remove_all(dir);
  }
  return 0;
}

}  // namespace
}  // namespace trickle

int main(int argc, char** argv) {
  int changes = 1'000'000, txn_rows = 10'000, relations = 1, sync_ms = 100, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--changes")) changes = v;
    else if (!std::strcmp(argv[i], "--txn-rows")) txn_rows = v;
    else if (!std::strcmp(argv[i], "--relations")) relations = v;
    else if (!std::strcmp(argv[i], "--sync-ms")) sync_ms = v;
    else if (!std::strcmp(argv[i], "--rounds")) rounds = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (changes <= 0 || txn_rows <= 0 || relations <= 0 || sync_ms <= 0 || rounds <= 0) {
    std::fprintf(stderr, "options must be positive\n");
    return 2;
  }
  return trickle::Run(changes, txn_rows, relations, sync_ms, rounds);
}
