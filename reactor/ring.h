#pragma once
// The io_uring of one thread. Set-up flags are chosen by probing the running kernel: the best of
// SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then none; the choice is reported in features().
//
// The fallbacks are what an older kernel gets (before 6.1: no DEFER_TASKRUN; before 5.19: no
// multishot accept). On a new kernel they would go untested, so the environment variable
// PASSGATE_IO_URING=baseline forces them: no set-up flags and one-shot accepts. The tests run once
// in that mode (meson suite `fallback`).

#include <liburing.h>

#include <string>

namespace passgate::reactor {

struct RingOptions {
    unsigned sq_entries = 1024;
    unsigned cq_entries = 8192;  // large CQ: multishot ops post many completions per submission
    // The oldest supported kernel's set-up: no flags, one-shot accepts. Defaults to whether
    // PASSGATE_IO_URING=baseline is set (any other value is refused, see baseline_from_environment).
    bool baseline = baseline_from_environment();

    // PASSGATE_IO_URING unset: false; "baseline": true; anything else throws std::invalid_argument
    // naming the variable and the value, rather than running in a mode nobody asked for.
    static bool baseline_from_environment();
};

struct RingFeatures {
    bool single_issuer = false;
    bool defer_taskrun = false;
    bool coop_taskrun = false;
    bool ext_arg = false;  // wait with a timeout without a timeout SQE
    bool multishot_accept = true;  // cleared by the first accept that the kernel refuses
    // close(2) as a ring operation, where the kernel has it (probed; off in baseline mode, so
    // that the plain system-call path stays tested).
    bool async_close = false;
    bool cqe_skip = false;  // IOSQE_CQE_SKIP_SUCCESS: fire-and-forget operations post no CQE
    bool baseline = false;         // forced by RingOptions::baseline
    unsigned sq_entries = 0;
    unsigned cq_entries = 0;
    std::string describe() const;
};

class Ring {
public:
    explicit Ring(const RingOptions& options);
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring();

    io_uring* get() { return &ring_; }
    const RingFeatures& features() const { return features_; }
    RingFeatures& mutable_features() { return features_; }

private:
    io_uring ring_{};
    RingFeatures features_;
};

}  // namespace passgate::reactor
