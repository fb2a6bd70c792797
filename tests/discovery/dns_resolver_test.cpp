// DnsResolver against a real dnsmasq (started per test on a free 127.0.0.1 port, stopped by its
// PID), plus its pure helpers. Every wait is bounded.

#include "src/discovery/dns_resolver.h"

#include "tests/support/dnsmasq.h"
#include "tests/support/process.h"

#include "tests/discovery/run_until.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using passgate::DnsRecord;
using passgate::DnsResolver;
using passgate::DnsResolverOptions;
using passgate::DnsResult;
using passgate::reactor::Loop;
using Millis = std::chrono::milliseconds;

namespace {

using discovery_test::run_for;
using discovery_test::run_until;

std::unique_ptr<DnsResolver> make_resolver(Loop& loop, DnsResolverOptions options) {
    auto created = DnsResolver::create(loop, std::move(options));
    INFO(created.error);
    REQUIRE(created.resolver != nullptr);
    return std::move(created.resolver);
}

DnsResult addresses(Loop& loop, DnsResolver& resolver, const std::string& name, std::uint16_t port) {
    std::optional<DnsResult> got;
    resolver.resolve_addresses(name, port, [&](DnsResult result) { got = std::move(result); });
    REQUIRE(run_until(loop, [&] { return got.has_value(); }, Millis(10000)));
    return *got;
}

DnsResult srv(Loop& loop, DnsResolver& resolver, const std::string& name) {
    std::optional<DnsResult> got;
    resolver.resolve_srv(name, [&](DnsResult result) { got = std::move(result); });
    REQUIRE(run_until(loop, [&] { return got.has_value(); }, Millis(10000)));
    return *got;
}

// "127.0.0.5:8443 w10 ttl42" per record, in result order.
std::vector<std::string> describe(const DnsResult& result) {
    std::vector<std::string> out;
    for (const DnsRecord& record : result.records) {
        out.push_back(record.address.to_string() + " w" + std::to_string(record.weight) + " ttl" +
                      std::to_string(record.ttl_seconds));
    }
    return out;
}

// dnsmasq for these tests: the shared helper, with the TTL the assertions expect.
class Dnsmasq : public integration::Dnsmasq {
public:
    static constexpr int ttl = 42;
    explicit Dnsmasq(const std::string& hosts, const std::vector<std::string>& srv_hosts = {})
        : integration::Dnsmasq(hosts, srv_hosts, ttl) {}
    DnsResolverOptions options() const {
        DnsResolverOptions options;
        options.servers = {server()};
        options.timeout = Millis(1000);
        options.tries = 2;
        return options;
    }
};

// A UDP socket bound on 127.0.0.1 that never answers: a name server that is down without saying so.
class SilentServer {
public:
    SilentServer() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port_ = ntohs(address.sin_port);
    }
    ~SilentServer() { ::close(fd_); }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    // Datagrams received so far (drained).
    int received() {
        unsigned char buffer[1500];
        int count = 0;
        while (count < 1000 && ::recv(fd_, buffer, sizeof buffer, 0) > 0) ++count;
        return count;
    }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

const std::string hosts =
    "127.0.0.9 web.test\n"
    "127.0.0.2 web.test\n"
    "::1 web.test\n"
    "127.0.0.10 web.test\n"
    "127.0.0.6 b.test\n"
    "127.0.0.20 v4only.test\n";

const std::vector<std::string> srv_records = {
    "_tls._tcp.svc.test,web.test,8443,0,10",
    "_tls._tcp.svc.test,b.test,9443,0,0",
    "_tls._tcp.svc.test,c.test,7000,5,5",  // a fallback priority: not followed
    "_tls._tcp.partly.test,b.test,9443,0,3",
    "_tls._tcp.partly.test,gone.test,9000,0,3",
    "_tls._tcp.broken.test,gone.test,9000,0,3",
    "_x._tcp.off.test",
};

}  // namespace

TEST_CASE("DNS resolver: A and AAAA from dnsmasq, sorted, with dnsmasq's TTL", "[dns]") {
    Dnsmasq dnsmasq(hosts);
    Loop loop;
    auto resolver = make_resolver(loop, dnsmasq.options());

    const DnsResult web = addresses(loop, *resolver, "web.test", 8443);
    INFO(web.error);
    REQUIRE(web.ok());
    CHECK(describe(web) == std::vector<std::string>{"127.0.0.2:8443 w1 ttl42", "127.0.0.9:8443 w1 ttl42",
                                                    "127.0.0.10:8443 w1 ttl42", "[::1]:8443 w1 ttl42"});
    CHECK(web.ttl_seconds == Dnsmasq::ttl);

    // AAAA is NODATA here: the A records alone make the answer.
    const DnsResult v4 = addresses(loop, *resolver, "v4only.test", 443);
    REQUIRE(v4.ok());
    CHECK(describe(v4) == std::vector<std::string>{"127.0.0.20:443 w1 ttl42"});

    // A trailing dot and upper case name the same host.
    CHECK(describe(addresses(loop, *resolver, "WEB.test.", 1)).size() == 4);
    CHECK(resolver->lookups_in_flight() == 0);
}

