#include "src/routing/route_explain.h"

#include "config/hostname.h"
#include "src/wire/client_hello.h"
#include "src/wire/client_hello_writer.h"
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

// The hello's records (the one writer, client_hello_writer.h): one cipher suite, null
// compression, the SNI and ALPN; records of 2^14 bytes when the ALPN list needs more than one.
std::vector<std::uint8_t> probe_hello(std::string_view sni, const std::vector<std::string>& alpn) {
    static constexpr std::uint16_t cipher_suites[] = {0x1301};  // TLS_AES_128_GCM_SHA256
    ClientHelloSpec spec;
    spec.cipher_suites = cipher_suites;
    spec.sni = sni;
    spec.alpn = alpn;
    return write_client_hello(spec);
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
// The matcher's ranked trace (ListenerRoutes::rank), in words. Nothing is decided here.

using Precedence = ListenerRoutes::Precedence;
using Candidate = ListenerRoutes::Candidate;

std::string describe(const Candidate& candidate) {
    switch (candidate.precedence.level) {
        case Precedence::Level::exact:
            return "exact hostname " + candidate.pattern;
        case Precedence::Level::wildcard:
            return "wildcard " + candidate.pattern + " with suffix length " +
                   std::to_string(candidate.precedence.suffix_length);
        case Precedence::Level::match_all:
            return "no hostnames: matches every SNI, least specific";
    }
    return "no match";
}

std::string offered_text(const std::vector<std::string>& alpn) {
    return alpn.empty() ? "offered none" : "offered " + join(alpn, true);
}

// Why `loser` is not `winner` (the chosen candidate; nullptr when the default_route was taken).
std::string why_lost(const Candidate& loser, const Candidate* winner,
                     const std::vector<std::string>& alpn) {
    const std::string winner_name = winner != nullptr ? route_name(*winner->route) : "";
    switch (loser.verdict) {
        case ListenerRoutes::Verdict::alpn_mismatch:
            return "ALPN mismatch: the route wants " + join(loser.route->alpn, true) +
                   ", the client " + offered_text(alpn);
        case ListenerRoutes::Verdict::less_specific:
            return "less specific than the " + describe(*winner) + " of " + winner_name;
        case ListenerRoutes::Verdict::alpn_preferred:
            return winner_name +
                   " at the same hostname lists a matching ALPN, which is preferred to no alpn list";
        case ListenerRoutes::Verdict::defined_later:
            if (!loser.route->origin.empty() || !winner->route->origin.empty())
                return "ranked after " + winner_name +
                       ": ties go to the first defined (TOML routes in file order, then TLSRoutes oldest "
                       "creationTimestamp first, then by namespace/name)";
            return "defined later (line " + std::to_string(loser.route->line) + ") than " +
                   winner_name + " (line " + std::to_string(winner->route->line) +
                   "); ties go to the first defined";
        case ListenerRoutes::Verdict::chosen:
            break;
    }
    return "not chosen";
}

void explain_backends(std::string& out, const config::Config& config, const config::Route& route) {
    std::uint64_t total = 0;
    for (const config::BackendRef& backend : route.backends) total += backend.weight;
    out += "  backends of " + route_name(route) + " (one picked per connection by weight):\n";
    for (const config::BackendRef& backend : route.backends) {
        if (!backend.invalid.empty()) {
            out += "    invalid backendRef weight " + std::to_string(backend.weight) + " (" +
                   percent(backend.weight, total) + "): " + backend.invalid + "; its share is rejected\n";
            continue;
        }
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

void explain_decision(std::string& out, const ListenerRoutes::Trace& trace, const Candidate* winner,
                      std::string_view sni) {
    const ListenerRoutes::Match& match = trace.match;
    const bool alpn_excluded_some =
        std::any_of(trace.ranked.begin(), trace.ranked.end(), [](const Candidate& candidate) {
            return candidate.verdict == ListenerRoutes::Verdict::alpn_mismatch;
        });
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
    if (match.via_default || winner == nullptr) {
        out += " via default_route: " +
               (sni.empty() ? std::string("the client sent no SNI") : nothing_matched) + "\n";
        return;
    }
    out += ": " + describe(*winner);
    if (!match.route->alpn.empty())
        out += "; its alpn list (" + join(match.route->alpn, true) + ") matches the client's";
    if (!match.route->origin.empty()) out += " (from " + match.route->origin + ")";
    out += "\n";
}

// The other candidates, in rank order: why each lost; then the attached routes whose hostnames
// do not match.
void explain_other_routes(std::string& out, const ListenerRoutes::Trace& trace,
                          const Candidate* winner, const std::vector<std::string>& alpn) {
    for (const Candidate& candidate : trace.ranked) {
        if (candidate.route == trace.match.route) continue;
        out += "  lost: " + route_name(*candidate.route) + " (" + describe(candidate) +
               "): " + why_lost(candidate, winner, alpn) + "\n";
    }
    std::string not_matching;
    for (const ListenerRoutes::Attached* attached : trace.not_matching) {
        if (attached->route == trace.match.route) continue;
        if (!not_matching.empty()) not_matching += ", ";
        std::string names = join(attached->effective_hostnames);
        // A file's names are counted, not listed (there may be a million).
        if (!attached->route->hostnames_file.empty())
            names.append(names.empty() ? "" : ", ")
                .append("hostnames_file " + attached->route->hostnames_file + " (" +
                        std::to_string(attached->file_hostnames) + " names here)");
        not_matching += "\"" + attached->route->name + "\" (" +
                        (names.empty() ? std::string("no hostname here: default_route only") : names) + ")";
    }
    if (!not_matching.empty()) out += "  hostnames do not match: " + not_matching + "\n";
}

// Returns the listener's verdict.
RouteOutcome explain_listener(std::string& out, const config::Config& config,
                              const config::Listener& listener, std::string_view sni,
                              const std::vector<std::string>& alpn, const HostnameFiles* files) {
    const ListenerRoutes table(config, listener, files);
    const ListenerRoutes::Trace trace = table.rank(sni, alpn);
    // The chosen candidate ranks first; with the default_route taken there is none.
    const Candidate* winner = !trace.ranked.empty() &&
                                      trace.ranked.front().verdict == ListenerRoutes::Verdict::chosen
                                  ? &trace.ranked.front()
                                  : nullptr;
    explain_decision(out, trace, winner, sni);
    if (!sni.empty()) explain_other_routes(out, trace, winner, alpn);

    // Routes that name this listener but do not attach to it (config --check warns about them).
    for (const config::Route* route : table.not_attached()) {
        const std::string file = route->hostnames_file.empty() ? "" : "hostnames_file " + route->hostnames_file;
        out += "  not attached: " + route_name(*route) + ": none of its hostnames (" +
               join(route->hostnames) + (route->hostnames.empty() || file.empty() ? "" : ", ") + file +
               ") intersects the listener hostname " +
               listener.hostname.value_or("") + "\n";
    }

    if (trace.match.route == nullptr)
        return trace.match.miss == ListenerRoutes::Miss::no_sni ? RouteOutcome::no_sni : RouteOutcome::no_route;
    explain_backends(out, config, *trace.match.route);
    return RouteOutcome::routed;
}

std::string listener_heading(const config::Listener& listener) {
    std::string out = "listener \"" + listener.name + "\" " + listener.address.to_string();
    if (listener.hostname) out += " hostname=" + *listener.hostname;
    if (listener.default_route) out += " default_route=" + *listener.default_route;
    if (!listener.origin.empty()) out += " (from " + listener.origin + ")";
    return out + "\n";
}

}  // namespace

std::string explain_route(const config::Config& config, std::string_view sni,
                          const std::vector<std::string>& alpn) {
    return judge_route(config, sni, alpn).text;
}

RouteExplanation judge_route(const config::Config& config, std::string_view sni, const std::vector<std::string>& alpn,
                             const std::string* only_listener, const HostnameFiles* files) {
    std::vector<const config::Listener*> listeners;
    for (const config::Listener& listener : config.listeners)
        if (only_listener == nullptr || listener.name == *only_listener) listeners.push_back(&listener);
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
        for (const config::Listener* listener : listeners) {
            out += listener_heading(*listener);
            out += "  => rejected (hello_rejected, " + std::string(reason) + ")\n";
        }
        return {std::move(out), RouteOutcome::rejected};
    }

    // No listener: nothing would take the hello.
    RouteOutcome outcome = listeners.empty() ? RouteOutcome::no_route : RouteOutcome::routed;
    if (listeners.empty()) out += "no listeners\n";
    for (const config::Listener* listener : listeners) {
        out += listener_heading(*listener);
        outcome = std::max(outcome, explain_listener(out, config, *listener, hello.hello.sni, hello.hello.alpn, files));
    }
    return {std::move(out), outcome};
}

}  // namespace passgate
