#include "reactor/loop.h"

#include "reactor/system_error.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <ctime>

namespace passgate::reactor {

std::int64_t monotonic_micros() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
}

Millis monotonic_millis() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<Millis>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

// The kernel-facing half of a Watch. Its address is the SQE's user_data.
class WatchOp {
public:
    enum class Kind { poll, accept };

    explicit WatchOp(Loop& loop) : loop_(loop) {}

    void start(Watch* watch, Kind kind, int fd, std::uint32_t events, bool multishot,
               std::uint32_t oneshot_wakeups = 0) {
        watch_ = watch;
        kind_ = kind;
        fd_ = fd;
        events_ = events;
        multishot_ = multishot;
        oneshot_wakeups_ = oneshot_wakeups;
        cancelling_ = false;
        rearm_after_handler_ = false;
        submit();
    }

    // Cancels the operation but stays attached: completions that raced with the cancel (an
    // accepted socket) still reach the handler, and the final one ends the watch.
    void cancel() {
        if (cancelling_) return;
        if (rearm_after_handler_) {  // nothing in the kernel to cancel: the watch ends here
            watch_->op_ = nullptr;
            watch_ = nullptr;
            return;
        }
        cancelling_ = true;
        submit_cancel();
    }

    void detach() {
        assert(watch_ != nullptr);
        watch_ = nullptr;
        if (rearm_after_handler_) return;  // not in the kernel: recycled once its handler returns
        submit_cancel();
    }

    void complete(int result, std::uint32_t flags) {
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (watch_ == nullptr) {  // owner gone: wait for the final completion, then recycle
            // An accept that raced with the cancel still created a socket: nobody wants it.
            if (kind_ == Kind::accept && result >= 0) ::close(result);
            if (!more) loop_.recycle_op(this);
            return;
        }
        Watch* watch = watch_;
        const bool one_shot_accept = kind_ == Kind::accept && !multishot_;
        if (!more && !cancelling_ && (oneshot_wakeups_ > 0 || one_shot_accept) && result >= 0) {
            // One of the first wake-ups of a once_then_multishot poll, or a one-shot accept: the
            // handler runs with the operation out of the kernel; re-armed afterwards (one-shot
            // again, or multishot after a poll's last one-shot) unless the handler stopped or
            // cancelled the watch (detach() and cancel() then skip the kernel cancel).
            if (oneshot_wakeups_ > 0) --oneshot_wakeups_;
            rearm_after_handler_ = true;
            watch->handler_.on_watch(result);  // may destroy `watch`; this op is the loop's
            rearm_after_handler_ = false;
            if (watch_ == nullptr) return loop_.recycle_op(this);
            if (kind_ == Kind::poll) multishot_ = oneshot_wakeups_ == 0;
            submit();
            return;
        }
        if (!more) {
            if (cancelling_) {
                watch->op_ = nullptr;  // the last completion of a cancelled watch
                watch_ = nullptr;
                loop_.recycle_op(this);
            } else if (multishot_ && result >= 0) {
                submit();  // the kernel ended a multishot op (e.g. CQ overflow): re-arm
            } else if (kind_ == Kind::accept && multishot_ && result == -EINVAL &&
                       loop_.ring_.features().multishot_accept) {
                // Kernel without multishot accept: switch to one-shot, re-armed per accept.
                loop_.ring_.mutable_features().multishot_accept = false;
                multishot_ = false;
                submit();
                return;
            } else {
                watch->op_ = nullptr;
                watch_ = nullptr;
                loop_.recycle_op(this);
            }
        }
        watch->handler_.on_watch(result);  // may destroy `watch`; nothing of it used after
    }

private:
    // The cancel's own completion is not interesting (user_data 0 is skipped): with CQE_SKIP
    // there is none when it succeeds. The operation's final completion (-ECANCELED) still comes.
    void submit_cancel() {
        io_uring_sqe* sqe = loop_.sqe();
        io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(this), 0);
        io_uring_sqe_set_data64(sqe, 0);
        if (loop_.ring_.features().cqe_skip) io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
    }

    void submit() {
        io_uring_sqe* sqe = loop_.sqe();
        if (kind_ == Kind::poll) {
            if (multishot_) io_uring_prep_poll_multishot(sqe, fd_, events_);
            else io_uring_prep_poll_add(sqe, fd_, events_);
        } else if (multishot_) {
            io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        } else {
            io_uring_prep_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        io_uring_sqe_set_data(sqe, this);
    }

    Loop& loop_;
    Watch* watch_ = nullptr;
    Kind kind_ = Kind::poll;
    int fd_ = -1;
    std::uint32_t events_ = 0;
    bool multishot_ = false;
    std::uint32_t oneshot_wakeups_ = 0;  // once_then_multishot: one-shot arms left
    bool cancelling_ = false;
    bool rearm_after_handler_ = false;  // a once_then_multishot one-shot completion's handler is running
};

