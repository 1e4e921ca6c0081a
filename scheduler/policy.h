// The scheduler's decisions, as pure functions and small value types (no I/O,
// no clocks of their own): schedules, backoff, falling behind, the fuse, the
// AUTO cost model and SLA tiers. Unit-tested in tests/scheduler/.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace trickle::scheduler {

// ---- Schedules

// A five-field cron expression (minute hour day-of-month month day-of-week),
// with *, lists, ranges and steps; evaluated in UTC. Day-of-month and
// day-of-week combine as in cron: when both are restricted, either matches.
class CronExpression {
 public:
  static absl::StatusOr<CronExpression> Parse(absl::string_view text);
  // The first matching minute strictly after `t`.
  absl::Time Next(absl::Time t) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;
  std::bitset<13> months_;
  std::bitset<7> weekdays_;
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

struct Schedule {
  enum Kind {
    kOnChange,    // "" or "on_change": as soon as a source changes (debounced)
    kInterval,    // "500ms", "5s", "1m": at most once per interval, when something changed
    kCron,        // "*/5 * * * *": at the cron times, when something changed
    kDownstream,  // "downstream": only when a stream table reading it refreshes
  };
  Kind kind = kOnChange;
  absl::Duration interval = absl::ZeroDuration();
  std::optional<CronExpression> cron;
  std::string text;

  static absl::StatusOr<Schedule> Parse(absl::string_view text);
};

// ---- Failures

// Exponential backoff after consecutive failures: base * 2^(failures-1),
// capped. failures == 0 means no delay.
absl::Duration BackoffDelay(int consecutive_failures, absl::Duration base, absl::Duration cap);

// Falling behind: a stream table that misses its interval three refreshes in
// a row has its effective interval doubled (up to `cap`); once a refresh
// fits in half the effective interval, it steps back toward the schedule.
struct PaceTracker {
  absl::Duration effective = absl::ZeroDuration();  // 0 = the schedule's own
  int misses = 0;

  // `took`: from when the refresh was due until it finished.
  void Record(absl::Duration scheduled, absl::Duration took, absl::Duration cap);
  absl::Duration Interval(absl::Duration scheduled) const {
    return effective > scheduled ? effective : scheduled;
  }
  bool behind(absl::Duration scheduled) const { return effective > scheduled; }
};

// ---- Fuse

struct FuseSettings {
  int64_t max_rows = 0;         // 0 = no absolute ceiling
  double max_multiple = 0;      // 0 = no relative ceiling; else × recent average delta
  int64_t min_rows = 1000;      // the relative ceiling never fires below this many rows
};

// The reason the fuse blows for a delta of `delta_rows`, or nullopt.
std::optional<std::string> FuseVerdict(const FuseSettings& settings, int64_t delta_rows,
                                       double recent_average_rows);

// ---- AUTO mode: predictive cost model

struct CostSample {
  double delta_rows;
  double duration_ms;
};

struct CostModel {
  int samples = 0;
  double slope_ms_per_row = 0;
  double intercept_ms = 0;
  bool fitted() const { return samples >= kMinSamples; }
  double Predict(double delta_rows) const { return intercept_ms + slope_ms_per_row * delta_rows; }
  static constexpr int kMinSamples = 5;
};

// Least squares duration_ms ~ delta_rows over the samples. With fewer than
// kMinSamples samples the model is not fitted (samples is still counted).
// All samples at one delta size: slope 0, intercept their mean.
CostModel FitCostModel(const std::vector<CostSample>& samples);

struct AutoDecision {
  bool full = false;
  std::string reason;  // "predicted_cost_exceeds_full", "delta_exceeds_threshold", or ""
};

// AUTO: FULL when the model predicts the differential refresh to cost more
// than `ratio` × the last full refresh; without a fitted model (cold start),
// FULL when the delta exceeds `cold_threshold` of the stream table's sources'
// size.
AutoDecision DecideAuto(const CostModel& model, int64_t delta_rows,
                        std::optional<double> last_full_ms, double ratio, int64_t source_rows,
                        double cold_threshold);

// ---- SLA tiers

enum class Tier { kHot = 0, kWarm = 1, kCold = 2 };
const char* TierName(Tier t);
// The dispatch gap of each tier: how long changes may wait to be batched.
absl::Duration TierGap(Tier t);

struct TierState {
  Tier tier = Tier::kCold;
  int misses = 0;  // consecutive refreshes that missed the deadline
  int slack = 0;   // consecutive refreshes that met it with the tier > 2x faster than needed
};

// The slowest tier whose gap plus the expected work (refresh duration and
// queue wait) still meets the deadline; hot when none does.
Tier AssignTier(absl::Duration sla, absl::Duration expected_refresh, absl::Duration queue_wait);

// After a refresh: `staleness` is how old the oldest applied change was when
// the refresh committed. Promotes (hotter) when the deadline was missed,
// demotes (colder) when the tier is more than twice as fast as needed; each
// move needs at most 3 consecutive observations (a miss moves at once).
void UpdateTier(TierState* state, absl::Duration sla, absl::Duration staleness,
                absl::Duration expected_refresh);

}  // namespace trickle::scheduler
