#pragma once
// A bounded single-producer single-consumer ring between two threads: the one queue type behind
// reactor::Channel (control messages to a worker's loop) and the log writers (a worker's access
// log records, src/observe/access_log.h). No lock and no allocation after construction; when the
// ring is full the producer is told so (full() / try_push() false) and decides: Channel hands the
// message back to the sender, the logs drop and count the line.
//
// Positions count up forever (64 bits do not wrap); slot = position % capacity. The producer
// keeps its own copy of the consumer's position and rereads the shared one only when the ring
// looks full, so the two threads touch each other's cache line rarely.
//
// Publication (the producer's store of tail_, the consumer's load of it in empty()) is seq_cst,
// not just release/acquire, so that a consumer that sleeps can use the simplest protocol: it
// stores "asleep" (seq_cst) and then checks empty(); a producer pushes and then loads "asleep"
// (seq_cst): in the single total order one of the two sees the other's store, so no element is
// left behind a sleeping consumer. (AccessLog relies on this; Channel rings an eventfd instead.)

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace passgate::reactor {

template <class T>
class SpscRing {
public:
    // `capacity`: elements the ring holds when full, at least 1. T must be default-constructible
    // and move-assignable: a free slot holds a T{}.
    static_assert(std::is_nothrow_default_constructible_v<T>, "pop() makes a free slot's T{} in place");
    explicit SpscRing(std::size_t capacity) : slots_(capacity) {
        if (capacity == 0) throw std::invalid_argument("SpscRing: capacity must be at least 1");
    }
    SpscRing(const SpscRing&) = delete;
    SpscRing& operator=(const SpscRing&) = delete;

    std::size_t capacity() const { return slots_.size(); }

    // ----- producer thread

    bool full() {
        const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
        if (tail - head_seen_ < slots_.size()) return false;
        head_seen_ = head_.load(std::memory_order_acquire);
        return tail - head_seen_ == slots_.size();
    }
    // Precondition: !full() (just checked by this producer; the consumer only makes room).
    void push(T&& value) {
        const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
        assert(tail - head_seen_ < slots_.size());
        slots_[tail % slots_.size()] = std::move(value);
        tail_.store(tail + 1, std::memory_order_seq_cst);  // see the header: sleep protocols
    }
    // False when full: `value` is then not moved from, and stays with the caller.
    bool try_push(T&& value) {
        if (full()) return false;
        push(std::move(value));
        return true;
    }

    // ----- consumer thread

    // The oldest element, or nullptr when empty. Stays valid (and in place) until pop().
    T* front() {
        const std::uint64_t head = head_.load(std::memory_order_relaxed);
        if (head == tail_.load(std::memory_order_acquire)) return nullptr;
        return &slots_[head % slots_.size()];
    }
    // Precondition: front() != nullptr. Destroys the element here, on the consumer thread (what it
    // owns is freed by the consumer), then hands the slot back to the producer.
    void pop() {
        const std::uint64_t head = head_.load(std::memory_order_relaxed);
        assert(head != tail_.load(std::memory_order_relaxed));
        // Destroyed and made anew, not assigned T{}: assigning an empty std::string keeps the
        // old one's heap buffer, so every slot would hold on to the longest line it ever carried
        // (4096 slots of long log lines: tens of MiB that RSS never gives back).
        T& slot = slots_[head % slots_.size()];
        std::destroy_at(&slot);
        std::construct_at(&slot);
        head_.store(head + 1, std::memory_order_release);
    }
    bool empty() const {
        return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_seq_cst);
    }

private:
    std::vector<T> slots_;
    alignas(64) std::atomic<std::uint64_t> head_{0};  // written by the consumer
    alignas(64) std::atomic<std::uint64_t> tail_{0};  // written by the producer
    std::uint64_t head_seen_ = 0;                     // the producer's copy of head_
};

}  // namespace passgate::reactor
