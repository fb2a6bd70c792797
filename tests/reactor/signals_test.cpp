#include "reactor/signals.h"

#include <catch2/catch.hpp>

#include <signal.h>

#include <vector>

using namespace passgate::reactor;

TEST_CASE("blocked signals arrive through the loop as events") {
    block_signals({SIGUSR1, SIGUSR2});
    Loop loop;
    std::vector<int> received;
    SignalWatcher watcher(loop, {SIGUSR1, SIGUSR2}, [&](int signal) {
        received.push_back(signal);
        if (received.size() == 2) loop.stop();
    });
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    REQUIRE(::kill(::getpid(), SIGUSR2) == 0);
    loop.run();
    REQUIRE(received.size() == 2);
    CHECK(std::count(received.begin(), received.end(), SIGUSR1) == 1);
    CHECK(std::count(received.begin(), received.end(), SIGUSR2) == 1);
}
