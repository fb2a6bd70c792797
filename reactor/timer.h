#pragma once
// Timers live in user space: an indexed binary min-heap of deadlines per loop. Arming, re-arming
// and cancelling are O(log n) with no kernel round trip; the loop sleeps in io_uring_enter until
// the earliest deadline. A Timer removes itself from the heap when destroyed, so an owner can be
// freed at any time.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace passgate::reactor {

using Millis = std::int64_t;  // CLOCK_MONOTONIC milliseconds

class TimerHeap;

class Timer {
public:
    virtual void on_timer() = 0;
    bool armed() const { return heap_ != nullptr; }
    Millis deadline() const { return deadline_; }

protected:
    Timer() = default;
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    ~Timer();

private:
    friend class TimerHeap;
    TimerHeap* heap_ = nullptr;
    std::size_t index_ = 0;
    Millis deadline_ = 0;
};

class TimerHeap {
public:
    TimerHeap() = default;
    TimerHeap(const TimerHeap&) = delete;
    TimerHeap& operator=(const TimerHeap&) = delete;
    ~TimerHeap();

    void arm(Timer& timer, Millis deadline);  // arms or moves the deadline
    void cancel(Timer& timer);                // no-op when not armed
    // Fires (disarms, then calls on_timer) every timer with deadline <= now. A callback may arm
    // or cancel any timer, including itself.
    std::size_t fire_expired(Millis now);
    // Earliest deadline, or -1 when empty.
    Millis next_deadline() const { return heap_.empty() ? -1 : heap_.front()->deadline_; }
    std::size_t size() const { return heap_.size(); }

private:
    void sift_up(std::size_t index);
    void sift_down(std::size_t index);
    void place(std::size_t index, Timer* timer);
    void remove_at(std::size_t index);
    std::vector<Timer*> heap_;
};

// A timer that calls a member function of its owner.
template <class Owner, void (Owner::*Method)()>
class MemberTimer final : public Timer {
public:
    explicit MemberTimer(Owner& owner) : owner_(owner) {}
    ~MemberTimer() = default;
    void on_timer() override { (owner_.*Method)(); }

private:
    Owner& owner_;
};

}  // namespace passgate::reactor
