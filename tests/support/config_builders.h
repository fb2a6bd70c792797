#pragma once
// TOML snippets for routing tests: listeners and routes to service "s", built from lists.

#include "config/config.h"

#include <string>
#include <vector>

namespace test_config {

using Strings = std::vector<std::string>;

inline std::string toml_list(const Strings& items) {
    std::string out = "[";
    for (const auto& item : items) {
        if (out.size() > 1) out += ", ";
        out += "\"" + item + "\"";
    }
    return out + "]";
}

// One [[route]] to service "s", or to the given backends (TOML inline tables).
inline std::string route(const std::string& name, const Strings& listeners,
                         const Strings& hostnames, const Strings& alpn = {},
                         const std::string& backends = "[{ service = \"s\" }]") {
    std::string out =
        "[[route]]\nname = \"" + name + "\"\nlisteners = " + toml_list(listeners) + "\n";
    if (!hostnames.empty()) out += "hostnames = " + toml_list(hostnames) + "\n";
    if (!alpn.empty()) out += "alpn = " + toml_list(alpn) + "\n";
    return out + "backends = " + backends + "\n";
}

inline std::string listener(const std::string& name, int port, const std::string& hostname = "",
                            const std::string& default_route = "") {
    std::string out = "[[listener]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:" +
                      std::to_string(port) + "\"\n";
    if (!hostname.empty()) out += "hostname = \"" + hostname + "\"\n";
    if (!default_route.empty()) out += "default_route = \"" + default_route + "\"\n";
    return out;
}

// Parses `body` plus the service "s" that the routes above point to.
inline passgate::config::Config make_config(const std::string& body, const std::string& source) {
    return passgate::config::parse_config(
        body + "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n", source);
}

}  // namespace test_config