TEST_CASE("DNS resolver: NXDOMAIN is an error, and so is a malformed name", "[dns]") {
    Dnsmasq dnsmasq(hosts);
    Loop loop;
    auto resolver = make_resolver(loop, dnsmasq.options());
    const DnsResult missing = addresses(loop, *resolver, "missing.test", 443);
    CHECK(missing.error == "NXDOMAIN");
    CHECK(missing.records.empty());
    CHECK(missing.ttl_seconds == 0);
    CHECK(srv(loop, *resolver, "_tls._tcp.missing.test").error == "NXDOMAIN");

    // The callback never runs inside resolve_addresses(), even when the error is known at once.
    bool called = false;
    std::string error;
    resolver->resolve_addresses("a..b.test", 443, [&](DnsResult result) {
        called = true;
        error = result.error;
    });
    CHECK_FALSE(called);
    REQUIRE(run_until(loop, [&] { return called; }, Millis(1000)));
    CHECK(error == "bad name");
}

TEST_CASE("DNS resolver: SRV records give the targets' addresses with their ports and weights", "[dns]") {
    Dnsmasq dnsmasq(hosts, srv_records);
    Loop loop;
    auto resolver = make_resolver(loop, dnsmasq.options());

    const DnsResult svc = srv(loop, *resolver, "_tls._tcp.svc.test");
    INFO(svc.error);
    REQUIRE(svc.ok());
    // web.test's four addresses on 8443 with weight 10, b.test on 9443 with weight 0 -> 1;
    // c.test (priority 5) is not followed.
    CHECK(describe(svc) == std::vector<std::string>{
                               "127.0.0.2:8443 w10 ttl42", "127.0.0.6:9443 w1 ttl42", "127.0.0.9:8443 w10 ttl42",
                               "127.0.0.10:8443 w10 ttl42", "[::1]:8443 w10 ttl42"});
    CHECK(svc.ttl_seconds == Dnsmasq::ttl);

    // A target that does not resolve is left out...
    const DnsResult partly = srv(loop, *resolver, "_tls._tcp.partly.test");
    REQUIRE(partly.ok());
    CHECK(describe(partly) == std::vector<std::string>{"127.0.0.6:9443 w3 ttl42"});
    // ...and when none resolves, the lookup fails.
    CHECK(srv(loop, *resolver, "_tls._tcp.broken.test").error == "SRV target gone.test: NXDOMAIN");
    // A name without SRV records (NODATA), and a "." target ("no service here"): empty successes.
    for (const char* name : {"web.test", "_x._tcp.off.test"}) {
        const DnsResult none = srv(loop, *resolver, name);
        INFO(name << ": " << none.error);
        CHECK(none.ok());
        CHECK(none.records.empty());
    }
}

TEST_CASE("DNS resolver: a rewritten hosts file is picked up after SIGHUP to dnsmasq", "[dns]") {
    Dnsmasq dnsmasq("127.0.0.5 reload.test\n");
    Loop loop;
    auto resolver = make_resolver(loop, dnsmasq.options());
    CHECK(describe(addresses(loop, *resolver, "reload.test", 443)) ==
          std::vector<std::string>{"127.0.0.5:443 w1 ttl42"});

    dnsmasq.rewrite_hosts("127.0.0.7 reload.test\n127.0.0.8 reload.test\n");
    // dnsmasq handles the signal asynchronously: ask again until the new set shows (bounded).
    std::vector<std::string> seen;
    for (int attempt = 0; attempt < 100; ++attempt) {
        seen = describe(addresses(loop, *resolver, "reload.test", 443));
        if (seen.size() == 2) break;
        run_for(loop, Millis(50));
    }
    CHECK(seen == std::vector<std::string>{"127.0.0.7:443 w1 ttl42", "127.0.0.8:443 w1 ttl42"});
}

TEST_CASE("DNS resolver: a server that never answers gives a timeout within the configured bound", "[dns]") {
    SilentServer silent;
    Loop loop;
    const int tries = GENERATE(1, 2);
    DnsResolverOptions options;
    options.servers = {silent.server()};
    options.timeout = Millis(300);
    options.tries = tries;
    auto resolver = make_resolver(loop, options);

    const auto start = std::chrono::steady_clock::now();
    const DnsResult result = addresses(loop, *resolver, "web.test", 443);
    const auto elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
    CHECK(result.error == "timeout");
    CHECK(result.records.empty());
    // c-ares: 300 ms, then 600 ms for the second try (see dns_resolver.h).
    const Millis bound = tries == 1 ? Millis(300) : Millis(900);
    INFO("tries " << tries << ", elapsed " << elapsed.count() << " ms");
    CHECK(elapsed >= bound - Millis(20));
    CHECK(elapsed < bound + Millis(400));
    // The queries really went out through the sockets the loop watched: A and AAAA, each try.
    CHECK(silent.received() == 2 * tries);
}

