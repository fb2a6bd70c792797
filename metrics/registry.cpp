#include "metrics/registry.h"

#include <atomic>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string_view>

namespace passgate::metrics {

namespace {

constexpr std::string_view counter_suffix = "_total";

std::string_view type_name(MetricType type) {
    switch (type) {
    case MetricType::counter:
        return "counter";
    case MetricType::gauge:
        return "gauge";
    case MetricType::histogram:
        return "histogram";
    }
    return "untyped";
}

// Every name a family puts in the output, in either format. Two families must not share one,
// or the output would have two TYPE lines for a name (e.g. gauge "x" vs counter "x_total",
// whose OpenMetrics family name is "x"; or gauge "x_count" vs histogram "x").
std::vector<std::string> exposed_names(MetricType type, const std::string& name) {
    switch (type) {
    case MetricType::counter:
        return {name, name.substr(0, name.size() - counter_suffix.size())};
    case MetricType::gauge:
        return {name};
    case MetricType::histogram:
        return {name, name + "_bucket", name + "_sum", name + "_count"};
    }
    return {name};
}

void check_family(MetricType type, const std::string& name,
                  const std::vector<std::string>& label_names, const std::vector<double>& bounds) {
    if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + name);
    if (type == MetricType::counter &&
        (!name.ends_with(counter_suffix) || name.size() == counter_suffix.size()))
        throw std::invalid_argument("counter name must end with _total: " + name);
    std::set<std::string_view> seen;
    for (const std::string& label : label_names) {
        if (!valid_label_name(label))
            throw std::invalid_argument(name + ": invalid label name: " + label);
        if (type == MetricType::histogram && label == "le")
            throw std::invalid_argument(name + ": label name le is reserved for histograms");
        if (!seen.insert(label).second)
            throw std::invalid_argument(name + ": duplicate label name: " + label);
    }
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (std::isnan(bounds[i]))
            throw std::invalid_argument(name + ": NaN histogram bucket bound");
        if (i > 0 && !(bounds[i - 1] < bounds[i]))
            throw std::invalid_argument(name + ": histogram bucket bounds must increase");
    }
}

}  // namespace

// ---- handles --------------------------------------------------------------------------------

std::uint64_t Histogram::count() const {
    std::uint64_t total = 0;
    for (std::size_t bucket = 0; bucket <= bounds_->size(); ++bucket)
        total += series_->cells.sum(bucket);
    return total;
}

// ---- Family ---------------------------------------------------------------------------------

Family::Family(std::mutex& registry_mutex, std::size_t shards, MetricType type, std::string name,
               std::string help, std::vector<std::string> label_names, std::vector<double> bounds)
    : mutex_(registry_mutex),
      bounds_(std::move(bounds)),
      shards_(shards),
      type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)) {}

bool Family::remove(const LabelValues& values) {
    std::lock_guard lock(mutex_);
    const auto found = series_by_labels_.find(values);
    if (found == series_by_labels_.end()) return false;
    detail::Series& series = **found->second;
    if (!series.removed) series.removed_at = std::chrono::steady_clock::now();
    series.removed = true;
    if (!series.in_removed_list) {
        series.in_removed_list = true;
        removed_.push_back(found->second);
    }
    return true;
}

std::size_t Family::series_count() const {
    std::lock_guard lock(mutex_);
    return series_.size();
}

std::size_t Family::free_removed(std::chrono::steady_clock::time_point cutoff) {
    std::size_t freed = 0;
    std::vector<SeriesList::iterator> still_removed;
    for (const SeriesList::iterator entry : removed_) {
        detail::Series& series = **entry;
        if (!series.removed) {  // brought back by with()
            series.in_removed_list = false;
            continue;
        }
        // use_count 1: the registry's is the only reference, and no other can appear (handles
        // are only made here, under the mutex, or copied from handles). The fence pairs with the
        // release of the last handle's reference count: its thread's last increments happen
        // before the cells are freed.
        if (series.removed_at <= cutoff && entry->use_count() == 1) {
            std::atomic_thread_fence(std::memory_order_acquire);
            series_by_labels_.erase(series.labels);
            series_.erase(entry);
            ++freed;
            continue;
        }
        still_removed.push_back(entry);
    }
    removed_ = std::move(still_removed);
    return freed;
}

