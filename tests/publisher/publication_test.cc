// Downstream publications on a real PostgreSQL 15 (publisher/):
//  * a second throwaway cluster subscribes with CREATE SUBSCRIPTION and its
//    copy stays equal to the stream tables under random changes;
//  * a pgoutput consumer reads the publication the way Debezium does (a
//    logical slot, publication_names, messages): per refresh exactly that
//    refresh's row changes, in one transaction with one trickle.refresh
//    message; updates carry the key; no-op refreshes emit nothing;
//  * lifecycle: foreign publications untouched, restarts, readers switching
//    the replica identity, rebuilds, drops.
#include <atomic>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "pgoutput/decoder.h"
#include "pgoutput/replication_stream.h"
#include "scheduler/stream_table_manager.h"
#include "service/fence.h"
#include "tests/integration/capture_fixture.h"
#include "tests/support/oracle.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

using scheduler::StreamTableManager;

// ---- A Debezium-like consumer: a pgoutput slot on the publication ----------

struct Event {
  char kind;  // I, U, D, T (truncate)
  std::string table;
  char old_kind = 0;        // U/D: 'K' (key only), 'O' (whole old row) or 0
  std::vector<std::string> old_values;  // as sent ("" for NULL or not sent)
  std::vector<std::string> new_values;
  std::vector<std::string> columns;     // the relation's columns, as sent
  std::vector<bool> key;                // which columns are the identity
};
struct Txn {
  std::vector<Event> events;
  std::vector<pgoutput::LogicalMessage> messages;
};

class DebeziumLikeConsumer : public pgoutput::StreamConsumer, public pgoutput::MessageHandler {
 public:
  DebeziumLikeConsumer(const std::string& dsn, const std::string& slot, const std::string& publication) {
    pgoutput::ReplicationOptions options;
    options.dsn = dsn;
    options.slot_name = slot;
    options.publication_name = publication;
    stream_ = std::make_unique<pgoutput::ReplicationStream>(options, this);
    thread_ = std::thread([this] { run_status_ = stream_->Run(stop_); });
  }
  ~DebeziumLikeConsumer() override {
    stop_ = true;
    thread_.join();
  }

