#include "src/routing/routing.h"

#include "config/hostname.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using passgate::ListenerRoutes;
using passgate::config::Config;
using passgate::config::parse_config;
using Strings = std::vector<std::string>;

namespace {

using test_config::listener;
using test_config::route;
using test_config::toml_list;

Config make_config(const std::string& body) { return test_config::make_config(body, "routing_test.toml"); }

ListenerRoutes table_for(const Config& config, const std::string& listener_name) {
    const auto* listener = config.find_listener(listener_name);
    REQUIRE(listener != nullptr);
    return ListenerRoutes(config, *listener);
}

// "name", "default:name", "<no_sni>" or "<no_route>".
std::string decide(const ListenerRoutes& routes, std::string_view sni, const Strings& alpn = {}) {
    const ListenerRoutes::Match match = routes.match(sni, alpn);
    if (match.route == nullptr) {
        CHECK_FALSE(match.via_default);
        switch (match.miss) {
            case ListenerRoutes::Miss::no_sni: return "<no_sni>";
            case ListenerRoutes::Miss::no_route: return "<no_route>";
            case ListenerRoutes::Miss::none: return "<miss none?>";
        }
    }
    CHECK(match.miss == ListenerRoutes::Miss::none);
    return (match.via_default ? "default:" : "") + match.route->name;
}

// The same decision read from rank()'s trace alone: its first candidate when that one is chosen,
// else the default_route (`default_route`, "" for none) or a miss.
std::string decide_by_rank(const ListenerRoutes& routes, std::string_view sni, const Strings& alpn,
                           const std::string& default_route) {
    const ListenerRoutes::Trace trace = routes.rank(sni, alpn);
    // Eligible candidates come in precedence order, the ALPN-excluded ones after them.
    for (std::size_t i = 1; i < trace.ranked.size(); ++i) {
        const auto& before = trace.ranked[i - 1];
        const auto& after = trace.ranked[i];
        if (after.verdict == ListenerRoutes::Verdict::alpn_mismatch) continue;
        CHECK(before.verdict != ListenerRoutes::Verdict::alpn_mismatch);
        CHECK(ListenerRoutes::outranks(before.precedence, after.precedence));
        CHECK(after.verdict != ListenerRoutes::Verdict::chosen);
    }
    if (!trace.ranked.empty() && trace.ranked.front().verdict == ListenerRoutes::Verdict::chosen) {
        return trace.ranked.front().route->name;
    }
    if (!default_route.empty()) return "default:" + default_route;
    return sni.empty() ? "<no_sni>" : "<no_route>";
}

}  // namespace

TEST_CASE("exact beats wildcard, longer wildcard beats shorter, ties go to the first defined",
          "[routing]") {
    // Wildcards defined before exacts, the less specific first: order must not matter across
    // levels, only within one.
    const Config config = make_config(
        listener("l", 6443) +                                 //
        route("short", {"l"}, {"*.com"}) +                    //
        route("long", {"l"}, {"*.example.com"}) +             //
        route("longer", {"l"}, {"*.b.example.com"}) +         //
        route("long-second", {"l"}, {"*.example.com"}) +      //
        route("exact", {"l"}, {"a.example.com"}) +            //
        route("exact-second", {"l"}, {"a.example.com"}));
    const ListenerRoutes routes = table_for(config, "l");

    CHECK(decide(routes, "a.example.com") == "exact");
    CHECK(decide(routes, "b.example.com") == "long");
    CHECK(decide(routes, "x.a.example.com") == "long");
    CHECK(decide(routes, "x.b.example.com") == "longer");
    CHECK(decide(routes, "y.x.b.example.com") == "longer");
    CHECK(decide(routes, "b.example.com") == "long");  // "*.b.example.com" needs a label before
    CHECK(decide(routes, "example.com") == "short");
    CHECK(decide(routes, "other.com") == "short");
    CHECK(decide(routes, "a.b.c.other.com") == "short");
    CHECK(decide(routes, "com") == "<no_route>");
    CHECK(decide(routes, "example.org") == "<no_route>");
    CHECK(decide(routes, "a.example.comx") == "<no_route>");
    CHECK(decide(routes, "") == "<no_sni>");
}

