// Decodes real pgoutput bytes captured from PostgreSQL 15 (see
// fixtures/README.md) and checks their content, the relation schema versions
// across an ALTER TABLE, and the unchanged-TOAST fill on a real Update.
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"
#include "pgoutput/tuple_fill.h"
#include "tests/pgoutput/message_builder.h"
#include "tests/pgoutput/recording_handler.h"

namespace trickle::pgoutput {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::AnyMessage;
using testing::Binary;
using testing::Null;
using testing::RecordingHandler;
using testing::Text;
using testing::Unchanged;
using namespace std::string_literals;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The messages of one fixture file, in order (see fixtures/README.md).
std::vector<std::string> LoadFixture(const std::string& name) {
  const std::string path = std::string(TRICKLE_PGOUTPUT_FIXTURE_DIR) + "/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<std::string> messages;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string lsn, xid, hex;
    fields >> lsn >> xid >> hex;
    EXPECT_EQ(hex.size() % 2, 0u) << line;
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
      EXPECT_TRUE(hi >= 0 && lo >= 0) << line;
      bytes.push_back(static_cast<char>(hi * 16 + lo));
    }
    messages.push_back(std::move(bytes));
  }
  return messages;
}

RecordingHandler DecodeFixture(const std::string& name, int protocol_version) {
  Decoder decoder(protocol_version);
  RecordingHandler handler;
  std::vector<std::string> messages = LoadFixture(name);
  EXPECT_FALSE(messages.empty());
  for (size_t i = 0; i < messages.size(); ++i) {
    absl::Status status = decoder.Decode(messages[i], &handler);
    EXPECT_TRUE(status.ok()) << name << " message " << i << ": " << status;
  }
  EXPECT_FALSE(decoder.in_streamed_block());
  return handler;
}

template <typename M>
std::vector<M> All(const RecordingHandler& h) {
  std::vector<M> out;
  for (const AnyMessage& m : h.messages) {
    if (const M* p = std::get_if<M>(&m)) out.push_back(*p);
  }
  return out;
}

const RelationMessage& RelationNamed(const std::vector<RelationMessage>& relations,
                                     const std::string& name) {
  for (const RelationMessage& r : relations) {
    if (r.relation_name == name) return r;
  }
  ADD_FAILURE() << "no Relation message for " << name;
  static const RelationMessage kNone;
  return kNone;
}

// B=Begin C=Commit R=Relation Y=Type I=Insert U=Update D=Delete M=Message
// T=Truncate, in the order capture.sh's workload produces them.
constexpr char kV1Types[] =
    "BRIIC"     // two orders rows
    "BUC"       // update orders (REPLICA IDENTITY FULL)
    "BDC"       // delete orders
    "BYRIC"     // accounts: Type for the enum column, then its Relation
    "BUC"       // accounts key change: old key 'K'
    "BDC"       // accounts delete
    "BRIC"      // docs insert with a TOASTed body
    "BUC"       // docs update, body unchanged
    "BRIC"      // docs_keyed insert
    "BUC"       // docs_keyed update, body unchanged, no old tuple
    "BIMC"      // transactional message inside a transaction
    "M"         // non-transactional message
    "BRIC"      // after ALTER TABLE orders ADD COLUMN
    "BRRTC";    // TRUNCATE orders, docs

