#include "scheduler/policy.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace trickle::scheduler {
namespace {

// Parses one cron field into `bits` over [lo, hi].
template <size_t N>
absl::Status ParseCronField(absl::string_view field, int lo, int hi, const char* what,
                            std::bitset<N>* bits, bool* restricted) {
  *restricted = field != "*";
  for (absl::string_view part : absl::StrSplit(field, ',')) {
    int step = 1;
    std::vector<absl::string_view> by_step = absl::StrSplit(part, absl::MaxSplits('/', 1));
    if (by_step.size() == 2 && (!absl::SimpleAtoi(by_step[1], &step) || step <= 0)) {
      return absl::InvalidArgumentError(absl::StrCat("cron ", what, " field \"", field, "\": bad step"));
    }
    int from = lo, to = hi;
    if (by_step[0] != "*") {
      std::vector<absl::string_view> range = absl::StrSplit(by_step[0], absl::MaxSplits('-', 1));
      if (!absl::SimpleAtoi(range[0], &from) ||
          (range.size() == 2 && !absl::SimpleAtoi(range[1], &to))) {
        return absl::InvalidArgumentError(absl::StrCat("cron ", what, " field \"", field, "\" is not a number, range, list or step"));
      }
      if (range.size() == 1) to = by_step.size() == 2 ? hi : from;
    }
    if (from < lo || to > hi || from > to) {
      return absl::InvalidArgumentError(
          absl::StrCat("cron ", what, " field \"", field, "\" is outside ", lo, "-", hi));
    }
    for (int v = from; v <= to; v += step) bits->set(v);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CronExpression> CronExpression::Parse(absl::string_view text) {
  std::vector<absl::string_view> fields = absl::StrSplit(text, ' ', absl::SkipWhitespace());
  if (fields.size() != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cron expression \"", text, "\" needs five fields: minute hour day-of-month month day-of-week"));
  }
  CronExpression c;
  c.text_ = std::string(text);
  bool ignored;
  if (auto s = ParseCronField(fields[0], 0, 59, "minute", &c.minutes_, &ignored); !s.ok()) return s;
  if (auto s = ParseCronField(fields[1], 0, 23, "hour", &c.hours_, &ignored); !s.ok()) return s;
  if (auto s = ParseCronField(fields[2], 1, 31, "day-of-month", &c.days_, &c.days_restricted_); !s.ok()) return s;
  if (auto s = ParseCronField(fields[3], 1, 12, "month", &c.months_, &ignored); !s.ok()) return s;
  std::bitset<8> weekdays;
  if (auto s = ParseCronField(fields[4], 0, 7, "day-of-week", &weekdays, &c.weekdays_restricted_); !s.ok()) return s;
  for (int d = 0; d < 7; ++d) c.weekdays_[d] = weekdays[d];
  if (weekdays[7]) c.weekdays_[0] = true;  // 7 is Sunday too
  return c;
}

absl::Time CronExpression::Next(absl::Time t) const {
  absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilMinute m = absl::ToCivilMinute(t, utc) + 1;
  // Five years of minutes bounds the search (Feb 29 schedules included).
  for (int i = 0; i < 5 * 366 * 24 * 60; ++i, ++m) {
    if (!months_[m.month()]) {
      m = absl::CivilMinute(absl::CivilMonth(m) + 1) - 1;
      continue;
    }
    absl::CivilDay day(m);
    bool dom = days_[m.day()];
    bool dow = weekdays_[static_cast<int>(absl::GetWeekday(day)) == 6 ? 0 : static_cast<int>(absl::GetWeekday(day)) + 1];
    bool day_ok = (days_restricted_ && weekdays_restricted_) ? (dom || dow)
                  : days_restricted_                         ? dom
                  : weekdays_restricted_                     ? dow
                                                             : true;
    if (!day_ok) {
      m = absl::CivilMinute(day + 1) - 1;
      continue;
    }
    if (!hours_[m.hour()]) {
      m = absl::CivilMinute(absl::CivilHour(m) + 1) - 1;
      continue;
    }
    if (minutes_[m.minute()]) return absl::FromCivil(m, utc);
  }
  return absl::InfiniteFuture();
}

absl::StatusOr<Schedule> Schedule::Parse(absl::string_view raw) {
  Schedule s;
  absl::string_view text = absl::StripAsciiWhitespace(raw);
  s.text = std::string(text);
  std::string lower = absl::AsciiStrToLower(text);
  if (lower.empty() || lower == "on_change") {
    s.kind = kOnChange;
    return s;
  }
  if (lower == "downstream") {
    s.kind = kDownstream;
    return s;
  }
  if (text.find(' ') != absl::string_view::npos) {
    auto cron = CronExpression::Parse(text);
    if (!cron.ok()) return cron.status();
    s.kind = kCron;
    s.cron = *cron;
    return s;
  }
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule \"", text, "\" is not an interval ('500ms', '5s', '1m'), a cron expression "
        "('*/5 * * * *'), 'downstream' or 'on_change'"));
  }
  s.kind = kInterval;
  s.interval = d;
  return s;
}

