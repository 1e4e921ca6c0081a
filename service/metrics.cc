#include "service/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace trickle::service {

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest form that reads back as the same double.
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

void MetricFamily::RenderHeader(std::string* out) const {
  const char* type = type_ == Type::kCounter ? "counter" : type_ == Type::kGauge ? "gauge" : "histogram";
  // HELP text escapes backslash and newline only.
  std::string help;
  for (char c : help_) {
    if (c == '\\') help += "\\\\";
    else if (c == '\n') help += "\\n";
    else help += c;
  }
  absl::StrAppend(out, "# HELP ", name_, " ", help, "\n# TYPE ", name_, " ", type, "\n");
}

std::string MetricFamily::SeriesName(const std::string& suffix, const LabelValues& values,
                                     const std::string& extra) const {
  std::string s = absl::StrCat(name_, suffix);
  if (label_names_.empty() && extra.empty()) return s;
  s += '{';
  for (size_t i = 0; i < label_names_.size() && i < values.size(); ++i) {
    if (i > 0) s += ',';
    absl::StrAppend(&s, label_names_[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) {
    if (!label_names_.empty()) s += ',';
    s += extra;
  }
  s += '}';
  return s;
}

void ValueFamily::Add(const LabelValues& labels, double delta) {
  absl::MutexLock lock(&mu_);
  values_[labels] += delta;
}

void ValueFamily::Set(const LabelValues& labels, double value) {
  absl::MutexLock lock(&mu_);
  values_[labels] = value;
}

void ValueFamily::ReplaceAll(std::map<LabelValues, double> values) {
  absl::MutexLock lock(&mu_);
  values_ = std::move(values);
}

double ValueFamily::Get(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void ValueFamily::Remove(const LabelValues& labels) {
  absl::MutexLock lock(&mu_);
  values_.erase(labels);
}

void ValueFamily::RemoveMatchingFirstLabel(const std::string& value) {
  absl::MutexLock lock(&mu_);
  std::erase_if(values_, [&](const auto& kv) { return !kv.first.empty() && kv.first[0] == value; });
}

void ValueFamily::Render(std::string* out) const {
  RenderHeader(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, value] : values_) {
    absl::StrAppend(out, SeriesName("", labels), " ", FormatSampleValue(value), "\n");
  }
}

void HistogramFamily::Observe(const LabelValues& labels, double value) {
  absl::MutexLock lock(&mu_);
  Series& s = series_[labels];
  if (s.counts.empty()) s.counts.assign(bounds_.size() + 1, 0);
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  s.counts[i]++;
  s.sum += value;
  s.count++;
}

void HistogramFamily::Remove(const LabelValues& labels) {
  absl::MutexLock lock(&mu_);
  series_.erase(labels);
}

void HistogramFamily::RemoveMatchingFirstLabel(const std::string& value) {
  absl::MutexLock lock(&mu_);
  std::erase_if(series_, [&](const auto& kv) { return !kv.first.empty() && kv.first[0] == value; });
}

void HistogramFamily::Render(std::string* out) const {
  RenderHeader(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, s] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += s.counts[i];
      std::string le = i < bounds_.size() ? FormatSampleValue(bounds_[i]) : "+Inf";
      absl::StrAppend(out, SeriesName("_bucket", labels, absl::StrCat("le=\"", le, "\"")), " ",
                      cumulative, "\n");
    }
    absl::StrAppend(out, SeriesName("_sum", labels), " ", FormatSampleValue(s.sum), "\n");
    absl::StrAppend(out, SeriesName("_count", labels), " ", s.count, "\n");
  }
}

ValueFamily* MetricsRegistry::AddCounter(std::string name, std::string help,
                                         std::vector<std::string> labels) {
  auto family = std::make_unique<ValueFamily>(std::move(name), std::move(help),
                                              MetricFamily::Type::kCounter, std::move(labels));
  ValueFamily* raw = family.get();
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return raw;
}

ValueFamily* MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<std::string> labels) {
  auto family = std::make_unique<ValueFamily>(std::move(name), std::move(help),
                                              MetricFamily::Type::kGauge, std::move(labels));
  ValueFamily* raw = family.get();
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return raw;
}

HistogramFamily* MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> labels,
                                               std::vector<double> bounds) {
  auto family = std::make_unique<HistogramFamily>(std::move(name), std::move(help), std::move(labels),
                                                  std::move(bounds));
  HistogramFamily* raw = family.get();
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return raw;
}

void MetricsRegistry::AddScrapeHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(std::move(hook));
}

void MetricsRegistry::RemoveSeriesWithFirstLabel(const std::string& value) {
  absl::MutexLock lock(&mu_);
  for (auto& f : families_) f->RemoveMatchingFirstLabel(value);
}

void MetricsRegistry::Update(absl::FunctionRef<void()> update) {
  absl::MutexLock lock(&update_mu_);
  update();
}

std::string MetricsRegistry::Render() const {
  absl::MutexLock update_lock(&update_mu_);
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&mu_);
    hooks = hooks_;
  }
  // Hooks set values in the families; they run without the registry lock.
  for (const auto& hook : hooks) hook();
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& f : families_) f->Render(&out);
  return out;
}

}  // namespace trickle::service
