#include "reactor/spsc_ring.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using passgate::reactor::SpscRing;

TEST_CASE("an SPSC ring holds exactly its capacity, in order, and refuses when full", "[spsc_ring]") {
    SpscRing<int> ring(3);
    CHECK(ring.empty());
    CHECK(ring.front() == nullptr);
    for (int i = 1; i <= 3; ++i) CHECK(ring.try_push(int{i}));
    CHECK(ring.full());
    CHECK_FALSE(ring.try_push(4));
    REQUIRE(ring.front() != nullptr);
    CHECK(*ring.front() == 1);
    ring.pop();
    CHECK_FALSE(ring.full());
    CHECK(ring.try_push(5));
    for (const int expected : {2, 3, 5}) {
        REQUIRE(ring.front() != nullptr);
        CHECK(*ring.front() == expected);
        ring.pop();
    }
    CHECK(ring.empty());
}

TEST_CASE("an SPSC ring leaves a refused value with the caller and frees popped ones",
          "[spsc_ring]") {
    SpscRing<std::unique_ptr<int>> ring(1);
    auto first = std::make_unique<int>(1);
    auto second = std::make_unique<int>(2);
    REQUIRE(ring.try_push(std::move(first)));
    CHECK_FALSE(ring.try_push(std::move(second)));
    REQUIRE(second != nullptr);
    std::unique_ptr<int>* front = ring.front();
    REQUIRE(front != nullptr);
    ring.pop();
    CHECK(*front == nullptr);  // the slot was reset by the consumer: its value freed there
    CHECK_THROWS_AS(SpscRing<int>(0), std::invalid_argument);
}

TEST_CASE("an SPSC ring carries 100000 values between two threads, each once and in order",
          "[spsc_ring]") {
    SpscRing<std::string> ring(64);
    constexpr int total = 100000;
    std::thread producer([&] {
        for (int i = 0; i < total; ++i) {
            std::string value = std::to_string(i);
            while (!ring.try_push(std::move(value))) std::this_thread::yield();
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int next = 0;
    while (next < total) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::string* value = ring.front();
        if (value == nullptr) {
            std::this_thread::yield();
            continue;
        }
        REQUIRE(*value == std::to_string(next));
        ring.pop();
        ++next;
    }
    producer.join();
    CHECK(ring.empty());
}

namespace {
// Holds a "buffer" like std::string does: assigning an empty one keeps the buffer it had (as
// std::string's move assignment from a short string does), only the destructor gives it back.
struct KeepsBuffer {
    static inline int buffers_held = 0;
    bool has_buffer = false;
    KeepsBuffer() noexcept = default;
    explicit KeepsBuffer(bool buffer) : has_buffer(buffer) { buffers_held += buffer ? 1 : 0; }
    KeepsBuffer(KeepsBuffer&& other) noexcept : has_buffer(std::exchange(other.has_buffer, false)) {}
    KeepsBuffer& operator=(KeepsBuffer&& other) noexcept {
        if (other.has_buffer) {
            if (has_buffer) --buffers_held;
            has_buffer = std::exchange(other.has_buffer, false);
        }
        return *this;
    }
    ~KeepsBuffer() { buffers_held -= has_buffer ? 1 : 0; }
};
}  // namespace

TEST_CASE("an SPSC ring's popped slot keeps no memory of the value it held", "[spsc_ring]") {
    SpscRing<KeepsBuffer> ring(4);
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 4; ++i) REQUIRE(ring.try_push(KeepsBuffer(true)));
        CHECK(KeepsBuffer::buffers_held == 4);
        // Read in place and popped, as the log writers do (they copy the text out).
        while (KeepsBuffer* front = ring.front()) {
            CHECK(front->has_buffer);
            ring.pop();
        }
        // Every value was destroyed by pop(); a slot that kept its buffer would count here.
        CHECK(KeepsBuffer::buffers_held == 0);
    }
}
