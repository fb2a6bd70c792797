#pragma once
// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4), with weights as in Envoy's MaglevTable: an endpoint of
// weight w takes a turn in w / max_weight of the filling rounds.
//
// Each endpoint has its own permutation of the table's slots, derived from its name (offset and
// skip from two hashes); endpoints take turns claiming their next free slot until the table is
// full. The table is nearly even (unweighted: every endpoint owns floor or ceil of size / n
// slots), and when one endpoint goes away the other endpoints keep almost all of their slots:
// mostly the keys of the endpoint that left move. Pure; built on the control thread, shared
// read-only by the workers.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

// A 64-bit hash of bytes (FNV-1a, then the splitmix64 finaliser so that nearby inputs spread over
// all bits). Stable across runs and machines: table slots and key hashes must not change on restart.
std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed = 0);

class MaglevTable {
public:
    // A prime (the paper's requirement, so every skip generates a full permutation), about 100
    // times the endpoints one service is expected to have at most: 65537 entries of 4 bytes.
    static constexpr std::uint32_t default_size = 65537;
    static constexpr std::int32_t no_endpoint = -1;

    // `names` identify the endpoints (their address text); endpoints of weight 0 own no slot.
    // The owner of each slot, by name, depends only on the set of (name, weight) pairs, not on
    // their order: owner() gives the index into `names` as passed.
    // `size` must be a prime larger than the number of endpoints.
    MaglevTable(std::span<const std::string> names, std::span<const std::uint32_t> weights,
                std::uint32_t size = default_size);

    std::uint32_t size() const { return static_cast<std::uint32_t>(slots_.size()); }
    // The endpoint owning slot `slot` (< size()), or no_endpoint when every weight is 0.
    std::int32_t owner(std::uint32_t slot) const { return slots_[slot]; }
    std::uint32_t slot_of(std::uint64_t key_hash) const {
        return static_cast<std::uint32_t>(key_hash % slots_.size());
    }

private:
    std::vector<std::int32_t> slots_;
};

}  // namespace passgate