TEST(FixtureTest, TextProtocolV1) {
  RecordingHandler h = DecodeFixture("v1_text.hex", 1);
  EXPECT_EQ(h.types, kV1Types);

  std::vector<RelationMessage> relations = All<RelationMessage>(h);
  const RelationMessage& orders = relations.front();
  EXPECT_EQ(orders.namespace_name, "public");
  EXPECT_EQ(orders.relation_name, "orders");
  EXPECT_EQ(orders.replica_identity, 'f');
  ASSERT_EQ(orders.columns.size(), 5u);
  // With REPLICA IDENTITY FULL every column is part of the identity.
  EXPECT_EQ(orders.columns[0], (RelationColumn{true, "id", 23, -1}));
  EXPECT_EQ(orders.columns[2], (RelationColumn{true, "amount", 1700, (10 << 16 | 2) + 4}));
  EXPECT_EQ(orders.columns[4].name, "created");
  EXPECT_EQ(orders.columns[4].type_oid, 1184u);  // timestamptz

  std::vector<InsertMessage> inserts = All<InsertMessage>(h);
  EXPECT_EQ(inserts[0].relation_oid, orders.relation_oid);
  EXPECT_EQ(inserts[0].xid, 0u);  // not streamed
  EXPECT_EQ(inserts[0].new_tuple,
            (Tuple{Text("1"), Text("ada"), Text("12.50"), Null(), Text("2024-05-01 10:00:00+00")}));

  std::vector<UpdateMessage> updates = All<UpdateMessage>(h);
  ASSERT_EQ(updates.size(), 4u);
  EXPECT_EQ(updates[0].old_kind, OldTupleKind::kFull);
  EXPECT_EQ(updates[0].old_tuple[2], Text("12.50"));
  EXPECT_EQ(updates[0].new_tuple[2], Text("13.75"));

  // accounts: REPLICA IDENTITY DEFAULT; the key changed, so the old key is sent.
  const RelationMessage& accounts = RelationNamed(relations, "accounts");
  EXPECT_EQ(accounts.replica_identity, 'd');
  EXPECT_EQ(updates[1].old_kind, OldTupleKind::kKey);
  EXPECT_EQ(updates[1].old_tuple, (Tuple{Text("10"), Null(), Null()}));
  EXPECT_EQ(updates[1].new_tuple, (Tuple{Text("11"), Text("linus"), Text("happy")}));
  std::vector<TypeMessage> types = All<TypeMessage>(h);
  ASSERT_EQ(types.size(), 1u);
  EXPECT_EQ(types[0].namespace_name, "public");
  EXPECT_EQ(types[0].type_name, "mood");
  EXPECT_EQ(accounts.columns[2].type_oid, types[0].type_oid);

  std::vector<DeleteMessage> deletes = All<DeleteMessage>(h);
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].old_kind, OldTupleKind::kFull);
  EXPECT_EQ(deletes[0].old_tuple[1], Text("grace"));
  EXPECT_EQ(deletes[1].old_kind, OldTupleKind::kKey);
  EXPECT_EQ(deletes[1].old_tuple, (Tuple{Text("11"), Null(), Null()}));

  std::vector<LogicalMessage> messages = All<LogicalMessage>(h);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_TRUE(messages[0].transactional);
  EXPECT_EQ(messages[0].prefix, "trickle.fence");
  EXPECT_EQ(messages[0].content, "token-42");
  EXPECT_FALSE(messages[1].transactional);
  EXPECT_EQ(messages[1].prefix, "trickle.note");
  EXPECT_EQ(messages[1].content, "\x00\x01" "binary"s);
  EXPECT_NE(messages[1].lsn, 0u);

  std::vector<TruncateMessage> truncates = All<TruncateMessage>(h);
  ASSERT_EQ(truncates.size(), 1u);
  EXPECT_EQ(truncates[0].options,
            TruncateMessage::kCascade | TruncateMessage::kRestartIdentity);
  EXPECT_THAT(truncates[0].relation_oids,
              ElementsAre(orders.relation_oid, RelationNamed(relations, "docs").relation_oid));

  // Begin/Commit pair up: the Commit's LSN is the Begin's final LSN.
  std::vector<BeginMessage> begins = All<BeginMessage>(h);
  std::vector<CommitMessage> commits = All<CommitMessage>(h);
  ASSERT_EQ(begins.size(), commits.size());
  for (size_t i = 0; i < begins.size(); ++i) {
    EXPECT_EQ(begins[i].final_lsn, commits[i].commit_lsn);
    EXPECT_EQ(begins[i].commit_time, commits[i].commit_time);
    EXPECT_LT(commits[i].commit_lsn, commits[i].end_lsn);
    EXPECT_EQ(commits[i].flags, 0);
    if (i > 0) {
      EXPECT_LT(begins[i - 1].xid, begins[i].xid);
    }
  }
}

