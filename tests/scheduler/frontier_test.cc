// The consistency protocol's pure core: snapshot parsing, xid widening and
// visibility, frontier encoding, and delta selection.
#include "scheduler/frontier.h"

#include <random>

#include "gtest/gtest.h"

namespace trickle::scheduler {
namespace {

storage::v1::TransactionRecord Txn(uint32_t xid, Lsn commit) {
  storage::v1::TransactionRecord t;
  t.set_xid(xid);
  t.set_commit_lsn(commit);
  t.set_end_lsn(commit + 8);
  return t;
}

TEST(SnapshotTest, ParsesPostgresTextForm) {
  auto s = Snapshot::Parse("100:110:104,102");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->xmin, 100u);
  EXPECT_EQ(s->xmax, 110u);
  EXPECT_EQ(s->xip, (std::vector<uint64_t>{102, 104}));
  EXPECT_TRUE(Snapshot::Parse("5:5:").ok());
  EXPECT_EQ(Snapshot::Parse("5:x:").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Snapshot::Parse("5:6").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Snapshot::Parse("1:2:3,z").ok());
}

TEST(SnapshotTest, VisibilityFollowsXminXmaxAndXip) {
  Snapshot s = *Snapshot::Parse("100:110:104");
  EXPECT_TRUE(s.Visible(99));
  EXPECT_TRUE(s.Visible(103));
  EXPECT_FALSE(s.Visible(104));  // in progress when S was taken
  EXPECT_TRUE(s.Visible(109));
  EXPECT_FALSE(s.Visible(110));  // started after S
  EXPECT_FALSE(s.Visible(200));
}

TEST(SnapshotTest, WidensAcrossTheEpochBoundary) {
  // xmax is in epoch 3, just past the 32-bit wrap; xmin still in epoch 2.
  uint64_t epoch3 = uint64_t{3} << 32;
  Snapshot s{epoch3 - 10, epoch3 + 5, {epoch3 - 2}};
  EXPECT_EQ(s.Widen(3), epoch3 + 3);
  EXPECT_EQ(s.Widen(0xFFFFFFF0u), epoch3 - 16);
  EXPECT_TRUE(s.Visible(0xFFFFFFF0u));   // below xmin, previous epoch
  EXPECT_FALSE(s.Visible(0xFFFFFFFEu));  // in xip
  EXPECT_TRUE(s.Visible(0xFFFFFFFFu));
  EXPECT_TRUE(s.Visible(2));
  EXPECT_FALSE(s.Visible(5));
}

// Issue 13: at epoch >= 1, a transaction that began after the snapshot
// (xid32 at or just above xmax's low bits) must widen to at or above xmax,
// never into the previous epoch (which made it "visible" and applied with a
// delta the snapshot cannot see).
TEST(SnapshotTest, XidsAfterTheSnapshotStayAfterItInEveryEpoch) {
  for (uint64_t epoch : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{0xFFFF}}) {
    for (uint32_t low : {3u, 1000u, 0x7FFFFFF0u, 0xFFFFFF00u}) {
      uint64_t xmax = (epoch << 32) | low;
      if (xmax < 3) continue;
      Snapshot s{xmax - 2, xmax, {}};
      for (uint32_t ahead : {0u, 1u, 50u, 100000u}) {
        uint32_t xid = static_cast<uint32_t>(low + ahead);  // began after S
        EXPECT_EQ(s.Widen(xid), xmax + ahead) << "epoch " << epoch << " low " << low;
        EXPECT_FALSE(s.Visible(xid)) << "epoch " << epoch << " low " << low << " +" << ahead;
      }
      EXPECT_TRUE(s.Visible(static_cast<uint32_t>(low - 3)));
      EXPECT_EQ(s.Widen(static_cast<uint32_t>(low - 3)), xmax - 3);
    }
  }
}

// Around the 32-bit wrap: xmax just past it, xids on both sides.
TEST(SnapshotTest, WidensBySignedDistanceFromXmax) {
  uint64_t xmax = (uint64_t{5} << 32) + 10;
  Snapshot s{xmax - 40, xmax, {xmax - 20}};
  EXPECT_EQ(s.Widen(0xFFFFFFF0u), xmax - 26);  // previous epoch, visible
  EXPECT_TRUE(s.Visible(0xFFFFFFF0u));
  EXPECT_EQ(s.Widen(20), xmax + 10);  // after S
  EXPECT_FALSE(s.Visible(20));
  EXPECT_FALSE(s.Visible(static_cast<uint32_t>(xmax - 20)));  // in xip
}

