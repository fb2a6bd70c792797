#include "src/routing/route_explain.h"

#include "config/hostname.h"
#include "src/wire/client_hello.h"
#include "src/routing/routing.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace passgate {

namespace {

// ---------------------------------------------------------------------------------------------
// The hello, judged by the data path's own parser: rather than restate its SNI rules here
// (lowercasing, one trailing dot, labels, IP literals) and risk drifting from them, build the
// smallest ClientHello that carries the SNI and ALPN and parse it.

// Beyond these the values cannot be encoded in a hello, or are rejected whatever they hold
// (the parser accepts at most 253 bytes of SNI, and an ALPN name is at most 255 bytes).
constexpr std::size_t max_probe_sni = 1024;
constexpr std::size_t max_probe_alpn_list = 32 * 1024;
constexpr std::size_t max_record_payload = 16384;

void put_u8(std::vector<std::uint8_t>& out, std::size_t value) {
    out.push_back(static_cast<std::uint8_t>(value));
}
void put_u16(std::vector<std::uint8_t>& out, std::size_t value) {
    put_u8(out, value >> 8);
    put_u8(out, value & 0xff);
}
void put_bytes(std::vector<std::uint8_t>& out, std::string_view bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

std::vector<std::uint8_t> probe_extensions(std::string_view sni,
                                           const std::vector<std::string>& alpn) {
    std::vector<std::uint8_t> extensions;
    if (!sni.empty()) {
        put_u16(extensions, 0);  // server_name
        put_u16(extensions, 2 + 1 + 2 + sni.size());
        put_u16(extensions, 1 + 2 + sni.size());  // server_name_list
        put_u8(extensions, 0);                    // host_name
        put_u16(extensions, sni.size());
        put_bytes(extensions, sni);
    }
    if (!alpn.empty()) {
        std::size_t list = 0;
        for (const std::string& protocol : alpn) list += 1 + protocol.size();
        put_u16(extensions, 16);  // application_layer_protocol_negotiation
        put_u16(extensions, 2 + list);
        put_u16(extensions, list);
        for (const std::string& protocol : alpn) {
            put_u8(extensions, protocol.size());
            put_bytes(extensions, protocol);
        }
    }
    return extensions;
}

// The hello's records: TLS 1.2 body, one cipher suite, null compression, the extensions above.
std::vector<std::uint8_t> probe_hello(std::string_view sni, const std::vector<std::string>& alpn) {
    std::vector<std::uint8_t> body;
    put_u16(body, 0x0303);
    body.resize(body.size() + 32, 0);  // random
    put_u8(body, 0);                   // legacy_session_id
    put_u16(body, 2);
    put_u16(body, 0x1301);  // TLS_AES_128_GCM_SHA256
    put_u8(body, 1);
    put_u8(body, 0);  // null compression
    const std::vector<std::uint8_t> extensions = probe_extensions(sni, alpn);
    if (!extensions.empty()) {
        put_u16(body, extensions.size());
        body.insert(body.end(), extensions.begin(), extensions.end());
    }
    std::vector<std::uint8_t> message;
    put_u8(message, 1);  // client_hello
    put_u8(message, body.size() >> 16);
    put_u16(message, body.size() & 0xffff);
    message.insert(message.end(), body.begin(), body.end());

    std::vector<std::uint8_t> records;
    for (std::size_t at = 0; at < message.size(); at += max_record_payload) {
        const std::size_t length = std::min(max_record_payload, message.size() - at);
        put_u8(records, 22);  // handshake
        put_u16(records, 0x0301);
        put_u16(records, length);
        records.insert(records.end(), message.begin() + static_cast<std::ptrdiff_t>(at),
                       message.begin() + static_cast<std::ptrdiff_t>(at + length));
    }
    return records;
}

// What the data path would make of the hello: the SNI and ALPN it routes on, or its rejection.
HelloParse judge_hello(std::string_view sni, const std::vector<std::string>& alpn) {
    HelloParse rejected;
    rejected.status = HelloParse::Status::rejected;
    if (sni.size() > max_probe_sni) {
        rejected.error = HelloError::bad_sni;
        return rejected;
    }
    std::size_t alpn_list = 0;
    for (const std::string& protocol : alpn) {
        if (protocol.size() > 255) {
            rejected.error = HelloError::bad_alpn;
            return rejected;
        }
        alpn_list += 1 + protocol.size();
    }
    if (alpn_list > max_probe_alpn_list) {
        rejected.error = HelloError::bad_alpn;
        return rejected;
    }
    const std::vector<std::uint8_t> hello = probe_hello(sni, alpn);
    return parse_client_hello(hello, hello.size());
}

// ---------------------------------------------------------------------------------------------
// Text helpers.

// Client-supplied text shown between quotes, with anything unprintable as \xHH.
std::string quoted(std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f && c != '"' && c != '\\') {
            out += c;
        } else {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 0xf];
        }
    }
    return out + "\"";
}

