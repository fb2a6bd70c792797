#include "src/proxy/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace passgate {

PipePool::PipePool(std::size_t pipe_size, std::size_t max_idle)
    : pipe_size_(pipe_size), max_idle_(max_idle) {}

PipePool::Leased PipePool::create() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        const int error = errno;
        ++stats_.create_failed;
        return {nullptr, error};
    }
    auto pipe = std::make_unique<Pipe>();
    pipe->read_end = reactor::Fd(fds[0]);
    pipe->write_end = reactor::Fd(fds[1]);
    if (::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_)) < 0) ++stats_.resize_refused;
    const int capacity = ::fcntl(fds[1], F_GETPIPE_SZ);
    pipe->capacity = capacity > 0 ? static_cast<std::size_t>(capacity) : 4096;
    ++stats_.created;
    return {std::move(pipe), 0};
}

PipePool::Leased PipePool::lease() {
    Leased leased;
    if (!idle_.empty()) {
        leased.pipe = std::move(idle_.back());
        idle_.pop_back();
        --stats_.idle;
    } else {
        leased = create();
        if (!leased.pipe) return leased;
    }
    ++stats_.in_use;
    return leased;
}

void PipePool::give_back(std::unique_ptr<Pipe> pipe, bool empty) {
    --stats_.in_use;
    if (empty && idle_.size() < max_idle_) {
        idle_.push_back(std::move(pipe));
        ++stats_.idle;
        return;
    }
    ++stats_.destroyed;
}

}  // namespace passgate
