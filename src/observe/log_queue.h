#pragma once
// One producing thread's queue to a log writer thread: the reactor's SPSC ring, bounded in
// entries by the ring's capacity and in bytes here, with the producer's drop count. Used by the
// access log (one per worker, src/observe/access_log.h) and the process log (one per thread that
// logs, src/observe/log.h).
//
// Bytes: the producer counts the bytes it pushed, the consumer the bytes it released (both only
// ever grow); their difference is what the queue holds. `bytes_of(entry)` must give the same
// answer on both sides (entries are not changed while queued).

#include "metrics/owned_counter.h"
#include "reactor/spsc_ring.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace passgate {

template <class T, std::size_t (*bytes_of)(const T&)>
class LogQueue {
public:
    LogQueue(std::size_t capacity, std::size_t byte_capacity)
        : ring_(capacity), byte_capacity_(byte_capacity) {}

    // Producer. False when either bound is reached: `entry` is then not moved from. Not counted
    // here: the caller counts with count_drop() (it may drop for reasons of its own too).
    bool try_push(T&& entry) {
        if (ring_.full()) return false;
        const std::size_t bytes = bytes_of(entry);
        if (!bytes_fit(bytes)) {
            released_bytes_seen_ = released_bytes_.load(std::memory_order_acquire);
            if (!bytes_fit(bytes)) return false;
        }
        pushed_bytes_ += bytes;
        // A seq_cst publication (spsc_ring.h), for the writers' sleep protocols.
        ring_.push(std::move(entry));
        return true;
    }
    // Producer: drops are counted by the thread that drops, on its own counter.
    void count_drop() { dropped_.add(); }

    // Consumer: the oldest entry, or nullptr. Stays valid until pop().
    T* front() { return ring_.front(); }
    // Consumer: frees the entry here, on the writer thread, then hands the slot back.
    void pop() {
        const std::size_t bytes = bytes_of(*ring_.front());
        // Released before the slot is handed back: the producer never sees the slot free while
        // its bytes still count (it would only drop an entry too many, never hold too much).
        released_bytes_.store(released_bytes_.load(std::memory_order_relaxed) + bytes,
                              std::memory_order_release);
        ring_.pop();
    }
    // seq_cst, for the sleep protocols (spsc_ring.h).
    bool empty() const { return ring_.empty(); }

    // Any thread.
    std::uint64_t dropped() const { return dropped_.get(); }

private:
    // Producer: `bytes` more would keep the queue within byte_capacity_, as far as it knows
    // (released_bytes_seen_ may lag: then it looks again before dropping).
    bool bytes_fit(std::size_t bytes) const {
        return pushed_bytes_ - released_bytes_seen_ + bytes <= byte_capacity_;
    }

    reactor::SpscRing<T> ring_;
    const std::size_t byte_capacity_;
    alignas(64) std::atomic<std::uint64_t> released_bytes_{0};  // written by the consumer
    alignas(64) std::uint64_t pushed_bytes_ = 0;                // the producer's own
    std::uint64_t released_bytes_seen_ = 0;  // the producer's copy of released_bytes_
    metrics::OwnedCounter dropped_;          // written by the producer
};

}  // namespace passgate
