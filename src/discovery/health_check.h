#pragma once
// Active health checks: probes a set of endpoints every `interval` from one loop (the control
// thread's, not one per worker) and reports each healthy/unhealthy transition.
//
//   tcp: a connect that completes within `timeout` passes.
//   tls: connect, send a ClientHello (src/wire/health_hello.h), and a TLS handshake record carrying a
//        ServerHello (or a HelloRetryRequest) within `timeout` passes; an alert, a close, any
//        other bytes or the timeout fail.
//
// Thresholds count consecutive results: a healthy endpoint turns unhealthy after
// `unhealthy_threshold` failures in a row, an unhealthy one healthy after `healthy_threshold`
// passes in a row (0 counts as 1). An endpoint has at most one probe in flight: a probe slower
// than the interval delays the next one. Probes are spread: each wait is the interval +-10%
// (random), and the first probe of a new endpoint waits a random 0..interval/10, so hundreds of
// endpoints added at once do not fire together nor stay in step.
//
// Probe sockets are closed with an RST (SO_LINGER 0): a checker connecting every few seconds to
// hundreds of endpoints would otherwise fill the port range with TIME_WAIT sockets.

#include "config/address.h"
#include "reactor/loop.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace passgate {

enum class HealthCheckKind { tcp, tls };

struct HealthCheckOptions {
    std::chrono::milliseconds interval{5000};
    std::chrono::milliseconds timeout{2000};
    unsigned healthy_threshold = 2;
    unsigned unhealthy_threshold = 3;
    HealthCheckKind kind = HealthCheckKind::tcp;
    std::string sni;  // tls: the server_name sent in the ClientHello; empty: none
    // A probe that could not run for a local shortage (reactor::is_local_resource_error: the
    // prober's EMFILE, ENFILE, ENOBUFS, ENOMEM) is neither a pass nor a failure: the endpoint's
    // state and counts stay as they were, and this hears of it (optional; for metrics and logs;
    // it must not destroy the checker).
    std::function<void(const config::Address&, int error)> local_error;
};

struct HealthStatus {
    bool healthy = true;
    unsigned consecutive_passes = 0;
    unsigned consecutive_failures = 0;
    std::uint64_t probes = 0;  // finished probes
    std::uint64_t local_errors = 0;  // probes not run for a local shortage (not in `probes`)
    std::string last_reason;   // of the last finished probe, e.g. "connected", "timeout"
};

class HealthChecker {
public:
    // Called on each transition, from inside the loop. `reason` says why, e.g.
    // "connect: Connection refused", "connect: timeout", "tls: alert", "tls: not a ServerHello".
    // The callback may call set_targets or destroy the checker.
    using Changed =
        std::function<void(const config::Address&, bool healthy, const std::string& reason)>;

    // `loop` must outlive the checker; all calls happen on the loop's thread.
    HealthChecker(reactor::Loop& loop, HealthCheckOptions options, Changed changed);
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;
    // Cancels the probes in flight and closes their sockets; no callback runs afterwards.
    ~HealthChecker();

    // Addresses that stay keep their state and schedule. New ones start healthy (traffic is not
    // refused at start-up; connect retry covers a dead endpoint until it is detected) and are
    // probed at once (after the small spread above). Removed ones are dropped silently, their
    // probe in flight cancelled. Duplicates count once.
    void set_targets(const std::vector<config::Address>& targets);

    // nullopt: not a target.
    std::optional<bool> healthy(const config::Address& address) const;
    std::optional<HealthStatus> status(const config::Address& address) const;
    std::size_t target_count() const { return targets_.size(); }
    std::size_t probes_in_flight() const;

private:
    class Target;

    reactor::Millis first_delay();
    reactor::Millis next_delay();

    reactor::Loop& loop_;
    const HealthCheckOptions options_;
    const Changed changed_;
    std::mt19937_64 random_;  // jitter and hello bytes: unpredictability is not needed
    std::map<std::string, std::unique_ptr<Target>> targets_;  // by Address::to_string()
};

std::string_view health_check_kind_name(HealthCheckKind kind);

}  // namespace passgate
