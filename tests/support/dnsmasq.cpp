#include "tests/support/dnsmasq.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

namespace integration {

// Sends one A query for "ready.test" over UDP and waits up to 100 ms for any answer.
bool dns_answers(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const unsigned char query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                   5, 'r', 'e', 'a', 'd', 'y', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    bool answered = false;
    if (::sendto(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&address), sizeof address) ==
        static_cast<ssize_t>(sizeof query)) {
        pollfd item{fd, POLLIN, 0};
        unsigned char reply[512];
        answered = ::poll(&item, 1, 100) == 1 && ::recv(fd, reply, sizeof reply, 0) >= 12 &&
                   reply[0] == 0x12 && reply[1] == 0x34;
    }
    ::close(fd);
    return answered;
}

Dnsmasq::Dnsmasq(const std::string& hosts, const std::vector<std::string>& srv_hosts, int ttl_seconds)
    : port_(free_port()), hosts_path_(dir_.file("hosts")) {
    write_file(hosts_path_, hosts);
    SpawnOptions options;
    options.argv = {"dnsmasq", "--no-daemon", "--conf-file=/dev/null",
                    "--port=" + std::to_string(port_), "--listen-address=127.0.0.1",
                    "--bind-interfaces", "--no-resolv", "--no-hosts",
                    "--addn-hosts=" + hosts_path_, "--local=/test/",
                    "--local-ttl=" + std::to_string(ttl_seconds), "--pid-file=",
                    // As root it would switch to the "dnsmasq" user, which cannot read the
                    // hosts file in our private temporary folder on reload.
                    "--user=root", "--log-facility=-"};
    for (const std::string& record : srv_hosts) options.argv.push_back("--srv-host=" + record);
    options.stdout_path = dir_.file("dnsmasq.out");
    options.stderr_path = dir_.file("dnsmasq.err");
    process_.emplace(options);
    const bool ready = wait_until([&] { return !process_->running() || dns_answers(port_); },
                                  Millis(10000), Millis(20));
    INFO("dnsmasq: " << process_->stderr_text());
    REQUIRE(ready);
    REQUIRE(process_->running());
}

Dnsmasq::~Dnsmasq() { stop(); }

void Dnsmasq::rewrite_hosts(const std::string& hosts) {
    write_file(hosts_path_, hosts);
    process_->send_signal(SIGHUP);
}

void Dnsmasq::stop() {
    if (process_) process_->terminate(Millis(2000));
    process_.reset();
}

}  // namespace integration
