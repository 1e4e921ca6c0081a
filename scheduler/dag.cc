#include "scheduler/dag.h"

#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace trickle::scheduler {
namespace {
const std::vector<StreamTableId> kNone;
}

void Dag::Set(StreamTableId id, std::vector<StreamTableId> upstreams) {
  Remove(id);
  for (StreamTableId up : upstreams) readers_[up].push_back(id);
  upstreams_[id] = std::move(upstreams);
}

void Dag::Remove(StreamTableId id) {
  auto it = upstreams_.find(id);
  if (it == upstreams_.end()) return;
  for (StreamTableId up : it->second) {
    auto& r = readers_[up];
    r.erase(std::remove(r.begin(), r.end(), id), r.end());
  }
  upstreams_.erase(it);
}

const std::vector<StreamTableId>& Dag::Upstreams(StreamTableId id) const {
  auto it = upstreams_.find(id);
  return it == upstreams_.end() ? kNone : it->second;
}

const std::vector<StreamTableId>& Dag::Readers(StreamTableId id) const {
  auto it = readers_.find(id);
  return it == readers_.end() ? kNone : it->second;
}

absl::Status Dag::CheckAcyclic(StreamTableId id, const std::vector<StreamTableId>& upstreams) const {
  // A cycle exists iff `id` is reachable upward from one of its new upstreams.
  absl::flat_hash_map<StreamTableId, StreamTableId> parent;
  std::deque<StreamTableId> queue;
  for (StreamTableId up : upstreams) {
    if (parent.emplace(up, id).second) queue.push_back(up);
  }
  while (!queue.empty()) {
    StreamTableId n = queue.front();
    queue.pop_front();
    if (n == id) {
      std::vector<std::string> path = {std::to_string(id)};
      for (StreamTableId p = parent[id]; p != id; p = parent[p]) path.push_back(std::to_string(p));
      path.push_back(std::to_string(id));
      return absl::InvalidArgumentError(
          absl::StrCat("stream tables would read each other in a cycle (ids ", absl::StrJoin(path, " <- "), ")"));
    }
    for (StreamTableId up : Upstreams(n)) {
      if (parent.emplace(up, n).second) queue.push_back(up);
    }
  }
  return absl::OkStatus();
}

std::vector<StreamTableId> Dag::Ready(const absl::flat_hash_set<StreamTableId>& wanted,
                                      const absl::flat_hash_set<StreamTableId>& running) const {
  std::vector<StreamTableId> ready;
  for (StreamTableId id : wanted) {
    if (running.contains(id)) continue;
    bool blocked = false;
    for (StreamTableId up : Upstreams(id)) {
      if (wanted.contains(up) || running.contains(up)) {
        blocked = true;
        break;
      }
    }
    if (!blocked) ready.push_back(id);
  }
  std::sort(ready.begin(), ready.end());
  return ready;
}

std::vector<StreamTableId> Dag::Downstream(StreamTableId id) const {
  std::vector<StreamTableId> out;
  absl::flat_hash_set<StreamTableId> seen;
  std::deque<StreamTableId> queue = {id};
  while (!queue.empty()) {
    StreamTableId n = queue.front();
    queue.pop_front();
    for (StreamTableId r : Readers(n)) {
      if (seen.insert(r).second) {
        out.push_back(r);
        queue.push_back(r);
      }
    }
  }
  return out;
}

std::vector<StreamTableId> ChooseDispatch(const std::vector<DispatchCandidate>& candidates, const Dag& dag,
                                          absl::Time now, int capacity, absl::Time* next_wake) {
  absl::flat_hash_set<StreamTableId> wanted, running;
  absl::flat_hash_map<StreamTableId, const DispatchCandidate*> by_id;
  by_id.reserve(candidates.size());
  for (const DispatchCandidate& c : candidates) {
    by_id[c.id] = &c;
    if (c.running) running.insert(c.id);
    if (!c.needs_refresh) continue;
    if (c.due <= now) {
      wanted.insert(c.id);
    } else if (!c.pulled_by_readers) {
      *next_wake = std::min(*next_wake, c.due);
    }
  }
  // 'downstream' stream tables refresh when something that reads them does.
  std::vector<StreamTableId> pull(wanted.begin(), wanted.end());
  while (!pull.empty()) {
    StreamTableId id = pull.back();
    pull.pop_back();
    for (StreamTableId up : dag.Upstreams(id)) {
      auto it = by_id.find(up);
      if (it == by_id.end() || !it->second->pulled_by_readers || !it->second->needs_refresh) continue;
      if (wanted.insert(up).second) pull.push_back(up);
    }
  }
  std::vector<StreamTableId> ready = dag.Ready(wanted, running);
  if (static_cast<int>(ready.size()) > capacity) ready.resize(std::max(capacity, 0));
  return ready;
}

}  // namespace trickle::scheduler