  // Transactions committed since the last call, waiting until one carrying
  // the logical message `marker` (prefix test.marker) has arrived.
  std::vector<Txn> TakeUntil(const std::string& marker) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&] {
      for (const Txn& t : done_) {
        for (const auto& m : t.messages) {
          if (m.prefix == "test.marker" && m.content == marker) return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(30));
    EXPECT_TRUE(arrived()) << "marker " << marker << " did not arrive";
    std::vector<Txn> out;
    out.swap(done_);
    return out;
  }

  // StreamConsumer
  absl::Status OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) override {
    return decoder_.Decode(payload, this);
  }
  Lsn WrittenLsn() override { return confirmed_.load(); }
  Lsn FlushedLsn() override { return confirmed_.load(); }
  void OnDisconnect() override {
    absl::MutexLock lock(&mu_);
    current_ = Txn{};
    decoder_.Reset();
  }

  // MessageHandler
  absl::Status OnBegin(const pgoutput::BeginMessage&) override {
    absl::MutexLock lock(&mu_);
    current_ = Txn{};
    return absl::OkStatus();
  }
  absl::Status OnCommit(const pgoutput::CommitMessage& m) override {
    absl::MutexLock lock(&mu_);
    done_.push_back(std::move(current_));
    current_ = Txn{};
    confirmed_ = m.end_lsn;
    return absl::OkStatus();
  }
  absl::Status OnRelation(const pgoutput::RelationMessage& m) override {
    absl::MutexLock lock(&mu_);
    relations_[m.relation_oid] = m;
    return absl::OkStatus();
  }
  absl::Status OnInsert(const pgoutput::InsertMessage& m) override {
    return Add('I', m.relation_oid, 0, nullptr, &m.new_tuple);
  }
  absl::Status OnUpdate(const pgoutput::UpdateMessage& m) override {
    return Add('U', m.relation_oid, static_cast<char>(m.old_kind),
               m.old_kind == pgoutput::OldTupleKind::kNone ? nullptr : &m.old_tuple, &m.new_tuple);
  }
  absl::Status OnDelete(const pgoutput::DeleteMessage& m) override {
    return Add('D', m.relation_oid, static_cast<char>(m.old_kind), &m.old_tuple, nullptr);
  }
  absl::Status OnTruncate(const pgoutput::TruncateMessage& m) override {
    absl::MutexLock lock(&mu_);
    for (auto oid : m.relation_oids) {
      Event e;
      e.kind = 'T';
      e.table = relations_[oid].relation_name;
      current_.events.push_back(e);
    }
    return absl::OkStatus();
  }
  absl::Status OnMessage(const pgoutput::LogicalMessage& m) override {
    absl::MutexLock lock(&mu_);
    if (m.transactional) current_.messages.push_back(m);
    return absl::OkStatus();
  }

 private:
  static std::vector<std::string> Values(const pgoutput::Tuple& t) {
    std::vector<std::string> out;
    for (const auto& v : t) out.push_back(v.kind == pgoutput::ColumnKind::kText ? v.data : "");
    return out;
  }
  absl::Status Add(char kind, uint32_t oid, char old_kind, const pgoutput::Tuple* old_tuple,
                   const pgoutput::Tuple* new_tuple) {
    absl::MutexLock lock(&mu_);
    Event e;
    e.kind = kind;
    const auto& rel = relations_[oid];
    e.table = rel.relation_name;
    for (const auto& c : rel.columns) {
      e.columns.push_back(c.name);
      e.key.push_back(c.is_key);
    }
    e.old_kind = old_kind;
    if (old_tuple != nullptr) e.old_values = Values(*old_tuple);
    if (new_tuple != nullptr) e.new_values = Values(*new_tuple);
    current_.events.push_back(std::move(e));
    return absl::OkStatus();
  }

  pgoutput::Decoder decoder_{1};
  std::unique_ptr<pgoutput::ReplicationStream> stream_;
  std::atomic<bool> stop_{false};
  std::atomic<Lsn> confirmed_{0};
  absl::Status run_status_;
  std::thread thread_;
  absl::Mutex mu_;
  std::map<uint32_t, pgoutput::RelationMessage> relations_ ABSL_GUARDED_BY(mu_);
  Txn current_ ABSL_GUARDED_BY(mu_);
  std::vector<Txn> done_ ABSL_GUARDED_BY(mu_);
};

// ---- Fixture ----------------------------------------------------------------

class PublicationTest : public ::testing::Test {
 protected:
  void SetUpRunner(const std::string& name) {
    runner_ = std::make_unique<CaptureRunner>(name);
    runner_->Start();
    fences_ = std::make_unique<service::FenceEmitter>(TestPostgres().Dsn(), &runner_->capture());
    OpenManager();
  }
  void OpenManager() {
    scheduler::ManagerOptions options;
    options.dsn = TestPostgres().Dsn();
    options.publication_name = runner_->publication();
    options.set_replica_identity = true;
    auto manager = StreamTableManager::Open(options, &runner_->log(), [this] { return fences_->Emit(); });
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(*manager);
  }
  void TearDown() override {
    manager_.reset();
    fences_.reset();
    runner_.reset();
  }

  PgConnection& sql() { return runner_->sql(); }
  void Exec(const std::string& q) {
    auto r = sql().Exec(q);
    ASSERT_TRUE(r.ok()) << q << ": " << r.status();
  }
  std::string One(const std::string& q) {
    auto r = sql().Exec(q);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "<null>";
  }
  // Rows of a query as "a|b|c" strings, keyed by the first column.
  static std::map<std::string, std::string> Rows(PgConnection& conn, const std::string& q) {
    auto r = conn.Exec(q);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
    std::map<std::string, std::string> out;
    if (!r.ok()) return out;
    for (int i = 0; i < r->rows(); ++i) {
      std::vector<std::string> cells;
      for (int c = 0; c < r->columns(); ++c) cells.push_back(r->IsNull(i, c) ? "NULL" : std::string(r->Get(i, c)));
      out[cells[0]] = absl::StrJoin(cells, "|");
    }
    return out;
  }
  void Marker(const std::string& marker) {
    Exec(absl::StrCat("SELECT pg_logical_emit_message(true, 'test.marker', ", sql().QuoteLiteral(marker), ")"));
  }

  std::unique_ptr<CaptureRunner> runner_;
  std::unique_ptr<service::FenceEmitter> fences_;
  std::unique_ptr<StreamTableManager> manager_;
};