TEST_CASE("a route with several hostnames competes at each of its levels", "[routing]") {
    const Config config = make_config(
        listener("l", 6443) +                                            //
        route("first", {"l"}, {"*.example.com", "api.example.com"}) +    //
        route("second", {"l"}, {"api.example.com", "*.internal.example.com"}));
    const ListenerRoutes routes = table_for(config, "l");
    CHECK(decide(routes, "api.example.com") == "first");  // both exact: first defined
    CHECK(decide(routes, "db.internal.example.com") == "second");  // longer wildcard
    CHECK(decide(routes, "www.example.com") == "first");
}

TEST_CASE("default_route takes no-SNI and unmatched connections", "[routing]") {
    const Config config = make_config(
        listener("with-default", 6443, "", "fallback") +  //
        listener("without", 6444) +                        //
        route("fallback", {"with-default"}, {}) +          //
        route("app", {"with-default", "without"}, {"app.example.com"}));
    const ListenerRoutes with_default = table_for(config, "with-default");
    CHECK(decide(with_default, "") == "default:fallback");
    // "fallback" has no hostnames and is the default_route: it serves only as the default.
    CHECK(decide(with_default, "other.example.com") == "default:fallback");
    CHECK(decide(with_default, "app.example.com") == "app");

    const ListenerRoutes without = table_for(config, "without");
    CHECK(decide(without, "") == "<no_sni>");
    CHECK(decide(without, "other.example.com") == "<no_route>");
    CHECK(decide(without, "app.example.com") == "app");
}

TEST_CASE("a default_route with hostnames also matches them normally", "[routing]") {
    const Config config = make_config(
        listener("l", 6443, "", "main") +  //
        route("main", {"l"}, {"main.example.com"}) + route("other", {"l"}, {"*.example.com"}));
    const ListenerRoutes routes = table_for(config, "l");
    CHECK(decide(routes, "main.example.com") == "main");
    CHECK(decide(routes, "x.example.com") == "other");
    CHECK(decide(routes, "x.example.org") == "default:main");
    CHECK(decide(routes, "") == "default:main");
}

TEST_CASE("the default_route applies whatever the ALPN", "[routing]") {
    const Config config = make_config(listener("l", 6443, "", "h2-only") +
                                      route("h2-only", {"l"}, {"a.example.com"}, {"h2"}));
    const ListenerRoutes routes = table_for(config, "l");
    CHECK(decide(routes, "a.example.com", {"h2"}) == "h2-only");
    CHECK(decide(routes, "a.example.com", {"http/1.1"}) == "default:h2-only");
    CHECK(decide(routes, "", {}) == "default:h2-only");
}

TEST_CASE("ALPN: a matching alpn list beats no list; a non-matching list is skipped",
          "[routing][alpn]") {
    const Config config = make_config(
        listener("l", 6443) +                                               //
        route("plain", {"l"}, {"a.example.com"}) +                          //
        route("h2", {"l"}, {"a.example.com"}, {"h2"}) +                     //
        route("h2-too", {"l"}, {"a.example.com"}, {"h2", "http/1.1"}) +     //
        route("acme", {"l"}, {"a.example.com"}, {"acme-tls/1"}) +           //
        route("only-h2", {"l"}, {"b.example.com"}, {"h2"}) +                //
        route("wild", {"l"}, {"*.example.com"}) +                           //
        route("wild-h2", {"l"}, {"*.example.com"}, {"h2"}) +                //
        route("very-wild-acme", {"l"}, {"*.com"}, {"acme-tls/1"}));
    const ListenerRoutes routes = table_for(config, "l");

    // Same hostname level: alpn match > no alpn list; first defined among equals.
    CHECK(decide(routes, "a.example.com", {"h2"}) == "h2");
    CHECK(decide(routes, "a.example.com", {"http/1.1", "h2"}) == "h2");  // any offered protocol
    CHECK(decide(routes, "a.example.com", {"http/1.1"}) == "h2-too");
    CHECK(decide(routes, "a.example.com", {"acme-tls/1"}) == "acme");
    CHECK(decide(routes, "a.example.com", {"spdy/3"}) == "plain");
    CHECK(decide(routes, "a.example.com", {}) == "plain");
    // Protocol ids are compared exactly (case-sensitive).
    CHECK(decide(routes, "a.example.com", {"H2"}) == "plain");

    // A level with only non-matching alpn routes falls through to the next level.
    CHECK(decide(routes, "b.example.com", {"h2"}) == "only-h2");
    CHECK(decide(routes, "b.example.com", {"http/1.1"}) == "wild");
    CHECK(decide(routes, "b.example.com", {}) == "wild");
    CHECK(decide(routes, "c.example.com", {"h2"}) == "wild-h2");
    CHECK(decide(routes, "c.example.com", {"acme-tls/1"}) == "wild");
    CHECK(decide(routes, "c.example.org", {"acme-tls/1"}) == "<no_route>");
    CHECK(decide(routes, "other.com", {"acme-tls/1"}) == "very-wild-acme");
    CHECK(decide(routes, "other.com", {"h2"}) == "<no_route>");
}