std::string join(const std::vector<std::string>& items, bool quote = false) {
    std::string out;
    for (const std::string& item : items) {
        if (!out.empty()) out += ", ";
        out += quote ? quoted(item) : item;
    }
    return out;
}

std::string route_name(const config::Route& route) { return "route \"" + route.name + "\""; }

std::string percent(std::uint64_t part, std::uint64_t total) {
    char text[32];
    std::snprintf(
        text, sizeof text, "%.1f",
        total == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(total));
    std::string out = text;
    if (out.size() > 2 && out.ends_with(".0")) out.resize(out.size() - 2);
    return out + "%";
}

// ---------------------------------------------------------------------------------------------
// How specifically a route's effective hostnames match the SNI, ordered as routing.h orders the
// levels: exact, then wildcards by suffix length, then "no hostnames".

struct Specificity {
    enum class Kind { none, match_all, wildcard, exact };
    Kind kind = Kind::none;
    std::size_t suffix_length = 0;  // wildcard: length of ".suffix"
    std::string pattern;
};

bool more_specific(const Specificity& a, const Specificity& b) {
    if (a.kind != b.kind) return a.kind > b.kind;
    return a.suffix_length > b.suffix_length;
}

Specificity best_match(const std::vector<std::string>& effective_hostnames, std::string_view sni) {
    Specificity best;
    for (const std::string& pattern : effective_hostnames) {
        Specificity candidate;
        if (pattern == config::match_all_hostnames) {
            candidate.kind = Specificity::Kind::match_all;
        } else if (!config::hostname_matches(pattern, sni)) {
            continue;
        } else if (pattern.starts_with("*.")) {
            candidate.kind = Specificity::Kind::wildcard;
            candidate.suffix_length = pattern.size() - 1;
        } else {
            candidate.kind = Specificity::Kind::exact;
        }
        candidate.pattern = pattern;
        if (more_specific(candidate, best)) best = std::move(candidate);
    }
    return best;
}

std::string describe(const Specificity& match) {
    switch (match.kind) {
        case Specificity::Kind::exact:
            return "exact hostname " + match.pattern;
        case Specificity::Kind::wildcard:
            return "wildcard " + match.pattern + " with suffix length " +
                   std::to_string(match.suffix_length);
        case Specificity::Kind::match_all:
            return "no hostnames: matches every SNI, least specific";
        case Specificity::Kind::none:
            break;
    }
    return "no match";
}

bool offers_any(const config::Route& route, const std::vector<std::string>& offered) {
    return std::any_of(offered.begin(), offered.end(), [&](const std::string& protocol) {
        return std::find(route.alpn.begin(), route.alpn.end(), protocol) != route.alpn.end();
    });
}

bool alpn_excludes(const config::Route& route, const std::vector<std::string>& offered) {
    return !route.alpn.empty() && !offers_any(route, offered);
}

// ---------------------------------------------------------------------------------------------
// One listener.

std::string offered_text(const std::vector<std::string>& alpn) {
    return alpn.empty() ? "offered none" : "offered " + join(alpn, true);
}

