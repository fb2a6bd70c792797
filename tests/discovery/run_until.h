#pragma once
// Runs a test's loop until a condition holds, within a bound (every discovery test's loop has one).

#include "reactor/loop.h"
#include "reactor/timer.h"

#include <chrono>
#include <functional>

namespace discovery_test {

// Stops the loop once `until` holds or the deadline has passed, checking every 2 ms.
class StopWhen final : public passgate::reactor::Timer {
public:
    StopWhen(passgate::reactor::Loop& loop, std::function<bool()> until, std::chrono::milliseconds bound)
        : loop_(loop), until_(std::move(until)), deadline_(passgate::reactor::monotonic_millis() + bound.count()) {}
    void on_timer() override {
        if (until_() || passgate::reactor::monotonic_millis() >= deadline_) {
            loop_.stop();
            return;
        }
        loop_.arm_timer(*this, passgate::reactor::monotonic_millis() + 2);
    }

private:
    passgate::reactor::Loop& loop_;
    std::function<bool()> until_;
    passgate::reactor::Millis deadline_;
};

inline bool run_until(passgate::reactor::Loop& loop, const std::function<bool()>& until,
                      std::chrono::milliseconds bound) {
    StopWhen stopper(loop, until, bound);
    loop.arm_timer(stopper, 0);
    loop.run();
    return until();
}

inline void run_for(passgate::reactor::Loop& loop, std::chrono::milliseconds duration) {
    run_until(loop, [] { return false; }, duration);
}

}  // namespace discovery_test