TEST(FrontierTest, EncodesAndDecodes) {
  Frontier f{0x16B374D848, {0x100, 0x2000}};
  EXPECT_EQ(f.Encode(), "16/B374D848;0/100,0/2000");
  EXPECT_EQ(*Frontier::Decode(f.Encode()), f);
  EXPECT_EQ(*Frontier::Decode("0/10"), (Frontier{0x10, {}}));
  EXPECT_FALSE(Frontier::Decode("nope").ok());
  EXPECT_FALSE(Frontier::Decode("0/10;zz").ok());
  EXPECT_EQ(LowestNeeded(f), 0x100u);
  EXPECT_EQ(LowestNeeded(Frontier{0x50, {}}), 0x50u);
}

TEST(SelectDeltaTest, AppliesVisibleBelowFenceAndDefersInvisible) {
  Snapshot s = *Snapshot::Parse("100:110:104");
  std::vector<storage::v1::TransactionRecord> logged = {
      Txn(90, 0x10),   // applied earlier (below L)
      Txn(101, 0x20),  // visible, pending
      Txn(104, 0x30),  // committed after S, before F: invisible -> E
      Txn(105, 0x40),  // visible
      Txn(111, 0x50),  // at/after the fence: not this refresh
  };
  DeltaSelection d = SelectDelta(logged, Frontier{0x20, {}}, s, 0x50);
  ASSERT_EQ(d.apply.size(), 2u);
  EXPECT_EQ(d.apply[0].commit_lsn(), 0x20u);
  EXPECT_EQ(d.apply[1].commit_lsn(), 0x40u);
  EXPECT_EQ(d.next, (Frontier{0x50, {0x30}}));

  // Next refresh: the exception is now visible and applied exactly once.
  Snapshot later = *Snapshot::Parse("112:112:");
  DeltaSelection next = SelectDelta(logged, d.next, later, 0x60);
  ASSERT_EQ(next.apply.size(), 2u);
  EXPECT_EQ(next.apply[0].commit_lsn(), 0x30u);
  EXPECT_EQ(next.apply[1].commit_lsn(), 0x50u);
  EXPECT_EQ(next.next, (Frontier{0x60, {}}));
}

// Property: over random histories split into random refreshes, every
// transaction is applied exactly once, in commit order per refresh.
TEST(SelectDeltaTest, RandomHistoriesApplyEveryTransactionExactlyOnce) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    // Transactions commit in LSN order; xids are assigned at start, so commit
    // order and xid order differ.
    int n = 60;
    std::vector<uint32_t> xids(n);
    for (int i = 0; i < n; ++i) xids[i] = 1000 + i;
    std::shuffle(xids.begin(), xids.end(), rng);
    std::vector<storage::v1::TransactionRecord> logged;
    for (int i = 0; i < n; ++i) logged.push_back(Txn(xids[i], 0x100 * (i + 1)));
    std::map<Lsn, int> applied;
    Frontier f;
    int committed = 0;  // transactions [0, committed) have committed
    while (committed < n) {
      // A snapshot sees a random prefix of the committed ones... plus the
      // ones committed just before it; those after the snapshot but before
      // the fence are invisible.
      int seen = std::min(n, committed + 1 + static_cast<int>(rng() % 8));
      int fence_at = std::min(n, seen + static_cast<int>(rng() % 4));
      Snapshot s;
      std::vector<uint64_t> running;
      uint64_t xmax = 0;
      for (int i = 0; i < n; ++i) xmax = std::max<uint64_t>(xmax, xids[i] + 1);
      s.xmax = xmax;
      for (int i = seen; i < n; ++i) running.push_back(xids[i]);
      std::sort(running.begin(), running.end());
      s.xip = running;
      s.xmin = running.empty() ? xmax : running.front();
      Lsn fence = fence_at < n ? logged[fence_at].commit_lsn() : 0x100 * (n + 1);
      std::vector<storage::v1::TransactionRecord> visible_log(logged.begin(), logged.begin() + fence_at);
      DeltaSelection d = SelectDelta(visible_log, f, s, fence);
      for (const auto& t : d.apply) applied[t.commit_lsn()]++;
      f = d.next;
      committed = fence_at;
    }
    // One final refresh with everything visible.
    Snapshot all;
    all.xmin = all.xmax = 1000 + n;
    DeltaSelection last = SelectDelta(logged, f, all, 0x100 * (n + 2));
    for (const auto& t : last.apply) applied[t.commit_lsn()]++;
    ASSERT_EQ(applied.size(), static_cast<size_t>(n));
    for (const auto& [lsn, count] : applied) EXPECT_EQ(count, 1) << "txn at " << lsn;
    EXPECT_TRUE(last.next.exceptions.empty());
  }
}

}  // namespace
}  // namespace trickle::scheduler
