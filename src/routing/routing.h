#pragma once
// Route matching for one listener, Gateway API TLSRoute semantics (../shared/design.md):
// exact beats wildcard, longer wildcard suffix beats shorter, ties go to the route defined first;
// among routes with the same hostname match, one whose `alpn` list matches the hello beats one
// without an alpn list; a route with an alpn list that does not match is skipped.
// Routes attach to a listener only through their effective hostnames (intersection with the
// listener's hostname). No SNI or no match: the listener's default_route, else no route.

#include "config/config.h"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

class ListenerRoutes {
public:
    // Builds the table for `listener` from the routes in `config` that name it.
    ListenerRoutes(const config::Config& config, const config::Listener& listener);

    enum class Miss { none, no_sni, no_route };
    struct Match {
        const config::Route* route = nullptr;  // nullptr: rejected with `miss`
        Miss miss = Miss::none;
        bool via_default = false;
    };

    // `sni`: lowercased, no trailing dot, empty when the client sent none.
    Match match(std::string_view sni, std::span<const std::string> alpn) const;

    // Effective hostnames per attached route, in definition order (for --check / explanations).
    struct Attached {
        const config::Route* route;
        std::vector<std::string> effective_hostnames;  // empty: matches only as default route
    };
    const std::vector<Attached>& attached() const { return attached_; }

private:
    struct Entry {
        std::string pattern;  // effective hostname: exact, or "*.suffix"
        const config::Route* route;
        std::size_t order;  // route definition order
    };
    std::vector<Attached> attached_;
    struct ExactOrder;
    struct WildcardOrder;
    // Best route among entries of one hostname pattern (definition order), ALPN considered.
    static const config::Route* pick(const Entry* first, const Entry* last,
                                     std::span<const std::string> alpn);
    Match fallback(Miss miss) const;  // default_route, else a miss

    std::vector<Entry> exact_;     // sorted by (pattern, order)
    std::vector<Entry> wildcard_;  // sorted by suffix length desc, then suffix, then order
    std::vector<Entry> match_all_; // routes without hostnames on a listener without hostname
    const config::Route* default_route_ = nullptr;
};

}  // namespace passgate
