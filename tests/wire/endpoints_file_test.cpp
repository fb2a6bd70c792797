#include "src/wire/endpoints_file.h"

#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <optional>
#include <string>

using passgate::DiscoveredEndpoint;
using passgate::EndpointsFileParse;
using passgate::parse_endpoints_file;

namespace {

EndpointsFileParse parse(std::string_view text) { return parse_endpoints_file(text, "eps.txt"); }

// The endpoints of a text that must parse.
passgate::DiscoveredEndpoints good(std::string_view text) {
    EndpointsFileParse result = parse(text);
    INFO(result.error);
    REQUIRE(result.ok());
    return result.endpoints;
}

// The error of a text that must not parse (and then yields no endpoints at all).
std::string bad(std::string_view text) {
    EndpointsFileParse result = parse(text);
    REQUIRE_FALSE(result.ok());
    CHECK(result.endpoints.empty());
    return result.error;
}

DiscoveredEndpoint endpoint(std::string_view address, std::uint32_t weight = 1,
                            std::optional<std::uint32_t> max_connections = std::nullopt) {
    const auto parsed = passgate::config::parse_address(address);
    REQUIRE(parsed);
    return DiscoveredEndpoint{*parsed, weight, max_connections};
}

// "10.0.I/250.I%250+1:8443": `count` distinct addresses.
std::string many_endpoints(std::size_t count) {
    std::string text;
    for (std::size_t i = 0; i < count; ++i) {
        text += "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8443\n";
    }
    return text;
}

}  // namespace

TEST_CASE("endpoints file: empty, blank and comment-only files are a valid empty set",
          "[endpoints_file]") {
    CHECK(good("").empty());
    CHECK(good("\n\n\n").empty());
    CHECK(good("# nothing here yet\n   # indented comment\n\t\n").empty());
    CHECK(good("\r\n# crlf comment\r\n").empty());
    CHECK(good("#").empty());
}

TEST_CASE("endpoints file: addresses with defaults, options in any order", "[endpoints_file]") {
    const auto endpoints = good(
        "# api endpoints\n"
        "10.0.0.11:8443\n"
        "10.0.0.12:8443 weight=2\n"
        "[2001:db8::13]:8443 weight=0 max_connections=500   # drained\n"
        "10.0.0.14:8443 max_connections=1 weight=10000\n");
    REQUIRE(endpoints.size() == 4);
    CHECK(endpoints[0] == endpoint("10.0.0.11:8443"));
    CHECK(endpoints[1] == endpoint("10.0.0.12:8443", 2));
    CHECK(endpoints[2] == endpoint("[2001:db8::13]:8443", 0, 500));
    CHECK(endpoints[3] == endpoint("10.0.0.14:8443", 10000, 1));
    CHECK(endpoints[2].address.to_string() == "[2001:db8::13]:8443");
}

TEST_CASE("endpoints file: blanks, tabs, comments and line ends", "[endpoints_file]") {
    SECTION("leading and trailing blanks, tabs between fields") {
        const auto endpoints = good("  \t10.0.0.1:80\t weight=3 \t\n");
        REQUIRE(endpoints.size() == 1);
        CHECK(endpoints[0] == endpoint("10.0.0.1:80", 3));
    }
    SECTION("a comment right after a field, with no blank before it") {
        CHECK(good("10.0.0.1:80#web\n10.0.0.2:80 weight=4#x weight=9\n") ==
              passgate::DiscoveredEndpoints{endpoint("10.0.0.1:80"), endpoint("10.0.0.2:80", 4)});
    }
    SECTION("CRLF line ends, and a last line without a line end") {
        CHECK(good("10.0.0.1:80\r\n10.0.0.2:80 weight=2\r\n10.0.0.3:80") ==
              passgate::DiscoveredEndpoints{endpoint("10.0.0.1:80"), endpoint("10.0.0.2:80", 2),
                                            endpoint("10.0.0.3:80")});
    }
    SECTION("a CR anywhere but at the line end is not a blank") {
        CHECK(bad("10.0.0.1:80\r weight=2\n") ==
              "eps.txt:1: invalid address \"10.0.0.1:80\\x0d\": expected \"a.b.c.d:port\" or "
              "\"[ipv6]:port\" with a port from 1 to 65535 (host names are not resolved)");
        CHECK(bad("10.0.0.1:80\r\r\n") ==
              "eps.txt:1: invalid address \"10.0.0.1:80\\x0d\": expected \"a.b.c.d:port\" or "
              "\"[ipv6]:port\" with a port from 1 to 65535 (host names are not resolved)");
    }
}

