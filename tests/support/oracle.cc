#include "tests/support/oracle.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace trickle::testing {

int64_t OracleDifferences(PgConnection& conn, const std::string& st, const std::string& query) {
  auto cols = conn.ExecParams(
      "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
      " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
      " AND attname NOT LIKE '\\_\\_pgt\\_%'",
      {st});
  EXPECT_TRUE(cols.ok()) << cols.status();
  if (!cols.ok()) return -1;
  std::string c(cols->Get(0, 0));
  auto diff = conn.Exec(absl::StrCat("SELECT count(*) FROM ((SELECT ", c, " FROM ", st,
                                     " EXCEPT ALL SELECT * FROM (", query, ") q) UNION ALL (SELECT * FROM (",
                                     query, ") q EXCEPT ALL SELECT ", c, " FROM ", st, ")) d"));
  EXPECT_TRUE(diff.ok()) << diff.status();
  return diff.ok() ? std::stoll(std::string(diff->Get(0, 0))) : -1;
}

}  // namespace trickle::testing