// The end of a test server's log, for failure messages.
std::string ServerLogTail(const PostgresServer& server) {
  std::ifstream in(server.socket_dir() + "/server.log");
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
}

scheduler::CreateRequest Differential(const std::string& name, const std::string& query,
                                      delta::RefreshMode mode = delta::RefreshMode::kDifferential) {
  scheduler::CreateRequest r;
  r.name = name;
  r.query = query;
  r.mode = mode;
  r.schedule = "1s";
  return r;
}

int64_t JsonCount(const std::string& json, const std::string& field) {
  std::smatch m;
  std::regex re("\"" + field + "\" : (\\d+)");
  return std::regex_search(json, m, re) ? std::stoll(m[1]) : -1;
}

// Random changes to src(id PK, g NOT NULL, h nullable, v): inserts, value
// updates, group (g) changes, primary-key changes, deletes, and a group
// that disappears.
void RandomChanges(PgConnection& conn, std::mt19937& rng, const std::string& table, int* next_id) {
  std::string q = "BEGIN;";
  for (int i = 0; i < 6; ++i) {
    int op = rng() % 12;
    std::string h = rng() % 4 == 0 ? "NULL" : std::to_string(rng() % 4);
    if (op < 4) {
      absl::StrAppend(&q, "INSERT INTO ", table, " VALUES (", (*next_id)++, ", ", rng() % 6, ", ", h, ", ",
                      rng() % 50, ");");
    } else if (op < 6) {
      absl::StrAppend(&q, "UPDATE ", table, " SET v = ", rng() % 50, " WHERE id IN (SELECT id FROM ", table,
                      " ORDER BY random() LIMIT 1);");
    } else if (op < 8) {
      absl::StrAppend(&q, "UPDATE ", table, " SET g = ", rng() % 6, ", h = ", h, " WHERE id IN (SELECT id FROM ",
                      table, " ORDER BY random() LIMIT 1);");
    } else if (op < 9) {
      absl::StrAppend(&q, "UPDATE ", table, " SET id = ", (*next_id)++, " WHERE id IN (SELECT id FROM ", table,
                      " ORDER BY random() LIMIT 1);");
    } else if (op < 11) {
      absl::StrAppend(&q, "DELETE FROM ", table, " WHERE id IN (SELECT id FROM ", table,
                      " ORDER BY random() LIMIT 1);");
    } else {
      absl::StrAppend(&q, "DELETE FROM ", table, " WHERE g = ", rng() % 6, ";");
    }
  }
  q += "COMMIT";
  auto r = conn.Exec(q);
  ASSERT_TRUE(r.ok()) << r.status();
}

