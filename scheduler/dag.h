// The stream-table DAG: which stream table reads which. Pure: no I/O.
//
// Readiness has no level barrier: a stream table is ready to refresh when it
// is wanted and none of its own upstreams is still wanted or running.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace trickle::scheduler {

using StreamTableId = int64_t;

class Dag {
 public:
  // Replaces the node's upstream edges (upstreams not in the DAG are ignored
  // at readiness time: a plain table is always "done").
  void Set(StreamTableId id, std::vector<StreamTableId> upstreams);
  void Remove(StreamTableId id);
  bool Contains(StreamTableId id) const { return upstreams_.contains(id); }

  // OK, or InvalidArgument naming the cycle, if `id` reading `upstreams`
  // would close one (including reading itself).
  absl::Status CheckAcyclic(StreamTableId id, const std::vector<StreamTableId>& upstreams) const;

  // Of `wanted`, those whose upstreams are neither wanted nor running.
  std::vector<StreamTableId> Ready(const absl::flat_hash_set<StreamTableId>& wanted,
                                   const absl::flat_hash_set<StreamTableId>& running) const;

  // Every stream table reading `id`, directly or transitively.
  std::vector<StreamTableId> Downstream(StreamTableId id) const;
  const std::vector<StreamTableId>& Upstreams(StreamTableId id) const;
  const std::vector<StreamTableId>& Readers(StreamTableId id) const;

 private:
  absl::flat_hash_map<StreamTableId, std::vector<StreamTableId>> upstreams_;
  absl::flat_hash_map<StreamTableId, std::vector<StreamTableId>> readers_;
};

// One stream table as a scheduler tick sees it.
struct DispatchCandidate {
  StreamTableId id = 0;
  bool needs_refresh = false;       // ACTIVE, fuse intact, not running, something pending
  bool running = false;
  bool pulled_by_readers = false;   // schedule 'downstream': due when a reader is
  absl::Time due = absl::InfiniteFuture();
};

// The decision of one tick, pure: which stream tables to dispatch now (at
// most `capacity`, upstreams before readers, no level barrier) and when to
// look again (the earliest future due time, or `*next_wake` if sooner).
std::vector<StreamTableId> ChooseDispatch(const std::vector<DispatchCandidate>& candidates, const Dag& dag,
                                          absl::Time now, int capacity, absl::Time* next_wake);

}  // namespace trickle::scheduler
