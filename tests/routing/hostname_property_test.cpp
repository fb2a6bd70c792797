// One hostname rule (config/hostname.h) seen from its three users at once: `--check` (the config
// parser), the data path's ClientHello parser, and route matching (ListenerRoutes and
// `passgate route`). Property, over many generated names with a fixed seed: every hostname the
// config accepts is an SNI the parser accepts and the route of that hostname matches it; every
// wildcard "*.x" the config accepts matches a name "label.x"; and a name the parser rejects is
// rejected by the config. Regression: "api.0x1f" was accepted by `--check` but refused as bad_sni.

#include "src/routing/route_explain.h"
#include "src/routing/routing.h"
#include "src/wire/client_hello.h"
#include "src/wire/client_hello_writer.h"

#include "config/hostname.h"
#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using passgate::ClientHelloSpec;
using passgate::HelloParse;
using passgate::config::Config;

// A name's fate in `--check`: the parsed config (route "r" with that one hostname on listener
// "l"), or nullopt when the config is refused.
std::optional<Config> check_config(const std::string& hostname) {
    try {
        return test_config::make_config(test_config::listener("l", 6443) +
                                            test_config::route("r", {"l"}, {hostname}),
                                        "hostname_property_test.toml");
    } catch (const passgate::config::ConfigError&) {
        return std::nullopt;
    }
}

// The SNI the data path routes on, or nullopt when the parser refuses the hello (bad_sni).
std::optional<std::string> parsed_sni(const std::string& name) {
    static constexpr std::uint16_t suites[] = {0x1301};
    ClientHelloSpec spec;
    spec.cipher_suites = suites;
    spec.sni = name;
    const std::vector<std::uint8_t> hello = passgate::write_client_hello(spec);
    const HelloParse parse = passgate::parse_client_hello(hello, hello.size());
    if (parse.status != HelloParse::Status::complete) {
        CHECK(parse.error == passgate::HelloError::bad_sni);
        return std::nullopt;
    }
    return parse.hello.sni;
}

// The "=> ..." decision line of `passgate route --sni NAME` on listener "l".
std::string explained_decision(const Config& config, const std::string& sni) {
    std::istringstream lines(passgate::explain_route(config, sni, {}));
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with("  => ")) return line.substr(5);
    return "<none>";
}

// Names built from labels of the kinds that sit at the edges of the rule.
class NameGenerator {
public:
    explicit NameGenerator(std::uint32_t seed) : random_(seed) {}

    std::string label() {
        switch (pick(10)) {
            case 0: return std::string(1, alnum());
            case 1: return text(pick(2) == 0 ? 63 : 64, "abcxyz0129-");
            case 2: return text(1 + pick(4), "0123456789");                // numeric
            case 3: return "0x" + text(pick(4), "0123456789abcdef");        // hex number
            case 4: return "0x" + text(1 + pick(3), "0123456789abcdefgx");  // hex-like
            case 5: return text(1 + pick(8), "abcdefghij-_0123456789");     // '-' and '_'
            case 6: return "-" + text(1 + pick(3), "abc");
            case 7: return text(1 + pick(3), "abc") + "-";
            case 8: return text(1 + pick(6), "aBcDeF09");                   // uppercase
            default: return text(2 + pick(10), "abcdefghijklmnopqrstuvwxyz0123456789-");
        }
    }

    // 1..4 labels, sometimes "*." first, sometimes padded with 63-byte labels to exactly 253
    // or 254 bytes.
    std::string name() {
        std::string out = pick(4) == 0 ? "*." : "";
        const std::size_t labels = 1 + pick(4);
        for (std::size_t i = 0; i < labels; ++i) out += (i == 0 ? "" : ".") + label();
        if (pick(6) == 0) pad_to(out, pick(2) == 0 ? 253 : 254);
        return out;
    }