// The subscriber's copy equals the stream tables after random changes and
// refreshes: inserts, updates, deletes, key changes, disappearing groups;
// natural keys, the surrogate key, FULL refreshes.
TEST_F(PublicationTest, SubscriberClusterCopyEqualsStreamTables) {
  SetUpRunner("pub_sub");
  Exec("CREATE TABLE ps_src (id int PRIMARY KEY, g int NOT NULL, h int, v int);"
       "ALTER TABLE ps_src REPLICA IDENTITY FULL;"
       "INSERT INTO ps_src SELECT i, i % 6, CASE WHEN i % 5 = 0 THEN NULL ELSE i % 4 END, i % 50"
       " FROM generate_series(1, 60) i;"
       "CREATE TABLE ps_log (h int, v int);"
       "ALTER TABLE ps_log REPLICA IDENTITY FULL;"
       "INSERT INTO ps_log SELECT i % 3, i % 10 FROM generate_series(1, 40) i");
  struct Case {
    std::string name, query, subscriber_ddl, columns;
    delta::RefreshMode mode = delta::RefreshMode::kDifferential;
  };
  const std::vector<Case> cases = {
      // group key g NOT NULL: the natural key is the primary key
      {"ps_agg", "SELECT g, count(*) AS n, sum(v) AS total FROM ps_src GROUP BY g",
       "CREATE TABLE ps_agg (g int PRIMARY KEY, n bigint, total bigint)", "g, n, total"},
      // nullable group key h: the surrogate row key
      {"ps_nul", "SELECT h, count(*) AS n, max(v) AS top FROM ps_src GROUP BY h",
       "CREATE TABLE ps_nul (h int, n bigint, top int, __pgt_id bigint PRIMARY KEY)", "h, n, top"},
      // the source's primary key carried through: key changes are delete + insert
      {"ps_proj", "SELECT id, g, v FROM ps_src WHERE v >= 10",
       "CREATE TABLE ps_proj (id int PRIMARY KEY, g int, v int)", "id, g, v"},
      // the source's key carried hidden (not in the output): published as the key
      {"ps_dup", "SELECT h, v % 3 AS r FROM ps_src WHERE v < 20",
       "CREATE TABLE ps_dup (h int, r int, __pgt_k1 int PRIMARY KEY)", "h, r"},
      // a source without any key, duplicates: a multiset, the surrogate key
      {"ps_bag", "SELECT h, v FROM ps_log WHERE v < 8",
       "CREATE TABLE ps_bag (h int, v int, __pgt_id bigint PRIMARY KEY)", "h, v"},
      // FULL-only (a window function): TRUNCATE + INSERT on every refresh
      {"ps_win", "SELECT g, v, rank() OVER (PARTITION BY g ORDER BY v) AS rk FROM ps_src WHERE id < 30",
       "CREATE TABLE ps_win (g int, v int, rk bigint, __pgt_id bigint PRIMARY KEY)", "g, v, rk",
       delta::RefreshMode::kAuto},
  };
  std::vector<std::string> publications;
  for (const Case& c : cases) {
    auto created = manager_->Create(Differential(c.name, c.query, c.mode));
    ASSERT_TRUE(created.ok()) << created.status();
    auto published = manager_->CreatePublication(c.name, "");
    ASSERT_TRUE(published.ok()) << published.status();
    publications.push_back(published->downstream_publication);
  }
  EXPECT_EQ(publications[0], "ps_agg_pub");
  EXPECT_EQ(One("SELECT attnames::text FROM pg_publication_tables WHERE pubname = 'ps_agg_pub'"), "{g,n,total}");
  EXPECT_EQ(One("SELECT attnames::text FROM pg_publication_tables WHERE pubname = 'ps_nul_pub'"),
            "{h,n,top,__pgt_id}");
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'ps_agg'::regclass"), "d");

  PostgresServer subscriber;
  ASSERT_TRUE(subscriber.Start().ok());
  auto sub = subscriber.Connect();
  ASSERT_TRUE(sub.ok()) << sub.status();
  for (const Case& c : cases) ASSERT_TRUE((*sub)->Exec(c.subscriber_ddl).ok()) << c.subscriber_ddl;
  auto subscribed = (*sub)->Exec(absl::StrCat(
      "CREATE SUBSCRIPTION ps_sub CONNECTION ", (*sub)->QuoteLiteral(TestPostgres().Dsn()), " PUBLICATION ",
      absl::StrJoin(publications, ", "), " WITH (copy_data = true)"));
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();

  auto wait_equal = [&](const std::string& when) {
    for (const Case& c : cases) {
      // Whole rows as the map's keys: the same row may appear twice (ps_dup).
      std::string q = absl::StrCat("SELECT row(", c.columns, ")::text || '#' || row_number() OVER (PARTITION BY ",
                                   c.columns, ") FROM ", c.name);
      auto want = Rows(sql(), q);
      std::map<std::string, std::string> got;
      absl::Time deadline = absl::Now() + absl::Seconds(30);
      while (absl::Now() < deadline) {
        got = Rows(**sub, q);
        if (got == want) break;
        absl::SleepFor(absl::Milliseconds(50));
      }
      ASSERT_EQ(got, want) << c.name << " on the subscriber, " << when << "; subscriber log:\n"
                           << ServerLogTail(subscriber);
    }
  };
  wait_equal("after the initial copy");

  uint32_t seed = getenv("TRICKLE_SEED") ? std::stoul(getenv("TRICKLE_SEED")) : std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  int next_id = 1000;
  for (int round = 0; round < 12; ++round) {
    RandomChanges(sql(), rng, "ps_src", &next_id);
    // Duplicates come and go in the keyless source.
    Exec(absl::StrCat("INSERT INTO ps_log VALUES (", rng() % 3, ", ", rng() % 10, "), (1, 1), (1, 1);"
                      "DELETE FROM ps_log WHERE ctid IN (SELECT ctid FROM ps_log WHERE v = ", rng() % 10,
                      " LIMIT 2);"
                      "UPDATE ps_log SET v = (v + 1) % 10 WHERE ctid IN (SELECT ctid FROM ps_log WHERE h = ",
                      rng() % 3, " LIMIT 1)"));
    for (const Case& c : cases) {
      auto r = manager_->RefreshNow(c.name, round % 5 == 4 ? scheduler::RefreshKind::kFull
                                                           : scheduler::RefreshKind::kAuto);
      ASSERT_TRUE(r.ok()) << c.name << " round " << round << ": " << r.status();
      ASSERT_EQ(OracleDifferences(sql(), c.name, c.query), 0) << c.name << " round " << round;
    }
    wait_equal(absl::StrCat("round ", round));
  }
  ASSERT_TRUE((*sub)->Exec("DROP SUBSCRIPTION ps_sub").ok());
}