TEST(FixtureTest, BinaryProtocolV1) {
  RecordingHandler h = DecodeFixture("v1_binary.hex", 1);
  EXPECT_EQ(h.types, kV1Types);
  std::vector<InsertMessage> inserts = All<InsertMessage>(h);
  // int4 1 in binary send format, then text as bytes, NULL stays 'n'.
  EXPECT_EQ(inserts[0].new_tuple[0], Binary("\x00\x00\x00\x01"s));
  EXPECT_EQ(inserts[0].new_tuple[1], Binary("ada"));
  EXPECT_EQ(inserts[0].new_tuple[3], Null());
  for (const InsertMessage& insert : inserts) {
    for (const ColumnValue& column : insert.new_tuple) {
      EXPECT_NE(column.kind, ColumnKind::kText);
    }
  }
}

TEST(FixtureTest, OriginProtocolV1) {
  RecordingHandler h = DecodeFixture("v1_origin.hex", 1);
  EXPECT_EQ(h.types, "BOYRIC");
  std::vector<OriginMessage> origins = All<OriginMessage>(h);
  ASSERT_EQ(origins.size(), 1u);
  EXPECT_EQ(origins[0].name, "trickle_upstream");
  EXPECT_EQ(origins[0].commit_lsn, 0x0ABCDEF0u);
}

TEST(FixtureTest, StreamedProtocolV2) {
  RecordingHandler h = DecodeFixture("v2_streamed.hex", 2);
  // Walk the stream like a consumer: data messages inside a block carry an
  // xid, outside they do not.
  bool inside = false;
  int blocks = 0;
  std::set<TransactionId> streamed_top_xids;
  std::map<char, int> counts;
  for (const AnyMessage& m : h.messages) {
    ++counts[testing::TypeByte(m)];
    if (auto* start = std::get_if<StreamStartMessage>(&m)) {
      EXPECT_FALSE(inside);
      inside = true;
      ++blocks;
      // The first block of a transaction says so; later ones do not.
      EXPECT_EQ(start->first_segment, streamed_top_xids.insert(start->xid).second);
      continue;
    }
    if (std::holds_alternative<StreamStopMessage>(m)) {
      inside = false;
      continue;
    }
    TransactionId xid = std::visit(
        [](const auto& message) -> TransactionId {
          using M = std::decay_t<decltype(message)>;
          if constexpr (std::is_same_v<M, InsertMessage> || std::is_same_v<M, UpdateMessage> ||
                        std::is_same_v<M, DeleteMessage> || std::is_same_v<M, RelationMessage> ||
                        std::is_same_v<M, TypeMessage> || std::is_same_v<M, TruncateMessage> ||
                        std::is_same_v<M, LogicalMessage>) {
            return message.xid;
          }
          return 0;
        },
        m);
    const char type = testing::TypeByte(m);
    if (std::string("IUDRYTM").find(type) != std::string::npos) {
      EXPECT_EQ(xid != 0, inside) << "message " << type;
    }
  }
  EXPECT_GE(blocks, 3);
  EXPECT_EQ(counts['S'], counts['E']);
  EXPECT_EQ(counts['S'], blocks);
  EXPECT_GT(counts['I'], 400);

  std::vector<StreamCommitMessage> commits = All<StreamCommitMessage>(h);
  std::vector<StreamAbortMessage> aborts = All<StreamAbortMessage>(h);
  ASSERT_EQ(commits.size(), 1u);
  ASSERT_EQ(aborts.size(), 2u);
  EXPECT_TRUE(streamed_top_xids.count(commits[0].xid));
  EXPECT_LT(commits[0].commit_lsn, commits[0].end_lsn);
  // The rolled-back savepoint: a subtransaction of the committed transaction.
  EXPECT_EQ(aborts[0].xid, commits[0].xid);
  EXPECT_NE(aborts[0].subxid, aborts[0].xid);
  // The aborted transaction: the whole of it.
  EXPECT_NE(aborts[1].xid, commits[0].xid);
  EXPECT_EQ(aborts[1].subxid, aborts[1].xid);

  // The streamed transaction's fence message came through with its xid.
  std::vector<LogicalMessage> messages = All<LogicalMessage>(h);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].content, "streamed-token");
  EXPECT_EQ(messages[0].xid, commits[0].xid);

  // The trailing small transaction is ordinary.
  EXPECT_EQ(h.types.substr(h.types.size() - 3), "BIC");
}

