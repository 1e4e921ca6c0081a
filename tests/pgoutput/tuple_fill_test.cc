#include "pgoutput/tuple_fill.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pgoutput/message_builder.h"

namespace trickle::pgoutput {
namespace {

using ::testing::HasSubstr;
using testing::Null;
using testing::Text;
using testing::Unchanged;

RelationSchema Docs() {
  return RelationSchema{.relation_oid = 16405,
                        .version = 3,
                        .namespace_name = "public",
                        .relation_name = "docs",
                        .replica_identity = 'f',
                        .columns = {{true, "id", 23, -1},
                                    {true, "title", 25, -1},
                                    {true, "body", 25, -1},
                                    {true, "attachment", 17, -1}}};
}

const std::string kBody(5000, 'b');
const std::string kAttachment(9000, 'a');

UpdateMessage FullUpdate() {
  return UpdateMessage{0, 16405, OldTupleKind::kFull,
                       {Text("1"), Text("draft"), Text(kBody), Text(kAttachment)},
                       {Text("1"), Text("final"), Unchanged(), Text(kAttachment)}};
}

void ExpectStatus(const absl::Status& status, absl::StatusCode code, const std::string& message) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_EQ(std::string(status.message()), message);
}

TEST(FillUnchangedToastTest, FillsFromTheFullOldRow) {
  UpdateMessage update = FullUpdate();
  ASSERT_TRUE(FillUnchangedToast(Docs(), &update).ok());
  EXPECT_EQ(update.new_tuple, (Tuple{Text("1"), Text("final"), Text(kBody), Text(kAttachment)}));
  EXPECT_EQ(update.old_tuple[2], Text(kBody));  // the old row is left as is
}

TEST(FillUnchangedToastTest, FillsEveryUnchangedColumn) {
  UpdateMessage update = FullUpdate();
  update.new_tuple[3] = Unchanged();
  ASSERT_TRUE(FillUnchangedToast(Docs(), &update).ok());
  EXPECT_EQ(update.new_tuple, (Tuple{Text("1"), Text("final"), Text(kBody), Text(kAttachment)}));
}

TEST(FillUnchangedToastTest, UpdateWithoutUnchangedColumnsIsLeftAlone) {
  // Even without an old tuple, and even if it does not match the schema:
  // nothing needs filling.
  UpdateMessage update{0, 99, OldTupleKind::kNone, {}, {Text("1"), Null()}};
  const UpdateMessage before = update;
  ASSERT_TRUE(FillUnchangedToast(Docs(), &update).ok());
  EXPECT_EQ(update, before);
}

TEST(FillUnchangedToastTest, OldKeyOnlyCannotFill) {
  UpdateMessage update = FullUpdate();
  update.old_kind = OldTupleKind::kKey;
  update.old_tuple = {Text("1"), Null(), Null(), Null()};
  const UpdateMessage before = update;
  ExpectStatus(FillUnchangedToast(Docs(), &update), absl::StatusCode::kFailedPrecondition,
               "relation \"public.docs\" column \"body\": the Update left this TOASTed value "
               "unchanged and carries only the old key to copy it from; run ALTER TABLE "
               "public.docs REPLICA IDENTITY FULL");
  EXPECT_EQ(update, before);
}

TEST(FillUnchangedToastTest, NoOldTupleCannotFill) {
  UpdateMessage update = FullUpdate();
  update.old_kind = OldTupleKind::kNone;
  update.old_tuple.clear();
  ExpectStatus(FillUnchangedToast(Docs(), &update), absl::StatusCode::kFailedPrecondition,
               "relation \"public.docs\" column \"body\": the Update left this TOASTed value "
               "unchanged and carries no old row to copy it from; run ALTER TABLE "
               "public.docs REPLICA IDENTITY FULL");
}

TEST(FillUnchangedToastTest, OldRowUnchangedTooCannotFill) {
  UpdateMessage update = FullUpdate();
  update.new_tuple[3] = Unchanged();
  update.old_tuple[3] = Unchanged();
  const UpdateMessage before = update;
  ExpectStatus(FillUnchangedToast(Docs(), &update), absl::StatusCode::kFailedPrecondition,
               "relation \"public.docs\" column \"attachment\": the Update left this TOASTed "
               "value unchanged and the full old row has it unchanged too, so there is no "
               "value to copy");
  // Nothing was filled, not even the fillable body column.
  EXPECT_EQ(update, before);
}

TEST(FillUnchangedToastTest, SchemaOfAnotherRelation) {
  UpdateMessage update = FullUpdate();
  update.relation_oid = 16999;
  ExpectStatus(FillUnchangedToast(Docs(), &update), absl::StatusCode::kInvalidArgument,
               "cannot fill unchanged TOAST columns: the Update is for relation OID 16999 but "
               "the schema given is public.docs (OID 16405)");
}

TEST(FillUnchangedToastTest, NewTupleDoesNotMatchTheSchema) {
  UpdateMessage update = FullUpdate();
  update.new_tuple.push_back(Null());
  ExpectStatus(FillUnchangedToast(Docs(), &update), absl::StatusCode::kInvalidArgument,
               "relation \"public.docs\": the Update's new tuple has 5 columns but schema "
               "version 3 has 4");
}

TEST(FillUnchangedToastTest, OldTupleOfAnotherWidth) {
  UpdateMessage update = FullUpdate();
  update.old_tuple.pop_back();
  ExpectStatus(FillUnchangedToast(Docs(), &update), absl::StatusCode::kInvalidArgument,
               "relation \"public.docs\": the Update's old tuple has 3 columns but its new "
               "tuple has 4");
}

}  // namespace
}  // namespace trickle::pgoutput