// What a Debezium connector sees: per refresh, exactly that refresh's row
// changes in one transaction with one trickle.refresh message; updates are
// one UPDATE carrying the key; nothing for refreshes that change nothing.
TEST_F(PublicationTest, PgoutputConsumerSeesExactlyEachRefreshsChanges) {
  SetUpRunner("pub_dbz");
  Exec("CREATE TABLE pc_src (id int PRIMARY KEY, g int NOT NULL, h int, v int);"
       "ALTER TABLE pc_src REPLICA IDENTITY FULL;"
       "INSERT INTO pc_src SELECT i, i % 6, i % 4, i % 50 FROM generate_series(1, 60) i");
  const std::string q = "SELECT g, count(*) AS n, sum(v) AS total FROM pc_src GROUP BY g";
  ASSERT_TRUE(manager_->Create(Differential("pc_st", q)).ok());
  ASSERT_TRUE(manager_->CreatePublication("pc_st", "pc_pub").ok());
  Exec("SELECT pg_create_logical_replication_slot('pc_debezium', 'pgoutput')");
  auto consumer = std::make_unique<DebeziumLikeConsumer>(TestPostgres().Dsn(), "pc_debezium", "pc_pub");

  uint32_t seed = getenv("TRICKLE_SEED") ? std::stoul(getenv("TRICKLE_SEED")) : std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  int next_id = 1000;
  const std::string rows_q = "SELECT g, n, total FROM pc_st";
  int changed_rounds = 0, quiet_rounds = 0, updates_seen = 0;
  for (int round = 0; round < 14; ++round) {
    auto before = Rows(sql(), rows_q);
    scheduler::RefreshKind kind = scheduler::RefreshKind::kAuto;
    if (round % 4 == 1) {
      // Source changes whose net effect on the stream table is nothing.
      Exec("UPDATE pc_src SET h = coalesce(h, 0) + 1 WHERE id IN (SELECT id FROM pc_src LIMIT 3);"
           "UPDATE pc_src SET v = v WHERE id IN (SELECT id FROM pc_src LIMIT 3)");
    } else if (round % 4 == 3) {
      kind = scheduler::RefreshKind::kFull;  // recomputes every row
      if (round % 8 == 3) RandomChanges(sql(), rng, "pc_src", &next_id);
    } else {
      RandomChanges(sql(), rng, "pc_src", &next_id);
    }
    auto r = manager_->RefreshNow("pc_st", kind);
    ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.status();
    auto after = Rows(sql(), rows_q);
    std::string marker = absl::StrCat("round-", round);
    Marker(marker);
    std::vector<Txn> txns = consumer->TakeUntil(marker);

    std::set<std::string> want_i, want_u, want_d, got_i, got_u, got_d;
    for (const auto& [k, row] : after) {
      if (!before.contains(k)) want_i.insert(k);
      else if (before[k] != row) want_u.insert(k);
    }
    for (const auto& [k, row] : before) {
      if (!after.contains(k)) want_d.insert(k);
    }
    int carrying = 0;
    for (const Txn& t : txns) {
      std::vector<const pgoutput::LogicalMessage*> boundaries;
      for (const auto& m : t.messages) {
        if (m.prefix == "trickle.refresh") boundaries.push_back(&m);
      }
      int in_txn = 0;
      for (const Event& e : t.events) {
        ASSERT_EQ(e.table, "pc_st");
        ASSERT_NE(e.kind, 'T') << "round " << round << ": a refresh of a keyed stream table truncated it";
        ++in_txn;
        ASSERT_EQ(e.columns, (std::vector<std::string>{"g", "n", "total"}));
        ASSERT_EQ(e.key, (std::vector<bool>{true, false, false}));
        if (e.kind == 'I') {
          got_i.insert(e.new_values[0]);
          EXPECT_EQ(after[e.new_values[0]], absl::StrJoin(e.new_values, "|"));
        } else if (e.kind == 'U') {
          ++updates_seen;
          // Same key: no old key sent, the new row carries it.
          EXPECT_EQ(e.old_kind, 0);
          got_u.insert(e.new_values[0]);
          EXPECT_EQ(after[e.new_values[0]], absl::StrJoin(e.new_values, "|"));
        } else if (e.kind == 'D') {
          EXPECT_EQ(e.old_kind, 'K');
          got_d.insert(e.old_values[0]);
        }
      }
      if (in_txn == 0) {
        EXPECT_TRUE(boundaries.empty()) << "round " << round << ": a boundary without changes";
        continue;
      }
      ++carrying;
      ASSERT_EQ(boundaries.size(), 1u) << "round " << round;
      const std::string& json = boundaries[0]->content;
      EXPECT_NE(json.find("\"stream_table\" : \"public.pc_st\""), std::string::npos) << json;
      EXPECT_NE(json.find("\"lsn\" : \"" + FormatLsn(r->frontier.lsn) + "\""), std::string::npos) << json;
      EXPECT_EQ(JsonCount(json, "inserted"), static_cast<int64_t>(want_i.size())) << json;
      EXPECT_EQ(JsonCount(json, "updated"), static_cast<int64_t>(want_u.size())) << json;
      EXPECT_EQ(JsonCount(json, "deleted"), static_cast<int64_t>(want_d.size())) << json;
    }
    EXPECT_EQ(got_i, want_i) << "round " << round;
    EXPECT_EQ(got_u, want_u) << "round " << round;
    EXPECT_EQ(got_d, want_d) << "round " << round;
    bool changed = !want_i.empty() || !want_u.empty() || !want_d.empty();
    EXPECT_EQ(carrying, changed ? 1 : 0) << "round " << round << ": one refresh, one transaction";
    if (changed) ++changed_rounds;
    else ++quiet_rounds;
    if (round % 4 == 1 || (round % 4 == 3 && round % 8 != 3)) {
      EXPECT_FALSE(changed) << "round " << round << " should not change the stream table";
      EXPECT_TRUE(r->committed || kind == scheduler::RefreshKind::kAuto);
    }
  }
  EXPECT_GE(changed_rounds, 5);
  EXPECT_GE(quiet_rounds, 4);
  EXPECT_GT(updates_seen, 0);
  consumer.reset();
  // The walsender ends a moment after the client has gone.
  for (int i = 0; i < 200 && One("SELECT active FROM pg_replication_slots WHERE slot_name = 'pc_debezium'") == "t";
       ++i) {
    absl::SleepFor(absl::Milliseconds(25));
  }
  Exec("SELECT pg_drop_replication_slot('pc_debezium')");
}

