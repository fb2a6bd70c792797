#include "src/routing/host_table.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <stdexcept>

namespace passgate {

std::uint64_t HostTable::hash(std::string_view key) {
    std::uint64_t hash = kHashStart;
    for (std::size_t i = key.size(); i-- > 0;) hash = extend(hash, key[i]);
    return hash;
}

void HostTable::add(std::string_view key, RouteId route) {
    if (key.size() > std::numeric_limits<std::uint8_t>::max())
        throw std::length_error("hostname table: key longer than 255 bytes");
    if (arena_.size() + key.size() > std::numeric_limits<std::uint32_t>::max())
        throw std::length_error("hostname table: more than 4 GiB of hostnames");
    pending_.push_back(Pending{hash(key), static_cast<std::uint32_t>(arena_.size()),
                               static_cast<std::uint32_t>(key.size()), route});
    arena_.append(key);
}

void HostTable::build_sorted(std::vector<Shared>* shared) {
    const std::string_view staged = arena_;
    auto key_of = [&](const Pending& p) { return staged.substr(p.key, p.length); };
    // Equal keys side by side, in the order added (so their routes stay in definition order).
    std::stable_sort(pending_.begin(), pending_.end(), [&](const Pending& a, const Pending& b) {
        if (a.hash != b.hash) return a.hash < b.hash;
        return key_of(a) < key_of(b);
    });
    std::size_t distinct = 0;
    for (std::size_t i = 0; i < pending_.size(); ++i)
        if (i == 0 || pending_[i].hash != pending_[i - 1].hash || key_of(pending_[i]) != key_of(pending_[i - 1]))
            ++distinct;
    keys_ = distinct;
    // Load factor at most 1/2: short probe sequences, and 16..32 bytes of slots per key.
    slots_.assign(distinct == 0 ? 0 : std::bit_ceil(distinct * 2), Slot{});
    const std::size_t mask = slots_.size() - 1;
    std::string arena;
    arena.reserve(staged.size());
    candidates_.clear();
    candidates_.reserve(pending_.size());
    for (std::size_t first = 0; first < pending_.size();) {
        std::size_t last = first + 1;
        while (last < pending_.size() && pending_[last].hash == pending_[first].hash &&
               key_of(pending_[last]) == key_of(pending_[first]))
            ++last;
        Slot slot;
        slot.tag = static_cast<std::uint32_t>(pending_[first].hash >> 32);
        slot.key = static_cast<std::uint32_t>(arena.size());
        slot.length = static_cast<std::uint8_t>(pending_[first].length);
        slot.candidates = static_cast<std::uint32_t>(candidates_.size());
        arena.append(key_of(pending_[first]));
        for (std::size_t i = first; i < last; ++i)
            if (i == first || pending_[i].route != candidates_.back()) candidates_.push_back(pending_[i].route);
        const std::size_t count = candidates_.size() - slot.candidates;
        if (count == 1) {  // kept in the slot
            slot.candidates = candidates_.back();
            candidates_.pop_back();
        }
        const std::string_view key = key_of(pending_[first]);
        dot_counts_ |= std::uint64_t{1} << std::min<std::size_t>(std::count(key.begin(), key.end(), '.'), 63);
        if (count > std::numeric_limits<std::uint16_t>::max())
            throw std::length_error("hostname table: more than 65535 routes claim one hostname");
        slot.count = static_cast<std::uint16_t>(count);
        std::size_t index = static_cast<std::size_t>(pending_[first].hash) & mask;
        while (slots_[index].count != 0) index = (index + 1) & mask;
        slots_[index] = slot;
        first = last;
    }
    arena_ = std::move(arena);
    arena_.shrink_to_fit();
    candidates_.shrink_to_fit();
    std::vector<Pending>().swap(pending_);
    if (shared == nullptr) return;
    for (const Slot& slot : slots_)
        if (slot.count > 1)
            shared->push_back(Shared{std::string_view(arena_).substr(slot.key, slot.length),
                                     std::span<const RouteId>(candidates_).subspan(slot.candidates, slot.count)});
}

std::span<const HostTable::RouteId> HostTable::find(std::string_view key, std::uint64_t hash) const {
    if (slots_.empty()) return {};
    const std::size_t mask = slots_.size() - 1;
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    // The load factor (<= 1/2) guarantees an empty slot, so the probe ends.
    for (std::size_t index = static_cast<std::size_t>(hash) & mask;; index = (index + 1) & mask) {
        const Slot& slot = slots_[index];
        if (slot.count == 0) return {};
        if (slot.tag == tag && slot.length == key.size() &&
            std::string_view(arena_).substr(slot.key, slot.length) == key)
            return slot.count == 1 ? std::span<const RouteId>(&slot.candidates, 1)
                                   : std::span<const RouteId>(candidates_.data() + slot.candidates, slot.count);
    }
}

std::size_t HostTable::bytes() const {
    return slots_.capacity() * sizeof(Slot) + arena_.capacity() + candidates_.capacity() * sizeof(RouteId);
}

HostSuffixes::HostSuffixes(std::string_view host) : host_(host) {
    for (std::size_t i = host.size(); i-- > 0;) {
        // The hash of host.substr(i + 1) is whole_ here: a dot at i starts the suffix host.substr(i).
        whole_ = HostTable::extend(whole_, host[i]);
        if (host[i] == '.' && i != 0 && count_ < kMaxDots) {
            dots_[count_] = static_cast<std::uint16_t>(i);
            hashes_[count_] = whole_;
            ++count_;
        }
    }
}

}  // namespace passgate