TEST_CASE("ALPN: nothing at any level matches, then the default_route", "[routing][alpn]") {
    const Config config = make_config(listener("l", 6443, "", "fallback") +
                                      route("fallback", {"l"}, {}) +
                                      route("h2", {"l"}, {"a.example.com"}, {"h2"}) +
                                      route("wild-h2", {"l"}, {"*.example.com"}, {"h2"}));
    const ListenerRoutes routes = table_for(config, "l");
    CHECK(decide(routes, "a.example.com", {"http/1.1"}) == "default:fallback");
    CHECK(decide(routes, "a.example.com", {"h2"}) == "h2");
    CHECK(decide(routes, "z.example.com", {"h2"}) == "wild-h2");
}

TEST_CASE("routes attach through their effective hostnames", "[routing][attach]") {
    const Config config = make_config(
        listener("wild", 6443, "*.example.com") +                          //
        listener("exact", 6444, "abc.foo.example.com", "fallback") +       //
        route("everything", {"wild", "exact"},
              {"bar.com", "*.example.com", "*.foo.example.com", "abc.foo.example.com"}) +
        route("elsewhere", {"wild", "exact"}, {"example.org"}) +           //
        route("other-listener-only", {"exact"}, {"*.foo.example.com"}) +  //
        route("fallback", {"exact"}, {}));

    const ListenerRoutes wild = table_for(config, "wild");
    REQUIRE(wild.attached().size() == 1);
    CHECK(wild.attached()[0].route->name == "everything");
    CHECK(wild.attached()[0].effective_hostnames ==
          Strings{"*.example.com", "*.foo.example.com", "abc.foo.example.com"});
    CHECK(decide(wild, "bar.com") == "<no_route>");  // cut by the listener hostname
    CHECK(decide(wild, "x.example.com") == "everything");
    CHECK(decide(wild, "example.org") == "<no_route>");

    const ListenerRoutes exact = table_for(config, "exact");
    REQUIRE(exact.attached().size() == 3);
    CHECK(exact.attached()[0].route->name == "everything");
    CHECK(exact.attached()[0].effective_hostnames == Strings{"abc.foo.example.com"});
    CHECK(exact.attached()[1].route->name == "other-listener-only");
    CHECK(exact.attached()[1].effective_hostnames == Strings{"abc.foo.example.com"});
    // A route without hostnames that is the listener's default_route: default only.
    CHECK(exact.attached()[2].route->name == "fallback");
    CHECK(exact.attached()[2].effective_hostnames.empty());
    // All three narrowed to the same exact name: the first defined wins.
    CHECK(decide(exact, "abc.foo.example.com") == "everything");
    CHECK(decide(exact, "x.foo.example.com") == "default:fallback");
}

