#include "reactor/acceptor.h"

#include <algorithm>

namespace passgate::reactor {

Acceptor::Acceptor(Loop& loop, int listen_fd, OnAccept on_accept, OnError on_error)
    : loop_(loop),
      listen_fd_(listen_fd),
      on_accept_(std::move(on_accept)),
      on_error_(std::move(on_error)),
      watch_(loop, *this) {
    watch_.accept(listen_fd_);
}

void Acceptor::stop() {
    stopped_ = true;
    watch_.stop();
    loop_.cancel_timer(*this);
}

void Acceptor::finish() {
    stopped_ = true;
    watch_.cancel();
    loop_.cancel_timer(*this);
}

void Acceptor::on_watch(int result) {
    if (result >= 0) {
        backoff_ = 0;
        on_accept_(Fd(result));
        return;
    }
    if (result == -ECANCELED || stopped_) return;
    ++accept_errors_;
    last_error_ = -result;
    if (on_error_) on_error_(-result);
    if (result == -ECONNABORTED || result == -EINTR) {
        if (!watch_.active()) watch_.accept(listen_fd_);
        return;
    }
    // Out of descriptors or memory: pause, then try again. The pending connections wait in the
    // listen backlog meanwhile.
    watch_.stop();
    backoff_ = std::clamp<Millis>(backoff_ * 2, 10, 1000);
    loop_.arm_timer_after(*this, backoff_);
}

void Acceptor::on_timer() {
    if (stopped_ || watch_.active()) return;
    watch_.accept(listen_fd_);
}

}  // namespace passgate::reactor
