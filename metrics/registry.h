#pragma once
// A small Prometheus metrics registry with per-core shards (replaces prometheus-cpp, which Debian
// does not ship). Pure: no I/O; the admin server calls render() and serves the text.
//
// Model:
// - A Registry has a fixed number of shards, chosen at construction: by convention one per worker
//   thread (shard = worker index 0..workers-1) plus one for the control thread (shard = workers).
//   Each shard must be written by one thread only (see sharded_cells.h for why that makes the
//   relaxed load+store increments safe without locks or fetch_add).
// - A family (counter, gauge or histogram) has a name, a help text and fixed label names.
//   A series is one label-value tuple of a family. Series are created off the hot path (config
//   load) with family.with({...}), which returns a cheap handle; the hot path only uses handles:
//       Counter accepted = connections.with({"tls", "passthrough"});   // at config load
//       accepted.inc(worker_index);                                    // per connection
//   Creating, removing and rendering take the registry mutex; increments never do.
// - Handles share ownership of their series (a shared_ptr, copied off the hot path only), so a
//   handle stays valid while other series are added, removed or freed.
// - remove() hides a series from the output at once (a route removed by a config reload, an
//   endpoint gone from discovery). Increments through old handles still land but are not shown.
//   with() on the same labels brings the series back with its old values, so a counter never
//   goes backwards while its series is kept.
// - free_removed(retention) frees the series hidden for at least `retention` that no handle
//   refers to any more (no snapshot, endpoint set or connection uses them): their memory goes
//   back. with() on those labels later starts a new series at 0, which Prometheus reads as a
//   counter reset. Without it, memory would grow with every label tuple ever seen, and endpoint
//   addresses churn (pod IPs, DNS pools). The owner calls it periodically (src/control/app.cpp: once a
//   second, retention = [admin] departed_series_retention).
// - Callback series have no cells: a std::function computes the value at scrape time (process
//   metrics, pool sizes). Callbacks run on the scraping thread with the registry mutex held, so
//   they must not call back into the registry.
// Output order: families in registration order, series in creation order.
//
// Memory: each series takes at least one 64-byte line per shard (a counter on 17 shards is about
// 1 KiB); a histogram with B bounds takes ceil((B + 2) / 8) lines per shard.

#include "metrics/exposition.h"
#include "metrics/sharded_cells.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace passgate::metrics {

using LabelValues = std::vector<std::string>;
// Computes a callback series' value at scrape time. Return NaN when the value is unavailable.
using ValueCallback = std::function<double()>;

enum class MetricType { counter, gauge, histogram };

namespace detail {

// One series of a family. `labels`, `cells` and the address never change after creation;
// `callback`, `removed`, `removed_at` and `in_removed_list` are guarded by the registry mutex.
struct Series {
    Series(LabelValues label_values, std::size_t shards, std::size_t cells_per_shard)
        : labels(std::move(label_values)), cells(shards, cells_per_shard) {}

    const LabelValues labels;
    const ShardedCells cells;  // no cells for a callback series
    ValueCallback callback;    // set only for callback series
    bool removed = false;
    std::chrono::steady_clock::time_point removed_at;  // when removed was last set
    bool in_removed_list = false;  // listed in its family's removed_ (at most once)
};
using SeriesPtr = std::shared_ptr<const Series>;

}  // namespace detail

// Handles: copied off the hot path only (a shared_ptr copy), valid as long as the Registry. A default-constructed handle is empty
// and must not be used. `shard` must be < Registry::shards() and owned by the calling thread.

class Counter {
public:
    Counter() = default;
    void inc(std::size_t shard, std::uint64_t n = 1) const { series_->cells.add(shard, 0, n); }
    // Summed over all shards (for tests and for code that reads its own counters).
    std::uint64_t value() const { return series_->cells.sum(0); }

private:
    friend class CounterFamily;
    explicit Counter(detail::SeriesPtr series) : series_(std::move(series)) {}
    detail::SeriesPtr series_;
};

// A gauge series is the sum of its shards: each worker adds and subtracts its own part
// (e.g. active connections); a value owned by one thread is set on that thread's shard.
class Gauge {
public:
    Gauge() = default;
    void set(std::size_t shard, double value) const {
        series_->cells.store_double(shard, 0, value);
    }
    void add(std::size_t shard, double delta) const { series_->cells.add_double(shard, 0, delta); }
    double value() const { return series_->cells.sum_double(0); }

private:
    friend class GaugeFamily;
    explicit Gauge(detail::SeriesPtr series) : series_(std::move(series)) {}
    detail::SeriesPtr series_;
};

// Per shard the series keeps one count per bucket (not cumulative; render() accumulates), one
// count for values above the last bound, and the sum. The total count is the sum of the bucket
// counts, so `_count` always equals the `+Inf` bucket even while workers are observing.
class Histogram {
public:
    Histogram() = default;
    void observe(std::size_t shard, double value) const {
        const std::vector<double>& bounds = *bounds_;
        // First bucket whose bound is >= value (bounds are upper-inclusive, "le"). Written as
        // !(bound >= value) so NaN falls past every bound into the +Inf bucket, as in
        // client_golang.
        const auto below = [value](double bound) { return !(bound >= value); };
        const auto bucket = std::partition_point(bounds.begin(), bounds.end(), below);
        series_->cells.add(shard, static_cast<std::size_t>(bucket - bounds.begin()), 1);
        series_->cells.add_double(shard, sum_cell(), value);
    }
    std::uint64_t count() const;
    double sum() const { return series_->cells.sum_double(sum_cell()); }

private:
    friend class HistogramFamily;
    Histogram(detail::SeriesPtr series, const std::vector<double>* bounds)
        : series_(std::move(series)), bounds_(bounds) {}
    // Cell layout per shard: [0, bounds) bucket counts, [bounds] above the last bound, then sum.
    std::size_t sum_cell() const { return bounds_->size() + 1; }
    detail::SeriesPtr series_;
    const std::vector<double>* bounds_ = nullptr;
};

