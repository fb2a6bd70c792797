#pragma once
// A real dnsmasq (Debian's dnsmasq-base) for tests: serves the .test domain from a hosts file
// (re-read on SIGHUP) and --srv-host records, with no upstream servers (other names under .test
// are NXDOMAIN), on a free 127.0.0.1 port. Stopped by its own PID.

#include "tests/support/process.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace integration {

class Dnsmasq {
public:
    // Starts it and waits (bounded) until it answers; REQUIREs that it does.
    Dnsmasq(const std::string& hosts, const std::vector<std::string>& srv_hosts, int ttl_seconds);
    ~Dnsmasq();
    Dnsmasq(const Dnsmasq&) = delete;
    Dnsmasq& operator=(const Dnsmasq&) = delete;

    std::uint16_t port() const { return port_; }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    // Rewrites the hosts file and tells dnsmasq to re-read it (SIGHUP).
    void rewrite_hosts(const std::string& hosts);
    // Stops it (SIGTERM): queries go unanswered from then on.
    void stop();

private:
    TempDir dir_;
    std::uint16_t port_;
    std::string hosts_path_;
    std::optional<Process> process_;
};

// Sends one A query for "ready.test" over UDP to 127.0.0.1:port and waits up to 100 ms for any answer.
bool dns_answers(std::uint16_t port);

}  // namespace integration