TEST_CASE("routes without hostnames match every hostname the listener allows, least specific",
          "[routing][attach]") {
    const Config config = make_config(listener("l", 6443) + listener("m", 6444, "*.example.com") +
                                      route("nohost", {"l", "m"}, {}) +
                                      route("app", {"l", "m"}, {"app.example.com"}) +
                                      route("wild", {"l"}, {"*.com"}));
    const ListenerRoutes l = table_for(config, "l");
    REQUIRE(l.attached().size() == 3);
    CHECK(l.attached()[0].route->name == "nohost");
    CHECK(l.attached()[0].effective_hostnames == Strings{"*"});
    CHECK(decide(l, "app.example.com") == "app");         // exact beats everything
    CHECK(decide(l, "x.example.com") == "wild");          // any wildcard beats "no hostnames"
    CHECK(decide(l, "x.example.org") == "nohost");        // nothing else matches
    CHECK(decide(l, "") == "<no_sni>");                   // no SNI: default_route only

    // With a listener hostname, the route takes the listener's hostname.
    const ListenerRoutes m = table_for(config, "m");
    REQUIRE(m.attached().size() == 2);
    CHECK(m.attached()[0].effective_hostnames == Strings{"*.example.com"});
    CHECK(decide(m, "app.example.com") == "app");
    CHECK(decide(m, "x.example.com") == "nohost");
    CHECK(decide(m, "x.example.org") == "<no_route>");
}

// Gateway API conformance, TLSRouteHostnameIntersection: four gateways (listeners here), each
// with routes of different specificity. "abc.example.com" reaches tls-backend,
// "other.example.com" tls-backend-2, anything else is refused.
TEST_CASE("Gateway API conformance: TLSRoute hostname intersection", "[routing][conformance]") {
    const Config config = make_config(
        listener("exact-x-1", 6441, "abc.example.com") +
        listener("more-specific-wc-x-2", 6442, "*.example.com") +
        listener("less-specific-wc-x-3", 6443, "*.com") +
        listener("empty-hostname-x-4", 6444) +
        route("more-specific-wc-x-1", {"exact-x-1"}, {"*.example.com"}) +
        route("exact-x-2", {"more-specific-wc-x-2"}, {"abc.example.com"}) +
        route("less-specific-wc-x-2", {"more-specific-wc-x-2"}, {"*.com"}) +
        route("exact-x-3", {"less-specific-wc-x-3"}, {"abc.example.com"}) +
        route("more-specific-wc-x-3", {"less-specific-wc-x-3"}, {"*.example.com"}) +
        route("exact-x-4", {"empty-hostname-x-4"}, {"abc.example.com"}) +
        route("less-specific-wc-x-4", {"empty-hostname-x-4"}, {"*.com"}));
    CHECK(config.warnings.empty());

    const ListenerRoutes x1 = table_for(config, "exact-x-1");
    CHECK(decide(x1, "abc.example.com") == "more-specific-wc-x-1");
    CHECK(decide(x1, "other.example.com") == "<no_route>");
    CHECK(decide(x1, "non.matching.com") == "<no_route>");
    REQUIRE(x1.attached().size() == 1);
    CHECK(x1.attached()[0].effective_hostnames == Strings{"abc.example.com"});

    const ListenerRoutes x2 = table_for(config, "more-specific-wc-x-2");
    CHECK(decide(x2, "abc.example.com") == "exact-x-2");
    CHECK(decide(x2, "other.example.com") == "less-specific-wc-x-2");
    CHECK(decide(x2, "non.matching.com") == "<no_route>");
    REQUIRE(x2.attached().size() == 2);
    CHECK(x2.attached()[1].effective_hostnames == Strings{"*.example.com"});

    const ListenerRoutes x3 = table_for(config, "less-specific-wc-x-3");
    CHECK(decide(x3, "abc.example.com") == "exact-x-3");
    CHECK(decide(x3, "other.example.com") == "more-specific-wc-x-3");
    CHECK(decide(x3, "non.matching.com") == "<no_route>");

    const ListenerRoutes x4 = table_for(config, "empty-hostname-x-4");
    CHECK(decide(x4, "abc.example.com") == "exact-x-4");
    CHECK(decide(x4, "other.example.com") == "less-specific-wc-x-4");
    CHECK(decide(x4, "non.matching.org") == "<no_route>");
}

