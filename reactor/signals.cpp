#include "reactor/signals.h"

#include "reactor/system_error.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

namespace passgate::reactor {

namespace {
sigset_t make_set(std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : signals) sigaddset(&set, signal);
    return set;
}
}  // namespace

void block_signals(std::initializer_list<int> signals) {
    const sigset_t set = make_set(signals);
    const int result = pthread_sigmask(SIG_BLOCK, &set, nullptr);
    if (result != 0) throw_errno("pthread_sigmask", result);
}

SignalWatcher::SignalWatcher(Loop& loop, std::initializer_list<int> signals,
                             std::function<void(int)> handler)
    : handler_(std::move(handler)), watch_(loop, *this) {
    const sigset_t set = make_set(signals);
    fd_ = Fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd_) throw_errno("signalfd");
    watch_.poll(fd_.get(), POLLIN, true);
}

void SignalWatcher::on_watch(int result) {
    if (result < 0) throw_errno("poll on signalfd", -result);
    for (;;) {
        signalfd_siginfo info{};
        const ssize_t got = ::read(fd_.get(), &info, sizeof info);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) return;
        if (got != static_cast<ssize_t>(sizeof info)) throw_errno("read signalfd");
        handler_(static_cast<int>(info.ssi_signo));
    }
}

}  // namespace passgate::reactor
