#include "reactor/threads.h"

#include <catch2/catch.hpp>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <thread>

using namespace passgate::reactor;

namespace {
// The CPUs the calling thread may run on (empty if that cannot be read).
cpu_set_t thread_affinity() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0) CPU_ZERO(&set);
    return set;
}

// Denies sched_setaffinity with EPERM for the calling thread only (seccomp filters are per
// thread without TSYNC), as SystemCallErrorNumber=EPERM does for a denied call under systemd.
bool deny_sched_setaffinity_in_this_thread() {
    sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_setaffinity, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog filter{static_cast<unsigned short>(sizeof program / sizeof program[0]), program};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) == 0;
}

// What one pinning attempt in a fresh thread saw (Catch2 assertions stay on the test's thread).
struct PinResult {
    bool filter_installed = true;
    int cpu = -2;
    int error = 0;
    cpu_set_t before{};
    cpu_set_t after{};
};

PinResult pin_in_new_thread(unsigned index, bool deny) {
    PinResult result;
    std::thread([&] {
        result.before = thread_affinity();
        if (deny) result.filter_installed = deny_sched_setaffinity_in_this_thread();
        errno = 0;
        result.cpu = pin_current_thread(index);
        result.error = errno;
        result.after = thread_affinity();
    }).join();
    return result;
}
}  // namespace

TEST_CASE("pin_current_thread pins the thread to one CPU of the process's set") {
    const unsigned cpus = usable_cpus();
    REQUIRE(cpus >= 1);
    for (unsigned index = 0; index < cpus + 1; ++index) {  // + 1: the index wraps around
        const PinResult pinned = pin_in_new_thread(index, false);
        REQUIRE(pinned.cpu >= 0);
        CHECK(CPU_COUNT(&pinned.after) == 1);
        CHECK(CPU_ISSET(pinned.cpu, &pinned.after));
        CHECK(CPU_ISSET(pinned.cpu, &pinned.before));
    }
}

TEST_CASE("pin_current_thread reports a denied sched_setaffinity as -1 with errno EPERM") {
    const PinResult denied = pin_in_new_thread(0, true);
    REQUIRE(denied.filter_installed);
    CHECK(denied.cpu == -1);
    CHECK(denied.error == EPERM);
    CHECK(CPU_EQUAL(&denied.before, &denied.after));  // unpinned: still runs on any CPU of its set
}
