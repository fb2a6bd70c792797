#include "src/routing/routing.h"

#include "config/hostname.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

namespace passgate {

namespace {

// ".example.com" for "*.example.com".
std::string_view suffix_of(std::string_view wildcard) { return wildcard.substr(1); }

bool offers_any(const config::Route& route, std::span<const std::string> offered) {
    for (const std::string& protocol : offered) {
        for (const std::string& wanted : route.alpn) {
            if (protocol == wanted) return true;
        }
    }
    return false;
}

}  // namespace

// exact_: by (pattern, order). Heterogeneous so that lookups take a string_view, no allocation.
struct ListenerRoutes::ExactOrder {
    bool operator()(const Entry& a, const Entry& b) const {
        if (a.pattern != b.pattern) return a.pattern < b.pattern;
        return a.order < b.order;
    }
    bool operator()(const Entry& a, std::string_view host) const { return a.pattern < host; }
    bool operator()(std::string_view host, const Entry& b) const { return host < b.pattern; }
};

// wildcard_: by suffix length descending (most specific first), then suffix, then order. The
// lookup key is a suffix of the SNI starting at a dot (".example.com").
struct ListenerRoutes::WildcardOrder {
    static bool less(std::string_view a, std::string_view b) {
        if (a.size() != b.size()) return a.size() > b.size();
        return a < b;
    }
    bool operator()(const Entry& a, const Entry& b) const {
        const auto sa = suffix_of(a.pattern);
        const auto sb = suffix_of(b.pattern);
        if (sa != sb) return less(sa, sb);
        return a.order < b.order;
    }
    bool operator()(const Entry& a, std::string_view suffix) const {
        return less(suffix_of(a.pattern), suffix);
    }
    bool operator()(std::string_view suffix, const Entry& b) const {
        return less(suffix, suffix_of(b.pattern));
    }
};

ListenerRoutes::ListenerRoutes(const config::Config& config, const config::Listener& listener) {
    if (listener.default_route) default_route_ = config.find_route(*listener.default_route);
    for (std::size_t order = 0; order < config.routes.size(); ++order) {
        const config::Route& route = config.routes[order];
        if (std::find(route.listeners.begin(), route.listeners.end(), listener.name) ==
            route.listeners.end()) {
            continue;
        }
        std::vector<std::string> effective = config::attached_hostnames(listener, route);
        if (effective.empty() && &route != default_route_) {
            not_attached_.push_back(&route);
            continue;
        }
        for (const std::string& pattern : effective) {
            std::vector<Entry>& entries = pattern == config::match_all_hostnames ? match_all_
                                          : config::is_wildcard_hostname(pattern)                ? wildcard_
                                                                                : exact_;
            entries.push_back(Entry{pattern, &route, order});
        }
        attached_.push_back(Attached{&route, std::move(effective)});
    }
    std::sort(exact_.begin(), exact_.end(), ExactOrder{});
    std::sort(wildcard_.begin(), wildcard_.end(), WildcardOrder{});
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

const config::Route* ListenerRoutes::pick(const Entry* first, const Entry* last, Precedence level,
                                          std::span<const std::string> alpn) {
    // Entries share one hostname pattern, so one level: only the ALPN standing and the order
    // tell them apart. A route whose alpn list does not match is not eligible.
    const config::Route* best = nullptr;
    Precedence best_precedence;
    for (const Entry* entry = first; entry != last; ++entry) {
        const config::Route& route = *entry->route;
        if (!route.alpn.empty() && !offers_any(route, alpn)) continue;
        Precedence precedence = level;
        precedence.alpn_listed = !route.alpn.empty();
        precedence.order = entry->order;
        if (best == nullptr || outranks(precedence, best_precedence)) {
            best = &route;
            best_precedence = precedence;
        }
        // A matching alpn list outranks every entry defined after it: stop here, as the data
        // path did before the ordering was shared.
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
    // first level with an eligible route decides.
    // 1. Exact hostnames.
    {
        const auto [first, last] = std::equal_range(exact_.begin(), exact_.end(), sni, ExactOrder{});
        if (first != last) {
            const Precedence exact{Precedence::Level::exact, 0, false, 0};
            if (const config::Route* route = pick(&*first, &*first + (last - first), exact, alpn)) {
                return Match{route, Miss::none, false};
            }
        }
    }

    // 2. Wildcards, longest suffix first: the suffixes of the SNI that start at a dot, left to
    //    right. A dot at position 0 would leave no label for the "*" and is skipped.
    if (!wildcard_.empty()) {
        for (std::size_t dot = sni.find('.', 1); dot != std::string_view::npos;
             dot = sni.find('.', dot + 1)) {
            const std::string_view suffix = sni.substr(dot);
            const auto [first, last] =
                std::equal_range(wildcard_.begin(), wildcard_.end(), suffix, WildcardOrder{});
            if (first == last) continue;
            const Precedence wildcard{Precedence::Level::wildcard, suffix.size(), false, 0};
            if (const config::Route* route = pick(&*first, &*first + (last - first), wildcard, alpn)) {
                return Match{route, Miss::none, false};
            }
        }
    }

    // 3. Routes without hostnames: every SNI, least specific of all.
    if (!match_all_.empty()) {
        const Precedence match_all{Precedence::Level::match_all, 0, false, 0};
        if (const config::Route* route =
                pick(match_all_.data(), match_all_.data() + match_all_.size(), match_all, alpn)) {
            return Match{route, Miss::none, false};
        }
    }

    return fallback(Miss::no_route);
}

namespace {

// The most specific of `effective_hostnames` that matches `sni`, as a Precedence level and the
// pattern; nullopt when none does.
std::optional<std::pair<ListenerRoutes::Precedence, std::string>> best_level(
    const std::vector<std::string>& effective_hostnames, std::string_view sni) {
    using Precedence = ListenerRoutes::Precedence;
    std::optional<std::pair<Precedence, std::string>> best;
    for (const std::string& pattern : effective_hostnames) {
        Precedence level;
        if (pattern == config::match_all_hostnames) {
            level.level = Precedence::Level::match_all;
        } else if (!config::hostname_matches(pattern, sni)) {
            continue;
        } else if (config::is_wildcard_hostname(pattern)) {
            level.level = Precedence::Level::wildcard;
            level.suffix_length = pattern.size() - 1;
        } else {
            level.level = Precedence::Level::exact;
        }
        if (!best || ListenerRoutes::more_specific(level, best->first)) best.emplace(level, pattern);
    }
    return best;
}

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
    std::vector<Candidate> excluded;
    for (std::size_t index = 0; index < attached_.size(); ++index) {
        const Attached& attached = attached_[index];
        auto level = best_level(attached.effective_hostnames, sni);
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
