// The soak's short version: perf/soak --quick with this build's passgate and perf tools, about
// 20 s of mixed-size connections. The verdict is taken here from the numbers perf/soak measured
// (its soak.json), not from its report's wording: every connection completed, none closed for
// another reason, and passgate's descriptors, pipes and memory back where they started.

#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>

using namespace integration;

namespace {

// soak.json flattened to "path value" lines by python3 (the tests have no JSON library):
// {"end": {"fds": {"socket": 9}}} becomes "end.fds.socket 9". Numbers and booleans only.
const char* flatten_json = R"(
import json, sys
def walk(prefix, value):
    if isinstance(value, dict):
        for key, item in value.items(): walk(prefix + [key], item)
    elif isinstance(value, bool): print(".".join(prefix), int(value))
    elif isinstance(value, (int, float)): print(".".join(prefix), value)
walk([], {k: v for k, v in json.load(open(sys.argv[1])).items() if k != "samples"})
)";

std::map<std::string, double> read_numbers(const TempDir& dir, const std::string& json_path) {
    const RunResult result = run({"python3", "-c", flatten_json, json_path}, dir, "flatten", Millis(10000));
    INFO("flatten stderr: " << result.err);
    REQUIRE(result.status == 0);
    std::map<std::string, double> numbers;
    std::istringstream lines(result.out);
    std::string key;
    double value = 0;
    while (lines >> key >> value) numbers[key] = value;
    return numbers;
}

}  // namespace

TEST_CASE("soak: perf/soak --quick, 0 failed connections, resources flat at the end", "[integration][soak]") {
    TempDir dir;
    const std::string build = required_env("PASSGATE_BUILD_ROOT");
    const std::string script = required_env("PASSGATE_SOURCE_ROOT") + "/perf/soak";
    // Bounded: the soak itself stops after 20 s; warm-up, settling and shutdown take well under a
    // minute more, even under ASan on a loaded machine.
    const RunResult result = run({"python3", script, "--quick", "--no-build", "--build-dir", build,
                                  "--out", dir.file("SOAK.md")},
                                 dir, "soak", Millis(240000));
    INFO("perf/soak output:\n" << result.out << "\nstderr:\n" << result.err);
    REQUIRE(result.status.has_value());
    CHECK(*result.status == 0);

    std::map<std::string, double> n = read_numbers(dir, dir.file("soak.json"));
    auto number = [&](const std::string& key) {
        INFO("soak.json key " << key);
        REQUIRE(n.count(key) == 1);
        return n[key];
    };
    // Connections: enough of them to be a soak, every one completed, none left or failed.
    CHECK(number("completed") >= 1000);
    CHECK(number("failed") == 0);
    CHECK(number("not_completed") == 0);
    for (const char* size_class : {"tiny", "small", "medium", "large"}) {
        CHECK(number(std::string("classes.") + size_class + ".errors") == 0);
        CHECK(number(std::string("classes.") + size_class + ".completed") > 0);
    }
    // passgate counted at least the connections the load generators completed.
    CHECK(number("closed_total") >= number("completed"));
    // Resources: sockets and other descriptors as at the baseline, no pipe leased, every pipe
    // descriptor one of the pool's (two per pipe), RSS grown by at most the allowance.
    CHECK(number("end.fds.socket") == number("baseline.fds.socket"));
    CHECK(number("end.fds.other") == number("baseline.fds.other"));
    CHECK(number("end.pipes_in_use") == 0);
    CHECK(number("end.active") == 0);
    CHECK(number("end.fds.pipe") == 2 * number("end.pipe_pool"));
    if (number("asan") == 0) CHECK(number("end.rss_kib") - number("baseline.rss_kib") <= number("rss_allowed_kib"));
    CHECK(number("exit_status") == 0);

    const std::size_t section = result.out.find("### Latest run");
    if (section != std::string::npos) WARN(result.out.substr(section));
}