// Gateway API conformance, HTTPRouteHostnameIntersection, with paths dropped: the listener
// hostnames decide which route hostnames survive.
TEST_CASE("Gateway API conformance: hostname intersection across listeners",
          "[routing][conformance]") {
    const Strings all{"listener-1", "listener-2", "listener-3"};
    const Config config = make_config(
        listener("listener-1", 6441, "very.specific.com") +
        listener("listener-2", 6442, "*.wildcard.io") +
        listener("listener-3", 6443, "*.anotherwildcard.io") +
        route("specific-host-matches-listener-specific-host", all,
              {"non.matching.com", "*.nonmatchingwildcard.io", "very.specific.com"}) +
        route("specific-host-matches-listener-wildcard-host", all,
              {"non.matching.com", "wildcard.io", "foo.wildcard.io", "bar.wildcard.io",
               "foo.bar.wildcard.io"}) +
        route("wildcard-host-matches-listener-specific-host", all,
              {"non.matching.com", "*.specific.com"}) +
        route("wildcard-host-matches-listener-wildcard-host", all, {"*.anotherwildcard.io"}) +
        route("no-intersecting-hosts", all, {"specific.but.wrong.com", "wildcard.io"}));

    const ListenerRoutes l1 = table_for(config, "listener-1");
    REQUIRE(l1.attached().size() == 2);
    CHECK(l1.attached()[0].route->name == "specific-host-matches-listener-specific-host");
    CHECK(l1.attached()[1].route->name == "wildcard-host-matches-listener-specific-host");
    CHECK(l1.attached()[1].effective_hostnames == Strings{"very.specific.com"});
    CHECK(decide(l1, "very.specific.com") == "specific-host-matches-listener-specific-host");
    CHECK(decide(l1, "non.matching.com") == "<no_route>");

    const ListenerRoutes l2 = table_for(config, "listener-2");
    REQUIRE(l2.attached().size() == 1);
    CHECK(l2.attached()[0].effective_hostnames ==
          Strings{"foo.wildcard.io", "bar.wildcard.io", "foo.bar.wildcard.io"});
    CHECK(decide(l2, "foo.wildcard.io") == "specific-host-matches-listener-wildcard-host");
    CHECK(decide(l2, "foo.bar.wildcard.io") == "specific-host-matches-listener-wildcard-host");
    CHECK(decide(l2, "wildcard.io") == "<no_route>");
    CHECK(decide(l2, "baz.wildcard.io") == "<no_route>");

    const ListenerRoutes l3 = table_for(config, "listener-3");
    REQUIRE(l3.attached().size() == 1);
    CHECK(decide(l3, "foo.anotherwildcard.io") == "wildcard-host-matches-listener-wildcard-host");
    CHECK(decide(l3, "anotherwildcard.io") == "<no_route>");

    // The route that intersects nothing is reported once per listener.
    const auto mentions = std::count_if(config.warnings.begin(), config.warnings.end(),
                                        [](const std::string& warning) {
                                            return warning.find("\"no-intersecting-hosts\"") !=
                                                   std::string::npos;
                                        });
    CHECK(mentions == 3);
}

TEST_CASE("a listener with no routes rejects everything", "[routing]") {
    const Config config = make_config(listener("l", 6443) + listener("m", 6444) +
                                      route("r", {"m"}, {"a.example.com"}));
    const ListenerRoutes routes = table_for(config, "l");
    CHECK(routes.attached().empty());
    CHECK(decide(routes, "a.example.com") == "<no_route>");
    CHECK(decide(routes, "") == "<no_sni>");
}

TEST_CASE("odd SNI values do not match wildcards without a label", "[routing]") {
    const Config config = make_config(listener("l", 6443) + route("w", {"l"}, {"*.example.com"}));
    const ListenerRoutes routes = table_for(config, "l");
    CHECK(decide(routes, ".example.com") == "<no_route>");
    CHECK(decide(routes, "example.com") == "<no_route>");
    CHECK(decide(routes, ".") == "<no_route>");
    CHECK(decide(routes, "x.") == "<no_route>");
    CHECK(decide(routes, "*.example.com") == "w");  // never a real SNI; harmless
}

