#include "reactor/threads.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>

#include <vector>

namespace passgate::reactor {

namespace {
std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    return cpus;
}
}  // namespace

unsigned usable_cpus() {
    const std::size_t count = allowed_cpus().size();
    return count == 0 ? 1 : static_cast<unsigned>(count);
}

std::vector<int> pinned_cpus(unsigned count) {
    const std::vector<int> cpus = allowed_cpus();
    std::vector<int> pinned;
    if (cpus.empty()) return pinned;
    for (unsigned index = 0; index < count; ++index) pinned.push_back(cpus[index % cpus.size()]);
    return pinned;
}

int pin_current_thread(unsigned index) {
    const std::vector<int> cpus = allowed_cpus();
    if (cpus.empty()) return -1;  // errno from sched_getaffinity
    const int cpu = cpus[index % cpus.size()];
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (const int error = pthread_setaffinity_np(pthread_self(), sizeof set, &set); error != 0) {
        errno = error;  // e.g. EPERM when a seccomp filter denies sched_setaffinity
        return -1;
    }
    return cpu;
}

}  // namespace passgate::reactor
