#include "src/routing/route_explain.h"

#include "src/routing/routing.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

using passgate::explain_route;
using passgate::config::Config;
using passgate::config::parse_config;
using Strings = std::vector<std::string>;

namespace {

using test_config::listener;
using test_config::route;
using test_config::toml_list;

Config make_config(const std::string& body) { return test_config::make_config(body, "route_explain_test.toml"); }

// The lines of one listener's block ("listener \"NAME\" ..." up to the next listener).
Strings block_of(const std::string& text, const std::string& listener_name) {
    Strings block;
    std::istringstream lines(text);
    bool inside = false;
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("listener "))
            inside = line.starts_with("listener \"" + listener_name + "\" ");
        if (inside) block.push_back(line);
    }
    return block;
}

bool has_line(const Strings& lines, const std::string& wanted) {
    return std::find(lines.begin(), lines.end(), wanted) != lines.end();
}

// The "=> ..." decision line of a listener.
std::string decision(const std::string& text, const std::string& listener_name) {
    for (const std::string& line : block_of(text, listener_name))
        if (line.starts_with("  => ")) return line.substr(5);
    return "<none>";
}

}  // namespace

TEST_CASE(
    "route explain: exact beats wildcard, longer wildcard beats shorter, first defined wins ties",
    "[route_explain]") {
    const Config config = make_config(listener("l", 6443) +                       //
                                      route("short", {"l"}, {"*.com"}) +          //
                                      route("long", {"l"}, {"*.example.com"}) +   //
                                      route("exact", {"l"}, {"a.example.com"}) +  //
                                      route("exact-second", {"l"}, {"a.example.com"}) +
                                      route("other", {"l"}, {"b.example.org"}));
    const std::string exact = explain_route(config, "a.example.com", {});
    INFO(exact);
    const Strings block = block_of(exact, "l");
    CHECK(block.front() == "listener \"l\" 127.0.0.1:6443");
    CHECK(decision(exact, "l") == "route \"exact\": exact hostname a.example.com");
    CHECK(has_line(block,
                   "  lost: route \"short\" (wildcard *.com with suffix length 4): less specific "
                   "than the exact hostname a.example.com of route \"exact\""));
    CHECK(has_line(block,
                   "  lost: route \"long\" (wildcard *.example.com with suffix length 12): less "
                   "specific than the exact hostname a.example.com of route \"exact\""));
    CHECK(has_line(block,
                   "  lost: route \"exact-second\" (exact hostname a.example.com): defined later "
                   "(line 19) than route \"exact\" (line 14); ties go to the first defined"));
    CHECK(has_line(block, "  hostnames do not match: \"other\" (b.example.org)"));
    CHECK(has_line(block, "  backends of route \"exact\" (one picked per connection by weight):"));
    CHECK(has_line(block, "    service \"s\" weight 1 (100%): 127.0.0.1:8443"));

    const std::string wildcard = explain_route(config, "b.example.com", {});
    INFO(wildcard);
    CHECK(decision(wildcard, "l") ==
          "route \"long\": wildcard *.example.com with suffix length 12");
    CHECK(has_line(
        block_of(wildcard, "l"),
        "  lost: route \"short\" (wildcard *.com with suffix length 4): less specific than "
        "the wildcard *.example.com with suffix length 12 of route \"long\""));
    CHECK(decision(explain_route(config, "example.com", {}), "l") ==
          "route \"short\": wildcard *.com with suffix length 4");
}

