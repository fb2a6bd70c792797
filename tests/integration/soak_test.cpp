// The soak's short version (issue 7, item 4): perf/soak --quick with this build's passgate and
// perf tools, about 20 s of mixed-size connections. It exits 0 only when no connection failed and
// passgate's descriptors, pipes and memory are flat at the end (see perf/soak --help).

#include "tests/support/process.h"

#include <catch2/catch.hpp>

using namespace integration;

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
    CHECK(result.out.find("**0 failed**") != std::string::npos);
    CHECK(read_file(dir.file("SOAK.md")).find("### Latest run: PASS") != std::string::npos);
    const std::size_t section = result.out.find("### Latest run");
    if (section != std::string::npos) WARN(result.out.substr(section));
}
