// HostTable (src/routing/host_table.h) on its own, and ListenerRoutes with hostnames_file names
// against a naive reference matcher: random tables with overlapping wildcards, names that
// differ in case, SNIs with a trailing dot, routes claiming the same names in files and inline.

#include "src/routing/host_table.h"
#include "src/routing/routing.h"

#include "config/hostname.h"
#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

using passgate::HostnameList;
using passgate::HostSuffixes;
using passgate::HostTable;
using passgate::ListenerRoutes;
using Strings = std::vector<std::string>;
using Ids = std::vector<HostTable::RouteId>;

namespace {

Ids ids(std::span<const HostTable::RouteId> span) { return Ids(span.begin(), span.end()); }

// The naive rules, written from the Gateway API text without any of the code under test:
// labels compared case-insensitively, a trailing dot ignored, "*." matching one or more labels.
Strings labels_of(std::string name) {
    for (char& c : name) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!name.empty() && name.back() == '.') name.pop_back();
    Strings out;
    std::size_t start = 0;
    for (std::size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1)
        out.push_back(name.substr(start, dot - start));
    out.push_back(name.substr(start));
    return out;
}
// 0: no match; else a rank where a larger one is more specific (exact above every wildcard).
std::size_t naive_rank(const std::string& pattern, const std::string& sni) {
    const Strings host = labels_of(sni);
    if (pattern.rfind("*.", 0) != 0) return labels_of(pattern) == host ? 1000 : 0;
    const Strings suffix = labels_of(pattern.substr(2));
    if (host.size() <= suffix.size()) return 0;
    if (!std::equal(suffix.rbegin(), suffix.rend(), host.rbegin())) return 0;
    return pattern.size() - 1;  // the length of ".suffix": longer suffix, more specific
}
// Naive intersection of a listener hostname and a route hostname: the more specific of the
// two when one matches the other, checked name by name.
std::optional<std::string> naive_intersect(const std::string& listener, const std::string& route) {
    if (listener.empty()) return route;
    if (listener == route) return route;
    const bool lw = listener.rfind("*.", 0) == 0, rw = route.rfind("*.", 0) == 0;
    if (!rw && lw && naive_rank(listener, route) != 0) return route;
    if (rw && !lw && naive_rank(route, listener) != 0) return listener;
    if (rw && lw) {
        // "*.a.b" within "*.b": the longer wildcard.
        if (naive_rank(listener, route.substr(2)) != 0) return route;
        if (naive_rank(route, listener.substr(2)) != 0) return listener;
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("host table: exact keys, routes in the order added, repeats kept once", "[routing][host_table]") {
    HostTable table;
    table.add("a.example.com", 0);
    table.add("a.example.com", 0);  // a file listing a name twice
    table.add("b.example.com", 0);
    table.add("a.example.com", 3);
    table.add("a.example.com", 5);
    std::vector<std::string> shared;
    table.build([&](const HostTable::Shared& s) { shared.push_back(std::string(s.key) + ":" + std::to_string(s.routes.size())); });
    CHECK(table.keys() == 2);
    CHECK(ids(table.find("a.example.com")) == Ids{0, 3, 5});
    CHECK(ids(table.find("b.example.com")) == Ids{0});
    CHECK(table.find("c.example.com").empty());
    CHECK(table.find("a.example.co").empty());
    CHECK(table.find("").empty());
    CHECK(shared == Strings{"a.example.com:3"});
    // Keys of two dots only: a probe for any other depth is skipped.
    CHECK(table.may_hold_dots(2));
    CHECK_FALSE(table.may_hold_dots(1));
    CHECK_FALSE(table.may_hold_dots(3));
}

TEST_CASE("host table: an empty table finds nothing", "[routing][host_table]") {
    HostTable table;
    table.build();
    CHECK(table.empty());
    CHECK(table.find("a").empty());
}

TEST_CASE("host suffixes: every dot-suffix, longest first, hashed like the table", "[routing][host_table]") {
    const HostSuffixes suffixes("a.b.example.com");
    REQUIRE(suffixes.size() == 3);
    CHECK(suffixes.suffix(0) == ".b.example.com");
    CHECK(suffixes.suffix(1) == ".example.com");
    CHECK(suffixes.suffix(2) == ".com");
    for (std::size_t i = 0; i < suffixes.size(); ++i) CHECK(suffixes.hash(i) == HostTable::hash(suffixes.suffix(i)));
    CHECK(suffixes.whole_hash() == HostTable::hash("a.b.example.com"));
    // A leading dot leaves no label for the "*": not a suffix.
    CHECK(HostSuffixes(".com").size() == 0);
    CHECK(HostSuffixes("com").size() == 0);
}

TEST_CASE("host table: 100,000 keys all found, memory per key within the documented bound",
          "[routing][host_table]") {
    HostTable table;
    std::size_t name_bytes = 0;
    for (HostTable::RouteId i = 0; i < 100'000; ++i) {
        const std::string key = "tenant-" + std::to_string(i) + ".example.com";
        name_bytes += key.size();
        table.add(key, i % 7);
    }
    table.build();
    REQUIRE(table.keys() == 100'000);
    for (HostTable::RouteId i = 0; i < 100'000; i += 97)
        REQUIRE(ids(table.find("tenant-" + std::to_string(i) + ".example.com")) == Ids{i % 7});
    CHECK(table.find("tenant-100000.example.com").empty());
    // host_table.h: at most 64 B of slots + 4 B of candidates per key beyond its bytes; here
    // 262,144 slots for 100,000 keys (41.9 B).
    CHECK(table.bytes() - name_bytes <= 100'000 * 68);
    CHECK(table.bytes() - name_bytes >= 100'000 * 32);
}

TEST_CASE("hostnames_file names route like inline ones: property against a naive matcher",
          "[routing][host_table][property]") {
    std::mt19937 random(20261204);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
    const Strings label_pool{"a", "b", "c", "A", "B"};
    auto name_of = [&](std::size_t depth) {
        std::string out;
        for (std::size_t i = 0; i < depth; ++i) out += (i ? "." : "") + label_pool[pick(label_pool.size())];
        return out;
    };
    auto lower = [](std::string s) { return passgate::config::ascii_lower(s); };
    const Strings protocols{"h2", "x"};

    for (int round = 0; round < 200; ++round) {
        std::string listener_hostname;
        if (pick(3) == 1) listener_hostname = lower(name_of(1 + pick(2))) + ".test";
        if (pick(3) == 2) listener_hostname = pick(2) ? "*.test" : "*." + lower(name_of(1)) + ".test";
        std::string body = test_config::listener("l", 6443, listener_hostname);
        const std::size_t route_count = 1 + pick(5);
        std::vector<Strings> inline_names(route_count), file_names(route_count);
        passgate::HostnameFiles files(route_count);
        std::vector<Strings> alpns(route_count);
        for (std::size_t r = 0; r < route_count; ++r) {
            const bool with_file = pick(3) != 0;
            auto random_pattern = [&] {
                const std::string name = name_of(1 + pick(3)) + ".test";
                const std::size_t depth = pick(3);
                return pick(2) ? name : depth == 0 ? std::string("*.test") : "*." + name_of(depth) + ".test";
            };
            for (std::size_t i = pick(3); i > 0; --i) {
                std::string hostname = lower(random_pattern());
                if (hostname == "*.test" && pick(2)) hostname = "*.a.test";
                if (std::find(inline_names[r].begin(), inline_names[r].end(), hostname) == inline_names[r].end())
                    inline_names[r].push_back(hostname);
            }
            if (pick(2)) alpns[r] = {protocols[pick(2)]};
            std::string route = test_config::route("r" + std::to_string(r), {"l"}, inline_names[r], alpns[r]);
            if (with_file) {
                route.insert(route.find("backends"), "hostnames_file = \"r" + std::to_string(r) + ".txt\"\n");
                auto list = std::make_shared<HostnameList>();
                for (std::size_t i = pick(40); i > 0; --i) {
                    file_names[r].push_back(lower(random_pattern()));  // repeats allowed, as in a file
                    list->push_back(file_names[r].back());
                }
                files[r] = std::move(list);
            }
            body += route;
        }
        const auto config = test_config::make_config(body, "host_table_test.toml");
        const ListenerRoutes table(config, *config.find_listener("l"), &files);

        for (int probe = 0; probe < 60; ++probe) {
            std::string sni = name_of(1 + pick(4)) + (pick(8) == 0 ? ".TEST" : ".test");
            if (pick(4) == 0) sni += ".";  // a trailing dot, as a client may send
            const Strings offered = pick(2) ? Strings{protocols[pick(2)]} : Strings{};
            // Reference: the best rank over each route's effective names (inline and file);
            // at the best rank a route whose alpn matches beats one without a list; then order.
            const passgate::config::Route* expected = nullptr;
            std::size_t best_rank = 0;
            bool best_alpn = false;
            for (std::size_t r = 0; r < route_count; ++r) {
                const bool listed = !alpns[r].empty();
                if (listed && std::find(offered.begin(), offered.end(), alpns[r][0]) == offered.end()) continue;
                std::size_t rank = 0;
                Strings all = inline_names[r];
                all.insert(all.end(), file_names[r].begin(), file_names[r].end());
                // A route without any hostnames (and no file) takes every name the listener allows.
                if (all.empty() && config.routes[r].hostnames_file.empty())
                    all.push_back(listener_hostname.empty() ? "" : listener_hostname);
                for (const std::string& pattern : all) {
                    if (pattern.empty()) {
                        rank = std::max<std::size_t>(rank, 1);  // match-all, least specific
                        continue;
                    }
                    if (const auto effective = naive_intersect(listener_hostname, pattern))
                        rank = std::max(rank, naive_rank(*effective, sni) == 0 ? 0 : naive_rank(*effective, sni) + 1);
                }
                if (rank == 0) continue;
                if (rank > best_rank || (rank == best_rank && listed && !best_alpn)) {
                    expected = &config.routes[r];
                    best_rank = rank;
                    best_alpn = listed;
                }
            }
            // The data path's normalisation (src/wire/client_hello.cpp): lowercase, no trailing dot.
            std::string normalised = lower(sni);
            if (normalised.back() == '.') normalised.pop_back();
            INFO(body << "sni: " << sni);
            const ListenerRoutes::Match match = table.match(normalised, offered);
            REQUIRE(match.route == expected);
            // rank(), which `passgate route` prints, agrees (file names included).
            const ListenerRoutes::Trace trace = table.rank(normalised, offered);
            if (expected != nullptr) {
                REQUIRE(!trace.ranked.empty());
                REQUIRE(trace.ranked.front().route == expected);
            }
        }
    }
}

TEST_CASE("a name claimed twice with a hostnames_file involved is reported as shadowed",
          "[routing][host_table]") {
    const auto config = test_config::make_config(
        test_config::listener("l", 6443) + test_config::route("a", {"l"}, {"x.example.com"}) +
            "[[route]]\nname = \"b\"\nlisteners = [\"l\"]\nhostnames_file = \"b.txt\"\nbackends = [{ service = \"s\" }]\n" +
            test_config::route("c", {"l"}, {"y.example.com"}, {"h2"}),
        "shadow.toml");
    passgate::HostnameFiles files(3);
    auto list = std::make_shared<HostnameList>();
    for (const char* name : {"x.example.com", "y.example.com", "*.example.com", "z.example.com"}) list->push_back(name);
    files[1] = list;
    const ListenerRoutes table(config, *config.find_listener("l"), &files);
    REQUIRE(table.shadowed_count() == 1);
    CHECK(table.shadowed() ==
          Strings{"shadow.toml:9: route \"b\" hostname \"x.example.com\" on listener \"l\" is shadowed by route "
                  "\"a\" (defined first, same hostname); it never matches there"});
    CHECK(table.match("x.example.com", {}).route->name == "a");
    CHECK(table.match("z.example.com", {}).route->name == "b");
    CHECK(table.match("q.example.com", {}).route->name == "b");
    const Strings h2{"h2"};
    CHECK(table.match("y.example.com", h2).route->name == "c");
    CHECK(table.match("y.example.com", {}).route->name == "b");
    REQUIRE(table.attached().size() == 3);
    CHECK(table.attached()[1].file_hostnames == 4);
    CHECK(table.attached()[1].effective_hostnames.empty());
}

TEST_CASE("a route whose file lists no name the listener allows is not attached", "[routing][host_table]") {
    const auto config = test_config::make_config(
        test_config::listener("l", 6443, "*.example.com") +
            "[[route]]\nname = \"b\"\nlisteners = [\"l\"]\nhostnames_file = \"b.txt\"\nbackends = [{ service = \"s\" }]\n",
        "attach.toml");
    passgate::HostnameFiles files(1);
    auto list = std::make_shared<HostnameList>();
    list->push_back("x.example.org");
    files[0] = list;
    const ListenerRoutes outside(config, *config.find_listener("l"), &files);
    CHECK(outside.attached().empty());
    CHECK(outside.not_attached().size() == 1);
    // Before the file is read (or when it is empty) the route matches nothing either: a file
    // route is never a route "without hostnames" that would take every name.
    const ListenerRoutes unread(config, *config.find_listener("l"), nullptr);
    CHECK(unread.match("a.example.com", {}).route == nullptr);
    list->push_back("*.a.example.com");
    const ListenerRoutes narrowed(config, *config.find_listener("l"), &files);
    CHECK(narrowed.match("b.a.example.com", {}).route != nullptr);
    CHECK(narrowed.match("a.example.com", {}).route == nullptr);
}
