#include "scheduler/policy.h"

#include "gtest/gtest.h"

namespace trickle::scheduler {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi) {
  return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), absl::UTCTimeZone());
}

TEST(ScheduleTest, ParsesEveryKind) {
  EXPECT_EQ(Schedule::Parse("")->kind, Schedule::kOnChange);
  EXPECT_EQ(Schedule::Parse("on_change")->kind, Schedule::kOnChange);
  EXPECT_EQ(Schedule::Parse("downstream")->kind, Schedule::kDownstream);
  auto interval = Schedule::Parse("500ms");
  ASSERT_TRUE(interval.ok());
  EXPECT_EQ(interval->kind, Schedule::kInterval);
  EXPECT_EQ(interval->interval, absl::Milliseconds(500));
  EXPECT_EQ(Schedule::Parse("1m")->interval, absl::Minutes(1));
  EXPECT_EQ(Schedule::Parse("*/5 * * * *")->kind, Schedule::kCron);
  auto bad = Schedule::Parse("soon");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'500ms'"), std::string::npos);
  EXPECT_FALSE(Schedule::Parse("-1s").ok());
  EXPECT_FALSE(Schedule::Parse("61 * * * *").ok());
  EXPECT_FALSE(Schedule::Parse("* * * *").ok());
}

TEST(CronTest, NextMatchingMinute) {
  auto every5 = *CronExpression::Parse("*/5 * * * *");
  EXPECT_EQ(every5.Next(Utc(2026, 11, 21, 10, 2)), Utc(2026, 11, 21, 10, 5));
  EXPECT_EQ(every5.Next(Utc(2026, 11, 21, 10, 5)), Utc(2026, 11, 21, 10, 10));
  auto nightly = *CronExpression::Parse("30 2 * * *");
  EXPECT_EQ(nightly.Next(Utc(2026, 11, 21, 10, 0)), Utc(2026, 11, 22, 2, 30));
  auto mondays = *CronExpression::Parse("0 9 * * 1");
  EXPECT_EQ(mondays.Next(Utc(2026, 11, 21, 10, 0)), Utc(2026, 11, 23, 9, 0));  // Nov 21 2026 is a Saturday
  auto sundays = *CronExpression::Parse("0 0 * * 7");
  EXPECT_EQ(sundays.Next(Utc(2026, 11, 21, 10, 0)), Utc(2026, 11, 22, 0, 0));
  auto leap = *CronExpression::Parse("0 0 29 2 *");
  EXPECT_EQ(leap.Next(Utc(2026, 11, 21, 10, 0)), Utc(2028, 2, 29, 0, 0));
  auto ranges = *CronExpression::Parse("15,45 8-9 1 1,7 *");
  EXPECT_EQ(ranges.Next(Utc(2026, 11, 21, 10, 0)), Utc(2027, 1, 1, 8, 15));
}

TEST(BackoffTest, DoublesAndCaps) {
  absl::Duration base = absl::Seconds(1), cap = absl::Seconds(30);
  EXPECT_EQ(BackoffDelay(0, base, cap), absl::ZeroDuration());
  EXPECT_EQ(BackoffDelay(1, base, cap), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(2, base, cap), absl::Seconds(2));
  EXPECT_EQ(BackoffDelay(5, base, cap), absl::Seconds(16));
  EXPECT_EQ(BackoffDelay(6, base, cap), absl::Seconds(30));
  EXPECT_EQ(BackoffDelay(1000, base, cap), absl::Seconds(30));
}

TEST(PaceTrackerTest, DoublesAfterThreeMissesAndRecovers) {
  PaceTracker pace;
  absl::Duration s = absl::Seconds(1), cap = absl::Seconds(8);
  pace.Record(s, absl::Seconds(2), cap);
  pace.Record(s, absl::Seconds(2), cap);
  EXPECT_FALSE(pace.behind(s));
  pace.Record(s, absl::Seconds(2), cap);
  EXPECT_TRUE(pace.behind(s));
  EXPECT_EQ(pace.Interval(s), absl::Seconds(2));
  for (int i = 0; i < 9; ++i) pace.Record(s, absl::Seconds(100), cap);
  EXPECT_EQ(pace.Interval(s), cap);
  // Catching up: a refresh well inside the effective interval steps back.
  pace.Record(s, absl::Milliseconds(100), cap);
  EXPECT_EQ(pace.Interval(s), absl::Seconds(4));
  pace.Record(s, absl::Milliseconds(100), cap);
  pace.Record(s, absl::Milliseconds(100), cap);
  pace.Record(s, absl::Milliseconds(100), cap);
  EXPECT_FALSE(pace.behind(s));
  EXPECT_EQ(pace.Interval(s), s);
}