// Cross-check against a direct reading of the rules on many random tables.
TEST_CASE("match agrees with a reference implementation of the rules", "[routing][property]") {
    std::mt19937 random(20240611);
    const Strings labels{"a", "b", "c"};
    const Strings protocols{"h2", "http/1.1", "x"};
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
    auto name_of = [&](std::size_t depth) {
        std::string out;
        for (std::size_t i = 0; i < depth; ++i) out += (i ? "." : "") + labels[pick(labels.size())];
        return out;
    };

    for (int round = 0; round < 300; ++round) {
        // Listener hostname: none, exact or wildcard.
        std::string listener_hostname;
        switch (pick(3)) {
            case 0: break;
            case 1: listener_hostname = name_of(1 + pick(3)) + ".test"; break;
            case 2: {
                const std::size_t depth = pick(2);
                listener_hostname = depth == 0 ? "*.test" : "*." + name_of(depth) + ".test";
                break;
            }
        }
        const bool with_default = pick(2) == 0;
        std::string body = listener("l", 6443, listener_hostname, with_default ? "r0" : "");
        const std::size_t route_count = 1 + pick(8);
        for (std::size_t r = 0; r < route_count; ++r) {
            Strings hostnames;
            const std::size_t hostname_count = r == 0 ? pick(2) : 1 + pick(3);
            for (std::size_t h = 0; h < hostname_count; ++h) {
                std::string hostname =
                    pick(2) ? name_of(1 + pick(3)) + ".test" : "*." + name_of(pick(3)) + ".test";
                if (hostname == "*..test") hostname = "*.test";
                if (std::find(hostnames.begin(), hostnames.end(), hostname) == hostnames.end()) {
                    hostnames.push_back(hostname);
                }
            }
            Strings alpn;
            if (pick(2)) {
                for (const auto& protocol : protocols) {
                    if (pick(2)) alpn.push_back(protocol);
                }
            }
            body += route("r" + std::to_string(r), {"l"}, hostnames, alpn);
        }
        Config config;
        try {
            config = make_config(body);
        } catch (const passgate::config::ConfigError& error) {
            FAIL(error.what() << "\n" << body);
        }
        const ListenerRoutes table = table_for(config, "l");

        for (int probe = 0; probe < 40; ++probe) {
            const std::string sni = pick(10) == 0 ? "" : name_of(1 + pick(4)) + ".test";
            Strings offered;
            for (const auto& protocol : protocols) {
                if (pick(2)) offered.push_back(protocol);
            }

            // Reference: rank every (route, effective hostname) that matches; best rank first.
            std::string expected;
            if (sni.empty()) {
                expected = with_default ? "default:r0" : "<no_sni>";
            } else {
                struct Candidate {
                    std::size_t rank;  // exact: SIZE_MAX; wildcard: suffix length
                    std::size_t order;
                    const passgate::config::Route* route;
                };
                std::vector<Candidate> candidates;
                for (std::size_t order = 0; order < config.routes.size(); ++order) {
                    const auto& route = config.routes[order];
                    const std::optional<std::string> listener_pattern =
                        listener_hostname.empty() ? std::nullopt
                                                  : std::optional<std::string>(listener_hostname);
                    // The default_route without hostnames serves only as the default.
                    if (with_default && order == 0 && route.hostnames.empty()) continue;
                    for (const auto& pattern :
                         passgate::config::effective_hostnames(listener_pattern, route.hostnames)) {
                        // "*": a route without hostnames on a listener without hostname.
                        const bool match_all = pattern == "*";
                        if (!match_all && !passgate::config::hostname_matches(pattern, sni)) continue;
                        const bool wildcard = pattern[0] == '*';
                        const std::size_t rank =
                            match_all ? 0 : wildcard ? pattern.size() - 1 : SIZE_MAX;
                        candidates.push_back({rank, order, &route});
                    }
                }
                std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
                    return a.rank != b.rank ? a.rank > b.rank : a.order < b.order;
                });
                const passgate::config::Route* chosen = nullptr;
                for (std::size_t i = 0; i < candidates.size() && chosen == nullptr;) {
                    std::size_t j = i;
                    const passgate::config::Route* plain = nullptr;
                    for (; j < candidates.size() && candidates[j].rank == candidates[i].rank; ++j) {
                        const auto& wanted = candidates[j].route->alpn;
                        if (wanted.empty()) {
                            if (plain == nullptr) plain = candidates[j].route;
                        } else if (chosen == nullptr &&
                                   std::any_of(offered.begin(), offered.end(), [&](const auto& p) {
                                       return std::find(wanted.begin(), wanted.end(), p) !=
                                              wanted.end();
                                   })) {
                            chosen = candidates[j].route;
                        }
                    }
                    if (chosen == nullptr) chosen = plain;
                    i = j;
                }
                if (chosen != nullptr) {
                    expected = chosen->name;
                } else {
                    expected = with_default ? "default:r0" : "<no_route>";
                }
            }
            INFO(body << "sni: " << sni);
            REQUIRE(decide(table, sni, offered) == expected);
            // rank(), which `passgate route` formats, comes to the same decision.
            REQUIRE(decide_by_rank(table, sni, offered, with_default ? "r0" : "") == expected);
        }
    }
}