// What all families share: identity, label names, the series list, removal and rendering.
class Family {
public:
    virtual ~Family() = default;
    Family(const Family&) = delete;
    Family& operator=(const Family&) = delete;

    const std::string& name() const { return name_; }
    const std::string& help() const { return help_; }
    MetricType type() const { return type_; }
    const std::vector<std::string>& label_names() const { return label_names_; }

    // Hides the series from the output; handles to it stay valid (see the top of this file).
    // Returns false if the family has no such series.
    bool remove(const LabelValues& values);
    // Series kept now, hidden ones included (for tests and memory accounting).
    std::size_t series_count() const;

protected:
    Family(std::mutex& registry_mutex, std::size_t shards, MetricType type, std::string name,
           std::string help, std::vector<std::string> label_names, std::vector<double> bounds);

    // The series for `values`, created on first use or un-removed. Throws std::invalid_argument
    // if the number of values does not match the label names, or if the series exists with the
    // other kind (cells vs callback). Caller holds the registry mutex.
    detail::SeriesPtr series_with_cells(const LabelValues& values);
    void set_callback_series(const LabelValues& values, ValueCallback callback);

    std::mutex& mutex_;  // the registry's
    const std::vector<double> bounds_;  // histogram bucket bounds (empty for other types)

private:
    friend class Registry;
    detail::Series& find_or_create(const LabelValues& values, bool with_cells);
    // Frees removed series hidden since before `cutoff` that no handle refers to; returns how
    // many. Caller holds the registry mutex.
    std::size_t free_removed(std::chrono::steady_clock::time_point cutoff);
    // Appends HELP, TYPE and the live series. Caller holds the registry mutex.
    void render(std::string& out, Format format) const;
    void render_histogram_series(std::string& out, const detail::Series& series,
                                 Format format) const;
    void append_sample_name(std::string& out, std::string_view suffix, const LabelValues& values,
                            std::string_view extra_label = {}) const;

    const std::size_t shards_;
    const MetricType type_;
    const std::string name_;
    const std::string help_;
    const std::vector<std::string> label_names_;
    using SeriesList = std::list<std::shared_ptr<detail::Series>>;
    SeriesList series_;  // in creation order (the output order)
    std::map<LabelValues, SeriesList::iterator> series_by_labels_;
    std::vector<SeriesList::iterator> removed_;  // series hidden by remove(), each at most once
};

class CounterFamily final : public Family {
public:
    Counter with(const LabelValues& values = {});
    // A series whose value is computed at scrape time; replaces an earlier callback for the same
    // labels. The value must not decrease.
    void with_callback(const LabelValues& values, ValueCallback callback);

private:
    friend class Registry;
    using Family::Family;
};

class GaugeFamily final : public Family {
public:
    Gauge with(const LabelValues& values = {});
    void with_callback(const LabelValues& values, ValueCallback callback);

private:
    friend class Registry;
    using Family::Family;
};

class HistogramFamily final : public Family {
public:
    Histogram with(const LabelValues& values = {});
    const std::vector<double>& bucket_bounds() const { return bounds_; }

private:
    friend class Registry;
    using Family::Family;
};

class Registry {
public:
    // Throws std::invalid_argument if shards is 0.
    explicit Registry(std::size_t shards);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    std::size_t shards() const { return shards_; }

    // Family creation throws std::invalid_argument on an invalid metric or label name, a
    // duplicate label name, or a name that collides with a name another family already exposes.
    // The returned reference is valid as long as the registry.

    // `name` must end with "_total" (the sample name; OpenMetrics drops it on HELP/TYPE lines).
    CounterFamily& counter(std::string name, std::string help,
                           std::vector<std::string> label_names = {});
    GaugeFamily& gauge(std::string name, std::string help,
                       std::vector<std::string> label_names = {});
    // `bucket_bounds`: upper bounds, strictly increasing, no NaN; a trailing +Inf is dropped
    // (the +Inf bucket is always there). The label name "le" is reserved.
    HistogramFamily& histogram(std::string name, std::string help,
                               std::vector<double> bucket_bounds,
                               std::vector<std::string> label_names = {});

    // Shorthands for an unlabeled family with one callback series.
    CounterFamily& callback_counter(std::string name, std::string help, ValueCallback callback);
    GaugeFamily& callback_gauge(std::string name, std::string help, ValueCallback callback);

    // The whole exposition. Callable from any thread, concurrently with increments.
    std::string render(Format format = Format::text) const;

    // Frees the series removed at least `retention` ago that no handle refers to any more (see
    // the top of this file); returns how many. Callable from any thread.
    std::size_t free_removed(std::chrono::steady_clock::duration retention);
    // Series kept now over all families, hidden ones included.
    std::size_t series_count() const;

private:
    template <typename FamilyType>
    FamilyType& add_family(MetricType type, std::string name, std::string help,
                           std::vector<std::string> label_names, std::vector<double> bounds);

    mutable std::mutex mutex_;  // guards families_ and all series lists, flags and callbacks
    const std::size_t shards_;
    std::vector<std::unique_ptr<Family>> families_;
};

}  // namespace passgate::metrics