TEST(FuseTest, AbsoluteAndRelativeCeilings) {
  FuseSettings off;
  EXPECT_FALSE(FuseVerdict(off, 1'000'000'000, 10).has_value());
  FuseSettings abs{.max_rows = 1000};
  EXPECT_FALSE(FuseVerdict(abs, 1000, 0).has_value());
  auto blown = FuseVerdict(abs, 1001, 0);
  ASSERT_TRUE(blown.has_value());
  EXPECT_NE(blown->find("1001"), std::string::npos);
  FuseSettings rel{.max_multiple = 10, .min_rows = 100};
  EXPECT_FALSE(FuseVerdict(rel, 99, 1).has_value());     // below the floor
  EXPECT_FALSE(FuseVerdict(rel, 500, 50).has_value());   // 10x exactly is fine
  EXPECT_TRUE(FuseVerdict(rel, 501, 50).has_value());
  EXPECT_FALSE(FuseVerdict(rel, 5000, 0).has_value());   // no history yet
}

TEST(CostModelTest, FitsALineAndNeedsFiveSamples) {
  std::vector<CostSample> samples;
  for (int i = 0; i < 4; ++i) samples.push_back({100.0 * (i + 1), 5 + 0.02 * 100 * (i + 1)});
  CostModel cold = FitCostModel(samples);
  EXPECT_FALSE(cold.fitted());
  EXPECT_EQ(cold.samples, 4);
  samples.push_back({1000, 5 + 0.02 * 1000});
  CostModel m = FitCostModel(samples);
  ASSERT_TRUE(m.fitted());
  EXPECT_NEAR(m.slope_ms_per_row, 0.02, 1e-9);
  EXPECT_NEAR(m.intercept_ms, 5, 1e-9);
  EXPECT_NEAR(m.Predict(10'000), 205, 1e-6);
  // All at one size: no slope, the mean.
  CostModel flat = FitCostModel({{10, 1}, {10, 2}, {10, 3}, {10, 4}, {10, 5}});
  EXPECT_EQ(flat.slope_ms_per_row, 0);
  EXPECT_NEAR(flat.intercept_ms, 3, 1e-9);
}

TEST(CostModelTest, ColdStartBoundaryZeroToFourSamples) {
  for (int n = 0; n <= 4; ++n) {
    std::vector<CostSample> samples(n, CostSample{10, 1});
    CostModel m = FitCostModel(samples);
    EXPECT_FALSE(m.fitted()) << n;
    // Cold start: the fixed threshold decides.
    EXPECT_FALSE(DecideAuto(m, 50, 10.0, 1.5, 1000, 0.1).full) << n;
    AutoDecision d = DecideAuto(m, 101, 10.0, 1.5, 1000, 0.1);
    EXPECT_TRUE(d.full) << n;
    EXPECT_EQ(d.reason, "delta_exceeds_threshold");
  }
}

TEST(CostModelTest, AutoChoosesFullWhenPredictedCostExceedsIt) {
  CostModel m = FitCostModel({{100, 7}, {200, 9}, {300, 11}, {400, 13}, {500, 15}});  // 5 + 0.02 x
  EXPECT_FALSE(DecideAuto(m, 1000, 100.0, 1.5, 1'000'000, 0.1).full);  // 25 ms < 150 ms
  AutoDecision d = DecideAuto(m, 10'000, 100.0, 1.5, 1'000'000, 0.1);   // 205 ms > 150 ms
  EXPECT_TRUE(d.full);
  EXPECT_EQ(d.reason, "predicted_cost_exceeds_full");
  // No full refresh measured yet: fall back to the threshold.
  EXPECT_FALSE(DecideAuto(m, 10'000, std::nullopt, 1.5, 1'000'000, 0.1).full);
}

TEST(TierTest, AssignmentMeetsTheDeadlineWithTheSlowestTier) {
  EXPECT_EQ(AssignTier(absl::Seconds(30), absl::Seconds(1), absl::ZeroDuration()), Tier::kCold);
  EXPECT_EQ(AssignTier(absl::Seconds(5), absl::Seconds(1), absl::ZeroDuration()), Tier::kWarm);
  EXPECT_EQ(AssignTier(absl::Seconds(5), absl::Seconds(1), absl::Seconds(4)), Tier::kHot);
  EXPECT_EQ(AssignTier(absl::Milliseconds(100), absl::Milliseconds(50), absl::ZeroDuration()), Tier::kHot);
}

TEST(TierTest, PromotesOnAMissAndDemotesAfterThreeSlackCycles) {
  TierState s{Tier::kCold};
  absl::Duration sla = absl::Seconds(30), work = absl::Milliseconds(100);
  UpdateTier(&s, sla, absl::Seconds(31), work);
  EXPECT_EQ(s.tier, Tier::kWarm);
  UpdateTier(&s, sla, absl::Seconds(45), work);
  EXPECT_EQ(s.tier, Tier::kHot);
  UpdateTier(&s, sla, absl::Seconds(40), work);
  EXPECT_EQ(s.tier, Tier::kHot);  // nowhere hotter to go
  EXPECT_EQ(s.misses, 1);
  // Well within the deadline: colder after three cycles, not before.
  UpdateTier(&s, sla, absl::Seconds(1), work);
  UpdateTier(&s, sla, absl::Seconds(1), work);
  EXPECT_EQ(s.tier, Tier::kHot);
  UpdateTier(&s, sla, absl::Seconds(1), work);
  EXPECT_EQ(s.tier, Tier::kWarm);
  // A cycle that is not slack resets the count.
  UpdateTier(&s, sla, absl::Seconds(1), work);
  UpdateTier(&s, sla, absl::Seconds(20), work);
  UpdateTier(&s, sla, absl::Seconds(1), work);
  UpdateTier(&s, sla, absl::Seconds(1), work);
  EXPECT_EQ(s.tier, Tier::kWarm);
  UpdateTier(&s, sla, absl::Seconds(1), work);
  EXPECT_EQ(s.tier, Tier::kCold);
}

}  // namespace
}  // namespace trickle::scheduler
