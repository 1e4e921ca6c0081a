#include "scheduler/dag.h"

#include "gtest/gtest.h"

namespace trickle::scheduler {
namespace {

using Set = absl::flat_hash_set<StreamTableId>;

Dag Diamond() {
  // 1 -> {2, 3} -> 4; 5 independent
  Dag dag;
  dag.Set(1, {});
  dag.Set(2, {1});
  dag.Set(3, {1});
  dag.Set(4, {2, 3});
  dag.Set(5, {});
  return dag;
}

TEST(DagTest, ReadinessWaitsForOwnUpstreamsOnly) {
  Dag dag = Diamond();
  EXPECT_EQ(dag.Ready({1, 2, 3, 4, 5}, {}), (std::vector<StreamTableId>{1, 5}));
  // 1 done: both branches ready; the bottom waits for every branch.
  EXPECT_EQ(dag.Ready({2, 3, 4}, {}), (std::vector<StreamTableId>{2, 3}));
  EXPECT_EQ(dag.Ready({3, 4}, {}), (std::vector<StreamTableId>{3}));
  EXPECT_EQ(dag.Ready({4}, {3}), (std::vector<StreamTableId>{}));
  EXPECT_EQ(dag.Ready({4}, {}), (std::vector<StreamTableId>{4}));
  // No level barrier: 5 is never held back by the diamond.
  EXPECT_EQ(dag.Ready({4, 5}, {2}), (std::vector<StreamTableId>{5}));
  // A running table is not dispatched twice.
  EXPECT_EQ(dag.Ready({5}, {5}), (std::vector<StreamTableId>{}));
  // Upstreams outside the DAG (plain tables) never block.
  Dag plain;
  plain.Set(7, {99});
  EXPECT_EQ(plain.Ready({7}, {}), (std::vector<StreamTableId>{7}));
}

TEST(DagTest, CyclesAreRefusedWithTheirPath) {
  Dag dag = Diamond();
  EXPECT_TRUE(dag.CheckAcyclic(6, {4, 5}).ok());
  absl::Status self = dag.CheckAcyclic(5, {5});
  EXPECT_EQ(self.code(), absl::StatusCode::kInvalidArgument);
  absl::Status cycle = dag.CheckAcyclic(1, {4});
  EXPECT_EQ(cycle.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(cycle.message().find("cycle"), std::string::npos);
  EXPECT_NE(cycle.message().find("4"), std::string::npos) << cycle;
}

TEST(DagTest, DownstreamAndRemoval) {
  Dag dag = Diamond();
  std::vector<StreamTableId> down = dag.Downstream(1);
  std::sort(down.begin(), down.end());
  EXPECT_EQ(down, (std::vector<StreamTableId>{2, 3, 4}));
  dag.Remove(3);
  EXPECT_EQ(dag.Readers(1), (std::vector<StreamTableId>{2}));
  EXPECT_EQ(dag.Ready({4}, {}), (std::vector<StreamTableId>{4}));
}

TEST(ChooseDispatchTest, DueReadyCapacityAndDownstreamPull) {
  Dag dag = Diamond();
  absl::Time now = absl::FromUnixSeconds(1000);
  auto at = [&](int s) { return now + absl::Seconds(s); };
  std::vector<DispatchCandidate> c = {
      {1, true, false, false, at(0)},   // due
      {2, true, false, false, at(-1)},  // due but waits for 1
      {3, false, false, false, at(0)},  // nothing pending
      {4, true, false, false, at(5)},   // not yet due: sets the wake-up
      {5, true, false, false, at(0)},
  };
  absl::Time wake = at(100);
  EXPECT_EQ(ChooseDispatch(c, dag, now, 8, &wake), (std::vector<StreamTableId>{1, 5}));
  EXPECT_EQ(wake, at(5));
  // Capacity bounds the dispatch.
  wake = at(100);
  EXPECT_EQ(ChooseDispatch(c, dag, now, 1, &wake).size(), 1u);
  // 1 is 'downstream': pulled in by its due reader 2, and dispatched first.
  std::vector<DispatchCandidate> pulled = {
      {1, true, false, true, absl::InfiniteFuture()},
      {2, true, false, false, at(0)},
  };
  wake = at(100);
  EXPECT_EQ(ChooseDispatch(pulled, dag, now, 8, &wake), (std::vector<StreamTableId>{1}));
  EXPECT_EQ(wake, at(100));  // a 'downstream' table never wakes the tick by itself
  // Running upstreams hold their readers back.
  std::vector<DispatchCandidate> running = {{1, false, true, false, at(0)}, {2, true, false, false, at(0)}};
  EXPECT_TRUE(ChooseDispatch(running, dag, now, 8, &wake).empty());
}

}  // namespace
}  // namespace trickle::scheduler
