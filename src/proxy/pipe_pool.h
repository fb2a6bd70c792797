#pragma once
// Per-worker pool of pipes for splice. A connection leases a pipe per direction only while bytes
// are in flight and gives it back when that direction goes quiet, so idle connections hold none.
// Pipes are enlarged with F_SETPIPE_SZ (bigger pipes cut CPU per GiB: perf/ANALYSIS.md); when the
// user's pipe page budget (fs.pipe-user-pages-soft) refuses that, the pipe keeps the size the
// kernel gave it and the refusal is counted. At most `max_idle` empty pipes are kept.

#include "reactor/fd.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace passgate {

struct Pipe {
    reactor::Fd read_end;
    reactor::Fd write_end;
    std::size_t capacity = 0;  // bytes, as reported by F_GETPIPE_SZ
};

struct PipePoolStats {
    std::uint64_t created = 0;
    std::uint64_t destroyed = 0;
    std::uint64_t resize_refused = 0;  // F_SETPIPE_SZ refused: the pipe kept a smaller size
    std::uint64_t create_failed = 0;   // pipe2 failed (out of descriptors)
    std::size_t in_use = 0;
    std::size_t idle = 0;
};

class PipePool {
public:
    PipePool(std::size_t pipe_size, std::size_t max_idle);
    PipePool(const PipePool&) = delete;
    PipePool& operator=(const PipePool&) = delete;

    // A pipe, or none and the errno value of the failed pipe2 (out of descriptors).
    struct Leased {
        std::unique_ptr<Pipe> pipe;
        int error = 0;
    };
    Leased lease();
    // `empty`: no bytes left inside; a pipe with bytes inside is destroyed, never reused.
    void give_back(std::unique_ptr<Pipe> pipe, bool empty);

    const PipePoolStats& stats() const { return stats_; }

private:
    Leased create();
    std::size_t pipe_size_;
    std::size_t max_idle_;
    std::vector<std::unique_ptr<Pipe>> idle_;
    PipePoolStats stats_;
};

// A leased pipe plus the count of bytes inside it; returns the pipe to its pool when destroyed.
class PipeLease {
public:
    PipeLease() = default;
    PipeLease(const PipeLease&) = delete;
    PipeLease& operator=(const PipeLease&) = delete;
    ~PipeLease() { release(); }

    // 0, or the errno value of the pipe that could not be created.
    int acquire(PipePool& pool) {
        pool_ = &pool;
        PipePool::Leased leased = pool.lease();
        pipe_ = std::move(leased.pipe);
        bytes_inside = 0;
        return leased.error;
    }
    void release() {
        if (pipe_) pool_->give_back(std::move(pipe_), bytes_inside == 0);
        bytes_inside = 0;
    }
    bool held() const { return pipe_ != nullptr; }
    Pipe& pipe() { return *pipe_; }
    std::size_t capacity() const { return pipe_->capacity; }

    std::size_t bytes_inside = 0;

private:
    PipePool* pool_ = nullptr;
    std::unique_ptr<Pipe> pipe_;
};

}  // namespace passgate