    // A label for the '*' of a wildcard: any `route` label, so "label.x" is a name the config
    // would accept as well.
    std::string wildcard_label() {
        switch (pick(4)) {
            case 0: return "a";
            case 1: return text(1 + pick(5), "0123456789");
            case 2: return "0x1f";
            default: return text(1, "abc") + text(pick(10), "abc-0x1f") + text(1, "xyz9");
        }
    }

private:
    std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_); }
    char alnum() { return text(1, "abcdefghijklmnopqrstuvwxyz0123456789")[0]; }
    std::string text(std::size_t length, std::string_view alphabet) {
        std::string out;
        for (std::size_t i = 0; i < length; ++i) out += alphabet[pick(alphabet.size())];
        return out;
    }
    // Prepends labels ("a..a." of up to 63) until `name` is `total` bytes long.
    void pad_to(std::string& name, std::size_t total) {
        const bool wild = name.starts_with("*.");
        std::string body = wild ? name.substr(2) : name;
        const std::size_t prefix = wild ? 2 : 0;
        while (prefix + body.size() < total) {
            const std::size_t room = total - prefix - body.size();  // a label and its dot
            const std::size_t length = std::min<std::size_t>(63, room - 1);
            if (length == 0) {
                body = "b" + body;  // one byte short of a label and a dot: grow the first label
                continue;
            }
            body = text(length, "pqr") + "." + body;
        }
        name = (wild ? "*." : "") + body;
    }

    std::mt19937 random_;
};

struct Tally {
    int accepted = 0, rejected = 0, wildcards = 0, sni_only = 0;
};

// The property for one name.
void check_name(const std::string& name, NameGenerator& generator, Tally& tally) {
    CAPTURE(name);
    const std::optional<Config> config = check_config(name);
    const bool wild = name.starts_with("*.");
    const std::optional<std::string> sni = wild ? std::nullopt : parsed_sni(name);
    if (!config) {
        ++tally.rejected;
        if (sni) ++tally.sni_only;  // a client name no route can name: '_', "-a", ...
        return;
    }
    ++tally.accepted;
    const passgate::config::Listener& listener = config->listeners.at(0);
    const passgate::ListenerRoutes table(*config, listener);
    std::string host = passgate::config::ascii_lower(name);
    if (wild) {
        ++tally.wildcards;
        host = generator.wildcard_label() + host.substr(1);
        if (host.size() > 253) host = "a" + name.substr(1);
        host = passgate::config::ascii_lower(host);
        CAPTURE(host);
        REQUIRE(parsed_sni(host) == host);
        CHECK(explained_decision(*config, host).starts_with("route \"r\": wildcard " +
                                                             passgate::config::ascii_lower(name)));
    } else {
        // Accepted by --check, so the data path takes the same name (lowercased) ...
        REQUIRE(sni == host);
        CHECK(explained_decision(*config, name) == "route \"r\": exact hostname " + host);
    }
    // ... and routes it to the route that names it.
    const passgate::ListenerRoutes::Match match = table.match(host, {});
    REQUIRE(match.route != nullptr);
    CHECK(match.route->name == "r");
    CHECK_FALSE(match.via_default);
}

}  // namespace

TEST_CASE("hostname rule: names --check accepts are SNIs the parser accepts and routes match",
          "[hostname_property]") {
    NameGenerator generator(14);
    Tally tally;
    // The live bug and its neighbours first, then generated names.
    for (const std::string name :
         {"api.0x1f", "0.0.0.0x", "x.0x", "api.0x1g", "0x1f.example.com", "*.0x1f", "*.0x1f.io",
          "api.1f", "api.f1", "example.123", "127.1", "a", "_acme.example.com", "a-.example.com"}) {
        check_name(name, generator, tally);
    }
    for (int i = 0; i < 1500; ++i) check_name(generator.name(), generator, tally);
    // The generator reached every side of the rule.
    CHECK(tally.accepted > 300);
    CHECK(tally.rejected > 300);
    CHECK(tally.wildcards > 50);
    CHECK(tally.sni_only > 20);
}

TEST_CASE("hostname rule: the regression, api.0x1f", "[hostname_property]") {
    // The last label "0x1f" is the number 31 to inet_aton and a browser: not a hostname.
    CHECK_FALSE(check_config("api.0x1f"));
    CHECK_FALSE(parsed_sni("api.0x1f"));
    CHECK(passgate::config::validate_hostname_pattern("api.0x1f") == "IP literals are not hostnames");
    // Elsewhere than last, such a label is an ordinary one.
    CHECK(check_config("0x1f.example.com"));
    CHECK(parsed_sni("0x1f.example.com") == "0x1f.example.com");
}
