#pragma once
// Accepts on one listening socket with multishot accept. Accept errors (EMFILE, ENFILE, ENOBUFS)
// end the multishot operation; the acceptor then backs off (doubling, 10 ms to 1 s) instead of
// spinning, and re-arms.

#include "reactor/fd.h"
#include "reactor/loop.h"

#include <cstdint>
#include <functional>

namespace passgate::reactor {

class Acceptor final : public WatchHandler, private Timer {
public:
    using OnAccept = std::function<void(Fd)>;
    using OnError = std::function<void(int error)>;  // an errno value, e.g. EMFILE
    // `listen_fd` stays owned by the caller and must outlive the acceptor. `on_error` (optional)
    // hears of every accept error, for the owner's metrics and logs; it must not
    // destroy the acceptor.
    // `mode` one_at_a_time: an owner that pauses at a bound from on_accept holds at most that
    // many (multishot takes the whole listen queue in one go, before a pause can act).
    Acceptor(Loop& loop, int listen_fd, OnAccept on_accept, OnError on_error = {},
             Watch::AcceptMode mode = Watch::AcceptMode::multishot);
    ~Acceptor() = default;

    void stop();  // stop accepting (the listening socket stays open)
    // Stops accepting without losing a connection: a socket the kernel accepted for the
    // operation in flight before the cancel took effect still goes to on_accept. finished()
    // once the operation's last completion came; the listening socket may then be closed.
    void finish();
    bool finished() const { return stopped_ && !watch_.active(); }
    // Stops taking connections off the listen queue for a while, without losing one (an accept
    // that raced with the cancel still goes to on_accept); the kernel queues new connections
    // meanwhile and, once its backlog is full, drops their SYNs (the clients retry). resume()
    // re-arms, also when called before the cancel came back. Both idempotent.
    void pause();
    void resume();
    bool paused() const { return paused_; }
    std::uint64_t accept_errors() const { return accept_errors_; }
    int last_error() const { return last_error_; }

    void on_watch(int result) override;

private:
    void on_timer() override;
    Loop& loop_;
    int listen_fd_;
    OnAccept on_accept_;
    OnError on_error_;
    Watch::AcceptMode mode_;
    Watch watch_;
    bool stopped_ = false;
    bool paused_ = false;
    Millis backoff_ = 0;
    std::uint64_t accept_errors_ = 0;
    int last_error_ = 0;
};

}  // namespace passgate::reactor