// What the publication sent since the slot's position (consumed): the
// pgoutput message types in order ("BRIMC": Begin, Relation, Insert,
// Message, Commit) and every message's bytes as text.
struct Sent {
  std::string types;
  std::string text;
};
Sent SlotChanges(PgConnection& conn, const std::string& slot, const std::string& publication) {
  auto r = conn.ExecParams(
      "SELECT coalesce(string_agg(chr(get_byte(data, 0)), ''), ''),"
      " coalesce(string_agg(encode(data, 'escape'), ' '), '')"
      " FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1',"
      " 'publication_names', $2, 'messages', 'true')"
      // The refresh's fences reach every slot; they are not the publication's.
      " WHERE position('trickle.fence' in encode(data, 'escape')) = 0",
      {slot, publication});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  Sent sent{std::string(r->Get(0, 0)), std::string(r->Get(0, 1))};
  // Transactions left empty by that (a fence's own) are dropped too.
  for (size_t at; (at = sent.types.find("BC")) != std::string::npos;) sent.types.erase(at, 2);
  return sent;
}

TEST_F(PublicationTest, LifecycleForeignRestartReadersRebuildDrop) {
  SetUpRunner("pub_life");
  Exec("CREATE TABLE pl_src (id int PRIMARY KEY, g int NOT NULL, v int);"
       "ALTER TABLE pl_src REPLICA IDENTITY FULL;"
       "INSERT INTO pl_src SELECT i, i % 5, i FROM generate_series(1, 20) i;"
       "CREATE PUBLICATION pl_foreign");
  const std::string q = "SELECT g, count(*) AS n FROM pl_src GROUP BY g";
  ASSERT_TRUE(manager_->Create(Differential("pl_st", q)).ok());

  // A publication trickle did not create is refused and left alone.
  auto foreign = manager_->CreatePublication("pl_st", "pl_foreign");
  ASSERT_EQ(foreign.status().code(), absl::StatusCode::kFailedPrecondition) << foreign.status();
  EXPECT_NE(foreign.status().message().find("not created by trickle"), std::string::npos);
  EXPECT_EQ(One("SELECT count(*) FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid"
                " WHERE p.pubname = 'pl_foreign'"),
            "0");
  EXPECT_EQ(manager_->DropPublication("pl_st").status().code(), absl::StatusCode::kNotFound);

  auto published = manager_->CreatePublication("pl_st", "");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->downstream_publication, "pl_st_pub");
  EXPECT_EQ(manager_->CreatePublication("pl_st", "").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(One("SELECT downstream_publication FROM pgtrickle.pg_stat_stream_tables WHERE table_name = 'pl_st'"),
            "pl_st_pub");
  Exec("SELECT pg_create_logical_replication_slot('pl_peek', 'pgoutput')");

  // Survives a restart of the service: the catalog remembers it.
  manager_.reset();
  OpenManager();
  auto st = manager_->GetStreamTable("pl_st");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->row.downstream_publication, "pl_st_pub");
  Exec("UPDATE pl_src SET g = 9 WHERE id = 1; INSERT INTO pl_src VALUES (100, 9, 1)");
  ASSERT_TRUE(manager_->RefreshNow("pl_st").ok());
  Sent sent = SlotChanges(sql(), "pl_peek", "pl_st_pub");
  // One transaction: the group that shrank (U), the new group (I), the boundary.
  EXPECT_EQ(sent.types.size(), 6u) << sent.types;
  EXPECT_EQ(sent.types.substr(0, 2), "BR") << sent.types;
  EXPECT_EQ(sent.types.substr(4), "MC") << sent.types;
  EXPECT_NE(sent.text.find("trickle.refresh"), std::string::npos);
  EXPECT_NE(sent.text.find("\"inserted\" : 1, \"updated\" : 1, \"deleted\" : 0"), std::string::npos) << sent.text;

  // Another stream table starts reading it: FULL identity, every column
  // published (PostgreSQL 15 needs both), and refreshes keep working.
  const std::string rq = "SELECT count(*) AS groups FROM pl_st";
  ASSERT_TRUE(manager_->Create(Differential("pl_reader", rq)).ok());
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "f");
  EXPECT_EQ(One("SELECT prattrs IS NULL FROM pg_publication_rel WHERE prrelid = 'pl_st'::regclass"
                " AND prpubid = (SELECT oid FROM pg_publication WHERE pubname = 'pl_st_pub')"),
            "t");
  Exec("UPDATE pl_src SET g = 7 WHERE id IN (2, 3); DELETE FROM pl_src WHERE g = 4");
  ASSERT_TRUE(manager_->RefreshNow("pl_st").ok());
  ASSERT_TRUE(manager_->RefreshNow("pl_reader").ok());
  EXPECT_EQ(OracleDifferences(sql(), "pl_reader", rq), 0);
  // ... and stops: back to the primary key and the visible columns.
  ASSERT_TRUE(manager_->Drop("pl_reader", false).ok());
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "d");
  EXPECT_EQ(One("SELECT attnames::text FROM pg_publication_tables WHERE pubname = 'pl_st_pub'"), "{g,n}");
  // ... and when an existing stream table's new query starts reading it.
  ASSERT_TRUE(manager_->Create(Differential("pl_other", "SELECT count(*) AS c FROM pl_src")).ok());
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "d");
  const std::string oq = "SELECT g, n FROM pl_st WHERE n > 1";
  scheduler::AlterRequest read_it;
  read_it.query = oq;
  ASSERT_TRUE(manager_->Alter("pl_other", read_it).ok());
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "f");
  Exec("UPDATE pl_src SET g = 8 WHERE id IN (5, 6, 7); DELETE FROM pl_src WHERE id = 8");
  ASSERT_TRUE(manager_->RefreshNow("pl_st").ok());
  ASSERT_TRUE(manager_->RefreshNow("pl_other").ok());
  EXPECT_EQ(OracleDifferences(sql(), "pl_other", oq), 0);
  ASSERT_TRUE(manager_->Drop("pl_other", false).ok());
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "d");
  (void)SlotChanges(sql(), "pl_peek", "pl_st_pub");

  // Rebuilt for a new shape: same publication, the new table in it, and
  // subscribers told to start over (TRUNCATE) before the new rows.
  scheduler::AlterRequest alter;
  alter.query = "SELECT g, count(*) AS n, sum(v) AS total FROM pl_src GROUP BY g";
  auto altered = manager_->Alter("pl_st", alter);
  ASSERT_TRUE(altered.ok()) << altered.status();
  EXPECT_EQ(One("SELECT attnames::text FROM pg_publication_tables WHERE pubname = 'pl_st_pub'"), "{g,n,total}");
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "d");
  Sent rebuilt = SlotChanges(sql(), "pl_peek", "pl_st_pub");
  // TRUNCATE of the new table, then its rows and the boundary of the FULL refresh.
  EXPECT_NE(rebuilt.types.find("T"), std::string::npos) << rebuilt.types;
  EXPECT_LT(rebuilt.types.find("T"), rebuilt.types.find("I")) << rebuilt.types;
  EXPECT_NE(rebuilt.text.find("\"action\" : \"FULL\""), std::string::npos) << rebuilt.text;
  Exec("UPDATE pl_src SET v = v + 5 WHERE id = 5");
  ASSERT_TRUE(manager_->RefreshNow("pl_st").ok());
  EXPECT_EQ(SlotChanges(sql(), "pl_peek", "pl_st_pub").types, "BRUMC");

  // A source's columns change (ALTER TABLE seen in the stream): rebuilt,
  // still published with the same columns and key, and whatever the
  // rebuild sends downstream starts over cleanly (a recreated table is
  // truncated before its rows are sent).
  Exec("ALTER TABLE pl_src ADD COLUMN extra text DEFAULT 'x'; UPDATE pl_src SET v = v + 1 WHERE id = 6");
  ASSERT_TRUE(manager_->RefreshNow("pl_st").ok());  // sees the ALTER: rebuilds and refreshes FULL
  ASSERT_TRUE(manager_->RefreshNow("pl_st").ok());
  EXPECT_EQ(OracleDifferences(sql(), "pl_st", "SELECT g, count(*) AS n, sum(v) AS total FROM pl_src GROUP BY g"), 0);
  EXPECT_EQ(One("SELECT attnames::text FROM pg_publication_tables WHERE pubname = 'pl_st_pub'"), "{g,n,total}");
  EXPECT_EQ(One("SELECT relreplident::text FROM pg_class WHERE oid = 'pl_st'::regclass"), "d");
  Sent source_ddl = SlotChanges(sql(), "pl_peek", "pl_st_pub");
  EXPECT_NE(source_ddl.types.find('M'), std::string::npos) << source_ddl.types;
  if (source_ddl.types.find('T') != std::string::npos) {
    EXPECT_LT(source_ddl.types.find('T'), source_ddl.types.find('I')) << source_ddl.types;
    EXPECT_EQ(source_ddl.types.find('D'), std::string::npos) << source_ddl.types;
  }

  // Dropped with the stream table; the foreign one stays.
  ASSERT_TRUE(manager_->Drop("pl_st", false).ok());
  EXPECT_EQ(One("SELECT count(*) FROM pg_publication WHERE pubname = 'pl_st_pub'"), "0");
  EXPECT_EQ(One("SELECT count(*) FROM pg_publication WHERE pubname = 'pl_foreign'"), "1");
  Exec("SELECT pg_drop_replication_slot('pl_peek'); DROP PUBLICATION pl_foreign");
}

}  // namespace
}  // namespace trickle::testing
