// [runtime] reuseport_cpu_steering with a real passgate: clients on a thread pinned to one CPU
// (loopback processes their SYNs on that CPU) are served by the worker pinned to that CPU, as the
// access log's worker= field shows; a listener added by a reload is steered too.

#include "tests/support/backends.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/pinned_thread.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sched.h>

#include <string>
#include <vector>

using namespace integration;

namespace {

const std::string kSni = "curl-h2.corpus.test";
constexpr int connections_per_cpu = 10;

std::string listener(const std::string& name, std::uint16_t port) {
    return "[[listener]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n";
}

std::string steered_config(const std::string& listeners, const std::string& listener_names, std::uint16_t backend) {
    return "[runtime]\nreuseport_cpu_steering = true\n\n[admin]\naddress = \"@ADMIN@\"\n\n" + listeners +
           "[[route]]\nname = \"r\"\nlisteners = [" + listener_names + "]\nhostnames = [\"" + kSni + "\"]\n"
           "backends = [ { service = \"s\" } ]\n\n"
           "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend) + "\"]\n";
}

// The CPUs passgate pins workers 0 and 1 to: the first two of the affinity set it inherits from
// this process (the test reads the set itself: integration tests link none of passgate's code).
std::vector<int> first_two_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    return cpus;
}

// `connections_per_cpu` proxied exchanges from a thread pinned to `cpu`: the backend ids seen.
std::vector<std::string> exchanges_from_cpu(int cpu, std::uint16_t port) {
    std::vector<std::string> ids;
    REQUIRE(test_support::run_pinned(cpu, [&] {
        for (int i = 0; i < connections_per_cpu; ++i) ids.push_back(ask_backend(port, captured_hello("curl-h2.bin").bytes));
    }));
    return ids;
}

// Every connection of `listener_name` so far was handled by `worker`, and there are `count`.
void check_workers(const Passgate& passgate, const std::string& listener_name, unsigned worker, std::size_t count) {
    const std::vector<std::string> needles{" reason=completed ", " listener=" + listener_name + " "};
    CHECK(wait_until([&] { return passgate.log_lines_with(needles).size() >= count; }, Millis(3000)));
    const std::vector<std::string> lines = passgate.log_lines_with(needles);
    CHECK(lines.size() == count);
    const std::string on_worker = " worker=" + std::to_string(worker) + " ";
    for (const std::string& line : lines) {
        INFO(line);
        CHECK(line.find(on_worker) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("reuseport CPU steering: a CPU's connections go to the worker pinned to it, also on a listener a "
          "reload adds", "[integration][steering]") {
    const std::vector<int> cpus = first_two_cpus();
    if (cpus.size() < 2) {
        WARN("one CPU only: steering cannot be told apart from the hash here");
        return;
    }
    TempDir dir;
    IdentBackend backend("b");
    const std::uint16_t first = free_port();
    const std::uint16_t second = free_port();
    Passgate passgate(dir, {steered_config(listener("one", first), "\"one\"", backend.port()), {}, 2});
    REQUIRE(passgate.wait_ready());
    CHECK(passgate.wait_for_log("listener \"one\" on 127.0.0.1:" + std::to_string(first) +
                                ": reuseport CPU steering: CPU " + std::to_string(cpus[0]) + " -> worker 0, CPU " +
                                std::to_string(cpus[1]) + " -> worker 1"));

    // Worker 1's CPU first: under the kernel's hash half of these would go to worker 0.
    CHECK(exchanges_from_cpu(cpus[1], first) == std::vector<std::string>(connections_per_cpu, "b"));
    check_workers(passgate, "one", 1, connections_per_cpu);

    reload_with(passgate, steered_config(listener("one", first) + listener("two", second), "\"one\", \"two\"",
                                         backend.port()));
    CHECK(passgate.wait_for_log("listener \"two\" on 127.0.0.1:" + std::to_string(second) +
                                ": reuseport CPU steering"));
    REQUIRE(wait_until([&] { return port_accepts(second); }, Millis(3000)));
    CHECK(exchanges_from_cpu(cpus[0], second) == std::vector<std::string>(connections_per_cpu, "b"));
    check_workers(passgate, "two", 0, connections_per_cpu);
    stop_and_check(passgate);
}