void Watch::poll(int fd, std::uint32_t events, PollMode mode) {
    assert(op_ == nullptr);
    op_ = loop_.take_op();
    op_->start(this, WatchOp::Kind::poll, fd, events, mode == PollMode::multishot,
               mode == PollMode::once_then_multishot ? once_then_multishot_oneshots : 0);
}

void Watch::accept(int listen_fd, AcceptMode mode) {
    assert(op_ == nullptr);
    op_ = loop_.take_op();
    op_->start(this, WatchOp::Kind::accept, listen_fd, 0,
               mode == AcceptMode::multishot && loop_.features().multishot_accept);
}

void Watch::cancel() {
    if (op_ != nullptr) op_->cancel();
}

void Watch::stop() {
    if (op_ == nullptr) return;
    op_->detach();
    op_ = nullptr;
}

Loop::Loop(const RingOptions& options) : ring_(options), now_(monotonic_millis()) {}

// Members go in reverse order: pooled operations first, the ring last. No completion is
// dispatched after run() returns, so operations still in flight in the kernel never reach freed
// memory; ~Ring (io_uring_queue_exit) cancels them. Deferred objects go first of all.
Loop::~Loop() { free_deferred(); }

void Loop::free_deferred() {
    // A destructor may defer more (an owner retiring what it holds): freed in the same call.
    while (!deferred_.empty()) {
        std::vector<std::unique_ptr<void, void (*)(void*)>> batch;
        batch.swap(deferred_);
        batch.clear();
    }
}

void Loop::end_batch() {
    free_deferred();
    if (batch_end_) batch_end_();
}

Millis Loop::update_now() {
    now_ = monotonic_millis();
    return now_;
}

io_uring_sqe* Loop::sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe != nullptr) return sqe;
    const int submitted = io_uring_submit(ring_.get());
    if (submitted < 0) throw_errno("io_uring_submit", -submitted);
    stats_.submissions += static_cast<std::uint64_t>(submitted);
    sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) throw_errno("io_uring_get_sqe after submit", EBUSY);
    return sqe;
}

// The completion is not wanted (user_data 0 is skipped); with CQE_SKIP there is none on success.
void Loop::close(Fd fd) {
    if (!fd) return;
    if (!ring_.features().async_close) return fd.reset();
    io_uring_sqe* sqe = this->sqe();
    io_uring_prep_close(sqe, fd.release());
    io_uring_sqe_set_data64(sqe, 0);
    if (ring_.features().cqe_skip) io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
}

WatchOp* Loop::take_op() {
    ++ops_in_flight_;
    if (free_ops_.empty()) {
        all_ops_.push_back(std::make_unique<WatchOp>(*this));
        return all_ops_.back().get();
    }
    WatchOp* op = free_ops_.back();
    free_ops_.pop_back();
    return op;
}

void Loop::recycle_op(WatchOp* op) {
    --ops_in_flight_;
    free_ops_.push_back(op);
}

void Loop::run() {
    stopping_ = false;
    while (!stopping_) {
        update_now();
        stats_.timers_fired += timers_.fire_expired(now_);
        end_batch();
        if (stopping_) break;

        __kernel_timespec timeout{};
        __kernel_timespec* timeout_ptr = nullptr;
        const Millis deadline = timers_.next_deadline();
        if (deadline >= 0) {
            const Millis wait = deadline > now_ ? deadline - now_ : 0;
            timeout.tv_sec = wait / 1000;
            timeout.tv_nsec = (wait % 1000) * 1'000'000;
            timeout_ptr = &timeout;
        }
        io_uring_cqe* cqe = nullptr;
        const int result =
            io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, timeout_ptr, nullptr);
        ++stats_.iterations;
        if (result > 0) stats_.submissions += static_cast<std::uint64_t>(result);
        if (result < 0 && result != -ETIME && result != -EINTR && result != -EAGAIN &&
            result != -EBUSY)
            throw_errno("io_uring_submit_and_wait_timeout", -result);
        update_now();
        dispatch_completions();
        end_batch();
    }
}

void Loop::dispatch_completions() {
    // Each CQE is copied and marked seen before its handler runs, so handlers may submit
    // (and, with DEFER_TASKRUN, cause new CQEs) freely. Bounded per batch so timers keep firing.
    const unsigned budget = ring_.features().cq_entries;
    for (unsigned handled = 0; handled < budget; ++handled) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_peek_cqe(ring_.get(), &cqe) != 0 || cqe == nullptr) break;
        const std::uint64_t user_data = cqe->user_data;
        const int result = cqe->res;
        const std::uint32_t flags = cqe->flags;
        io_uring_cqe_seen(ring_.get(), cqe);
        ++stats_.completions;
        if (user_data == 0) continue;
        reinterpret_cast<WatchOp*>(user_data)->complete(result, flags);
    }
}

}  // namespace passgate::reactor