TEST_CASE("DNS resolver: a closed port is reported as refused", "[dns]") {
    DnsResolverOptions options;
    options.servers = {"127.0.0.1:" + std::to_string(integration::free_port())};
    options.timeout = Millis(500);
    options.tries = 1;
    Loop loop;
    auto resolver = make_resolver(loop, options);
    const auto start = std::chrono::steady_clock::now();
    const DnsResult result = addresses(loop, *resolver, "web.test", 443);
    // The ICMP error reaches the socket (POLLERR) and c-ares reports it. c-ares 1.18 ends only
    // the queries it reads the error for; the other one of the pair may still run to its timeout
    // ("A: timeout; AAAA: connection refused").
    INFO(result.error);
    CHECK(result.error.find("connection refused") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < Millis(500 + 400));
}

TEST_CASE("DNS resolver: destroying it mid-query calls nothing back and leaves nothing in flight", "[dns]") {
    SilentServer silent;
    Loop loop;
    DnsResolverOptions options;
    options.servers = {silent.server()};
    options.timeout = Millis(2000);
    auto resolver = make_resolver(loop, options);
    int called = 0;
    resolver->resolve_addresses("web.test", 443, [&](DnsResult) { ++called; });
    resolver->resolve_srv("_tls._tcp.svc.test", [&](DnsResult) { ++called; });
    CHECK(resolver->lookups_in_flight() == 2);
    // Long enough for the queries to be sent and their sockets watched.
    int received = 0;
    REQUIRE(run_until(loop, [&] { return (received += silent.received()) >= 1; }, Millis(2000)));
    CHECK(loop.operations_in_flight() > 0);
    resolver.reset();
    // The cancelled polls complete; nothing reaches the callbacks.
    REQUIRE(run_until(loop, [&] { return loop.operations_in_flight() == 0; }, Millis(2000)));
    run_for(loop, Millis(50));
    CHECK(called == 0);
}

TEST_CASE("DNS resolver: a callback may destroy the resolver; the other results are dropped", "[dns]") {
    Dnsmasq dnsmasq(hosts);
    Loop loop;
    auto resolver = make_resolver(loop, dnsmasq.options());
    int called = 0;
    auto done = [&](DnsResult) {
        ++called;
        resolver.reset();
    };
    // Both bad names fail without a server round trip, so both results wait for the same delivery.
    resolver->resolve_addresses("a..b.test", 443, done);
    resolver->resolve_addresses("c..d.test", 443, done);
    REQUIRE(run_until(loop, [&] { return called > 0; }, Millis(1000)));
    run_for(loop, Millis(20));
    CHECK(called == 1);
    CHECK(resolver == nullptr);
}

TEST_CASE("DNS resolver: a callback may start the next lookup", "[dns]") {
    Dnsmasq dnsmasq(hosts);
    Loop loop;
    auto resolver = make_resolver(loop, dnsmasq.options());
    std::vector<std::string> errors;
    resolver->resolve_addresses("missing.test", 443, [&](DnsResult first) {
        errors.push_back(first.error);
        resolver->resolve_addresses("b.test", 443, [&](DnsResult second) {
            errors.push_back(second.ok() ? second.records.at(0).address.to_string() : second.error);
        });
    });
    REQUIRE(run_until(loop, [&] { return errors.size() == 2; }, Millis(5000)));
    CHECK(errors == std::vector<std::string>{"NXDOMAIN", "127.0.0.6:443"});
}

TEST_CASE("DNS resolver: options are checked", "[dns]") {
    Loop loop;
    auto error_of = [&](DnsResolverOptions options) {
        auto created = DnsResolver::create(loop, std::move(options));
        CHECK((created.resolver == nullptr) == !created.error.empty());
        return created.error;
    };
    DnsResolverOptions options;
    options.servers = {"127.0.0.1:53", "[::1]:5353"};
    CHECK(error_of(options).empty());
    options.servers = {"127.0.0.1:53", "localhost:53"};
    CHECK(error_of(options).find("\"localhost:53\"") != std::string::npos);
    options.servers = {"127.0.0.1"};
    CHECK_FALSE(error_of(options).empty());
    options.servers = {};
    CHECK(error_of(options).empty());  // /etc/resolv.conf
    options.timeout = Millis(0);
    CHECK(error_of(options) == "DNS timeout must be between 1 ms and 600 s");
    options.timeout = Millis(100);
    options.tries = 0;
    CHECK(error_of(options) == "DNS tries must be between 1 and 16");
}