absl::Duration BackoffDelay(int failures, absl::Duration base, absl::Duration cap) {
  if (failures <= 0) return absl::ZeroDuration();
  absl::Duration d = base;
  for (int i = 1; i < failures && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

void PaceTracker::Record(absl::Duration scheduled, absl::Duration took, absl::Duration cap) {
  absl::Duration current = Interval(scheduled);
  if (took > current) {
    if (++misses >= 3) {
      effective = std::min(current * 2, std::max(cap, scheduled));
      misses = 0;
    }
  } else {
    misses = 0;
    if (effective > scheduled && took * 2 <= current) {
      effective = effective / 2;
      if (effective <= scheduled) effective = absl::ZeroDuration();
    }
  }
}

std::optional<std::string> FuseVerdict(const FuseSettings& settings, int64_t delta_rows,
                                       double recent_average_rows) {
  if (settings.max_rows > 0 && delta_rows > settings.max_rows) {
    return absl::StrCat("delta of ", delta_rows, " rows exceeds the fuse ceiling of ",
                        settings.max_rows, " rows");
  }
  if (settings.max_multiple > 0 && recent_average_rows > 0 && delta_rows >= settings.min_rows &&
      delta_rows > settings.max_multiple * recent_average_rows) {
    return absl::StrCat("delta of ", delta_rows, " rows exceeds ", settings.max_multiple,
                        " x the recent average of ", static_cast<int64_t>(std::llround(recent_average_rows)),
                        " rows");
  }
  return std::nullopt;
}

CostModel FitCostModel(const std::vector<CostSample>& samples) {
  CostModel m;
  m.samples = static_cast<int>(samples.size());
  if (m.samples < CostModel::kMinSamples) return m;
  double n = m.samples, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const CostSample& s : samples) {
    sx += s.delta_rows;
    sy += s.duration_ms;
    sxx += s.delta_rows * s.delta_rows;
    sxy += s.delta_rows * s.duration_ms;
  }
  double denom = n * sxx - sx * sx;
  if (std::abs(denom) < 1e-9 * std::max(1.0, n * sxx)) {
    m.slope_ms_per_row = 0;
    m.intercept_ms = sy / n;
  } else {
    m.slope_ms_per_row = (n * sxy - sx * sy) / denom;
    m.intercept_ms = (sy - m.slope_ms_per_row * sx) / n;
  }
  return m;
}

AutoDecision DecideAuto(const CostModel& model, int64_t delta_rows,
                        std::optional<double> last_full_ms, double ratio, int64_t source_rows,
                        double cold_threshold) {
  AutoDecision d;
  if (model.fitted() && last_full_ms) {
    if (model.Predict(static_cast<double>(delta_rows)) > *last_full_ms * ratio) {
      d.full = true;
      d.reason = "predicted_cost_exceeds_full";
    }
    return d;
  }
  if (source_rows > 0 && static_cast<double>(delta_rows) > cold_threshold * static_cast<double>(source_rows)) {
    d.full = true;
    d.reason = "delta_exceeds_threshold";
  }
  return d;
}

const char* TierName(Tier t) {
  switch (t) {
    case Tier::kHot: return "hot";
    case Tier::kWarm: return "warm";
    case Tier::kCold: return "cold";
  }
  return "cold";
}

absl::Duration TierGap(Tier t) {
  switch (t) {
    case Tier::kHot: return absl::Milliseconds(10);
    case Tier::kWarm: return absl::Seconds(1);
    case Tier::kCold: return absl::Seconds(10);
  }
  return absl::Seconds(10);
}

Tier AssignTier(absl::Duration sla, absl::Duration expected_refresh, absl::Duration queue_wait) {
  for (Tier t : {Tier::kCold, Tier::kWarm}) {
    if (TierGap(t) + expected_refresh + queue_wait <= sla) return t;
  }
  return Tier::kHot;
}

void UpdateTier(TierState* state, absl::Duration sla, absl::Duration staleness,
                absl::Duration expected_refresh) {
  if (staleness > sla) {
    state->slack = 0;
    if (state->tier != Tier::kHot) {
      state->tier = static_cast<Tier>(static_cast<int>(state->tier) - 1);
      state->misses = 0;
    } else {
      state->misses++;
    }
    return;
  }
  state->misses = 0;
  bool colder_exists = state->tier != Tier::kCold;
  Tier colder = colder_exists ? static_cast<Tier>(static_cast<int>(state->tier) + 1) : Tier::kCold;
  if (colder_exists && staleness * 2 < sla && TierGap(colder) + expected_refresh <= sla) {
    if (++state->slack >= 3) {
      state->tier = colder;
      state->slack = 0;
    }
  } else {
    state->slack = 0;
  }
}

}  // namespace trickle::scheduler