// Why `loser`, whose hostnames match at `level`, is not the route `winner` won at `won_at`.
// Mirrors ListenerRoutes: ALPN exclusion first, then level, then (same level) a matching alpn
// list before none, then definition order.
std::string why_lost(const config::Route& loser, const Specificity& level,
                     const config::Route* winner, const Specificity& won_at,
                     const std::vector<std::string>& alpn) {
    if (alpn_excludes(loser, alpn))
        return "ALPN mismatch: the route wants " + join(loser.alpn, true) + ", the client " +
               offered_text(alpn);
    if (winner == nullptr) return "not chosen";  // unreachable: an eligible match would have won
    if (more_specific(won_at, level))
        return "less specific than the " + describe(won_at) + " of " + route_name(*winner);
    if (!winner->alpn.empty() && loser.alpn.empty())
        return route_name(*winner) +
               " at the same hostname lists a matching ALPN, which is preferred to no alpn list";
    return "defined later (line " + std::to_string(loser.line) + ") than " + route_name(*winner) +
           " (line " + std::to_string(winner->line) + "); ties go to the first defined";
}

void explain_backends(std::string& out, const config::Config& config, const config::Route& route) {
    std::uint64_t total = 0;
    for (const config::BackendRef& backend : route.backends) total += backend.weight;
    out += "  backends of " + route_name(route) + " (one picked per connection by weight):\n";
    for (const config::BackendRef& backend : route.backends) {
        out += "    service \"" + backend.service + "\" weight " + std::to_string(backend.weight) +
               " (" + percent(backend.weight, total) + ")";
        const config::Service* service = config.find_service(backend.service);
        if (service == nullptr) {
            out += ": not defined, its share is rejected\n";
            continue;
        }
        if (service->discovery != config::Discovery::static_list) {
            out += ": endpoints from " + config::describe_discovery(*service) + " (found at run time)\n";
            continue;
        }
        std::vector<std::string> endpoints;
        bool any_usable = false;
        for (const config::Endpoint& endpoint : service->endpoints) {
            std::string text = endpoint.address.to_string();
            if (endpoint.weight == 0)
                text += " weight 0 (drained)";
            else if (endpoint.weight != 1)
                text += " weight " + std::to_string(endpoint.weight);
            any_usable = any_usable || endpoint.weight != 0;
            endpoints.push_back(std::move(text));
        }
        out += ": " + join(endpoints);
        if (!any_usable) out += "; every endpoint drained, its share is rejected";
        out += "\n";
    }
}

void explain_decision(std::string& out, const ListenerRoutes::Match& match,
                      const Specificity& won_at, std::string_view sni, bool alpn_excluded_some) {
    // Why nothing (but perhaps the default_route) took the hello.
    const std::string nothing_matched =
        alpn_excluded_some
            ? "every attached route whose hostnames match " + quoted(sni) + " excludes this ALPN"
            : "no attached route matches " + quoted(sni);
    out += "  => ";
    if (match.route == nullptr) {
        if (match.miss == ListenerRoutes::Miss::no_sni)
            out +=
                "rejected (no_sni): the client sent no SNI and the listener has no default_route\n";
        else
            out += "rejected (no_route): " + nothing_matched +
                   " and the listener has no default_route\n";
        return;
    }
    out += route_name(*match.route);
    if (match.via_default) {
        out += " via default_route: " +
               (sni.empty() ? std::string("the client sent no SNI") : nothing_matched) + "\n";
        return;
    }
    out += ": " + describe(won_at);
    if (!match.route->alpn.empty())
        out += "; its alpn list (" + join(match.route->alpn, true) + ") matches the client's";
    out += "\n";
}

// Attached routes other than the winner: those whose hostnames match the SNI lost (say why),
// the others simply do not match.
void explain_other_routes(std::string& out, const ListenerRoutes& table,
                          const ListenerRoutes::Match& match, const Specificity& won_at,
                          std::string_view sni, const std::vector<std::string>& alpn) {
    const config::Route* winner = match.via_default ? nullptr : match.route;
    std::string not_matching;
    for (const ListenerRoutes::Attached& attached : table.attached()) {
        const config::Route& route = *attached.route;
        if (&route == match.route) continue;
        const Specificity level = best_match(attached.effective_hostnames, sni);
        if (level.kind != Specificity::Kind::none) {
            out += "  lost: " + route_name(route) + " (" + describe(level) +
                   "): " + why_lost(route, level, winner, won_at, alpn) + "\n";
            continue;
        }
        if (!not_matching.empty()) not_matching += ", ";
        not_matching += "\"" + route.name + "\" (" +
                        (attached.effective_hostnames.empty()
                             ? std::string("no hostname here: default_route only")
                             : join(attached.effective_hostnames)) +
                        ")";
    }
    if (!not_matching.empty()) out += "  hostnames do not match: " + not_matching + "\n";
}

