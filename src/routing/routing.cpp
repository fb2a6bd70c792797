#include "src/routing/routing.h"

#include "config/hostname.h"
#include "config/quote.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

namespace passgate {

namespace {

bool offers_any(const config::Route& route, std::span<const std::string> offered) {
    for (const std::string& protocol : offered) {
        for (const std::string& wanted : route.alpn) {
            if (protocol == wanted) return true;
        }
    }
    return false;
}

// Adds `pattern` (an effective hostname) for `route` to the table of its kind.
void add_pattern(std::string_view pattern, HostTable::RouteId route, HostTable& exact, HostTable& wildcard,
                 std::vector<HostTable::RouteId>& match_all) {
    if (pattern == config::match_all_hostnames) match_all.push_back(route);
    else if (config::is_wildcard_hostname(pattern)) wildcard.add(pattern.substr(1), route);  // ".suffix"
    else exact.add(pattern, route);
}

}  // namespace

ListenerRoutes::ListenerRoutes(const config::Config& config, const config::Listener& listener,
                               const HostnameFiles* files)
    : routes_(config.routes.data()) {
    if (listener.default_route) default_route_ = config.find_route(*listener.default_route);
    // Which routes' claims came (also) from a hostnames_file, for the shadowing report.
    std::vector<bool> from_file(config.routes.size(), false);
    for (std::size_t order = 0; order < config.routes.size(); ++order) {
        const config::Route& route = config.routes[order];
        if (std::find(route.listeners.begin(), route.listeners.end(), listener.name) ==
            route.listeners.end()) {
            continue;
        }
        const auto id = static_cast<RouteId>(order);
        Attached attached{&route, config::attached_hostnames(listener, route), 0};
        const HostnameList* names =
            files != nullptr && order < files->size() ? (*files)[order].get() : nullptr;
        if (!route.hostnames_file.empty() && names != nullptr) {
            from_file[order] = true;
            for (std::size_t i = 0; i < names->size(); ++i) {
                const std::string_view name = (*names)[i];
                if (!listener.hostname) {
                    add_pattern(name, id, exact_, wildcard_, match_all_);
                    ++attached.file_hostnames;
                } else if (const auto effective = config::intersect_hostnames(*listener.hostname, name)) {
                    add_pattern(*effective, id, exact_, wildcard_, match_all_);
                    ++attached.file_hostnames;
                }
            }
        }
        if (attached.effective_hostnames.empty() && attached.file_hostnames == 0 && &route != default_route_) {
            not_attached_.push_back(&route);
            continue;
        }
        for (const std::string& pattern : attached.effective_hostnames)
            add_pattern(pattern, id, exact_, wildcard_, match_all_);
        attached_.push_back(std::move(attached));
    }
    exact_.build([&](const HostTable::Shared& shared) { note_shared(config, listener, shared, false, from_file); });
    wildcard_.build([&](const HostTable::Shared& shared) { note_shared(config, listener, shared, true, from_file); });
}

// Like config/warnings.cpp: the first route without an alpn list that claims the name wins it
// for good; each later one without a list is shadowed. Reported only when a file is involved.
void ListenerRoutes::note_shared(const config::Config& config, const config::Listener& listener,
                                 const HostTable::Shared& shared, bool wildcard,
                                 const std::vector<bool>& from_file) {
    const config::Route* first = nullptr;
    for (const RouteId id : shared.routes) {
        const config::Route& route = routes_[id];
        if (!route.alpn.empty()) continue;
        if (first == nullptr) {
            first = &route;
            continue;
        }
        if (!from_file[id] && !from_file[static_cast<std::size_t>(first - routes_)]) continue;
        if (++shadowed_count_ > kMaxShadowedReported) continue;
        const std::string hostname = std::string(wildcard ? "*" : "").append(shared.key);
        const std::string where = !route.origin.empty() ? route.origin : config.source + ":" + std::to_string(route.line);
        shadowed_.push_back(where + ": route " + config::quote(route.name) + " hostname " + config::quote(hostname) +
                            " on listener " + config::quote(listener.name) + " is shadowed by route " +
                            config::quote(first->name) + " (defined first, same hostname); it never matches there");
    }
}

bool ListenerRoutes::more_specific(const Precedence& a, const Precedence& b) {
    if (a.level != b.level) return a.level > b.level;
    return a.suffix_length > b.suffix_length;
}

bool ListenerRoutes::outranks(const Precedence& a, const Precedence& b) {
    if (more_specific(a, b) || more_specific(b, a)) return more_specific(a, b);
    if (a.alpn_listed != b.alpn_listed) return a.alpn_listed;
    return a.order < b.order;
}

const config::Route* ListenerRoutes::pick(std::span<const RouteId> candidates, Precedence level,
                                          std::span<const std::string> alpn) const {
    // Candidates share one hostname key, so one level: only the ALPN standing and the order
    // tell them apart. A route whose alpn list does not match is not eligible.
    const config::Route* best = nullptr;
    Precedence best_precedence;
    for (const RouteId id : candidates) {
        const config::Route& route = routes_[id];
        if (!route.alpn.empty() && !offers_any(route, alpn)) continue;
        Precedence precedence = level;
        precedence.alpn_listed = !route.alpn.empty();
        precedence.order = id;
        if (best == nullptr || outranks(precedence, best_precedence)) {
            best = &route;
            best_precedence = precedence;
        }
        // A matching alpn list outranks every candidate defined after it: stop here.
        if (best_precedence.alpn_listed) break;
    }
    return best;
}

ListenerRoutes::Match ListenerRoutes::fallback(Miss miss) const {
    if (default_route_ != nullptr) return Match{default_route_, Miss::none, true};
    return Match{nullptr, miss, false};
}

ListenerRoutes::Match ListenerRoutes::match(std::string_view sni,
                                            std::span<const std::string> alpn) const {
    if (sni.empty()) return fallback(Miss::no_sni);

    // The levels are visited most specific first (the first criterion of outranks()); the
    // first level with an eligible route decides. One right-to-left pass hashes the SNI and
    // each of its dot-suffixes.
    const HostSuffixes suffixes(sni);
    // 1. Exact hostnames.
    if (const auto candidates = exact_.may_hold_dots(suffixes.size()) ? exact_.find(sni, suffixes.whole_hash())
                                                                      : std::span<const RouteId>();
        !candidates.empty()) {
        const Precedence exact{Precedence::Level::exact, 0, false, 0};
        if (const config::Route* route = pick(candidates, exact, alpn)) return Match{route, Miss::none, false};
    }

    // 2. Wildcards, longest suffix first: at most one probe per label.
    if (!wildcard_.empty()) {
        for (std::size_t i = 0; i < suffixes.size(); ++i) {
            if (!wildcard_.may_hold_dots(suffixes.dots(i))) continue;
            const std::string_view suffix = suffixes.suffix(i);
            const auto candidates = wildcard_.find(suffix, suffixes.hash(i));
            if (candidates.empty()) continue;
            const Precedence wildcard{Precedence::Level::wildcard, suffix.size(), false, 0};
            if (const config::Route* route = pick(candidates, wildcard, alpn)) return Match{route, Miss::none, false};
        }
    }

    // 3. Routes without hostnames: every SNI, least specific of all.
    if (!match_all_.empty()) {
        const Precedence match_all{Precedence::Level::match_all, 0, false, 0};
        if (const config::Route* route = pick(match_all_, match_all, alpn)) return Match{route, Miss::none, false};
    }

    return fallback(Miss::no_route);
}

namespace {

// Why `loser` ranks below `winner` (both eligible, `winner` first by outranks()).
ListenerRoutes::Verdict why_below(const ListenerRoutes::Precedence& loser,
                                  const ListenerRoutes::Precedence& winner) {
    if (ListenerRoutes::more_specific(winner, loser)) return ListenerRoutes::Verdict::less_specific;
    if (winner.alpn_listed && !loser.alpn_listed) return ListenerRoutes::Verdict::alpn_preferred;
    return ListenerRoutes::Verdict::defined_later;
}

}  // namespace

ListenerRoutes::Trace ListenerRoutes::rank(std::string_view sni,
                                           std::span<const std::string> alpn) const {
    Trace trace;
    trace.match = match(sni, alpn);
    if (sni.empty()) return trace;
    // Each attached route's most specific level that matches the SNI, read from the tables (the
    // same ones match() uses, file names included): exact, then wildcard suffixes longest first,
    // then "no hostnames".
    std::vector<std::optional<std::pair<Precedence, std::string>>> best(attached_.size());
    auto note = [&](std::span<const RouteId> routes, Precedence level, std::string_view pattern) {
        for (const RouteId id : routes) {
            const auto it = std::find_if(attached_.begin(), attached_.end(),
                                         [&](const Attached& a) { return a.route == &routes_[id]; });
            auto& slot = best[static_cast<std::size_t>(it - attached_.begin())];
            if (!slot) slot.emplace(level, std::string(pattern));
        }
    };
    const HostSuffixes suffixes(sni);
    note(exact_.find(sni, suffixes.whole_hash()), Precedence{Precedence::Level::exact, 0, false, 0}, sni);
    for (std::size_t i = 0; i < suffixes.size(); ++i) {
        const std::string_view suffix = suffixes.suffix(i);
        note(wildcard_.find(suffix, suffixes.hash(i)), Precedence{Precedence::Level::wildcard, suffix.size(), false, 0},
             std::string("*").append(suffix));
    }
    note(match_all_, Precedence{Precedence::Level::match_all, 0, false, 0}, config::match_all_hostnames);
    std::vector<Candidate> excluded;
    for (std::size_t index = 0; index < attached_.size(); ++index) {
        const Attached& attached = attached_[index];
        auto& level = best[index];
        if (!level) {
            trace.not_matching.push_back(&attached);
            continue;
        }
        Candidate candidate{attached.route, level->first, std::move(level->second), Verdict::chosen};
        candidate.precedence.alpn_listed = !attached.route->alpn.empty();
        candidate.precedence.order = index;  // attached_ is in definition order
        if (candidate.precedence.alpn_listed && !offers_any(*attached.route, alpn)) {
            candidate.verdict = Verdict::alpn_mismatch;
            excluded.push_back(std::move(candidate));
        } else {
            trace.ranked.push_back(std::move(candidate));
        }
    }
    std::stable_sort(trace.ranked.begin(), trace.ranked.end(),
                     [](const Candidate& a, const Candidate& b) {
                         return outranks(a.precedence, b.precedence);
                     });
    // The first eligible candidate is match()'s route (tests hold the two to that); the others
    // rank below it.
    for (std::size_t i = 1; i < trace.ranked.size(); ++i) {
        trace.ranked[i].verdict = why_below(trace.ranked[i].precedence, trace.ranked[0].precedence);
    }
    trace.ranked.insert(trace.ranked.end(), std::make_move_iterator(excluded.begin()),
                        std::make_move_iterator(excluded.end()));
    return trace;
}

}  // namespace passgate
