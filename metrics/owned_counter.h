#pragma once
// A 64-bit count written by one thread (its owner) and read by any: the single-writer contract of
// sharded_cells.h, for one value. The owner updates with a relaxed load and a relaxed store (no
// locked read-modify-write: nobody else writes, so no update can be lost); readers see a value a
// few updates old, never a torn one. Never write one from two threads; a count with several
// writers needs fetch_add (or one OwnedCounter per writer, summed by the reader).

#include <atomic>
#include <cstdint>

namespace passgate::metrics {

class OwnedCounter {
public:
    // Owner thread only.
    void add(std::uint64_t n = 1) {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void sub(std::uint64_t n = 1) {
        value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    void set(std::uint64_t n) { value_.store(n, std::memory_order_relaxed); }
    // Any thread.
    std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

}  // namespace passgate::metrics