// Changes decoded before and after ALTER TABLE map to the schema version
// they were written under; Relation resends of the same schema do not bump it.
class VersionTagger : public MessageHandler {
 public:
  absl::Status OnRelation(const RelationMessage& m) override {
    cache.Apply(m);
    if (m.relation_name == "orders") orders_oid = m.relation_oid;
    return absl::OkStatus();
  }
  absl::Status OnInsert(const InsertMessage& m) override {
    TRICKLE_ASSIGN_OR_RETURN(const RelationSchema* schema, cache.Current(m.relation_oid));
    EXPECT_EQ(schema->columns.size(), m.new_tuple.size());
    tags.push_back(schema->relation_name + " v" + std::to_string(schema->version));
    return absl::OkStatus();
  }
  RelationCache cache;
  std::vector<std::string> tags;
  Oid orders_oid = 0;
};

TEST(FixtureTest, SchemaVersionsAcrossAlterTable) {
  Decoder decoder(1);
  VersionTagger tagger;
  for (const std::string& bytes : LoadFixture("v1_text.hex")) {
    ASSERT_TRUE(decoder.Decode(bytes, &tagger).ok());
  }
  EXPECT_THAT(tagger.tags, ElementsAre("orders v1", "orders v1", "accounts v1", "docs v1",
                                       "docs_keyed v1", "orders v1", "orders v2"));
  // The Truncate's resent orders Relation is the v2 schema again: no v3.
  auto orders = tagger.cache.Current(tagger.orders_oid);
  ASSERT_TRUE(orders.ok()) << orders.status();
  EXPECT_EQ((*orders)->version, 2u);
  EXPECT_EQ((*orders)->columns.back().name, "status");
  auto orders_v1 = tagger.cache.Get(tagger.orders_oid, 1);
  ASSERT_TRUE(orders_v1.ok());
  EXPECT_EQ((*orders_v1)->columns.size(), 5u);
  EXPECT_EQ(tagger.cache.relation_count(), 4u);
}

TEST(FixtureTest, UnchangedToastFilledFromTheFullOldRow) {
  RecordingHandler h = DecodeFixture("v1_text.hex", 1);
  RelationCache cache;
  for (const RelationMessage& r : All<RelationMessage>(h)) cache.Apply(r);
  std::vector<UpdateMessage> updates = All<UpdateMessage>(h);

  // docs: REPLICA IDENTITY FULL, body unchanged -> filled from the old row.
  UpdateMessage docs = updates[2];
  ASSERT_EQ(docs.old_kind, OldTupleKind::kFull);
  ASSERT_EQ(docs.new_tuple[2], Unchanged());
  ASSERT_EQ(docs.old_tuple[2].data.size(), 200u * 32u);  // 200 md5 hex strings
  auto schema = cache.Current(docs.relation_oid);
  ASSERT_TRUE(schema.ok());
  ASSERT_TRUE(FillUnchangedToast(**schema, &docs).ok());
  EXPECT_EQ(docs.new_tuple, (Tuple{Text("1"), Text("final"), docs.old_tuple[2]}));

  // docs_keyed: REPLICA IDENTITY DEFAULT, no old row -> a precise error.
  UpdateMessage keyed = updates[3];
  ASSERT_EQ(keyed.old_kind, OldTupleKind::kNone);
  auto keyed_schema = cache.Current(keyed.relation_oid);
  ASSERT_TRUE(keyed_schema.ok());
  absl::Status status = FillUnchangedToast(**keyed_schema, &keyed);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(status.message()),
            "relation \"public.docs_keyed\" column \"body\": the Update left this TOASTed "
            "value unchanged and carries no old row to copy it from; run ALTER TABLE "
            "public.docs_keyed REPLICA IDENTITY FULL");
}

// Every captured message, truncated anywhere, is an error and never a crash
// (run under the fuzz target's sanitizers too, via the seed corpus).
TEST(FixtureTest, EveryTruncationOfEveryCapturedMessageIsAnError) {
  for (const char* name : {"v1_text.hex", "v1_origin.hex"}) {
    for (const std::string& bytes : LoadFixture(name)) {
      Decoder decoder(1);
      RecordingHandler handler;
      for (size_t length = 0; length < bytes.size(); length += 1 + length / 64) {
        absl::Status status = decoder.Decode(std::string_view(bytes.data(), length), &handler);
        EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
      }
      EXPECT_TRUE(handler.messages.empty());
    }
  }
}

}  // namespace
}  // namespace trickle::pgoutput
