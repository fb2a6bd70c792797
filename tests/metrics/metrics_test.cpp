#include "metrics/exposition.h"
#include "metrics/process.h"
#include "metrics/registry.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace passgate::metrics;

namespace {

std::string double_text(double value) {
    std::string out;
    append_double(out, value);
    return out;
}

// The registry of the exact-output tests: a labeled counter, a gauge summed over shards, a
// labeled histogram and a callback gauge.
void fill_example(Registry& registry) {
    CounterFamily& connections = registry.counter(
        "passgate_connections_total", "Connections accepted.", {"listener", "route"});
    const Counter passthrough = connections.with({"tls", "passthrough"});
    const Counter fallback = connections.with({"tls", "default"});
    passthrough.inc(0, 3);
    passthrough.inc(1, 4);
    fallback.inc(1);

    const Gauge active =
        registry.gauge("passgate_active_connections", "Connections open now.").with();
    active.add(0, 2);
    active.add(1, 5);
    active.add(1, -1);

    // Binary fractions, so the expected sum is exact.
    const Histogram hello = registry
                                .histogram("passgate_client_hello_seconds",
                                           "Time to read the ClientHello.", {0.25, 0.5, 1},
                                           {"listener"})
                                .with({"tls"});
    hello.observe(0, 0.125);
    hello.observe(1, 0.25);  // on a bound: counted in le="0.25"
    hello.observe(0, 0.75);
    hello.observe(1, 4);

    registry.callback_gauge("passgate_pipe_pool_pipes", "Pipes kept in the pools.",
                            [] { return 42.0; });
}

// Runs `promtool check metrics` on the text; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
    char path[] = "/tmp/passgate_metrics_XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
    const std::string command = std::string("promtool check metrics < ") + path + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char buffer[512];
    while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe))
        output.append(buffer, n);
    const int status = ::pclose(pipe);
    ::unlink(path);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace

TEST_CASE("text format 0.0.4: exact output") {
    Registry registry(2);
    fill_example(registry);
    CHECK(registry.render() ==
          "# HELP passgate_connections_total Connections accepted.\n"
          "# TYPE passgate_connections_total counter\n"
          "passgate_connections_total{listener=\"tls\",route=\"passthrough\"} 7\n"
          "passgate_connections_total{listener=\"tls\",route=\"default\"} 1\n"
          "# HELP passgate_active_connections Connections open now.\n"
          "# TYPE passgate_active_connections gauge\n"
          "passgate_active_connections 6\n"
          "# HELP passgate_client_hello_seconds Time to read the ClientHello.\n"
          "# TYPE passgate_client_hello_seconds histogram\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"0.25\"} 2\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"0.5\"} 2\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"1\"} 3\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"+Inf\"} 4\n"
          "passgate_client_hello_seconds_sum{listener=\"tls\"} 5.125\n"
          "passgate_client_hello_seconds_count{listener=\"tls\"} 4\n"
          "# HELP passgate_pipe_pool_pipes Pipes kept in the pools.\n"
          "# TYPE passgate_pipe_pool_pipes gauge\n"
          "passgate_pipe_pool_pipes 42\n");
    CHECK(content_type(Format::text) == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("OpenMetrics 1.0.0: exact output") {
    Registry registry(2);
    fill_example(registry);
    CHECK(registry.render(Format::openmetrics) ==
          "# HELP passgate_connections Connections accepted.\n"
          "# TYPE passgate_connections counter\n"
          "passgate_connections_total{listener=\"tls\",route=\"passthrough\"} 7\n"
          "passgate_connections_total{listener=\"tls\",route=\"default\"} 1\n"
          "# HELP passgate_active_connections Connections open now.\n"
          "# TYPE passgate_active_connections gauge\n"
          "passgate_active_connections 6\n"
          "# HELP passgate_client_hello_seconds Time to read the ClientHello.\n"
          "# TYPE passgate_client_hello_seconds histogram\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"0.25\"} 2\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"0.5\"} 2\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"1.0\"} 3\n"
          "passgate_client_hello_seconds_bucket{listener=\"tls\",le=\"+Inf\"} 4\n"
          "passgate_client_hello_seconds_sum{listener=\"tls\"} 5.125\n"
          "passgate_client_hello_seconds_count{listener=\"tls\"} 4\n"
          "# HELP passgate_pipe_pool_pipes Pipes kept in the pools.\n"
          "# TYPE passgate_pipe_pool_pipes gauge\n"
          "passgate_pipe_pool_pipes 42\n"
          "# EOF\n");
    CHECK(content_type(Format::openmetrics) ==
          "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST_CASE("escaping of help text and label values") {
    Registry registry(1);
    registry.counter("x_total", "back\\slash \"quoted\"\nsecond line", {"name"})
        .with({"a\\b\"c\nd"})
        .inc(0);
    CHECK(registry.render() ==
          "# HELP x_total back\\\\slash \"quoted\"\\nsecond line\n"
          "# TYPE x_total counter\n"
          "x_total{name=\"a\\\\b\\\"c\\nd\"} 1\n");
    // OpenMetrics escapes the double quote in HELP too.
    CHECK(registry.render(Format::openmetrics) ==
          "# HELP x back\\\\slash \\\"quoted\\\"\\nsecond line\n"
          "# TYPE x counter\n"
          "x_total{name=\"a\\\\b\\\"c\\nd\"} 1\n"
          "# EOF\n");
}

TEST_CASE("number spelling") {
    CHECK(double_text(0) == "0");
    CHECK(double_text(-0.0) == "0");
    CHECK(double_text(7) == "7");
    CHECK(double_text(-3) == "-3");
    CHECK(double_text(0.1) == "0.1");
    CHECK(double_text(123456789) == "123456789");
    CHECK(double_text(1e21) == "1e+21");
    CHECK(double_text(1e-7) == "1e-07");
    CHECK(std::stod(double_text(1.0 / 3)) == 1.0 / 3);  // round-trips
    CHECK(double_text(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(double_text(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(double_text(std::numeric_limits<double>::quiet_NaN()) == "NaN");

    std::string out;
    append_integer(out, 18446744073709551615ull);
    CHECK(out == "18446744073709551615");

    const auto bound = [](double value, Format format) {
        std::string text;
        append_bucket_bound(text, value, format);
        return text;
    };
    CHECK(bound(1, Format::text) == "1");
    CHECK(bound(1, Format::openmetrics) == "1.0");
    CHECK(bound(0.005, Format::openmetrics) == "0.005");
    CHECK(bound(1e21, Format::openmetrics) == "1e+21");
}

TEST_CASE("values are summed over shards") {
    Registry registry(4);
    const Counter counter = registry.counter("c_total", "c").with();
    const Gauge gauge = registry.gauge("g", "g").with();
    const Histogram histogram = registry.histogram("h", "h", {1, 2}).with();
    for (std::size_t shard = 0; shard < 4; ++shard) {
        counter.inc(shard, shard + 1);
        gauge.set(shard, 0.5);
        histogram.observe(shard, static_cast<double>(shard));  // 0, 1, 2, 3
    }
    gauge.add(2, 1);
    CHECK(counter.value() == 10);
    CHECK(gauge.value() == 3);
    CHECK(histogram.count() == 4);
    CHECK(histogram.sum() == 6);
    CHECK(registry.render() ==
          "# HELP c_total c\n# TYPE c_total counter\nc_total 10\n"
          "# HELP g g\n# TYPE g gauge\ng 3\n"
          "# HELP h h\n# TYPE h histogram\n"
          "h_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 4\n"
          "h_sum 6\nh_count 4\n");
}

TEST_CASE("histogram edge values") {
    Registry registry(1);
    // A trailing +Inf bound is dropped: the +Inf bucket is always there.
    HistogramFamily& family =
        registry.histogram("h", "h", {1, std::numeric_limits<double>::infinity()});
    CHECK(family.bucket_bounds() == std::vector<double>{1});
    const Histogram histogram = family.with();
    histogram.observe(0, std::numeric_limits<double>::quiet_NaN());  // goes to +Inf, as in Go
    histogram.observe(0, -5);
    CHECK(registry.render() ==
          "# HELP h h\n# TYPE h histogram\n"
          "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum NaN\nh_count 2\n");
}

TEST_CASE("a family without series prints only HELP and TYPE") {
    Registry registry(1);
    registry.counter("routes_total", "r", {"route"});
    CHECK(registry.render() == "# HELP routes_total r\n# TYPE routes_total counter\n");
}

TEST_CASE("series identity, removal and revival") {
    Registry registry(2);
    CounterFamily& family = registry.counter("bytes_total", "b", {"route"});
    const Counter a = family.with({"a"});
    const Counter b = family.with({"b"});
    a.inc(0, 5);
    b.inc(1, 1);
    family.with({"a"}).inc(1, 2);  // same labels: same series
    CHECK(a.value() == 7);

    CHECK(family.remove({"a"}));
    CHECK_FALSE(family.remove({"zzz"}));
    CHECK(registry.render() == "# HELP bytes_total b\n# TYPE bytes_total counter\n"
                               "bytes_total{route=\"b\"} 1\n");
    a.inc(0);  // the handle stays valid after removal
    CHECK(a.value() == 8);

    // Re-adding the labels (e.g. a reload brings the route back) shows the series again, in its
    // original place and with its old value: the counter never goes backwards.
    family.with({"a"});
    CHECK(registry.render() == "# HELP bytes_total b\n# TYPE bytes_total counter\n"
                               "bytes_total{route=\"a\"} 8\nbytes_total{route=\"b\"} 1\n");
}

TEST_CASE("removed series are freed after the retention once no handle refers to them") {
    Registry registry(3);
    CounterFamily& connections = registry.counter("connections_total", "c", {"endpoint"});
    GaugeFamily& healthy = registry.gauge("healthy", "h", {"endpoint"});
    std::optional<Counter> kept = connections.with({"10.0.0.1:443"});
    kept->inc(0, 3);
    healthy.with({"10.0.0.1:443"}).set(2, 1);
    connections.with({"10.0.0.2:443"}).inc(1);
    CHECK(registry.series_count() == 3);

    // Not removed: never freed.
    CHECK(registry.free_removed(std::chrono::seconds(0)) == 0);
    CHECK(registry.series_count() == 3);

    // Removed, but inside the retention: kept (and revivable with its value).
    CHECK(connections.remove({"10.0.0.1:443"}));
    CHECK(healthy.remove({"10.0.0.1:443"}));
    CHECK(connections.remove({"10.0.0.2:443"}));
    CHECK(registry.free_removed(std::chrono::hours(1)) == 0);
    CHECK(registry.series_count() == 3);

    // Past the retention: the series nobody holds are freed; the one a handle still refers to
    // (an endpoint set or a connection still using it) stays until the handle goes.
    CHECK(registry.free_removed(std::chrono::seconds(0)) == 2);
    CHECK(registry.series_count() == 1);
    CHECK(registry.render().find("10.0.0") == std::string::npos);
    kept->inc(1, 2);  // still valid
    CHECK(kept->value() == 5);
    kept.reset();
    CHECK(registry.free_removed(std::chrono::seconds(0)) == 1);
    CHECK(registry.series_count() == 0);
    CHECK(registry.free_removed(std::chrono::seconds(0)) == 0);

    // The same labels later: a new series from 0 (Prometheus sees a counter reset).
    connections.with({"10.0.0.1:443"}).inc(0);
    CHECK(registry.render(Format::text).find("connections_total{endpoint=\"10.0.0.1:443\"} 1\n") !=
          std::string::npos);
    CHECK(registry.series_count() == 1);
}

TEST_CASE("a series revived before it is freed keeps its value and is not freed") {
    Registry registry(1);
    CounterFamily& family = registry.counter("bytes_total", "b", {"route"});
    family.with({"a"}).inc(0, 4);
    // Removed and revived several times before a sweep: listed once, never freed while shown.
    for (int round = 0; round < 3; ++round) {
        CHECK(family.remove({"a"}));
        family.with({"a"});
    }
    CHECK(registry.free_removed(std::chrono::seconds(0)) == 0);
    CHECK(family.with({"a"}).value() == 4);
    // Removed again after the sweep: freed by the next one.
    CHECK(family.remove({"a"}));
    CHECK(registry.free_removed(std::chrono::seconds(0)) == 1);
    CHECK(family.series_count() == 0);
    // Memory flat under churn: 100 rounds of 1,000 labels come and go, the count stays bounded.
    for (int round = 0; round < 100; ++round) {
        for (int index = 0; index < 1000; ++index) family.with({std::to_string(round * 1000 + index)}).inc(0);
        int removed = 0;
        for (int index = 0; index < 1000; ++index) removed += family.remove({std::to_string(round * 1000 + index)});
        REQUIRE(removed == 1000);
        registry.free_removed(std::chrono::seconds(0));
        REQUIRE(registry.series_count() == 0);
    }
}

TEST_CASE("callback series") {
    Registry registry(1);
    double pipes = 3;
    GaugeFamily& pool = registry.gauge("pipe_pool_pipes", "p", {"worker"});
    pool.with_callback({"0"}, [&pipes] { return pipes; });
    pool.with_callback({"1"}, [] { return 1.5; });
    registry.callback_counter("cpu_seconds_total", "c", [] { return 0.25; });
    pipes = 4;
    CHECK(registry.render() == "# HELP pipe_pool_pipes p\n# TYPE pipe_pool_pipes gauge\n"
                               "pipe_pool_pipes{worker=\"0\"} 4\n"
                               "pipe_pool_pipes{worker=\"1\"} 1.5\n"
                               "# HELP cpu_seconds_total c\n# TYPE cpu_seconds_total counter\n"
                               "cpu_seconds_total 0.25\n");
    // Replacing a callback keeps the series' place.
    pool.with_callback({"0"}, [] { return 9.0; });
    CHECK(registry.render().find("pipe_pool_pipes{worker=\"0\"} 9\n") != std::string::npos);
    // A series is either cells or a callback.
    CHECK_THROWS_AS(pool.with({"0"}), std::invalid_argument);
    pool.with({"2"});
    CHECK_THROWS_AS(pool.with_callback({"2"}, [] { return 1.0; }), std::invalid_argument);
    CHECK_THROWS_AS(pool.with_callback({"3"}, ValueCallback()), std::invalid_argument);
}

TEST_CASE("invalid definitions are rejected") {
    Registry registry(1);
    CHECK_THROWS_AS(Registry(0), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("no_suffix", "h"), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("_total", "h"), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("1bad", "h"), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("bad-name", "h"), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("g", "h", {"__reserved"}), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("g", "h", {"a", "a"}), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("g", "h", {"bad label"}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h", "h", {1}, {"le"}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h", "h", {2, 1}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h", "h", {1, 1}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h", "h", {std::nan("")}), std::invalid_argument);

    registry.counter("requests_total", "h");
    registry.histogram("latency_seconds", "h", {1});
    CHECK_THROWS_AS(registry.counter("requests_total", "h"), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("requests", "h"), std::invalid_argument);  // OM name clash
    CHECK_THROWS_AS(registry.gauge("latency_seconds_count", "h"), std::invalid_argument);

    GaugeFamily& labeled = registry.gauge("labeled", "h", {"a", "b"});
    CHECK_THROWS_AS(labeled.with({"only one"}), std::invalid_argument);
    CHECK_NOTHROW(labeled.with({"x", "y"}));
    // Nothing half-registered by the failures above. Series exist only once with() made them,
    // unlabeled ones too.
    CHECK(registry.render() == "# HELP requests_total h\n# TYPE requests_total counter\n"
                               "# HELP latency_seconds h\n# TYPE latency_seconds histogram\n"
                               "# HELP labeled h\n# TYPE labeled gauge\n"
                               "labeled{a=\"x\",b=\"y\"} 0\n");
}

TEST_CASE("concurrent increments on own shards, scrapes and series creation") {
    constexpr std::size_t workers = 4;
    constexpr std::uint64_t increments = 1'000'000;
    const std::size_t control_shard = workers;
    Registry registry(workers + 1);
    const Counter counter = registry.counter("events_total", "e").with();
    const Gauge gauge = registry.gauge("open", "o").with();
    const Histogram histogram = registry.histogram("sizes", "s", {10, 100, 1000}).with();
    CounterFamily& routes = registry.counter("route_bytes_total", "r", {"route"});

    std::atomic<std::size_t> workers_running{workers};
    std::vector<std::thread> threads;
    for (std::size_t shard = 0; shard < workers; ++shard) {
        threads.emplace_back([&, shard] {
            const Counter own_route = routes.with({"worker" + std::to_string(shard)});
            for (std::uint64_t i = 0; i < increments; ++i) {
                counter.inc(shard);
                gauge.add(shard, 1);
                histogram.observe(shard, static_cast<double>(i % 2000));
                own_route.inc(shard, 2);
            }
            workers_running.fetch_sub(1);
        });
    }

    // The control thread creates series and bumps them on its own shard meanwhile.
    std::size_t created = 0;
    threads.emplace_back([&] {
        while (workers_running.load() > 0 && created < 1000) {
            routes.with({"extra" + std::to_string(created)}).inc(control_shard);
            ++created;
        }
    });

    // Scrapes see counters that never go backwards and a consistent histogram.
    std::uint64_t last_seen = 0;
    std::size_t scrapes = 0;
    bool monotonic = true, consistent = true;
    while (workers_running.load() > 0) {
        const std::string text = registry.render();
        const std::size_t at = text.find("\nevents_total ");
        REQUIRE(at != std::string::npos);
        const std::uint64_t seen = std::stoull(text.substr(at + 14));
        monotonic = monotonic && seen >= last_seen;
        last_seen = seen;
        const std::size_t inf = text.find("sizes_bucket{le=\"+Inf\"} ");
        const std::size_t count = text.find("sizes_count ");
        REQUIRE(inf != std::string::npos);
        REQUIRE(count != std::string::npos);
        consistent = consistent &&
                     std::stoull(text.substr(inf + 24)) == std::stoull(text.substr(count + 12));
        ++scrapes;
    }
    for (std::thread& thread : threads) thread.join();

    CHECK(monotonic);
    CHECK(consistent);
    CHECK(scrapes > 0);
    CHECK(counter.value() == workers * increments);
    CHECK(gauge.value() == static_cast<double>(workers * increments));
    CHECK(histogram.count() == workers * increments);
    for (std::size_t shard = 0; shard < workers; ++shard)
        CHECK(routes.with({"worker" + std::to_string(shard)}).value() == 2 * increments);
    const std::string text = registry.render();
    CHECK(text.find("\nevents_total 4000000\n") != std::string::npos);
    CHECK(text.find("sizes_count 4000000\n") != std::string::npos);
    CHECK(text.find("route_bytes_total{route=\"extra" + std::to_string(created - 1) + "\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("/proc/<pid>/stat parsing") {
    // The command name may hold spaces and parentheses.
    const std::string stat =
        "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1000 "
        "10485760 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";
    const auto parsed = parse_proc_pid_stat(stat, 100, 4096, 1.7e9);
    REQUIRE(parsed);
    CHECK(parsed->cpu_seconds == 3.0);
    CHECK(parsed->start_time_seconds == 1.7e9 + 10);
    CHECK(parsed->virtual_memory_bytes == 10485760);
    CHECK(parsed->resident_memory_bytes == 256.0 * 4096);
    CHECK_FALSE(parse_proc_pid_stat("1234 (truncated) S 1 2 3", 100, 4096, 0));
    CHECK_FALSE(parse_proc_pid_stat("no parenthesis", 100, 4096, 0));

    CHECK(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n") == 1.7e9);
    CHECK_FALSE(parse_boot_time("cpu 1 2 3\n"));
}

TEST_CASE("process metrics of this process") {
    const auto stat = read_process_stat();
    REQUIRE(stat);
    CHECK(stat->resident_memory_bytes > 0);
    CHECK(stat->virtual_memory_bytes >= stat->resident_memory_bytes);
    CHECK(stat->start_time_seconds > 1.5e9);

    const auto before = count_open_fds();
    REQUIRE(before);
    const int extra = ::dup(0);
    REQUIRE(extra >= 0);
    CHECK(count_open_fds() == *before + 1);
    ::close(extra);
    CHECK(max_fds().value_or(0) >= static_cast<double>(*before));

    Registry registry(1);
    register_process_metrics(registry);
    const std::string text = registry.render();
    for (const char* name :
         {"process_cpu_seconds_total ", "process_open_fds ", "process_max_fds ",
          "process_virtual_memory_bytes ", "process_resident_memory_bytes ",
          "process_start_time_seconds "}) {
        INFO(name);
        const std::size_t at = text.find(std::string("\n") + name);
        REQUIRE(at != std::string::npos);
        CHECK(text.substr(at + 1 + std::string_view(name).size(), 3) != "NaN");
    }
    CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
}

TEST_CASE("promtool accepts the output") {
    // CI installs Debian's prometheus package, which ships /usr/bin/promtool: missing is a failure.
    Registry registry(3);
    fill_example(registry);
    register_process_metrics(registry);
    registry.counter("passgate_escaped_total", "Odd \\ help \"text\"\nsecond line", {"name"})
        .with({"back\\slash \"quote\"\nnewline"})
        .inc(2, 5);
    registry.histogram("passgate_unlabeled_seconds", "An unlabeled histogram.",
                       {0.001, 0.01, 0.1, 1, 10, 1e6})
        .with()
        .observe(0, 0.05);
    registry.gauge("passgate_empty", "A family with no series.", {"route"});
    const std::string text = registry.render();
    const auto [status, output] = promtool_check(text);
    INFO("promtool output:\n" << output << "\ninput:\n" << text);
    REQUIRE(status != 127);  // the shell did not find promtool: apt-get install prometheus
    CHECK(status == 0);
}
