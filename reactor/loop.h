#pragma once
// One event loop per thread: an io_uring created in that thread, user-space timers, and
// "watches" (readiness polls and multishot accepts) whose completions are dispatched to handlers.
//
// Ownership of operations in flight: a Watch is the owner-facing handle; the kernel-facing
// operation (WatchOp) is pooled by the loop. Stopping or destroying a Watch detaches its operation
// and submits a cancel; the operation returns to the pool when its final completion arrives. So an
// owner (a connection) can be freed at any time, even with operations in flight, and no
// completion ever reaches freed memory.

#include "reactor/fd.h"
#include "reactor/ring.h"
#include "reactor/timer.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace passgate::reactor {

class Loop;
class WatchOp;

class WatchHandler {
public:
    // Poll: `result` is the revents mask (>= 0) or -errno. Accept: the new fd or -errno.
    // The handler may stop, restart or destroy the watch (and its owner) from inside.
    virtual void on_watch(int result) = 0;

protected:
    ~WatchHandler() = default;
};

class Watch {
public:
    Watch(Loop& loop, WatchHandler& handler) : loop_(loop), handler_(handler) {}
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    ~Watch() { stop(); }

    // Readiness on `fd`.
    // - once: a single completion.
    // - multishot: one completion per wake-up (edge-like: drain to EAGAIN), re-armed
    //   transparently if the kernel ends it.
    // - once_then_multishot: each of the first `once_then_multishot_oneshots` wake-ups completes
    //   a one-shot poll, re-armed after its handler returns unless the handler stopped the
    //   watch; then multishot. A multishot poll stays in the ring until cancelled, and a cancel
    //   searches a hash chain whose length grows with every poll armed on the ring (thousands
    //   under overload) and costs two more completions. A short connection's socket usually
    //   wakes up once or twice (data, then its end; or both at once) and is stopped by then:
    //   no cancel. A long-lived one pays a few extra arms, once.
    enum class PollMode { once, multishot, once_then_multishot };
    static constexpr std::uint32_t once_then_multishot_oneshots = 3;
    void poll(int fd, std::uint32_t events, PollMode mode);
    void poll(int fd, std::uint32_t events, bool multishot) {
        poll(fd, events, multishot ? PollMode::multishot : PollMode::once);
    }
    // Accepts on a listening socket; new sockets are non-blocking and close-on-exec.
    // - multishot: one operation takes every connection waiting, in one go (falls back to
    //   one_at_a_time on kernels without multishot accept).
    // - one_at_a_time: one connection per operation, re-armed after its handler returns unless
    //   the handler stopped or cancelled the watch (then nothing is in the kernel to cancel): an
    //   owner that bounds how many it holds sees each one before the next is taken.
    enum class AcceptMode { multishot, one_at_a_time };
    void accept(int listen_fd, AcceptMode mode = AcceptMode::multishot);
    // Detaches and cancels the operation in flight, if any. Idempotent.
    void stop();
    // Cancels the operation in flight but keeps delivering its completions until the last one
    // (then active() turns false): an accept that raced with the cancel still reaches the
    // handler with its socket instead of being closed. Idempotent.
    void cancel();
    bool active() const { return op_ != nullptr; }

private:
    friend class WatchOp;
    Loop& loop_;
    WatchHandler& handler_;
    WatchOp* op_ = nullptr;
};

struct LoopStats {
    std::uint64_t completions = 0;  // CQEs handled
    std::uint64_t submissions = 0;  // SQEs handed to the kernel
    std::uint64_t iterations = 0;   // trips through io_uring_enter
    std::uint64_t timers_fired = 0;
};

class Loop {
public:
    explicit Loop(const RingOptions& options = {});
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;
    ~Loop();

    // Runs until stop() is called from inside the loop (a handler or timer).
    void run();
    void stop() { stopping_ = true; }
    bool stopping() const { return stopping_; }

    // Monotonic milliseconds, cached per loop iteration (refresh with update_now()).
    Millis now() const { return now_; }
    Millis update_now();

    void arm_timer(Timer& timer, Millis deadline) { timers_.arm(timer, deadline); }
    void arm_timer_after(Timer& timer, Millis delay) { timers_.arm(timer, now_ + delay); }
    void cancel_timer(Timer& timer) { timers_.cancel(timer); }

    // Frees `object` after the current batch of completions and timers (before the batch-end
    // hook), not now: a handler may retire its own owner (a connection, an admin exchange) while
    // it is still on the call stack. Objects deferred outside run() are freed at the end of the
    // next batch, by free_deferred(), or with the loop (before its operations and ring).
    template <class T>
    void defer_destroy(std::unique_ptr<T> object) {
        if (!object) return;
        deferred_.emplace_back(object.release(), [](void* pointer) { delete static_cast<T*>(pointer); });
    }
    // Frees everything deferred so far, now (also what the destructors defer in turn). For an
    // owner whose deferred objects refer to it: call it before those references dangle.
    void free_deferred();
    std::size_t deferred_count() const { return deferred_.size(); }

    // Called after each batch of completions and timers, once the deferred objects are freed:
    // the place for per-batch bookkeeping (stats, "is the last connection gone?").
    void set_batch_end(std::function<void()> hook) { batch_end_ = std::move(hook); }

    const RingFeatures& features() const { return ring_.features(); }
    const LoopStats& stats() const { return stats_; }
    std::size_t operations_in_flight() const { return ops_in_flight_; }

    // Closes `fd` with the next submission (IORING_OP_CLOSE, batched with the loop's other
    // operations) instead of a close(2) of its own; close(2) now where the ring cannot. Polls on
    // the socket that were stopped before go first: their cancels are earlier in the queue.
    // (No shutdown counterpart: the kernel never runs IORING_OP_SHUTDOWN inline but hands each
    // one to an io-wq thread, dearer than shutdown(2) itself; perf/ANALYSIS.md.)
    void close(Fd fd);

    // An SQE to fill; submits pending ones first when the SQ is full.
    io_uring_sqe* sqe();

private:
    friend class Watch;
    friend class WatchOp;
    WatchOp* take_op();
    void recycle_op(WatchOp* op);
    void dispatch_completions();
    void end_batch();

    Ring ring_;
    TimerHeap timers_;
    LoopStats stats_;
    Millis now_ = 0;
    bool stopping_ = false;
    std::function<void()> batch_end_;
    std::vector<std::unique_ptr<WatchOp>> all_ops_;
    std::vector<WatchOp*> free_ops_;
    std::size_t ops_in_flight_ = 0;
    // Declared after the operations: freed first, while the ring and the op pool still exist
    // (a deferred object's watches detach their operations as it goes).
    std::vector<std::unique_ptr<void, void (*)(void*)>> deferred_;
};

Millis monotonic_millis();
std::int64_t monotonic_micros();

}  // namespace passgate::reactor

namespace passgate::reactor {

// A watch handler that calls a member function of its owner, so one owner can hold several
// watches (a connection watches two sockets for reading and writing).
template <class Owner, void (Owner::*Method)(int)>
class MemberWatchHandler final : public WatchHandler {
public:
    explicit MemberWatchHandler(Owner& owner) : owner_(owner) {}
    ~MemberWatchHandler() = default;
    void on_watch(int result) override { (owner_.*Method)(result); }

private:
    Owner& owner_;
};

}  // namespace passgate::reactor
