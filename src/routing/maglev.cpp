#include "src/routing/maglev.h"

#include <algorithm>
#include <stdexcept>

namespace passgate {

std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed) {
    std::uint64_t hash = 14695981039346656037ull ^ seed;
    for (const unsigned char byte : bytes) {
        hash ^= byte;
        hash *= 1099511628211ull;
    }
    hash ^= hash >> 30;
    hash *= 0xbf58476d1ce4e5b9ull;
    hash ^= hash >> 27;
    hash *= 0x94d049bb133111ebull;
    hash ^= hash >> 31;
    return hash;
}

MaglevTable::MaglevTable(std::span<const std::string> names, std::span<const std::uint32_t> weights,
                         std::uint32_t size) {
    if (names.size() != weights.size()) throw std::invalid_argument("maglev: names and weights differ");
    if (size < 2 || names.size() >= size) throw std::invalid_argument("maglev: table too small");
    slots_.assign(size, no_endpoint);

    struct Builder {
        std::int32_t endpoint;
        std::uint64_t offset;
        std::uint64_t skip;
        std::uint64_t next = 0;       // position in this endpoint's permutation
        std::uint64_t weight;
        std::uint64_t target = 0;     // takes a turn when round * weight reaches this
    };
    // The endpoints take turns in the order of their names (then weights), not in the order given:
    // who claims a contested slot first decides its owner, and every node (whatever order its
    // discovery or config listed the same endpoints in) must build the same table.
    std::vector<std::size_t> order(names.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return names[a] != names[b] ? names[a] < names[b] : weights[a] < weights[b];
    });
    std::vector<Builder> builders;
    std::uint64_t max_weight = 0;
    for (const std::size_t i : order) {
        if (weights[i] == 0) continue;
        builders.push_back(Builder{static_cast<std::int32_t>(i), stable_hash(names[i], 1) % size,
                                   stable_hash(names[i], 2) % (size - 1) + 1, 0, weights[i], 0});
        max_weight = std::max<std::uint64_t>(max_weight, weights[i]);
    }
    if (builders.empty()) return;

    std::uint32_t filled = 0;
    for (std::uint64_t round = 1; filled < size; ++round) {
        for (Builder& builder : builders) {
            if (filled == size) break;
            if (round * builder.weight < builder.target) continue;
            builder.target += max_weight;
            // The endpoint's next slot in its own permutation that nobody has claimed yet. The
            // permutation visits every slot (size is prime, skip is in [1, size)), so this ends.
            std::uint64_t slot = (builder.offset + builder.skip * builder.next) % size;
            while (slots_[slot] != no_endpoint) {
                ++builder.next;
                slot = (builder.offset + builder.skip * builder.next) % size;
            }
            slots_[slot] = builder.endpoint;
            ++builder.next;
            ++filled;
        }
    }
}

}  // namespace passgate
