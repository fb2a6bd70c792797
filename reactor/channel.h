#pragma once
// A bounded single-producer single-consumer channel between threads, with an eventfd doorbell
// that the consumer's loop watches. Used for control messages (config hand-over, shutdown), not
// per connection. try_send refuses when full: the bound is explicit and the sender decides.
// The queue is reactor::SpscRing (spsc_ring.h); this adds the doorbell.

#include "reactor/fd.h"
#include "reactor/loop.h"
#include "reactor/spsc_ring.h"
#include "reactor/system_error.h"

#include <poll.h>
#include <sys/eventfd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace passgate::reactor {

template <class T>
class Channel {
public:
    explicit Channel(std::size_t capacity)
        : ring_(capacity), doorbell_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (!doorbell_) throw_errno("eventfd");
    }
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    // Producer side. False when the channel is full: the message is not taken, and stays with
    // the caller (it is moved from only when sent), so the caller can keep it and retry.
    bool try_send(T&& message) {
        if (ring_.full()) return false;
        ring_.push(std::optional<T>(std::move(message)));
        const std::uint64_t one = 1;
        // A full eventfd counter (2^64-2) cannot happen: the consumer resets it on every drain.
        [[maybe_unused]] const ssize_t written = ::write(doorbell_.get(), &one, sizeof one);
        return true;
    }

    // Consumer side. Hands the oldest message to `consume` (as T&&) and frees its slot; false
    // when the channel is empty. The message goes from its slot straight to the handler: no
    // std::optional<T> in between, in which g++ 12 at -O3 sees "uninitialized" members of a
    // std::variant message where there are none (-Werror=uninitialized).
    template <class Consume>
    bool receive_one(Consume&& consume) {
        std::optional<T>* slot = ring_.front();
        if (slot == nullptr) return false;
        consume(std::move(**slot));
        ring_.pop();
        return true;
    }

    std::optional<T> try_receive() {
        std::optional<T>* slot = ring_.front();
        if (slot == nullptr) return std::nullopt;
        // Moved as the optional (not as a T): g++ 12 -O2 then sees no "uninitialized" member of
        // a std::variant message where there is none.
        std::optional<T> message = std::move(*slot);
        ring_.pop();
        return message;
    }

    int doorbell_fd() const { return doorbell_.get(); }
    void reset_doorbell() {
        std::uint64_t count = 0;
        [[maybe_unused]] const ssize_t got = ::read(doorbell_.get(), &count, sizeof count);
    }

private:
    SpscRing<std::optional<T>> ring_;  // a free slot holds nullopt
    Fd doorbell_;
};

// Runs `handler` in the consumer's loop for each message that arrives on `channel`.
template <class T>
class ChannelReceiver final : public WatchHandler {
public:
    ChannelReceiver(Loop& loop, Channel<T>& channel, std::function<void(T)> handler)
        : channel_(channel), handler_(std::move(handler)), watch_(loop, *this) {
        watch_.poll(channel_.doorbell_fd(), POLLIN, true);
    }
    ~ChannelReceiver() = default;

    // Drains everything queued (also useful right before shutdown).
    void drain() {
        channel_.reset_doorbell();
        while (channel_.receive_one([this](T&& message) { handler_(std::move(message)); })) {
        }
    }

    void on_watch(int result) override {
        if (result < 0) throw_errno("poll on channel doorbell", -result);
        drain();
    }

private:
    Channel<T>& channel_;
    std::function<void(T)> handler_;
    Watch watch_;
};

}  // namespace passgate::reactor
