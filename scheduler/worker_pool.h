// The refresh worker pool: a queue under a mutex, a condition, a shutdown
// sentinel and a join in the destructor. Each worker owns its connection and
// its Refresher; a worker whose connection died reconnects before its next
// task.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/pg_connection.h"
#include "scheduler/refresh.h"

namespace trickle::scheduler {

struct Worker {
  int index = 0;
  std::string dsn;
  std::unique_ptr<PgConnection> conn;  // null or broken: reconnected by Connection()
  std::unique_ptr<Refresher> refresher;

  // The worker's connection, reconnecting when it is gone or broken.
  absl::StatusOr<PgConnection*> Connection();
};

class WorkerPool {
 public:
  using Task = std::function<void(Worker&)>;
  // Starts `size` threads (1..32). `make_refresher` builds each worker's
  // Refresher. Connections are opened lazily, by the first task.
  WorkerPool(int size, std::string dsn, const std::function<std::unique_ptr<Refresher>()>& make_refresher);
  ~WorkerPool();  // finishes queued tasks, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(Task task);
  int size() const { return static_cast<int>(threads_.size()); }
  int busy() const;

 private:
  void Loop(Worker* worker);

  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace trickle::scheduler
