#include "config/config.h"
#include "config/hostname.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace passgate::config;

TEST_CASE("hostname_matches: exact patterns", "[hostname]") {
    CHECK(hostname_matches("example.com", "example.com"));
    CHECK_FALSE(hostname_matches("example.com", "www.example.com"));
    CHECK_FALSE(hostname_matches("www.example.com", "example.com"));
    CHECK_FALSE(hostname_matches("example.com", "example.co"));
    CHECK_FALSE(hostname_matches("example.com", ""));
}

TEST_CASE("hostname_matches: wildcards match one or more labels", "[hostname]") {
    // The examples of config/README.md, "Routing".
    CHECK(hostname_matches("*.com", "other.example.com"));
    CHECK_FALSE(hostname_matches("*.example.com", "example.com"));

    CHECK(hostname_matches("*.example.com", "a.example.com"));
    CHECK(hostname_matches("*.example.com", "a.b.example.com"));
    CHECK(hostname_matches("*.example.com", "x-1.example.com"));
    CHECK_FALSE(hostname_matches("*.example.com", "aexample.com"));   // not at a label boundary
    CHECK_FALSE(hostname_matches("*.example.com", "a.example.org"));
    CHECK_FALSE(hostname_matches("*.example.com", ".example.com"));   // no label for the '*'
    CHECK_FALSE(hostname_matches("*.example.com", "a.example.com.evil"));
    CHECK_FALSE(hostname_matches("*.a.example.com", "b.example.com"));
    CHECK(hostname_matches("*.com", "example.com"));
    CHECK_FALSE(hostname_matches("*.com", "com"));
}

TEST_CASE("intersect_hostnames: the Gateway API table", "[hostname]") {
    struct Row {
        const char* listener;
        const char* route;
        const char* expected;  // nullptr: no intersection
    };
    const Row rows[] = {
        // Both exact.
        {"a.example.com", "a.example.com", "a.example.com"},
        {"a.example.com", "b.example.com", nullptr},
        // Listener wildcard, route exact.
        {"*.example.com", "foo.example.com", "foo.example.com"},
        {"*.example.com", "a.b.example.com", "a.b.example.com"},
        {"*.example.com", "example.com", nullptr},
        {"*.example.com", "foo.example.org", nullptr},
        // Listener exact, route wildcard.
        {"foo.example.com", "*.example.com", "foo.example.com"},
        {"foo.example.com", "*.com", "foo.example.com"},
        {"example.com", "*.example.com", nullptr},
        {"foo.example.org", "*.example.com", nullptr},
        // Both wildcards: the more specific one when the other covers it.
        {"*.example.com", "*.example.com", "*.example.com"},
        {"*.example.com", "*.a.example.com", "*.a.example.com"},
        {"*.a.example.com", "*.example.com", "*.a.example.com"},
        {"*.com", "*.example.com", "*.example.com"},
        {"*.example.com", "*.com", "*.example.com"},
        {"*.example.com", "*.example.org", nullptr},
        {"*.a.example.com", "*.b.example.com", nullptr},
        {"*.example.com", "*.xexample.com", nullptr},
        {"*.xexample.com", "*.example.com", nullptr},
    };
    for (const Row& row : rows) {
        INFO("listener " << row.listener << ", route " << row.route);
        const auto result = intersect_hostnames(row.listener, row.route);
        if (row.expected == nullptr) {
            CHECK_FALSE(result);
        } else {
            REQUIRE(result);
            CHECK(*result == row.expected);
        }
    }
}

TEST_CASE("effective_hostnames intersects, keeps order, drops repeats", "[hostname]") {
    using V = std::vector<std::string>;
    // No listener hostname: the route hostnames as they are.
    CHECK(effective_hostnames(std::nullopt, V{"b.example.com", "*.example.com"}) ==
          V{"b.example.com", "*.example.com"});
    // No route hostnames: the listener's, or every hostname (Gateway API).
    CHECK(effective_hostnames(std::nullopt, V{}) == V{"*"});
    CHECK(effective_hostnames(std::string("*.example.com"), V{}) == V{"*.example.com"});

    // Gateway API conformance "listener isolation with hostname intersection": a route with
    // bar.com, *.example.com, *.foo.example.com, abc.foo.example.com on each listener.
    const V route{"bar.com", "*.example.com", "*.foo.example.com", "abc.foo.example.com"};
    CHECK(effective_hostnames(std::nullopt, route) == route);
    CHECK(effective_hostnames(std::string("*.example.com"), route) ==
          V{"*.example.com", "*.foo.example.com", "abc.foo.example.com"});
    CHECK(effective_hostnames(std::string("*.foo.example.com"), route) ==
          V{"*.foo.example.com", "abc.foo.example.com"});
    CHECK(effective_hostnames(std::string("abc.foo.example.com"), route) ==
          V{"abc.foo.example.com"});
    CHECK(effective_hostnames(std::string("other.org"), route).empty());
}