TEST_CASE("route explain: ALPN preference and exclusion", "[route_explain]") {
    const Config config = make_config(listener("l", 6443) +                            //
                                      route("plain", {"l"}, {"a.example.com"}) +       //
                                      route("h2", {"l"}, {"a.example.com"}, {"h2"}) +  //
                                      route("acme", {"l"}, {"a.example.com"}, {"acme-tls/1"}) +
                                      route("wild-h2", {"l"}, {"*.example.com"}, {"h2"}));
    const std::string h2 = explain_route(config, "a.example.com", {"http/1.1", "h2"});
    INFO(h2);
    CHECK(h2.find("ALPN: \"http/1.1\", \"h2\"\n") != std::string::npos);
    CHECK(
        decision(h2, "l") ==
        "route \"h2\": exact hostname a.example.com; its alpn list (\"h2\") matches the client's");
    const Strings block = block_of(h2, "l");
    CHECK(has_line(block,
                   "  lost: route \"plain\" (exact hostname a.example.com): route \"h2\" at the "
                   "same hostname lists a matching ALPN, which is preferred to no alpn list"));
    CHECK(has_line(block,
                   "  lost: route \"acme\" (exact hostname a.example.com): ALPN mismatch: the "
                   "route wants \"acme-tls/1\", the client offered \"http/1.1\", \"h2\""));
    CHECK(has_line(block,
                   "  lost: route \"wild-h2\" (wildcard *.example.com with suffix length 12): less "
                   "specific than the exact hostname a.example.com of route \"h2\""));

    const std::string none = explain_route(config, "a.example.com", {});
    INFO(none);
    CHECK(decision(none, "l") == "route \"plain\": exact hostname a.example.com");
    CHECK(has_line(block_of(none, "l"),
                   "  lost: route \"h2\" (exact hostname a.example.com): ALPN "
                   "mismatch: the route wants \"h2\", the client offered none"));

    // Only ALPN-restricted routes at the wildcard level, none offered: nothing takes it.
    const std::string wild = explain_route(config, "b.example.com", {"http/1.1"});
    INFO(wild);
    CHECK(decision(wild, "l") ==
          "rejected (no_route): every attached route whose hostnames match \"b.example.com\" "
          "excludes "
          "this ALPN and the listener has no default_route");
    CHECK(has_line(block_of(wild, "l"),
                   "  lost: route \"wild-h2\" (wildcard *.example.com with suffix length 12): ALPN "
                   "mismatch: the route wants \"h2\", the client offered \"http/1.1\""));
}

TEST_CASE("route explain: default_route and rejections", "[route_explain]") {
    const Config config =
        make_config(listener("with-default", 6443, "", "fallback") +  //
                    listener("without", 6444) +                       //
                    route("fallback", {"with-default"}, {"fallback.example.org"}) +
                    route("app", {"with-default", "without"}, {"app.example.com"}));
    const std::string no_sni = explain_route(config, "", {});
    INFO(no_sni);
    CHECK(no_sni.starts_with("SNI: none (no server_name extension)\nALPN: none offered\n"));
    CHECK(decision(no_sni, "with-default") ==
          "route \"fallback\" via default_route: the client sent no SNI");
    CHECK(has_line(block_of(no_sni, "with-default"),
                   "  backends of route \"fallback\" (one picked per "
                   "connection by weight):"));
    CHECK(decision(no_sni, "without") ==
          "rejected (no_sni): the client sent no SNI and the listener has no default_route");
    CHECK_FALSE(has_line(block_of(no_sni, "without"),
                         "  backends of route \"app\" (one picked per "
                         "connection by weight):"));

    const std::string unknown = explain_route(config, "other.example.com", {});
    INFO(unknown);
    CHECK(decision(unknown, "with-default") ==
          "route \"fallback\" via default_route: no attached route matches \"other.example.com\"");
    CHECK(has_line(block_of(unknown, "with-default"),
                   "  hostnames do not match: \"app\" (app.example.com)"));
    CHECK(decision(unknown, "without") ==
          "rejected (no_route): no attached route matches \"other.example.com\" and the listener "
          "has no "
          "default_route");

    // The default_route also matches its own hostnames normally.
    CHECK(decision(explain_route(config, "fallback.example.org", {}), "with-default") ==
          "route \"fallback\": exact hostname fallback.example.org");
}

