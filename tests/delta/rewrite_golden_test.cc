// Golden files for the query rewrites that run before lowering
// (delta/rewrite.h): each file in rewrite_golden/ starts with
//   -- query: <the query, one line>
// and continues with what the rewrites say they did and the rewritten query,
// deparsed. A file whose query is not rewritten pins that it is left alone
// (its rewritten query is the original). Regenerate after an intended change
// with TRICKLE_UPDATE_GOLDEN=1 and review the diff.
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

class RewriteGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RewriteGoldenTest, RewriteMatches) {
  const std::string path = std::string(TRICKLE_DELTA_REWRITE_GOLDEN_DIR) + "/" + GetParam();
  const std::string text = testing::ReadText(path);
  std::istringstream lines(text);
  std::string query_line;
  std::getline(lines, query_line);
  ASSERT_EQ(query_line.rfind("-- query: ", 0), 0u) << path;
  const std::string query = query_line.substr(10);
  std::vector<std::string> notes;
  auto rewritten = RewrittenQuery(query, testing::ShopFacts(), &notes);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  std::string rendered = absl::StrCat(query_line, "\n== notes\n");
  for (const auto& n : notes) absl::StrAppend(&rendered, n, "\n");
  absl::StrAppend(&rendered, "== rewritten\n", *rewritten, "\n");
  if (testing::UpdateGolden(path, rendered)) GTEST_SKIP() << "rewrote " << path;
  EXPECT_EQ(rendered, text) << "golden file " << path << testing::kGoldenDiffers;
}

INSTANTIATE_TEST_SUITE_P(RewriteGolden, RewriteGoldenTest,
                         ::testing::ValuesIn(testing::SqlFilesIn(TRICKLE_DELTA_REWRITE_GOLDEN_DIR)),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return testing::GoldenTestName(info.param);
                         });

}  // namespace
}  // namespace trickle::delta