// ---- Pure helpers -------------------------------------------------------------------------------

namespace {

passgate::DnsAddressRecord v4(std::uint8_t last, std::uint32_t ttl) {
    passgate::DnsAddressRecord record;
    record.family = AF_INET;
    record.bytes = {10, 0, 0, last};
    record.ttl = ttl;
    return record;
}

passgate::DnsAnswer answer(std::vector<passgate::DnsAddressRecord> records, std::string error = {}) {
    passgate::DnsAnswer out;
    out.error = std::move(error);
    out.addresses = std::move(records);
    return out;
}

}  // namespace

TEST_CASE("DNS resolver: combining the A and AAAA answers", "[dns]") {
    using passgate::combine_address_answers;
    passgate::DnsAddressRecord six;
    six.family = AF_INET6;
    six.bytes[15] = 1;
    six.ttl = 5;

    auto both = combine_address_answers(answer({v4(2, 30), v4(1, 60)}), answer({six}), 80, 1);
    CHECK(both.ok());
    CHECK(describe(both) == std::vector<std::string>{"10.0.0.1:80 w1 ttl60", "10.0.0.2:80 w1 ttl30",
                                                     "[::1]:80 w1 ttl5"});
    CHECK(both.ttl_seconds == 5);

    // One family failing does not matter while the other has records.
    auto v4_only = combine_address_answers(answer({v4(1, 60)}), answer({}, "timeout"), 80, 1);
    CHECK(v4_only.ok());
    CHECK(v4_only.records.size() == 1);
    CHECK(v4_only.ttl_seconds == 60);

    auto nodata = combine_address_answers(answer({}), answer({}), 80, 1);
    CHECK(nodata.ok());
    CHECK(nodata.records.empty());
    CHECK(nodata.ttl_seconds == 0);

    CHECK(combine_address_answers(answer({}, "NXDOMAIN"), answer({}, "NXDOMAIN"), 80, 1).error == "NXDOMAIN");
    CHECK(combine_address_answers(answer({}, "timeout"), answer({}), 80, 1).error == "A: timeout");
    CHECK(combine_address_answers(answer({}), answer({}, "SERVFAIL"), 80, 1).error == "AAAA: SERVFAIL");
    CHECK(combine_address_answers(answer({}, "timeout"), answer({}, "SERVFAIL"), 80, 1).error ==
          "A: timeout; AAAA: SERVFAIL");
}

TEST_CASE("DNS resolver: records are sorted and duplicates merged", "[dns]") {
    auto record = [](const char* text, std::uint32_t weight, std::uint32_t ttl) {
        return DnsRecord{passgate::config::parse_address(text).value(), weight, ttl};
    };
    const auto out = passgate::normalize_dns_records({
        record("[::1]:80", 1, 10),
        record("10.0.0.10:80", 1, 10),
        record("10.0.0.9:443", 1, 10),
        record("10.0.0.9:80", 2, 30),
        record("10.0.0.9:80", 5, 20),
    });
    DnsResult result;
    result.records = out;
    CHECK(describe(result) == std::vector<std::string>{"10.0.0.9:80 w5 ttl20", "10.0.0.9:443 w1 ttl10",
                                                       "10.0.0.10:80 w1 ttl10", "[::1]:80 w1 ttl10"});
}

TEST_CASE("DNS resolver: SRV records followed: lowest priority, sorted, bounded", "[dns]") {
    using passgate::DnsSrvRecord;
    std::vector<DnsSrvRecord> records = {
        {10, 5, 443, "z.test", 60}, {20, 5, 443, "fallback.test", 60},
        {10, 0, 8443, "a.test", 60}, {10, 1, 443, "a.test", 60}};
    const auto chosen = passgate::select_srv_records(records, 64);
    REQUIRE(chosen.size() == 3);
    CHECK(chosen[0] == DnsSrvRecord{10, 1, 443, "a.test", 60});
    CHECK(chosen[1] == DnsSrvRecord{10, 0, 8443, "a.test", 60});
    CHECK(chosen[2] == DnsSrvRecord{10, 5, 443, "z.test", 60});

    // 70 distinct targets (two records for each): the first 64 by name are kept, with both records.
    records.clear();
    for (int i = 0; i < 70; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "t%02d.test", i);
        records.push_back({0, 1, 443, name, 60});
        records.push_back({0, 1, 444, name, 60});
    }
    const auto bounded = passgate::select_srv_records(records, DnsResolver::max_srv_targets);
    REQUIRE(bounded.size() == 128);
    CHECK(bounded.front().target == "t00.test");
    CHECK(bounded.back().target == "t63.test");
    CHECK(passgate::select_srv_records({}, 64).empty());
}
