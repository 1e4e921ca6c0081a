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

}  // namespace
}  // namespace trickle::scheduler
