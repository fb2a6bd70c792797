// passgate-routing-bench: the route tables of issue 23 in-process, at 10, 100,000 and 1,000,000
// exact names (plus 100,000 wildcards for the large ones): time to parse the hostnames file, to
// build a listener's tables (ListenerRoutes, on the control thread), bytes of the tables and RSS
// growth, and ns per match() over a fixed mix of SNIs (exact hits, wildcard hits, misses), with
// the ratio to the 10-name table measured in the same run, rounds interleaved.
//
//     build/perf/passgate-routing-bench [ROUNDS]     (perf/ROUTING.md has the figures)

#include "config/config.h"
#include "src/routing/routing.h"
#include "src/wire/hostnames_file.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

long rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

struct Case {
    const char* name;
    std::size_t exact;
    std::size_t wildcards;
};

// Built by appending: GCC 12 at -O3 gives a false -Wrestrict on `"literal" + std::string&&`.
std::string exact_name(std::size_t i) {
    std::string name = "tenant-";
    name += std::to_string(i);
    name += ".shop";
    name += std::to_string(i % 97);
    name += ".example.com";
    return name;
}
std::string wildcard_suffix(std::size_t i) {
    std::string suffix = ".c";
    suffix += std::to_string(i);
    suffix += ".customers.example.net";
    return suffix;
}

struct Built {
    std::unique_ptr<passgate::config::Config> config;
    std::unique_ptr<passgate::ListenerRoutes> routes;
    double parse_s = 0, build_s = 0;
    long rss_growth_kib = 0;
    std::size_t names = 0, name_bytes = 0;
};

Built build(const Case& c) {
    Built out;
    std::string text = "# generated\n";
    for (std::size_t i = 0; i < c.exact; ++i) text += exact_name(i) + "\n";
    for (std::size_t i = 0; i < c.wildcards; ++i) {
        text += '*';
        text += wildcard_suffix(i);
        text += '\n';
    }
    const long rss_before = rss_kib();
    auto start = Clock::now();
    passgate::HostnamesFileParse parsed = passgate::parse_hostnames_file(text, "bench.txt");
    out.parse_s = seconds_since(start);
    if (!parsed.ok()) {
        std::fprintf(stderr, "%s\n", parsed.error.c_str());
        std::exit(1);
    }
    std::string().swap(text);
    out.names = parsed.names.size();
    for (std::size_t i = 0; i < parsed.names.size(); ++i) out.name_bytes += parsed.names[i].size();
    out.config = std::make_unique<passgate::config::Config>(passgate::config::parse_config(
        "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:6443\"\n"
        "[[route]]\nname = \"inline\"\nlisteners = [\"l\"]\nhostnames = [\"a.example.org\", \"*.b.example.org\"]\n"
        "backends = [{ service = \"s\" }]\n"
        "[[route]]\nname = \"tenants\"\nlisteners = [\"l\"]\nhostnames_file = \"bench.txt\"\nbackends = [{ service = \"s\" }]\n"
        "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:1\"]\n",
        "bench.toml"));
    passgate::HostnameFiles files(2);
    files[1] = std::make_shared<const passgate::HostnameList>(std::move(parsed.names));
    start = Clock::now();
    out.routes = std::make_unique<passgate::ListenerRoutes>(*out.config, out.config->listeners[0], &files);
    out.build_s = seconds_since(start);
    files.clear();  // the tables keep their own copy of the names
    out.rss_growth_kib = rss_kib() - rss_before;
    return out;
}

// The same mix for every table: half exact hits, a quarter wildcard hits, a quarter misses, each
// drawn from the table's own names (so a larger table also means a larger working set).
std::vector<std::string> queries(const Case& c, std::size_t count) {
    std::mt19937_64 random(42);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t kind = i % 4;
        if (kind <= 1) out.push_back(exact_name(random() % c.exact));
        else if (kind == 2 && c.wildcards > 0) {
            std::string name = "www";
            name += wildcard_suffix(random() % c.wildcards);
            out.push_back(std::move(name));
        }
        else if (kind == 2) out.push_back("www.b.example.org");
        else {
            std::string name = "nobody-";
            name += std::to_string(random() % 1000000);
            name += ".example.io";
            out.push_back(std::move(name));
        }
    }
    std::shuffle(out.begin(), out.end(), random);
    return out;
}

double ns_per_match(const passgate::ListenerRoutes& routes, const std::vector<std::string>& sni, std::size_t passes,
                    std::size_t& matched) {
    const std::vector<std::string> alpn;
    const auto start = Clock::now();
    for (std::size_t pass = 0; pass < passes; ++pass)
        for (const std::string& name : sni) matched += routes.match(name, alpn).route != nullptr;
    return seconds_since(start) * 1e9 / static_cast<double>(passes * sni.size());
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
    const Case cases[] = {{"10 names", 8, 2}, {"100k + 100k wildcards", 100'000, 100'000},
                          {"1M + 100k wildcards", 1'000'000, 100'000}};
    std::vector<Built> built;
    std::printf("%-24s %10s %9s %9s %12s %14s %12s\n", "table", "names", "parse_ms", "build_ms", "table_MiB",
                "B/name+name", "rss_MiB");
    for (const Case& c : cases) {
        built.push_back(build(c));
        const Built& b = built.back();
        const double per_name = static_cast<double>(b.routes->table_bytes()) / static_cast<double>(b.names);
        const double name_avg = static_cast<double>(b.name_bytes) / static_cast<double>(b.names);
        std::printf("%-24s %10zu %9.1f %9.1f %12.1f %7.1f+%-6.1f %12.1f\n", c.name, b.names, b.parse_s * 1e3,
                    b.build_s * 1e3, static_cast<double>(b.routes->table_bytes()) / (1 << 20), per_name - name_avg,
                    name_avg, static_cast<double>(b.rss_growth_kib) / 1024);
    }
    std::vector<std::vector<std::string>> sni;
    for (const Case& c : cases) sni.push_back(queries(c, 1 << 16));
    std::vector<std::vector<double>> ns(std::size(cases));
    std::size_t matched = 0;
    for (int round = 0; round < rounds; ++round)
        for (std::size_t i = 0; i < std::size(cases); ++i) ns[i].push_back(ns_per_match(*built[i].routes, sni[i], 8, matched));
    std::printf("\nns per match() (%d rounds interleaved, median [min-max]); ratio to the 10-name table per round\n",
                rounds);
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        std::vector<double> ratio;
        for (int r = 0; r < rounds; ++r) ratio.push_back(ns[i][r] / ns[0][r]);
        auto median = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
        std::printf("%-24s %7.1f ns [%.1f-%.1f]   ratio %.2f [%.2f-%.2f]\n", cases[i].name, median(ns[i]),
                    *std::min_element(ns[i].begin(), ns[i].end()), *std::max_element(ns[i].begin(), ns[i].end()),
                    median(ratio), *std::min_element(ratio.begin(), ratio.end()),
                    *std::max_element(ratio.begin(), ratio.end()));
    }
    std::printf("(matched %zu)\n", matched);
    return 0;
}
