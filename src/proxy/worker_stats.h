#pragma once
// Per-worker totals, written only by that worker (metrics::OwnedCounter) and read by the control
// thread for STATUS lines and scrapes.

#include "metrics/owned_counter.h"

namespace passgate {

using metrics::OwnedCounter;

struct alignas(64) WorkerStats {
    OwnedCounter accepted;
    OwnedCounter accept_pauses;  // times the population bound stopped accepting
    OwnedCounter accept_errors;  // failed accepts (EMFILE, ENFILE, ENOBUFS, ...): the acceptor backs off
    OwnedCounter active;
    OwnedCounter pipes_in_use;
    OwnedCounter pipes_idle;
    OwnedCounter loop_completions;
    OwnedCounter loop_submissions;
    OwnedCounter hello_memory;  // bytes of hello buffers held (charged against max_hello_memory)
};

}  // namespace passgate
