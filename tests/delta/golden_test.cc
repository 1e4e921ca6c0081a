// Golden files: the SQL the engine generates for a set of queries, pinned so
// every change to it is visible in review. Each file in golden/ starts with
//   -- query: <the defining query, one line>
//   -- mode: AUTO | DIFFERENTIAL | FULL
// and continues with the plan as rendered below. Regenerate after an
// intended change with TRICKLE_UPDATE_GOLDEN=1 and review the diff.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "delta/delta_engine.h"
#include "gtest/gtest.h"
#include "tests/delta/golden_files.h"
#include "tests/delta/test_facts.h"

namespace trickle::delta {
namespace {

std::string Render(const std::string& header, const DeltaPlan& plan) {
  std::string out = header;
  absl::StrAppend(&out, "== explanation\n", plan.explanation);
  absl::StrAppend(&out, "== storage_ddl\n");
  for (const auto& s : plan.storage_ddl) absl::StrAppend(&out, s, ";\n");
  absl::StrAppend(&out, "== full_refresh_sql\n");
  for (const auto& s : plan.full_refresh_sql) absl::StrAppend(&out, s, ";\n");
  if (!plan.merge_sql.empty()) absl::StrAppend(&out, "== merge_sql\n", plan.merge_sql, ";\n");
  return out;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, PlanMatches) {
  const std::string path = std::string(TRICKLE_DELTA_GOLDEN_DIR) + "/" + GetParam();
  const std::string text = testing::ReadText(path);
  std::istringstream lines(text);
  std::string query_line, mode_line;
  std::getline(lines, query_line);
  std::getline(lines, mode_line);
  ASSERT_EQ(query_line.rfind("-- query: ", 0), 0u) << path;
  ASSERT_EQ(mode_line.rfind("-- mode: ", 0), 0u) << path;
  const std::string query = query_line.substr(10);
  const std::string mode_name = mode_line.substr(9);
  RefreshMode mode = mode_name == "FULL"           ? RefreshMode::kFull
                     : mode_name == "DIFFERENTIAL" ? RefreshMode::kDifferential
                                                   : RefreshMode::kAuto;
  auto plan = BuildDeltaPlan({"st", "t", query, mode}, testing::ShopFacts());
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::string rendered = Render(absl::StrCat(query_line, "\n", mode_line, "\n"), *plan);
  if (testing::UpdateGolden(path, rendered)) GTEST_SKIP() << "rewrote " << path;
  EXPECT_EQ(rendered, text) << "golden file " << path << testing::kGoldenDiffers;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenTest,
                         ::testing::ValuesIn(testing::SqlFilesIn(TRICKLE_DELTA_GOLDEN_DIR)),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return testing::GoldenTestName(info.param);
                         });

}  // namespace
}  // namespace trickle::delta
