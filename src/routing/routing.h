#pragma once
// Route matching for one listener, Gateway API TLSRoute semantics (config/README.md, "Routing"):
// exact beats wildcard, longer wildcard suffix beats shorter, ties go to the route defined first;
// among routes with the same hostname match, one whose `alpn` list matches the hello beats one
// without an alpn list; a route with an alpn list that does not match is skipped.
// Routes attach to a listener only through their effective hostnames (intersection with the
// listener's hostname). No SNI or no match: the listener's default_route, else no route.

#include "config/config.h"
#include "src/routing/host_table.h"
#include "src/wire/hostnames_file.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

// The names read from each route's `hostnames_file`, by route index (nullptr: the route has none,
// or it has not been read). Shared, read-only, between the snapshots built from the same version.
using HostnameFiles = std::vector<std::shared_ptr<const HostnameList>>;

class ListenerRoutes {
public:
    // Builds the table for `listener` from the routes in `config` that name it; a route's
    // hostnames are its `hostnames` and, with a `hostnames_file`, the names of `files` at its
    // index (both intersected with the listener's hostname).
    ListenerRoutes(const config::Config& config, const config::Listener& listener,
                   const HostnameFiles* files = nullptr);

    enum class Miss { none, no_sni, no_route };
    struct Match {
        const config::Route* route = nullptr;  // nullptr: rejected with `miss`
        Miss miss = Miss::none;
        bool via_default = false;
    };

    // `sni`: lowercased, no trailing dot, empty when the client sent none. The data path's
    // lookup: one hash pass over the SNI and at most one probe per label (host_table.h), no
    // allocation, whatever the number of hostnames.
    Match match(std::string_view sni, std::span<const std::string> alpn) const;

    // Effective hostnames per attached route, in definition order (for --check / explanations).
    struct Attached {
        const config::Route* route;
        // Its `hostnames` here; empty (and file_hostnames 0): matches only as default route.
        std::vector<std::string> effective_hostnames;
        // Names of its hostnames_file attached here (after the intersection, repeats included).
        std::size_t file_hostnames = 0;
    };
    const std::vector<Attached>& attached() const { return attached_; }
    // Routes that name this listener but whose hostnames do not intersect its hostname (Gateway
    // API): they never match here (config --check warns about them). Definition order.
    const std::vector<const config::Route*>& not_attached() const { return not_attached_; }
    // Hostnames claimed by two routes without an alpn list where one of the two claims comes from
    // a hostnames_file: the later route never gets that name here. As config warnings ("FILE:LINE:
    // route ... is shadowed by route ..."), at most kMaxShadowedReported; shadowed_count() has
    // the total. (Two inline claims are config warnings already: config/warnings.cpp.)
    static constexpr std::size_t kMaxShadowedReported = 100;
    const std::vector<std::string>& shadowed() const { return shadowed_; }
    std::size_t shadowed_count() const { return shadowed_count_; }
    // Distinct exact names and wildcard suffixes in the tables, and their bytes (perf, metrics).
    std::size_t table_keys() const { return exact_.keys() + wildcard_.keys(); }
    std::size_t table_bytes() const { return exact_.bytes() + wildcard_.bytes(); }

    // Precedence of a route whose hostnames match the SNI, the one ordering both match() and
    // rank() follow: a more specific level first (exact, then wildcards by suffix length, longest
    // first, then "no hostnames"); at one level a route whose alpn list matches before one without
    // a list; then definition order. A route whose alpn list does not match is not eligible.
    struct Precedence {
        enum class Level : std::uint8_t { match_all, wildcard, exact };  // least specific first
        Level level = Level::match_all;
        std::size_t suffix_length = 0;  // wildcard: length of ".suffix"
        bool alpn_listed = false;       // the route has an alpn list (eligible: it matches)
        std::size_t order = 0;          // route definition order
    };
    // Does `a` take precedence over `b`?
    static bool outranks(const Precedence& a, const Precedence& b);
    // Is `a` at a more specific hostname level than `b` (ALPN and order aside)?
    static bool more_specific(const Precedence& a, const Precedence& b);

    // Why a candidate is where it is in the ranking.
    enum class Verdict {
        chosen,          // the route match() returns
        alpn_mismatch,   // its alpn list names none of the offered protocols: not eligible
        less_specific,   // the chosen route matches at a more specific level
        alpn_preferred,  // same level; the chosen route lists a matching ALPN, this one no list
        defined_later,   // same level and ALPN standing; the chosen one is defined first
    };
    struct Candidate {
        const config::Route* route = nullptr;
        Precedence precedence;  // of its most specific effective hostname that matches the SNI
        std::string pattern;    // that hostname; match_all_hostnames for a route without any
        Verdict verdict = Verdict::chosen;
    };
    // What `passgate route` prints: match()'s decision with every candidate ranked. Cold path
    // (allocates); the data path never calls it.
    struct Trace {
        Match match;  // what match() returns for the same SNI and ALPN
        // Attached routes whose effective hostnames match the SNI: the eligible ones in
        // precedence order (the chosen one first, unless the default_route was taken), then the
        // ALPN-excluded ones in definition order. Empty without SNI.
        std::vector<Candidate> ranked;
        std::vector<const Attached*> not_matching;  // attached, hostnames do not match the SNI
    };
    Trace rank(std::string_view sni, std::span<const std::string> alpn) const;

private:
    using RouteId = HostTable::RouteId;
    std::vector<Attached> attached_;
    std::vector<const config::Route*> not_attached_;
    // Best route among the candidates of one hostname key (definition order) at `level`, by
    // outranks(); nullptr when the ALPN excludes them all.
    const config::Route* pick(std::span<const RouteId> candidates, Precedence level,
                              std::span<const std::string> alpn) const;
    Match fallback(Miss miss) const;  // default_route, else a miss
    void note_shared(const config::Config& config, const config::Listener& listener,
                     const HostTable::Shared& shared, bool wildcard, const std::vector<bool>& from_file);

    const config::Route* routes_ = nullptr;  // Config::routes: a RouteId indexes it
    HostTable exact_;                // exact names
    HostTable wildcard_;             // "*.suffix" by ".suffix"
    std::vector<RouteId> match_all_; // routes without hostnames on a listener without hostname
    const config::Route* default_route_ = nullptr;
    std::vector<std::string> shadowed_;
    std::size_t shadowed_count_ = 0;
};

}  // namespace passgate
