#pragma once
// The hostname tables of one listener's routes (src/routing/routing.h): which routes claim an
// exact name, and which claim a wildcard suffix, sized for millions of names (issue 23: routes
// with a `hostnames_file`). Built once on the control thread, then read by every worker.
//
// One open-addressing hash table (linear probing, load factor at most 1/2) of 16-byte slots;
// each slot holds a 32-bit tag of the key's hash, the key's offset and length in one arena of
// bytes (every distinct key stored once), and the offset and count of its candidate routes in one
// array of route ids (4 bytes each), in definition order; a key claimed by one route (the usual
// case) holds the route id in its slot instead, which saves a cache miss. Per distinct key: 16 B / load factor
// (the slot count is the power of two at or above twice the keys: 32..64 B) + 4 B per claiming
// route when two or more claim it + the key's bytes, so at most 64 B beyond the name for a name
// one route claims
// (perf/ROUTING.md has the measured figures). The load factor stays at or below 1/2 because
// most probes miss (a wildcard lookup probes every suffix) and a miss's linear probe grows
// quickly above it.
//
// The key of an exact name is the name; of a wildcard "*.example.com" its suffix ".example.com",
// so a lookup probes each suffix of the SNI that starts at a dot. Hashes are computed from the
// right (FNV-1a over the bytes last to first), so one pass over the SNI yields the hash of the
// whole name and of every dot-suffix: a lookup costs one hash pass plus at most one probe per
// label, whatever the table's size, and allocates nothing.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

class HostTable {
public:
    using RouteId = std::uint32_t;  // a route's index in Config::routes (its definition order)

    // Building: add() every (key, route) pair, routes in definition order (a key added twice for
    // one route in a row is kept once), then build(). Keys are lowercase, at most 254 bytes.
    void add(std::string_view key, RouteId route);
    // A key claimed by two or more routes: for the shadowing report.
    struct Shared {
        std::string_view key;
        std::span<const RouteId> routes;  // definition order
    };
    // Sorts the added pairs into the table; calls `shared` (may be empty) for every key claimed
    // by two routes or more. Throws std::length_error past 4 GiB of keys or 65535 routes on a key.
    template <typename OnShared>
    void build(OnShared&& shared);
    void build() { build([](const Shared&) {}); }

    // The candidate routes of `key` in definition order (empty when none), given its hash().
    std::span<const RouteId> find(std::string_view key, std::uint64_t hash) const;
    std::span<const RouteId> find(std::string_view key) const { return find(key, hash(key)); }

    // FNV-1a 64 over the bytes from last to first: the hash of text.substr(i) extends the hash of
    // text.substr(i + 1) by one byte (Suffixes below).
    static constexpr std::uint64_t kHashStart = 0xcbf29ce484222325ULL;
    static constexpr std::uint64_t extend(std::uint64_t hash, char c) {
        return (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    static std::uint64_t hash(std::string_view key);

    // Might a key with `dots` dots be in the table? False: none is, skip the probe. (Wildcard
    // suffixes cluster at a few depths, so most of a lookup's suffix probes end here without
    // touching the table's memory.)
    bool may_hold_dots(std::size_t dots) const { return (dot_counts_ >> std::min<std::size_t>(dots, 63)) & 1; }

    std::size_t keys() const { return keys_; }
    bool empty() const { return keys_ == 0; }
    // Bytes held by the built table (slots, arena, candidates), for metrics and perf/ROUTING.md.
    std::size_t bytes() const;

private:
    struct Slot {
        std::uint32_t tag = 0;         // the hash's high 32 bits
        std::uint32_t key = 0;         // offset in arena_
        std::uint32_t candidates = 0;  // offset in candidates_; count 1: the route id itself
        std::uint8_t length = 0;       // key bytes (keys are at most 254 bytes)
        std::uint8_t unused = 0;
        std::uint16_t count = 0;       // candidate routes; 0: an empty slot
    };
    static_assert(sizeof(Slot) == 16);
    struct Pending {
        std::uint64_t hash;
        std::uint32_t key;  // offset in arena_ (duplicates compacted away by build())
        std::uint32_t length;
        RouteId route;
    };
    void build_sorted(std::vector<Shared>* shared);

    std::vector<Slot> slots_;  // a power of two in size, or empty
    std::string arena_;
    std::vector<RouteId> candidates_;
    std::vector<Pending> pending_;  // until build()
    std::size_t keys_ = 0;
    std::uint64_t dot_counts_ = 0;  // bit n: a key has n dots (63: 63 or more)
};

template <typename OnShared>
void HostTable::build(OnShared&& shared) {
    std::vector<Shared> found;
    build_sorted(&found);
    for (const Shared& one : found) shared(one);
}

// The dot-suffixes of an SNI, longest first (".b.example.com", ".example.com", ".com" for
// "a.b.example.com"), with their hashes, from one right-to-left pass. A dot at position 0 would
// leave no label for the "*" and is not a suffix. No allocation: at most 127 dots fit in 253 bytes.
class HostSuffixes {
public:
    explicit HostSuffixes(std::string_view host);
    std::uint64_t whole_hash() const { return whole_; }
    std::size_t size() const { return count_; }
    // i = 0: the longest suffix.
    std::string_view suffix(std::size_t i) const { return host_.substr(dots_[count_ - 1 - i]); }
    std::size_t dots(std::size_t i) const { return count_ - i; }  // in suffix(i)
    std::uint64_t hash(std::size_t i) const { return hashes_[count_ - 1 - i]; }

private:
    static constexpr std::size_t kMaxDots = 128;
    std::string_view host_;
    std::uint64_t whole_ = HostTable::kHashStart;
    std::size_t count_ = 0;
    std::uint16_t dots_[kMaxDots];  // right to left
    std::uint64_t hashes_[kMaxDots];
};

}  // namespace passgate
