#pragma once
// Per-worker totals, written only by that worker (relaxed load+store, never a shared
// read-modify-write) and read by the control thread for STATUS lines and scrapes.

#include "src/observe/connection_summary.h"

#include <atomic>
#include <cstdint>

namespace passgate {

class OwnedCounter {
public:
    void add(std::uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void sub(std::uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
    void set(std::uint64_t n) { value_.store(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

struct alignas(64) WorkerStats {
    OwnedCounter accepted;
    OwnedCounter accept_errors;  // failed accepts (EMFILE, ENFILE, ENOBUFS, ...): the acceptor backs off
    OwnedCounter active;
    OwnedCounter pipes_in_use;
    OwnedCounter pipes_idle;
    OwnedCounter loop_completions;
    OwnedCounter loop_submissions;
    OwnedCounter hello_memory;  // bytes of hello buffers held (charged against max_hello_memory)
};

}  // namespace passgate