TEST_CASE("ascii_lower lowercases ASCII only", "[hostname]") {
    CHECK(ascii_lower("Passthrough.EXAMPLE.com") == "passthrough.example.com");
    CHECK(ascii_lower("*.Example.COM") == "*.example.com");
    CHECK(ascii_lower("") == "");
    CHECK(ascii_lower("\xC3\x89.com") == "\xC3\x89.com");  // bytes >= 0x80 untouched
    CHECK(ascii_lower("AZ@[`{") == "az@[`{");
}

TEST_CASE("validate_hostname_pattern accepts valid patterns", "[hostname]") {
    const char* good[] = {
        "example.com",
        "passthrough.example.com",
        "a.b.c.d.e.example.com",
        "*.example.com",
        "*.com",
        "localhost",
        "xn--bcher-kva.example",
        "a-b.example.com",
        "1.example.com",
        "123abc.com",
        "example.c0m",
        "0x1f.example.com",  // a hex-number label is fine anywhere but last
        "api.0x1g",          // not a number
    };
    for (const char* pattern : good) {
        INFO(pattern);
        CHECK(validate_hostname_pattern(pattern).empty());
    }
    const std::string label63(63, 'a');
    CHECK(validate_hostname_pattern(label63 + ".com").empty());
    // 253 characters in all: 3 labels of 63 + 1 of 61, with 3 dots.
    const std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    REQUIRE(longest.size() == 253);
    CHECK(validate_hostname_pattern(longest).empty());
}

TEST_CASE("validate_hostname_pattern rejects invalid patterns with a reason", "[hostname]") {
    struct Row {
        std::string pattern;
        std::string reason;  // substring of the message
    };
    const std::string label63(63, 'a');
    const Row rows[] = {
        {"", "empty"},
        {"*", "\"*\" alone"},
        {"*.", "trailing dot"},
        {"**.example.com", "entire first label"},
        {"*example.com", "entire first label"},
        {"a*.example.com", "entire first label"},
        {"foo.*.example.com", "entire first label"},
        {"*.*.example.com", "entire first label"},
        {"example.*", "entire first label"},
        {"example.com.", "trailing dot"},
        {".example.com", "empty label"},
        {"a..example.com", "empty label"},
        {"Example.com", "uppercase"},
        {"exa_mple.com", "invalid character '_'"},
        {"exa mple.com", "invalid character ' '"},
        {"exa\tmple.com", "control character 0x09"},
        {"ex\xC3\xA4mple.com", "non-ASCII"},
        {"-example.com", "starts or ends with '-'"},
        {"example-.com", "starts or ends with '-'"},
        {"a." + std::string(64, 'b') + ".com", "longer than 63"},
        {label63 + "." + label63 + "." + label63 + "." + std::string(62, 'b'), "longer than 253"},
        {"127.0.0.1", "IP literals"},
        {"10.0.0", "IP literals"},
        {"1", "IP literals"},
        {"*.0.1", "IP literals"},
        // A last label "0x" + hex digits is a number to inet_aton and browsers ("0x1f" is 31).
        {"api.0x1f", "IP literals"},
        {"*.0x1f", "IP literals"},
        {"0.0.0.0x", "IP literals"},
        {"x.0x", "IP literals"},
        {"::1", "IP literals"},
        {"[::1]", "IP literals"},
        {"2001:db8::1", "IP literals"},
        {"example.com:443", "invalid character ':'"},
        {"[::1", "invalid character '['"},
        {"fe80::1%eth0", "invalid character ':'"},
    };
    for (const Row& row : rows) {
        INFO("pattern \"" << row.pattern << "\"");
        const std::string message = validate_hostname_pattern(row.pattern);
        CHECK_THAT(message, Catch::Matchers::Contains(row.reason));
    }
}
