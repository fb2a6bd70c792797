#include "src/wire/endpoints_file.h"

#include "config/address.h"
#include "config/quote.h"
#include "src/wire/text_lines.h"

#include <optional>
#include <unordered_map>

namespace passgate {

namespace {

using config::quote;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// The next field of `rest` (fields are separated by spaces and tabs), consumed from `rest`.
// Empty when only blanks are left.
std::string_view next_field(std::string_view& rest) {
    std::size_t start = 0;
    while (start < rest.size() && is_blank(rest[start])) ++start;
    std::size_t end = start;
    while (end < rest.size() && !is_blank(rest[end])) ++end;
    const std::string_view field = rest.substr(start, end - start);
    rest.remove_prefix(end);
    return field;
}

// Strict decimal from `min` to `max`: digits only, no sign, no leading zeros (so "weight=010" is
// not silently read as 10 by one tool and 8 by another).
std::optional<std::uint32_t> parse_number(std::string_view text, std::uint32_t min,
                                          std::uint32_t max) {
    if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
        if (value > max) return std::nullopt;  // also keeps `value` far from overflow
    }
    if (value < min) return std::nullopt;
    return static_cast<std::uint32_t>(value);
}

std::string range_text(std::uint32_t min, std::uint32_t max) {
    return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

// One option "NAME=VALUE" into `endpoint`. `seen_*` catch an option given twice.
// Returns the error message, empty when the option is good.
std::string parse_option(std::string_view field, DiscoveredEndpoint& endpoint, bool& seen_weight,
                         bool& seen_max_connections) {
    const std::size_t equals = field.find('=');
    const std::string_view name = field.substr(0, equals);
    const std::string_view value =
        equals == std::string_view::npos ? std::string_view() : field.substr(equals + 1);
    if (equals != std::string_view::npos && name == "weight") {
        if (seen_weight) return "weight given twice";
        seen_weight = true;
        const auto weight = parse_number(value, 0, kEndpointsFileMaxWeight);
        if (!weight) return "invalid weight " + quote(value) + ": " + range_text(0, kEndpointsFileMaxWeight);
        endpoint.weight = *weight;
        return {};
    }
    if (equals != std::string_view::npos && name == "max_connections") {
        if (seen_max_connections) return "max_connections given twice";
        seen_max_connections = true;
        const auto limit = parse_number(value, 1, kEndpointsFileMaxConnections);
        if (!limit) {
            return "invalid max_connections " + quote(value) + ": " +
                   range_text(1, kEndpointsFileMaxConnections);
        }
        endpoint.max_connections = *limit;
        return {};
    }
    return "unknown option " + quote(field) + " (expected weight=N or max_connections=N)";
}

// The fields of one line (comment and line end already removed; at least one field).
// Returns the error message, empty when the line is a good endpoint.
std::string parse_endpoint(std::string_view rest, DiscoveredEndpoint& endpoint) {
    const std::string_view address_text = next_field(rest);
    // Port 0 is parsed so that it gets its own message rather than "invalid address".
    const auto address = config::parse_address(address_text, /*allow_port_zero=*/true);
    if (!address) {
        return "invalid address " + quote(address_text) +
               ": expected \"a.b.c.d:port\" or \"[ipv6]:port\" with a port from 1 to 65535 "
               "(host names are not resolved)";
    }
    if (address->port() == 0) {
        return "invalid address " + quote(address_text) + ": port 0 cannot be connected to";
    }
    if (address->is_unspecified()) {
        return "invalid address " + quote(address_text) +
               ": the unspecified address (0.0.0.0 or ::) cannot be connected to";
    }
    endpoint.address = *address;
    bool seen_weight = false;
    bool seen_max_connections = false;
    for (std::string_view field = next_field(rest); !field.empty(); field = next_field(rest)) {
        std::string error = parse_option(field, endpoint, seen_weight, seen_max_connections);
        if (!error.empty()) return error;
    }
    return {};
}

EndpointsFileParse failure(std::string_view source_name, std::size_t line, std::string_view message) {
    EndpointsFileParse result;
    result.error = std::string(source_name) + ":" + std::to_string(line) + ": " + std::string(message);
    return result;
}

}  // namespace

EndpointsFileParse parse_endpoints_file(std::string_view text, std::string_view source_name) {
    if (text.size() > kEndpointsFileMaxBytes) {
        return failure(source_name, 0,
                       "file is larger than " + std::to_string(kEndpointsFileMaxBytes) +
                           " bytes (" + std::to_string(text.size()) + " bytes)");
    }
    EndpointsFileParse result;
    // Canonical address text -> its line, to find a repeat in O(1) and name the first line.
    std::unordered_map<std::string, std::size_t> lines_by_address;
    TextLines lines(text);
    for (std::string_view line; lines.next(line);) {
        const std::size_t line_number = lines.number();
        if (line.size() > kEndpointsFileMaxLineBytes) {
            return failure(source_name, line_number,
                           "line is longer than " + std::to_string(kEndpointsFileMaxLineBytes) +
                               " bytes");
        }
        line = line.substr(0, line.find('#'));
        std::string_view probe = line;
        if (next_field(probe).empty()) continue;  // blank or comment only

        if (result.endpoints.size() == kEndpointsFileMaxEndpoints) {
            return failure(source_name, line_number,
                           "more than " + std::to_string(kEndpointsFileMaxEndpoints) + " endpoints");
        }
        DiscoveredEndpoint endpoint;
        const std::string error = parse_endpoint(line, endpoint);
        if (!error.empty()) return failure(source_name, line_number, error);
        std::string key = endpoint.address.to_string();
        const auto [first, inserted] = lines_by_address.emplace(key, line_number);
        if (!inserted) {
            return failure(source_name, line_number,
                           "duplicate endpoint " + key + " (first at line " +
                               std::to_string(first->second) + ")");
        }
        result.endpoints.push_back(endpoint);
    }
    return result;
}

}  // namespace passgate
