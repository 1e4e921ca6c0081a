// A small metrics registry rendering the Prometheus text exposition format
// (version 0.0.4). Counters, gauges and histograms, each a family with
// fixed label names; series are created on first use and can be removed
// (a dropped stream table takes its series with it).
//
// Why our own: the service has a few dozen series, most of them read at
// scrape time from state it already keeps (capture positions, the catalog);
// ~200 lines here cost less than another library to package, and
// `promtool check metrics` checks the output in the tests.
//
// Thread-safety: every method may be called from any thread; each family
// has its own mutex, Render() takes them one at a time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace trickle::service {

using LabelValues = std::vector<std::string>;

class MetricFamily {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  MetricFamily(std::string name, std::string help, Type type, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}
  virtual ~MetricFamily() = default;

  const std::string& name() const { return name_; }
  // Appends "# HELP", "# TYPE" and every series.
  virtual void Render(std::string* out) const = 0;
  // Forgets the series with these label values.
  virtual void Remove(const LabelValues& labels) = 0;
  // Forgets every series whose first label value is `value` (e.g. one
  // stream table's series).
  virtual void RemoveMatchingFirstLabel(const std::string& value) = 0;

 protected:
  void RenderHeader(std::string* out) const;
  // `name{a="x",b="y"}` with escaped values; `extra` is appended as one
  // more label (for the histogram's `le`).
  std::string SeriesName(const std::string& suffix, const LabelValues& values,
                         const std::string& extra = "") const;

  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
};

// A value per label set: counters only go up (Add), gauges are Set.
class ValueFamily : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;
  // Counter: adds `delta` (>= 0). Gauge: may be negative.
  void Add(const LabelValues& labels, double delta);
  void Set(const LabelValues& labels, double value);
  // Replaces every series at once (a gauge family recomputed per collection).
  void ReplaceAll(std::map<LabelValues, double> values);
  double Get(const LabelValues& labels) const;
  void Render(std::string* out) const override;
  void Remove(const LabelValues& labels) override;
  void RemoveMatchingFirstLabel(const std::string& value) override;

 private:
  mutable absl::Mutex mu_;
  std::map<LabelValues, double> values_ ABSL_GUARDED_BY(mu_);
};

class HistogramFamily : public MetricFamily {
 public:
  // `bounds`: the upper bounds of the buckets, ascending (+Inf is implied).
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
      : MetricFamily(std::move(name), std::move(help), Type::kHistogram, std::move(label_names)),
        bounds_(std::move(bounds)) {}
  void Observe(const LabelValues& labels, double value);
  void Render(std::string* out) const override;
  void Remove(const LabelValues& labels) override;
  void RemoveMatchingFirstLabel(const std::string& value) override;

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; last = +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, Series> series_ ABSL_GUARDED_BY(mu_);
};

class MetricsRegistry {
 public:
  // Families live as long as the registry; the returned pointers stay valid.
  ValueFamily* AddCounter(std::string name, std::string help, std::vector<std::string> labels = {});
  ValueFamily* AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily* AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                                std::vector<double> bounds);
  // Called at the start of every Render(), to set values read at scrape
  // time (cheap reads only: atomics, in-memory state).
  void AddScrapeHook(std::function<void()> hook);

  // Runs `update`, which sets series of this registry's families, so that
  // no Render() shows part of it (a scrape sees one consistent collection).
  void Update(absl::FunctionRef<void()> update);

  // Forgets every series of every family whose first label value is `value`.
  void RemoveSeriesWithFirstLabel(const std::string& value);

  // The whole registry in the text exposition format.
  std::string Render() const;
  // Content-Type of Render()'s output.
  static constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

 private:
  // Held by Update() and through all of Render() (hooks included); taken
  // before mu_ and before any family's lock.
  mutable absl::Mutex update_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(mu_);
};

// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& value);
// A sample value: integers without a fraction, NaN and infinities spelled
// as Prometheus does.
std::string FormatSampleValue(double value);

}  // namespace trickle::service