TEST_CASE("rank: every candidate in precedence order with the reason it won or lost",
          "[routing][rank]") {
    const Config config = make_config(
        listener("l", 6443, "*.example.com", "fallback") + route("fallback", {"l"}, {}) +
        route("wild", {"l"}, {"*.example.com"}) + route("api", {"l"}, {"api.example.com"}) +
        route("api-h2", {"l"}, {"api.example.com"}, {"h2"}) +
        route("api-grpc", {"l"}, {"api.example.com"}, {"grpc"}) +
        route("api-again", {"l"}, {"api.example.com"}) + route("other", {"l"}, {"b.example.com"}) +
        route("elsewhere", {"l"}, {"api.example.org"}));
    const ListenerRoutes table = table_for(config, "l");
    using Verdict = ListenerRoutes::Verdict;
    using Level = ListenerRoutes::Precedence::Level;
    const Strings h2{"h2"};
    const ListenerRoutes::Trace trace = table.rank("api.example.com", h2);
    REQUIRE(trace.match.route != nullptr);
    CHECK(trace.match.route->name == "api-h2");
    struct Row {
        std::string route;
        Verdict verdict;
        Level level;
        std::string pattern;
    };
    const std::vector<Row> want = {
        {"api-h2", Verdict::chosen, Level::exact, "api.example.com"},
        {"api", Verdict::alpn_preferred, Level::exact, "api.example.com"},
        {"api-again", Verdict::alpn_preferred, Level::exact, "api.example.com"},
        {"wild", Verdict::less_specific, Level::wildcard, "*.example.com"},
        {"api-grpc", Verdict::alpn_mismatch, Level::exact, "api.example.com"},
    };
    REQUIRE(trace.ranked.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        CHECK(trace.ranked[i].route->name == want[i].route);
        CHECK(trace.ranked[i].verdict == want[i].verdict);
        CHECK(trace.ranked[i].precedence.level == want[i].level);
        CHECK(trace.ranked[i].pattern == want[i].pattern);
    }
    CHECK(trace.ranked[3].precedence.suffix_length == 12);
    // Not matching: the default_route (no hostname here) and "other"; "elsewhere" does not
    // intersect the listener's hostname, so it is not attached at all.
    REQUIRE(trace.not_matching.size() == 2);
    CHECK(trace.not_matching[0]->route->name == "fallback");
    CHECK(trace.not_matching[1]->route->name == "other");
    REQUIRE(table.not_attached().size() == 1);
    CHECK(table.not_attached()[0]->name == "elsewhere");

    // Without ALPN: the first defined of the routes without a list wins the tie.
    const ListenerRoutes::Trace plain = table.rank("api.example.com", {});
    REQUIRE(plain.ranked.size() == 5);
    CHECK(plain.ranked[0].route->name == "api");
    CHECK(plain.ranked[1].route->name == "api-again");
    CHECK(plain.ranked[1].verdict == Verdict::defined_later);
    CHECK(plain.ranked[2].route->name == "wild");
    CHECK(plain.ranked[3].verdict == Verdict::alpn_mismatch);
    CHECK(plain.ranked[4].verdict == Verdict::alpn_mismatch);

    // No SNI: the default_route, nothing ranked.
    const ListenerRoutes::Trace none = table.rank("", h2);
    CHECK(none.match.via_default);
    CHECK(none.ranked.empty());
}
