#include "reactor/acceptor.h"

#include <algorithm>

namespace passgate::reactor {

Acceptor::Acceptor(Loop& loop, int listen_fd, OnAccept on_accept, OnError on_error, Watch::AcceptMode mode)
    : loop_(loop),
      listen_fd_(listen_fd),
      on_accept_(std::move(on_accept)),
      on_error_(std::move(on_error)),
      mode_(mode),
      watch_(loop, *this) {
    watch_.accept(listen_fd_, mode_);
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

void Acceptor::pause() {
    if (stopped_ || paused_) return;
    paused_ = true;
    watch_.cancel();
    loop_.cancel_timer(*this);
}

void Acceptor::resume() {
    if (stopped_ || !paused_) return;
    paused_ = false;
    // Still active: the cancel has not come back yet; on_watch re-arms when it does.
    if (!watch_.active()) watch_.accept(listen_fd_, mode_);
}

void Acceptor::on_watch(int result) {
    if (result >= 0 || result == -ECANCELED) {
        if (result >= 0) {
            backoff_ = 0;
            on_accept_(Fd(result));
        }
        // The last completion of a pause's cancel came back after a resume: accept again.
        if (!stopped_ && !paused_ && !watch_.active()) watch_.accept(listen_fd_, mode_);
        return;
    }
    if (stopped_ || paused_) return;
    ++accept_errors_;
    last_error_ = -result;
    if (on_error_) on_error_(-result);
    if (result == -ECONNABORTED || result == -EINTR) {
        if (!watch_.active()) watch_.accept(listen_fd_, mode_);
        return;
    }
    // Out of descriptors or memory: pause, then try again. The pending connections wait in the
    // listen backlog meanwhile.
    watch_.stop();
    backoff_ = std::clamp<Millis>(backoff_ * 2, 10, 1000);
    loop_.arm_timer_after(*this, backoff_);
}

void Acceptor::on_timer() {
    if (stopped_ || paused_ || watch_.active()) return;
    watch_.accept(listen_fd_, mode_);
}

}  // namespace passgate::reactor
