#pragma once
// The io_uring of one thread. Set-up flags are chosen by probing the running kernel: the best of
// SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then none; the choice is reported in features().

#include <liburing.h>

#include <string>

namespace passgate::reactor {

struct RingOptions {
    unsigned sq_entries = 1024;
    unsigned cq_entries = 8192;  // large CQ: multishot ops post many completions per submission
};

struct RingFeatures {
    bool single_issuer = false;
    bool defer_taskrun = false;
    bool coop_taskrun = false;
    bool ext_arg = false;  // wait with a timeout without a timeout SQE
    bool multishot_accept = true;  // cleared by the first accept that the kernel refuses
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
