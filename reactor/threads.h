#pragma once

#include <vector>

namespace passgate::reactor {

// Number of CPUs this process may run on (sched_getaffinity), at least 1.
unsigned usable_cpus();
// Pins the calling thread to the index-th CPU of the process's affinity set (wrapping around).
// Returns the CPU number, or -1 with errno set if pinning failed (not fatal: the thread still
// runs, on any CPU of the set).
int pin_current_thread(unsigned index);
// The CPU pin_current_thread(index) picks for each index in [0, count): the index-th CPU of the
// affinity set, wrapping around. Empty when the affinity set cannot be read.
std::vector<int> pinned_cpus(unsigned count);

}  // namespace passgate::reactor
