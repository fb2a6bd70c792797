// Active health checks (see health_check.h). One Target per endpoint; its probe reads top to
// bottom: start_probe -> on_connected -> send_hello -> read_reply -> finish, each step waiting
// on one one-shot poll, and one deadline timer over the whole probe.

#include "src/discovery/health_check.h"

#include "reactor/fd.h"
#include "reactor/socket.h"
#include "src/wire/health_hello.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

namespace passgate {

std::string_view health_check_kind_name(HealthCheckKind kind) {
    switch (kind) {
        case HealthCheckKind::tcp: return "tcp";
        case HealthCheckKind::tls: return "tls";
    }
    return "unknown";
}

namespace {

std::string errno_text(int error) { return std::strerror(error); }

}  // namespace

class HealthChecker::Target {
public:
    Target(HealthChecker& checker, const config::Address& address)
        : checker_(checker), address_(address) {}
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    void schedule(reactor::Millis delay) { checker_.loop_.arm_timer_after(due_, delay); }
    const HealthStatus& status() const { return status_; }
    bool probing() const { return phase_ != Phase::idle; }

private:
    enum class Phase { idle, connecting, sending, reading };

    void start_probe() {
        started_ = checker_.loop_.now();
        reactor::ConnectStart attempt = reactor::start_connect(address_.sockaddr_ptr(), address_.length);
        if (!attempt.socket) {
            if (reactor::is_local_resource_error(attempt.error)) return skip(attempt.error);
            return finish(false, "connect: " + errno_text(attempt.error));
        }
        socket_ = std::move(attempt.socket);
        // Close with RST, not FIN: no TIME_WAIT socket per probe (see health_check.h).
        const linger abort_on_close{1, 0};
        if (::setsockopt(socket_.get(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) != 0) {
            // Only a local failure can make this fail: the endpoint is not to blame.
            return skip(errno);
        }
        checker_.loop_.arm_timer_after(deadline_, checker_.options_.timeout.count());
        if (attempt.error == 0) return on_connected();  // loopback may connect at once
        phase_ = Phase::connecting;
        watch_.poll(socket_.get(), POLLOUT, false);
    }

    void on_watch(int result) {
        switch (phase_) {
            case Phase::connecting: {
                const int error = result < 0 ? -result : reactor::socket_error(socket_.get());
                if (reactor::is_local_resource_error(error)) return skip(error);
                if (error != 0) return finish(false, "connect: " + errno_text(error));
                return on_connected();
            }
            case Phase::sending:
                if (result < 0) return finish(false, "tls: poll: " + errno_text(-result));
                return send_hello();
            case Phase::reading:
                if (result < 0) return finish(false, "tls: poll: " + errno_text(-result));
                return read_reply();
            case Phase::idle: return;  // not reached: the watch is stopped when a probe ends
        }
    }

    void on_connected() {
        if (checker_.options_.kind == HealthCheckKind::tcp) return finish(true, "connected");
        HelloEntropy entropy;
        for (auto* field : {&entropy.random, &entropy.session_id, &entropy.key_share})
            for (std::uint8_t& byte : *field) byte = static_cast<std::uint8_t>(checker_.random_());
        hello_ = make_health_client_hello(checker_.options_.sni, entropy);
        sent_ = 0;
        received_ = 0;
        send_hello();
    }

    void send_hello() {
        while (sent_ < hello_.size()) {
            const ssize_t n = ::send(socket_.get(), hello_.data() + sent_, hello_.size() - sent_,
                                     MSG_NOSIGNAL);
            if (n >= 0) {
                sent_ += static_cast<std::size_t>(n);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {  // a ~300-byte hello fits a fresh socket; handled all the same
                phase_ = Phase::sending;
                return watch_.poll(socket_.get(), POLLOUT, false);
            }
            return finish(false, "tls: send: " + errno_text(errno));
        }
        hello_.clear();
        phase_ = Phase::reading;
        watch_.poll(socket_.get(), POLLIN, false);
    }

    void read_reply() {
        for (;;) {
            const ssize_t n = ::recv(socket_.get(), reply_.data() + received_,
                                     reply_.size() - received_, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return watch_.poll(socket_.get(), POLLIN, false);
                return finish(false, "tls: recv: " + errno_text(errno));
            }
            if (n == 0) return finish(false, "tls: closed before a ServerHello");
            received_ += static_cast<std::size_t>(n);
            switch (classify_server_reply(std::span(reply_.data(), received_))) {
                case ServerReply::need_more:
                    // A full buffer always has a verdict, so the next recv has room.
                    assert(received_ < reply_.size());
                    break;
                case ServerReply::server_hello: return finish(true, "tls: ServerHello");
                case ServerReply::alert: return finish(false, "tls: alert");
                case ServerReply::not_server_hello: return finish(false, "tls: not a ServerHello");
            }
        }
    }

    void on_deadline() {
        switch (phase_) {
            case Phase::connecting: return finish(false, "connect: timeout");
            case Phase::sending: return finish(false, "tls: timeout sending the ClientHello");
            case Phase::reading: return finish(false, "tls: timeout waiting for a ServerHello");
            case Phase::idle: return;  // not reached: the deadline is cancelled when a probe ends
        }
    }

    // Ends a probe that could not run for a local shortage: no verdict on the endpoint (its
    // counts and state stay), counted apart, and the next probe at the usual interval.
    void skip(int error) {
        watch_.stop();
        socket_.reset();
        checker_.loop_.cancel_timer(deadline_);
        phase_ = Phase::idle;
        hello_.clear();
        ++status_.local_errors;
        const reactor::Millis now = checker_.loop_.now();
        checker_.loop_.arm_timer(due_, std::max(started_ + checker_.next_delay(), now));
        if (!checker_.options_.local_error) return;
        const config::Address address = address_;
        const auto callback = checker_.options_.local_error;  // survives the checker's destruction
        callback(address, error);
    }

    // Ends the probe, counts its result and schedules the next one. Calls the checker's callback
    // last, with copies: the callback may destroy this target (set_targets) or the checker.
    void finish(bool passed, std::string reason) {
        watch_.stop();
        socket_.reset();
        checker_.loop_.cancel_timer(deadline_);
        phase_ = Phase::idle;
        hello_.clear();

        const HealthCheckOptions& options = checker_.options_;
        ++status_.probes;
        status_.last_reason = reason;
        bool changed = false;
        if (passed) {
            status_.consecutive_failures = 0;
            ++status_.consecutive_passes;
            if (!status_.healthy && status_.consecutive_passes >= std::max(options.healthy_threshold, 1U)) {
                status_.healthy = true;
                changed = true;
            }
        } else {
            status_.consecutive_passes = 0;
            ++status_.consecutive_failures;
            if (status_.healthy &&
                status_.consecutive_failures >= std::max(options.unhealthy_threshold, 1U)) {
                status_.healthy = false;
                changed = true;
            }
        }
        // The interval runs from the start of this probe; a probe slower than it is followed
        // by the next one at once.
        const reactor::Millis now = checker_.loop_.now();
        const reactor::Millis due = started_ + checker_.next_delay();
        checker_.loop_.arm_timer(due_, std::max(due, now));

        if (!changed || !checker_.changed_) return;
        const config::Address address = address_;
        const bool healthy = status_.healthy;
        const Changed callback = checker_.changed_;  // survives the checker's destruction
        callback(address, healthy, reason);
    }

    HealthChecker& checker_;
    const config::Address address_;
    HealthStatus status_;
    Phase phase_ = Phase::idle;
    reactor::Millis started_ = 0;
    std::vector<std::uint8_t> hello_;
    std::size_t sent_ = 0;
    std::array<std::uint8_t, kServerReplyBytes> reply_{};  // all a verdict needs; never more
    std::size_t received_ = 0;
    // Declared before the watch: the watch is stopped (its poll cancelled) before the close.
    reactor::Fd socket_;
    reactor::MemberWatchHandler<Target, &Target::on_watch> handler_{*this};
    reactor::Watch watch_{checker_.loop_, handler_};
    reactor::MemberTimer<Target, &Target::start_probe> due_{*this};
    reactor::MemberTimer<Target, &Target::on_deadline> deadline_{*this};
};

HealthChecker::HealthChecker(reactor::Loop& loop, HealthCheckOptions options, Changed changed)
    : loop_(loop), options_(std::move(options)), changed_(std::move(changed)),
      random_(std::random_device{}()) {}

HealthChecker::~HealthChecker() = default;

void HealthChecker::set_targets(const std::vector<config::Address>& targets) {
    std::map<std::string, std::unique_ptr<Target>> next;
    for (const config::Address& address : targets) {
        std::string key = address.to_string();
        if (next.contains(key)) continue;
        auto kept = targets_.find(key);
        if (kept != targets_.end()) {
            next.emplace(std::move(key), std::move(kept->second));
            continue;
        }
        auto target = std::make_unique<Target>(*this, address);
        target->schedule(first_delay());
        next.emplace(std::move(key), std::move(target));
    }
    // Dropped targets are destroyed here, with their probes in flight cancelled.
    targets_ = std::move(next);
}

std::optional<bool> HealthChecker::healthy(const config::Address& address) const {
    const auto found = targets_.find(address.to_string());
    if (found == targets_.end()) return std::nullopt;
    return found->second->status().healthy;
}

std::optional<HealthStatus> HealthChecker::status(const config::Address& address) const {
    const auto found = targets_.find(address.to_string());
    if (found == targets_.end()) return std::nullopt;
    return found->second->status();
}

std::size_t HealthChecker::probes_in_flight() const {
    return static_cast<std::size_t>(std::count_if(
        targets_.begin(), targets_.end(), [](const auto& entry) { return entry.second->probing(); }));
}

reactor::Millis HealthChecker::first_delay() {
    const reactor::Millis spread = options_.interval.count() / 10;
    return std::uniform_int_distribution<reactor::Millis>(0, spread)(random_);
}

reactor::Millis HealthChecker::next_delay() {
    const reactor::Millis interval = options_.interval.count();
    const reactor::Millis jitter = interval / 10;
    return std::uniform_int_distribution<reactor::Millis>(interval - jitter, interval + jitter)(random_);
}

}  // namespace passgate