TEST_CASE("endpoints file: invalid addresses", "[endpoints_file]") {
    const std::string help =
        ": expected \"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 (host names "
        "are not resolved)";
    CHECK(bad("localhost:8443") == "eps.txt:1: invalid address \"localhost:8443\"" + help);
    CHECK(bad("10.0.0.1") == "eps.txt:1: invalid address \"10.0.0.1\"" + help);
    CHECK(bad("10.0.0.1:") == "eps.txt:1: invalid address \"10.0.0.1:\"" + help);
    CHECK(bad("10.0.0.1:65536") == "eps.txt:1: invalid address \"10.0.0.1:65536\"" + help);
    CHECK(bad("10.0.0.1:080") == "eps.txt:1: invalid address \"10.0.0.1:080\"" + help);
    CHECK(bad("10.1:80") == "eps.txt:1: invalid address \"10.1:80\"" + help);
    CHECK(bad("::1:80") == "eps.txt:1: invalid address \"::1:80\"" + help);
    CHECK(bad("[::1]") == "eps.txt:1: invalid address \"[::1]\"" + help);
    CHECK(bad("[fe80::1%eth0]:80") == "eps.txt:1: invalid address \"[fe80::1%eth0]:80\"" + help);
    CHECK(bad("weight=2 10.0.0.1:80") == "eps.txt:1: invalid address \"weight=2\"" + help);
    CHECK(bad(std::string_view("10.0.0.1\0:80", 12)) ==
          "eps.txt:1: invalid address \"10.0.0.1\\x00:80\"" + help);
}

TEST_CASE("endpoints file: port 0 and the unspecified address are refused", "[endpoints_file]") {
    CHECK(bad("10.0.0.1:0") == "eps.txt:1: invalid address \"10.0.0.1:0\": port 0 cannot be connected to");
    CHECK(bad("[2001:db8::1]:0") ==
          "eps.txt:1: invalid address \"[2001:db8::1]:0\": port 0 cannot be connected to");
    CHECK(bad("0.0.0.0:443") == "eps.txt:1: invalid address \"0.0.0.0:443\": the unspecified address "
                                "(0.0.0.0 or ::) cannot be connected to");
    CHECK(bad("[::]:443") == "eps.txt:1: invalid address \"[::]:443\": the unspecified address "
                             "(0.0.0.0 or ::) cannot be connected to");
    CHECK(bad("[0:0::0]:443").find("the unspecified address") != std::string::npos);
}

TEST_CASE("endpoints file: weight", "[endpoints_file]") {
    CHECK(good("10.0.0.1:80 weight=0")[0].weight == 0);
    CHECK(good("10.0.0.1:80 weight=1")[0].weight == 1);
    CHECK(good("10.0.0.1:80 weight=10000")[0].weight == 10000);
    const std::string range = ": expected an integer from 0 to 10000";
    CHECK(bad("10.0.0.1:80 weight=10001") == "eps.txt:1: invalid weight \"10001\"" + range);
    CHECK(bad("10.0.0.1:80 weight=-1") == "eps.txt:1: invalid weight \"-1\"" + range);
    CHECK(bad("10.0.0.1:80 weight=+1") == "eps.txt:1: invalid weight \"+1\"" + range);
    CHECK(bad("10.0.0.1:80 weight=") == "eps.txt:1: invalid weight \"\"" + range);
    CHECK(bad("10.0.0.1:80 weight=01") == "eps.txt:1: invalid weight \"01\"" + range);
    CHECK(bad("10.0.0.1:80 weight=1.5") == "eps.txt:1: invalid weight \"1.5\"" + range);
    CHECK(bad("10.0.0.1:80 weight=0x10") == "eps.txt:1: invalid weight \"0x10\"" + range);
    CHECK(bad("10.0.0.1:80 weight=two") == "eps.txt:1: invalid weight \"two\"" + range);
    CHECK(bad("10.0.0.1:80 weight=1=2") == "eps.txt:1: invalid weight \"1=2\"" + range);
    // Far beyond 64 bits: refused, not wrapped around.
    CHECK(bad("10.0.0.1:80 weight=18446744073709551617") ==
          "eps.txt:1: invalid weight \"18446744073709551617\"" + range);
    CHECK(bad("10.0.0.1:80 weight=1 weight=2") == "eps.txt:1: weight given twice");
    CHECK(bad("10.0.0.1:80 weight = 2") ==
          "eps.txt:1: unknown option \"weight\" (expected weight=N or max_connections=N)");
}

TEST_CASE("endpoints file: max_connections", "[endpoints_file]") {
    CHECK(good("10.0.0.1:80")[0].max_connections == std::nullopt);
    CHECK(good("10.0.0.1:80 max_connections=1")[0].max_connections == 1u);
    CHECK(good("10.0.0.1:80 max_connections=10000000")[0].max_connections == 10'000'000u);
    const std::string range = ": expected an integer from 1 to 10000000";
    CHECK(bad("10.0.0.1:80 max_connections=0") == "eps.txt:1: invalid max_connections \"0\"" + range);
    CHECK(bad("10.0.0.1:80 max_connections=10000001") ==
          "eps.txt:1: invalid max_connections \"10000001\"" + range);
    CHECK(bad("10.0.0.1:80 max_connections=many") ==
          "eps.txt:1: invalid max_connections \"many\"" + range);
    CHECK(bad("10.0.0.1:80 max_connections=") == "eps.txt:1: invalid max_connections \"\"" + range);
    CHECK(bad("10.0.0.1:80 max_connections=5 max_connections=5") ==
          "eps.txt:1: max_connections given twice");
}

