// Unit tests of the delta engine's plans: no server.
#include "delta/delta_engine.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trickle::delta {
namespace {

CatalogFacts ShopFacts() {
  CatalogFacts f;
  f.search_path = {"src"};
  f.relations.push_back({"src", "orders", 1001,
                         {{"id", "integer", true}, {"cust_id", "integer", false},
                          {"amount", "integer", false}, {"status", "text", true},
                          {"qty", "integer", true}},
                         {"id"}});
  f.relations.push_back({"src", "customers", 1002,
                         {{"id", "integer", true}, {"name", "text", true},
                          {"region", "text", false}, {"tier", "integer", false}},
                         {"id"}});
  return f;
}

TEST(PlanTest, FilterProjectIsDifferential) {
  StreamTableSpec spec{"st", "big_orders", "SELECT id, amount FROM orders WHERE amount > 10",
                       RefreshMode::kDifferential};
  auto plan = BuildDeltaPlan(spec, ShopFacts());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->maintained_mode, RefreshMode::kDifferential);
  EXPECT_THAT(plan->identity_columns, ::testing::ElementsAre("id"));
  std::printf("%s\n%s\n%s\n", plan->explanation.c_str(), plan->storage_ddl[0].c_str(), plan->merge_sql.c_str());
}

}  // namespace
}  // namespace trickle::delta
