// Dispatch cost of one scheduler tick (no database): building the candidate
// list is the coordinator's O(n) scan; ChooseDispatch filters the due ones,
// pulls 'downstream' upstreams and computes DAG readiness. A random layered
// DAG: every stream table reads 0-3 earlier ones; 10% have pending changes.
#include <random>

#include "benchmark/benchmark.h"
#include "scheduler/dag.h"

namespace trickle::scheduler {
namespace {

struct World {
  Dag dag;
  std::vector<DispatchCandidate> candidates;
};

World MakeWorld(int n, uint32_t seed) {
  World w;
  std::mt19937 rng(seed);
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  for (int id = 1; id <= n; ++id) {
    std::vector<StreamTableId> ups;
    int k = id > 1 ? rng() % 4 : 0;
    for (int i = 0; i < k; ++i) ups.push_back(1 + rng() % (id - 1));
    std::sort(ups.begin(), ups.end());
    ups.erase(std::unique(ups.begin(), ups.end()), ups.end());
    w.dag.Set(id, ups);
    DispatchCandidate c;
    c.id = id;
    c.needs_refresh = rng() % 10 == 0;
    c.running = rng() % 50 == 0;
    c.pulled_by_readers = rng() % 20 == 0;
    c.due = now + absl::Milliseconds(static_cast<int>(rng() % 200) - 100);
    w.candidates.push_back(c);
  }
  return w;
}

void BM_SchedulerTick(benchmark::State& state) {
  World w = MakeWorld(static_cast<int>(state.range(0)), 42);
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  size_t dispatched = 0;
  for (auto _ : state) {
    // The scan that builds candidates is part of a tick: copy them as it would.
    std::vector<DispatchCandidate> candidates = w.candidates;
    absl::Time wake = now + absl::Milliseconds(100);
    std::vector<StreamTableId> ready = ChooseDispatch(candidates, w.dag, now, 32, &wake);
    dispatched += ready.size();
    benchmark::DoNotOptimize(ready);
  }
  state.counters["dispatched_per_tick"] = static_cast<double>(dispatched) / state.iterations();
  state.counters["stream_tables"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_SchedulerTick)->Arg(500)->Arg(5000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace trickle::scheduler

BENCHMARK_MAIN();