detail::Series& Family::find_or_create(const LabelValues& values, bool with_cells) {
    if (values.size() != label_names_.size())
        throw std::invalid_argument(name_ + ": expected " + std::to_string(label_names_.size()) +
                                    " label values, got " + std::to_string(values.size()));
    if (const auto found = series_by_labels_.find(values); found != series_by_labels_.end()) {
        detail::Series& series = **found->second;
        const bool has_cells = series.cells.cells_per_shard() > 0;
        if (has_cells != with_cells)
            throw std::invalid_argument(name_ + ": series exists as " +
                                        (has_cells ? "a cell series" : "a callback series"));
        series.removed = false;
        return series;
    }
    // Counter and gauge: one cell. Histogram: one per bound, one above the last bound, the sum.
    std::size_t cells = 0;
    if (with_cells) cells = type_ == MetricType::histogram ? bounds_.size() + 2 : 1;
    series_.push_back(std::make_shared<detail::Series>(values, shards_, cells));
    series_by_labels_.emplace(values, std::prev(series_.end()));
    return *series_.back();
}

detail::SeriesPtr Family::series_with_cells(const LabelValues& values) {
    std::lock_guard lock(mutex_);
    detail::Series& series = find_or_create(values, true);
    return *series_by_labels_.at(series.labels);
}

void Family::set_callback_series(const LabelValues& values, ValueCallback callback) {
    if (!callback) throw std::invalid_argument(name_ + ": empty callback");
    std::lock_guard lock(mutex_);
    find_or_create(values, false).callback = std::move(callback);
}

void Family::append_sample_name(std::string& out, std::string_view suffix,
                                const LabelValues& values, std::string_view extra_label) const {
    out += name_;
    out += suffix;
    if (label_names_.empty() && extra_label.empty()) return;
    out += '{';
    for (std::size_t i = 0; i < label_names_.size(); ++i) {
        if (i > 0) out += ',';
        out += label_names_[i];
        out += "=\"";
        append_escaped_label_value(out, values[i]);
        out += '"';
    }
    if (!extra_label.empty()) {
        if (!label_names_.empty()) out += ',';
        out += extra_label;  // already formatted: le="..."
    }
    out += '}';
}

void Family::render(std::string& out, Format format) const {
    std::string_view family_name = name_;
    if (type_ == MetricType::counter && format == Format::openmetrics)
        family_name.remove_suffix(counter_suffix.size());
    out += "# HELP ";
    out += family_name;
    out += ' ';
    append_escaped_help(out, help_, format);
    out += "\n# TYPE ";
    out += family_name;
    out += ' ';
    out += type_name(type_);
    out += '\n';

    for (const auto& series_ptr : series_) {
        const detail::Series& series = *series_ptr;
        if (series.removed) continue;
        if (type_ == MetricType::histogram) {
            render_histogram_series(out, series, format);
            continue;
        }
        append_sample_name(out, {}, series.labels);
        out += ' ';
        if (series.callback)
            append_double(out, series.callback());
        else if (type_ == MetricType::counter)
            append_integer(out, series.cells.sum(0));
        else
            append_double(out, series.cells.sum_double(0));
        out += '\n';
    }
}

void Family::render_histogram_series(std::string& out, const detail::Series& series,
                                     Format format) const {
    // Read every bucket once, then accumulate: the cumulative counts are monotonic and the +Inf
    // bucket equals _count even while workers keep observing.
    std::uint64_t cumulative = 0;
    std::string le;
    for (std::size_t bucket = 0; bucket <= bounds_.size(); ++bucket) {
        cumulative += series.cells.sum(bucket);
        le = "le=\"";
        if (bucket < bounds_.size())
            append_bucket_bound(le, bounds_[bucket], format);
        else
            le += "+Inf";
        le += '"';
        append_sample_name(out, "_bucket", series.labels, le);
        out += ' ';
        append_integer(out, cumulative);
        out += '\n';
    }
    append_sample_name(out, "_sum", series.labels);
    out += ' ';
    append_double(out, series.cells.sum_double(bounds_.size() + 1));
    out += '\n';
    append_sample_name(out, "_count", series.labels);
    out += ' ';
    append_integer(out, cumulative);
    out += '\n';
}