TEST_CASE("route explain: listener hostname intersection", "[route_explain]") {
    const Config config =
        make_config(listener("wild", 6443, "*.example.com") +                     //
                    listener("exact", 6444, "abc.foo.example.com", "fallback") +  //
                    route("everything", {"wild", "exact"}, {"bar.com", "*.foo.example.com"}) +
                    route("elsewhere", {"wild", "exact"}, {"example.org", "*.example.net"}) +
                    route("fallback", {"exact"}, {}));
    const std::string text = explain_route(config, "abc.foo.example.com", {});
    INFO(text);
    const Strings wild = block_of(text, "wild");
    CHECK(wild.front() == "listener \"wild\" 127.0.0.1:6443 hostname=*.example.com");
    CHECK(decision(text, "wild") ==
          "route \"everything\": wildcard *.foo.example.com with suffix length 16");
    CHECK(has_line(wild,
                   "  not attached: route \"elsewhere\": none of its hostnames (example.org, "
                   "*.example.net) intersects the listener hostname *.example.com"));

    // On a listener with an exact hostname, the wildcard narrows to it: an exact match. The
    // hostname-less route is that listener's default_route, so it serves only as the default.
    const Strings exact = block_of(text, "exact");
    CHECK(exact.front() ==
          "listener \"exact\" 127.0.0.1:6444 hostname=abc.foo.example.com default_route=fallback");
    CHECK(decision(text, "exact") == "route \"everything\": exact hostname abc.foo.example.com");
    CHECK(has_line(exact,
                   "  hostnames do not match: \"fallback\" (no hostname here: default_route only)"));
    CHECK(has_line(exact,
                   "  not attached: route \"elsewhere\": none of its hostnames (example.org, "
                   "*.example.net) intersects the listener hostname abc.foo.example.com"));

    // "bar.com" is cut by both listener hostnames.
    const std::string bar = explain_route(config, "bar.com", {});
    INFO(bar);
    CHECK(decision(bar, "wild") ==
          "rejected (no_route): no attached route matches \"bar.com\" and the "
          "listener has no default_route");
    CHECK(has_line(block_of(bar, "wild"),
                   "  hostnames do not match: \"everything\" (*.foo.example.com)"));
    CHECK(decision(bar, "exact") ==
          "route \"fallback\" via default_route: no attached route matches \"bar.com\"");
}

TEST_CASE("route explain: the SNI and ALPN are judged as the data path does", "[route_explain]") {
    const Config config =
        make_config(listener("l", 6443) + route("app", {"l"}, {"app.example.com"}));

    const std::string normalized = explain_route(config, "App.Example.COM.", {});
    INFO(normalized);
    CHECK(normalized.starts_with(
        "SNI: \"App.Example.COM.\" -> app.example.com (lowercased, trailing dot "
        "removed, as the data path does)\n"));
    CHECK(decision(normalized, "l") == "route \"app\": exact hostname app.example.com");
    CHECK(explain_route(config, "app.example.com.", {})
              .starts_with("SNI: \"app.example.com.\" -> app.example.com (trailing dot removed, as "
                           "the data path does)\n"));

    for (const std::string& sni :
         Strings{"192.0.2.1", "[::1]", "app..example.com", "app.example.com..", "a b.com",
                 "bad\"\nname", std::string(300, 'a')}) {
        const std::string text = explain_route(config, sni, {});
        INFO(text);
        CHECK(text.find("rejected before routing on every listener: hello_error=bad_sni") !=
              std::string::npos);
        CHECK(decision(text, "l") == "rejected (hello_rejected, bad_sni)");
    }
    // Shown escaped: the explanation itself stays one line per item.
    CHECK(explain_route(config, "bad\"\nname", {}).starts_with("SNI: \"bad\\x22\\x0aname\"\n"));

    const std::string empty_alpn = explain_route(config, "app.example.com", {"h2", ""});
    INFO(empty_alpn);
    CHECK(decision(empty_alpn, "l") == "rejected (hello_rejected, bad_alpn)");
    CHECK(decision(explain_route(config, "app.example.com", {std::string(256, 'x')}), "l") ==
          "rejected (hello_rejected, bad_alpn)");
}