TEST_CASE("endpoints file: unknown options", "[endpoints_file]") {
    const std::string expected = " (expected weight=N or max_connections=N)";
    CHECK(bad("10.0.0.1:80 Weight=2") == "eps.txt:1: unknown option \"Weight=2\"" + expected);
    CHECK(bad("10.0.0.1:80 priority=1") == "eps.txt:1: unknown option \"priority=1\"" + expected);
    CHECK(bad("10.0.0.1:80 weight") == "eps.txt:1: unknown option \"weight\"" + expected);
    CHECK(bad("10.0.0.1:80 =2") == "eps.txt:1: unknown option \"=2\"" + expected);
    CHECK(bad("10.0.0.1:80 10.0.0.2:80") == "eps.txt:1: unknown option \"10.0.0.2:80\"" + expected);
    // User text is quoted with control characters escaped and cut after 100 bytes.
    CHECK(bad("10.0.0.1:80 x\x1b[31m") == "eps.txt:1: unknown option \"x\\x1b[31m\"" + expected);
    CHECK(bad("10.0.0.1:80 " + std::string(300, 'y')) ==
          "eps.txt:1: unknown option \"" + std::string(100, 'y') + "\"..." + expected);
}

TEST_CASE("endpoints file: a repeated address names the earlier line", "[endpoints_file]") {
    CHECK(bad("10.0.0.1:80\n# comment\n\n10.0.0.2:80\n10.0.0.1:80 weight=5\n") ==
          "eps.txt:5: duplicate endpoint 10.0.0.1:80 (first at line 1)");
    // IPv6 is compared as an address, whatever the spelling.
    CHECK(bad("[2001:db8::1]:443\n[2001:0db8:0:0::1]:443\n") ==
          "eps.txt:2: duplicate endpoint [2001:db8::1]:443 (first at line 1)");
    // The same host on another port, or an IPv4-mapped IPv6 address, is another endpoint.
    CHECK(good("10.0.0.1:80\n10.0.0.1:81\n[::ffff:10.0.0.1]:80\n").size() == 3);
}

TEST_CASE("endpoints file: line numbers count every line, and the first error wins",
          "[endpoints_file]") {
    CHECK(bad("# header\r\n\r\n10.0.0.1:80\r\n  \r\nbogus\r\n") ==
          "eps.txt:5: invalid address \"bogus\": expected \"a.b.c.d:port\" or \"[ipv6]:port\" with "
          "a port from 1 to 65535 (host names are not resolved)");
    CHECK(bad("10.0.0.1:80 weight=x\nbogus\n").rfind("eps.txt:1: invalid weight", 0) == 0);
    CHECK(parse_endpoints_file("bogus", "/etc/passgate/api.endpoints").error.rfind(
              "/etc/passgate/api.endpoints:1: invalid address", 0) == 0);
}

TEST_CASE("endpoints file: line length bound", "[endpoints_file]") {
    const std::string address = "10.0.0.1:80";
    // Padded with a trailing comment to exactly the bound, then one byte more.
    const std::string longest = address + " #" + std::string(4096 - address.size() - 2, 'c');
    REQUIRE(longest.size() == 4096);
    CHECK(good(longest + "\n").size() == 1);
    CHECK(good(longest + "\r\n").size() == 1);  // the line end does not count
    CHECK(good(longest).size() == 1);
    CHECK(bad("# ok\n" + longest + "c\n") == "eps.txt:2: line is longer than 4096 bytes");
    // Even a comment line is bounded: the bound is on the line, not on what it holds.
    CHECK(bad(std::string(5000, '#')) == "eps.txt:1: line is longer than 4096 bytes");
}

TEST_CASE("endpoints file: file size bound", "[endpoints_file]") {
    std::string text = "10.0.0.1:80\n";
    // Comment lines up to exactly 1 MiB.
    const std::string comment = "#" + std::string(1022, 'c') + "\n";  // 1024 bytes
    while (text.size() + comment.size() <= (1u << 20)) text += comment;
    text += std::string((1u << 20) - text.size() - 1, '#') + "\n";
    REQUIRE(text.size() == (1u << 20));
    CHECK(good(text).size() == 1);
    text += "\n";
    CHECK(bad(text) == "eps.txt:0: file is larger than 1048576 bytes (1048577 bytes)");
}

TEST_CASE("endpoints file: endpoint count bound", "[endpoints_file]") {
    const std::string full = "# generated\n" + many_endpoints(10'000);
    const auto endpoints = good(full);
    REQUIRE(endpoints.size() == 10'000);
    CHECK(endpoints.back() == endpoint("10.0.39.250:8443"));
    // Comments and blank lines after the last endpoint do not count.
    CHECK(good(full + "\n# end\n").size() == 10'000);
    CHECK(bad(full + "\n10.1.0.1:8443\n") == "eps.txt:10003: more than 10000 endpoints");
}
