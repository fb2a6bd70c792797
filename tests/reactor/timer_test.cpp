#include "reactor/timer.h"

#include <catch2/catch.hpp>

#include <memory>
#include <random>
#include <vector>

using passgate::reactor::Millis;
using passgate::reactor::Timer;
using passgate::reactor::TimerHeap;

namespace {
struct Recorder final : Timer {
    explicit Recorder(std::vector<int>& log, int id) : log_(log), id_(id) {}
    void on_timer() override { log_.push_back(id_); }
    std::vector<int>& log_;
    int id_;
};
}  // namespace

TEST_CASE("timers fire in deadline order and only when due") {
    TimerHeap heap;
    std::vector<int> log;
    Recorder a(log, 1), b(log, 2), c(log, 3);
    heap.arm(a, 30);
    heap.arm(b, 10);
    heap.arm(c, 20);
    CHECK(heap.next_deadline() == 10);
    CHECK(heap.fire_expired(9) == 0);
    CHECK(heap.fire_expired(20) == 2);
    CHECK(log == std::vector<int>{2, 3});
    CHECK(a.armed());
    CHECK_FALSE(b.armed());
    CHECK(heap.fire_expired(100) == 1);
    CHECK(log == std::vector<int>{2, 3, 1});
    CHECK(heap.next_deadline() == -1);
}

TEST_CASE("re-arming moves a deadline both ways; cancel and destruction remove it") {
    TimerHeap heap;
    std::vector<int> log;
    Recorder a(log, 1), b(log, 2);
    heap.arm(a, 10);
    heap.arm(b, 20);
    heap.arm(a, 30);  // later
    CHECK(heap.next_deadline() == 20);
    heap.arm(a, 5);  // earlier
    CHECK(heap.next_deadline() == 5);
    heap.cancel(a);
    CHECK_FALSE(a.armed());
    CHECK(heap.size() == 1);
    {
        Recorder temporary(log, 3);
        heap.arm(temporary, 1);
        CHECK(heap.size() == 2);
    }  // destroyed while armed
    CHECK(heap.size() == 1);
    heap.fire_expired(100);
    CHECK(log == std::vector<int>{2});
}

TEST_CASE("a timer callback may re-arm itself") {
    TimerHeap heap;
    struct Repeater final : Timer {
        TimerHeap& heap;
        int fired = 0;
        explicit Repeater(TimerHeap& h) : heap(h) {}
        void on_timer() override {
            if (++fired < 3) heap.arm(*this, deadline() + 10);
        }
    } repeater(heap);
    heap.arm(repeater, 10);
    heap.fire_expired(100);
    CHECK(repeater.fired == 3);
    CHECK_FALSE(repeater.armed());
}

TEST_CASE("heap order holds under random arm/cancel") {
    TimerHeap heap;
    std::vector<int> log;
    std::vector<std::unique_ptr<Recorder>> timers;
    for (int i = 0; i < 500; ++i) timers.push_back(std::make_unique<Recorder>(log, i));
    std::mt19937 random(42);
    std::vector<Millis> deadline(timers.size(), -1);
    for (int step = 0; step < 5000; ++step) {
        const std::size_t index = random() % timers.size();
        if (random() % 4 == 0) {
            heap.cancel(*timers[index]);
            deadline[index] = -1;
        } else {
            deadline[index] = static_cast<Millis>(random() % 100000);
            heap.arm(*timers[index], deadline[index]);
        }
    }
    heap.fire_expired(1'000'000);
    Millis previous = -1;
    std::size_t expected = 0;
    for (Millis d : deadline) expected += d >= 0 ? 1 : 0;
    REQUIRE(log.size() == expected);
    for (int id : log) {
        CHECK(deadline[static_cast<std::size_t>(id)] >= previous);
        previous = deadline[static_cast<std::size_t>(id)];
    }
}