// ---- typed families ---------------------------------------------------------------------------

Counter CounterFamily::with(const LabelValues& values) { return Counter(series_with_cells(values)); }

void CounterFamily::with_callback(const LabelValues& values, ValueCallback callback) {
    set_callback_series(values, std::move(callback));
}

Gauge GaugeFamily::with(const LabelValues& values) { return Gauge(series_with_cells(values)); }

void GaugeFamily::with_callback(const LabelValues& values, ValueCallback callback) {
    set_callback_series(values, std::move(callback));
}

Histogram HistogramFamily::with(const LabelValues& values) {
    return Histogram(series_with_cells(values), &bounds_);
}

// ---- Registry -----------------------------------------------------------------------------------

Registry::Registry(std::size_t shards) : shards_(shards) {
    if (shards == 0) throw std::invalid_argument("metrics registry needs at least one shard");
}

Registry::~Registry() = default;

template <typename FamilyType>
FamilyType& Registry::add_family(MetricType type, std::string name, std::string help,
                                 std::vector<std::string> label_names,
                                 std::vector<double> bounds) {
    if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
    check_family(type, name, label_names, bounds);
    std::lock_guard lock(mutex_);
    for (const std::string& new_name : exposed_names(type, name))
        for (const auto& family : families_)
            for (const std::string& old_name : exposed_names(family->type(), family->name()))
                if (new_name == old_name)
                    throw std::invalid_argument("metric name " + name + " collides with " +
                                                family->name());
    auto* family = new FamilyType(mutex_, shards_, type, std::move(name), std::move(help),
                                  std::move(label_names), std::move(bounds));
    families_.emplace_back(family);
    return *family;
}

CounterFamily& Registry::counter(std::string name, std::string help,
                                 std::vector<std::string> label_names) {
    return add_family<CounterFamily>(MetricType::counter, std::move(name), std::move(help),
                                     std::move(label_names), {});
}

GaugeFamily& Registry::gauge(std::string name, std::string help,
                             std::vector<std::string> label_names) {
    return add_family<GaugeFamily>(MetricType::gauge, std::move(name), std::move(help),
                                   std::move(label_names), {});
}

HistogramFamily& Registry::histogram(std::string name, std::string help,
                                     std::vector<double> bucket_bounds,
                                     std::vector<std::string> label_names) {
    return add_family<HistogramFamily>(MetricType::histogram, std::move(name), std::move(help),
                                       std::move(label_names), std::move(bucket_bounds));
}

CounterFamily& Registry::callback_counter(std::string name, std::string help,
                                          ValueCallback callback) {
    if (!callback) throw std::invalid_argument(name + ": empty callback");
    CounterFamily& family = counter(std::move(name), std::move(help));
    family.with_callback({}, std::move(callback));
    return family;
}

GaugeFamily& Registry::callback_gauge(std::string name, std::string help, ValueCallback callback) {
    if (!callback) throw std::invalid_argument(name + ": empty callback");
    GaugeFamily& family = gauge(std::move(name), std::move(help));
    family.with_callback({}, std::move(callback));
    return family;
}

std::size_t Registry::free_removed(std::chrono::steady_clock::duration retention) {
    const auto cutoff = std::chrono::steady_clock::now() - retention;
    std::lock_guard lock(mutex_);
    std::size_t freed = 0;
    for (const auto& family : families_) freed += family->free_removed(cutoff);
    return freed;
}

std::size_t Registry::series_count() const {
    std::lock_guard lock(mutex_);
    std::size_t count = 0;
    for (const auto& family : families_) count += family->series_.size();
    return count;
}

std::string Registry::render(Format format) const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& family : families_) family->render(out, format);
    if (format == Format::openmetrics) out += "# EOF\n";
    return out;
}

}  // namespace passgate::metrics