TEST_CASE("route explain: backends with weights and endpoints", "[route_explain]") {
    const Config config =
        make_config(listener("l", 6443) +
                    route("split", {"l"}, {"app.example.com"}, {},
                          "[{ service = \"s\", weight = 2 }, { service = \"t\", weight = 1 }, "
                          "{ service = \"drained\", weight = 1 }]") +
                    "[[service]]\nname = \"t\"\nendpoints = [\"127.0.0.2:8443\", { address = "
                    "\"[::1]:8443\", weight = 2 }, "
                    "{ address = \"127.0.0.4:8443\", weight = 0 }]\n"
                    "[[service]]\nname = \"drained\"\nendpoints = [{ address = \"127.0.0.5:8443\", "
                    "weight = 0 }]\n");
    const std::string text = explain_route(config, "app.example.com", {});
    INFO(text);
    const Strings block = block_of(text, "l");
    CHECK(has_line(block, "  backends of route \"split\" (one picked per connection by weight):"));
    CHECK(has_line(block, "    service \"s\" weight 2 (50%): 127.0.0.1:8443"));
    CHECK(has_line(block,
                   "    service \"t\" weight 1 (25%): 127.0.0.2:8443, [::1]:8443 weight 2, "
                   "127.0.0.4:8443 weight 0 (drained)"));
    CHECK(
        has_line(block,
                 "    service \"drained\" weight 1 (25%): 127.0.0.5:8443 weight 0 (drained); every "
                 "endpoint drained, its share is rejected"));
}

TEST_CASE("route explain: the decision is always the one ListenerRoutes makes", "[route_explain]") {
    const Config config =
        make_config(listener("l", 6443, "", "fallback") + listener("m", 6444, "*.example.com") +
                    listener("n", 6445, "api.example.com") + route("fallback", {"l"}, {}) +
                    route("wild", {"l", "m", "n"}, {"*.example.com"}) +
                    route("api", {"l", "m", "n"}, {"api.example.com"}) +
                    route("api-h2", {"l", "m"}, {"api.example.com"}, {"h2"}) +
                    route("deep", {"l", "m"}, {"*.b.example.com"}) +
                    route("com-h2", {"l", "m", "n"}, {"*.com"}, {"h2"}));
    const Strings snis{
        "",          "api.example.com", "x.example.com", "a.b.example.com", "b.example.com",
        "other.com", "example.org"};
    const std::vector<Strings> alpns{{}, {"h2"}, {"http/1.1"}, {"http/1.1", "h2"}};
    for (const std::string& sni : snis) {
        for (const Strings& alpn : alpns) {
            const std::string text = explain_route(config, sni, alpn);
            for (const auto& listener_config : config.listeners) {
                const passgate::ListenerRoutes table(config, listener_config);
                const auto match = table.match(sni, alpn);
                const std::string line = decision(text, listener_config.name);
                INFO(text << "listener " << listener_config.name);
                if (match.route == nullptr) {
                    CHECK(line.starts_with(match.miss == passgate::ListenerRoutes::Miss::no_sni
                                               ? "rejected (no_sni)"
                                               : "rejected (no_route)"));
                } else {
                    CHECK(line.starts_with("route \"" + match.route->name + "\"" +
                                           (match.via_default ? " via default_route" : ":")));
                }
            }
        }
    }
}

