#include "src/routing/routing.h"

#include "config/hostname.h"

#include <algorithm>

namespace passgate {

namespace {

bool is_wildcard(std::string_view pattern) {
    return pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.';
}

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
        if (effective.empty() && &route != default_route_) continue;  // not attached
        for (const std::string& pattern : effective) {
            std::vector<Entry>& entries = pattern == config::match_all_hostnames ? match_all_
                                          : is_wildcard(pattern)                ? wildcard_
                                                                                : exact_;
            entries.push_back(Entry{pattern, &route, order});
        }
        attached_.push_back(Attached{&route, std::move(effective)});
    }
    std::sort(exact_.begin(), exact_.end(), ExactOrder{});
    std::sort(wildcard_.begin(), wildcard_.end(), WildcardOrder{});
}

const config::Route* ListenerRoutes::pick(const Entry* first, const Entry* last,
                                          std::span<const std::string> alpn) {
    // Entries share one hostname pattern and are in definition order. A route whose alpn list
    // matches beats one without a list; a route whose list does not match is skipped.
    const config::Route* without_alpn = nullptr;
    for (const Entry* entry = first; entry != last; ++entry) {
        const config::Route& route = *entry->route;
        if (route.alpn.empty()) {
            if (without_alpn == nullptr) without_alpn = &route;
        } else if (offers_any(route, alpn)) {
            return &route;
        }
    }
    return without_alpn;
}

ListenerRoutes::Match ListenerRoutes::fallback(Miss miss) const {
    if (default_route_ != nullptr) return Match{default_route_, Miss::none, true};
    return Match{nullptr, miss, false};
}

ListenerRoutes::Match ListenerRoutes::match(std::string_view sni,
                                            std::span<const std::string> alpn) const {
    if (sni.empty()) return fallback(Miss::no_sni);

    // 1. Exact hostnames.
    {
        const auto [first, last] = std::equal_range(exact_.begin(), exact_.end(), sni, ExactOrder{});
        if (first != last) {
            if (const config::Route* route = pick(&*first, &*first + (last - first), alpn)) {
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
            if (const config::Route* route = pick(&*first, &*first + (last - first), alpn)) {
                return Match{route, Miss::none, false};
            }
        }
    }

    // 3. Routes without hostnames: every SNI, least specific of all.
    if (!match_all_.empty()) {
        if (const config::Route* route = pick(match_all_.data(), match_all_.data() + match_all_.size(), alpn)) {
            return Match{route, Miss::none, false};
        }
    }

    return fallback(Miss::no_route);
}

}  // namespace passgate
