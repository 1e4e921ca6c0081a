#include "scheduler/worker_pool.h"

#include "absl/strings/str_cat.h"

namespace trickle::scheduler {

absl::StatusOr<PgConnection*> Worker::Connection() {
  if (conn == nullptr || !conn->ok()) {
    auto connected = PgConnection::Connect(dsn);
    if (!connected.ok()) return connected.status();
    conn = std::move(*connected);
    (void)conn->Exec(absl::StrCat("SET application_name = 'trickle-worker-", index, "'"));
  }
  return conn.get();
}

WorkerPool::WorkerPool(int size, std::string dsn,
                       const std::function<std::unique_ptr<Refresher>()>& make_refresher) {
  for (int i = 0; i < size; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->dsn = dsn;
    w->refresher = make_refresher();
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) threads_.emplace_back([this, worker = w.get()] { Loop(worker); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }
  for (auto& t : threads_) t.join();
}

void WorkerPool::Submit(Task task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

int WorkerPool::busy() const {
  absl::MutexLock lock(&mu_);
  return busy_ + static_cast<int>(queue_.size());
}

void WorkerPool::Loop(Worker* worker) {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->shutdown_ || !p->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // shutdown sentinel, nothing left to do
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    task(*worker);
    absl::MutexLock lock(&mu_);
    --busy_;
  }
}

}  // namespace trickle::scheduler