TEST_CASE("route explain: a discovered service names its source", "[route_explain]") {
    const Config config =
        make_config(listener("l", 6443) +
                    route("r", {"l"}, {"app.example.com"}, {},
                          "[{ service = \"by-dns\" }, { service = \"by-srv\" }, { service = \"by-file\" }]") +
                    "[[service]]\nname = \"by-dns\"\ndns = \"app.internal\"\nport = 8443\n"
                    "[[service]]\nname = \"by-srv\"\ndns_srv = \"_https._tcp.app.internal\"\n"
                    "[[service]]\nname = \"by-file\"\nendpoints_file = \"/etc/passgate/pool.endpoints\"\n");
    const std::string text = explain_route(config, "app.example.com", {});
    INFO(text);
    const Strings block = block_of(text, "l");
    CHECK(has_line(block, "    service \"by-dns\" weight 1 (33.3%): endpoints from dns app.internal port "
                          "8443 (found at run time)"));
    CHECK(has_line(block, "    service \"by-srv\" weight 1 (33.3%): endpoints from dns_srv "
                          "_https._tcp.app.internal (found at run time)"));
    CHECK(has_line(block, "    service \"by-file\" weight 1 (33.3%): endpoints from endpoints_file "
                          "/etc/passgate/pool.endpoints (found at run time)"));
}

TEST_CASE("route verdict: routed, no_route, no_sni, rejected; the highest over the listeners judged",
          "[route_explain][route_outcome]") {
    using passgate::judge_route;
    using passgate::RouteOutcome;
    // "strict" has no default_route; "fallback" sends everything else to "r".
    const Config config = make_config(listener("strict", 6443) + listener("fallback", 6444, "", "r") +
                                      route("r", {"strict", "fallback"}, {"a.example.com"}));
    const std::string strict = "strict";
    const std::string fallback = "fallback";
    CHECK(judge_route(config, "a.example.com", {}).outcome == RouteOutcome::routed);
    CHECK(judge_route(config, "A.Example.com.", {}).outcome == RouteOutcome::routed);
    // No route on "strict"; "fallback" takes it by its default_route.
    CHECK(judge_route(config, "b.example.com", {}).outcome == RouteOutcome::no_route);
    CHECK(judge_route(config, "b.example.com", {}, &strict).outcome == RouteOutcome::no_route);
    CHECK(judge_route(config, "b.example.com", {}, &fallback).outcome == RouteOutcome::routed);
    // No SNI: no_sni on "strict", the default_route on "fallback".
    CHECK(judge_route(config, "", {}).outcome == RouteOutcome::no_sni);
    CHECK(judge_route(config, "", {}, &fallback).outcome == RouteOutcome::routed);
    // Rejected before routing, on every listener.
    CHECK(judge_route(config, "10.0.0.1", {}).outcome == RouteOutcome::rejected);
    CHECK(judge_route(config, "bad..label", {}, &fallback).outcome == RouteOutcome::rejected);
    CHECK(judge_route(config, "a.example.com", {std::string(300, 'x')}).outcome == RouteOutcome::rejected);
    // The exit statuses are the contract (README.md, "Exit codes").
    CHECK(static_cast<int>(RouteOutcome::routed) == 0);
    CHECK(static_cast<int>(RouteOutcome::no_route) == 3);
    CHECK(static_cast<int>(RouteOutcome::no_sni) == 4);
    CHECK(static_cast<int>(RouteOutcome::rejected) == 5);
}

TEST_CASE("route verdict: --listener judges and shows that listener only", "[route_explain][route_outcome]") {
    const Config config = make_config(listener("strict", 6443) + listener("fallback", 6444, "", "r") +
                                      route("r", {"strict", "fallback"}, {"a.example.com"}));
    const std::string fallback = "fallback";
    const passgate::RouteExplanation only = passgate::judge_route(config, "b.example.com", {}, &fallback);
    CHECK(block_of(only.text, "strict").empty());
    CHECK(decision(only.text, "fallback") == "route \"r\" via default_route: no attached route matches "
                                             "\"b.example.com\"");
    // Without it: the text explain_route gives.
    CHECK(passgate::judge_route(config, "b.example.com", {}).text == explain_route(config, "b.example.com", {}));
}