void explain_listener(std::string& out, const config::Config& config,
                      const config::Listener& listener, std::string_view sni,
                      const std::vector<std::string>& alpn) {
    const ListenerRoutes table(config, listener);
    const ListenerRoutes::Match match = table.match(sni, alpn);

    Specificity won_at;
    bool alpn_excluded_some = false;
    for (const ListenerRoutes::Attached& attached : table.attached()) {
        const Specificity level = best_match(attached.effective_hostnames, sni);
        if (attached.route == match.route && !match.via_default) won_at = level;
        if (level.kind != Specificity::Kind::none && alpn_excludes(*attached.route, alpn))
            alpn_excluded_some = true;
    }
    explain_decision(out, match, won_at, sni, alpn_excluded_some);
    if (!sni.empty()) explain_other_routes(out, table, match, won_at, sni, alpn);

    // Routes that name this listener but do not attach to it (config --check warns about them).
    for (const config::Route& route : config.routes) {
        if (std::find(route.listeners.begin(), route.listeners.end(), listener.name) ==
            route.listeners.end())
            continue;
        const bool attached =
            std::any_of(table.attached().begin(), table.attached().end(),
                        [&](const ListenerRoutes::Attached& a) { return a.route == &route; });
        if (attached) continue;
        out += "  not attached: " + route_name(route) + ": none of its hostnames (" +
               join(route.hostnames) + ") intersects the listener hostname " +
               listener.hostname.value_or("") + "\n";
    }

    if (match.route != nullptr) explain_backends(out, config, *match.route);
}

std::string listener_heading(const config::Listener& listener) {
    std::string out = "listener \"" + listener.name + "\" " + listener.address.to_string();
    if (listener.hostname) out += " hostname=" + *listener.hostname;
    if (listener.default_route) out += " default_route=" + *listener.default_route;
    return out + "\n";
}

}  // namespace

std::string explain_route(const config::Config& config, std::string_view sni,
                          const std::vector<std::string>& alpn) {
    std::string out;
    const HelloParse hello = judge_hello(sni, alpn);
    const bool rejected = hello.status != HelloParse::Status::complete;

    if (sni.empty()) {
        out += "SNI: none (no server_name extension)\n";
    } else if (rejected) {
        out += "SNI: " + quoted(sni) + "\n";
    } else if (hello.hello.sni != sni) {
        const bool dot = sni.ends_with('.');
        const bool lowered = config::ascii_lower(sni) != sni;
        out += "SNI: " + quoted(sni) + " -> " + hello.hello.sni + " (" +
               (lowered && dot ? "lowercased, trailing dot removed"
                : lowered      ? "lowercased"
                               : "trailing dot removed") +
               ", as the data path does)\n";
    } else {
        out += "SNI: " + hello.hello.sni + "\n";
    }
    out += "ALPN: " + (alpn.empty() ? std::string("none offered") : join(alpn, true)) + "\n";

    if (rejected) {
        const std::string_view reason = hello_error_name(hello.error);
        std::string why =
            hello.error == HelloError::bad_sni
                ? "the SNI is not a valid DNS hostname (IP literals are not hostnames)"
            : hello.error == HelloError::bad_alpn ? "an ALPN protocol name is empty or too long"
                                                  : "the hello is malformed";
        out += "rejected before routing on every listener: hello_error=" + std::string(reason) +
               ": " + why + "\n";
        for (const config::Listener& listener : config.listeners) {
            out += listener_heading(listener);
            out += "  => rejected (hello_rejected, " + std::string(reason) + ")\n";
        }
        return out;
    }

    if (config.listeners.empty()) out += "no listeners\n";
    for (const config::Listener& listener : config.listeners) {
        out += listener_heading(listener);
        explain_listener(out, config, listener, hello.hello.sni, hello.hello.alpn);
    }
    return out;
}

}  // namespace passgate
