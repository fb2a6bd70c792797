#pragma once
// Work done on a thread pinned to one CPU: on loopback the kernel processes the packets a thread
// sends (a connect's SYN among them) on that thread's CPU, which is what the reuseport CPU
// steering tests need. Header only: the reactor tests and the integration tests both use it.

#include <pthread.h>
#include <sched.h>

#include <functional>
#include <thread>

namespace test_support {

// Runs `work` on a new thread pinned to `cpu` and waits for it. False (and `work` not run) when
// the thread could not be pinned.
inline bool run_pinned(int cpu, const std::function<void()>& work) {
    bool pinned = false;
    std::thread([&] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
        if (pinned) work();
    }).join();
    return pinned;
}

}  // namespace test_support
