#pragma once
// Signals as events: block them in every thread (call block_signals before starting any thread),
// then read them from a signalfd watched by one loop.

#include "reactor/fd.h"
#include "reactor/loop.h"

#include <functional>
#include <initializer_list>

namespace passgate::reactor {

void block_signals(std::initializer_list<int> signals);

class SignalWatcher final : public WatchHandler {
public:
    SignalWatcher(Loop& loop, std::initializer_list<int> signals, std::function<void(int)> handler);
    ~SignalWatcher() = default;
    void on_watch(int result) override;

private:
    Fd fd_;
    std::function<void(int)> handler_;
    Watch watch_;
};

}  // namespace passgate::reactor
