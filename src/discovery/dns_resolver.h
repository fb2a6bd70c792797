#pragma once
// Asynchronous DNS lookups for endpoint discovery, driven by a reactor::Loop (no thread per
// query). c-ares is the transport: server list, retries, timeouts, TCP fallback on truncation.
// Its sockets are watched by the loop (c-ares' socket-state callback starts and stops one-shot
// polls, readiness goes to ares_process_fd) and its timeouts by a loop timer (ares_timeout).
// Answers are read by parse_dns_answer (src/wire/dns_answer.h), so every record keeps its TTL, SRV too.
//
// Threading: a resolver belongs to the thread that runs its loop; every call, and every callback,
// happens there.
//
// Callbacks run from the loop (a zero-delay timer), never from inside resolve_*() or c-ares, so a
// callback may start new lookups or destroy the resolver. Destroying the resolver cancels the
// lookups in flight: their callbacks are never called.
//
// Time bounds: `timeout` is c-ares' first-try timeout; c-ares doubles it each time it has tried
// every server once, so one query to one server that never answers fails after
// timeout * (2^tries - 1): 300 ms and 2 tries give 900 ms. An SRV lookup makes two rounds of
// queries (SRV, then the targets' addresses), so it is bounded by twice that.

#include "config/address.h"
#include "reactor/loop.h"
#include "src/wire/dns_answer.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

struct DnsResolverOptions {
    // Name servers as "127.0.0.1:5353" or "[::1]:53" (numeric, with the port). Empty: the servers
    // of /etc/resolv.conf (c-ares reads it).
    std::vector<std::string> servers;
    std::chrono::milliseconds timeout{2000};  // first try; see "Time bounds" above
    int tries = 2;                            // per server
};

struct DnsRecord {
    config::Address address;  // with the SRV record's port, else the port asked for
    std::uint32_t weight = 1;
    std::uint32_t ttl_seconds = 0;

    friend bool operator==(const DnsRecord&, const DnsRecord&) = default;
};

struct DnsResult {
    // Empty: the lookup succeeded (records may then be empty: the name exists without records of
    // that type, NODATA). Otherwise: "NXDOMAIN", "SERVFAIL", "timeout", "bad name", a parse
    // error of src/wire/dns_answer.h, ... For address lookups, "A: x; AAAA: y" when the two differ.
    std::string error;
    // Sorted by family, address, port; one record per address and port.
    std::vector<DnsRecord> records;
    std::uint32_t ttl_seconds = 0;  // the smallest TTL of the records used; 0 when none

    bool ok() const { return error.empty(); }
};

class DnsResolver;

struct DnsResolverCreate {
    std::unique_ptr<DnsResolver> resolver;  // null on error
    std::string error;
};

class DnsResolver {
public:
    // Checks the options (servers, timeout > 0, 1 <= tries <= 16) and sets up c-ares.
    static DnsResolverCreate create(reactor::Loop& loop, DnsResolverOptions options);
    ~DnsResolver();
    DnsResolver(const DnsResolver&) = delete;
    DnsResolver& operator=(const DnsResolver&) = delete;

    // A and AAAA queries for `name` (as given: no search domains), in parallel. Succeeds when
    // either family has records (the other family's error is then dropped); when neither has any,
    // succeeds empty if both answered NODATA, else fails. Records carry `port` and weight 1.
    void resolve_addresses(std::string name, std::uint16_t port, std::function<void(DnsResult)> done);

    // SRV query for `name` (e.g. "_tls._tcp.svc.example"), then A and AAAA for the targets of the
    // lowest priority value only (RFC 2782: the others are fallbacks, and discovery reports one
    // pool; at most max_srv_targets distinct targets, the first by name). Each address of a target
    // becomes a record with that SRV record's port and weight; SRV weight 0 becomes 1, which keeps
    // RFC 2782's "very small chance" beside weighted records and an even split when all are 0 (a
    // DiscoveredEndpoint of weight 0 would never be picked). A record's TTL is the smaller of its
    // SRV and address TTLs. Targets that fail to resolve are left out; the lookup fails only when
    // every target failed (with the first target's error).
    void resolve_srv(std::string name, std::function<void(DnsResult)> done);

    static constexpr std::size_t max_srv_targets = 64;

    // Lookups started and not yet reported (for tests and metrics).
    std::size_t lookups_in_flight() const { return lookups_in_flight_; }

private:
    struct SocketWatch;
    struct Query;
    struct AddressLookup;
    struct SrvLookup;
    using AnswerCallback = std::function<void(DnsAnswer)>;

    DnsResolver(reactor::Loop& loop, DnsResolverOptions options);
    std::string init();
    void send_query(const std::string& name, std::uint16_t qtype, AnswerCallback done);
    void start_addresses(const std::string& name, std::uint16_t port, std::function<void(DnsResult)> done);
    void finish(std::function<void(DnsResult)>& done, DnsResult result);
    void deliver();
    void on_sock_state(int fd, bool readable, bool writable);
    void on_socket_ready(int fd, int revents);
    void arm_poll(SocketWatch& socket);
    void on_ares_timer();
    void update_ares_timer();
    static void sock_state_callback(void* data, int fd, int readable, int writable);
    static void answer_callback(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

    struct Ready {
        std::function<void(DnsResult)> done;
        DnsResult result;
    };

    reactor::Loop& loop_;
    DnsResolverOptions options_;
    void* channel_ = nullptr;  // ares_channel; void* keeps ares.h out of this header
    bool destroying_ = false;
    std::size_t lookups_in_flight_ = 0;
    std::map<int, std::unique_ptr<SocketWatch>> sockets_;  // c-ares' open sockets by fd
    reactor::MemberTimer<DnsResolver, &DnsResolver::on_ares_timer> ares_timer_{*this};
    reactor::MemberTimer<DnsResolver, &DnsResolver::deliver> deliver_timer_{*this};
    std::vector<Ready> ready_;  // results waiting for deliver_timer_
    // Expires when the resolver is destroyed: deliver() checks it after each callback.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// ---- Pure helpers (exposed for tests) -----------------------------------------------------------

// Parses DnsResolverOptions::servers; an error names the first bad entry.
std::string parse_dns_servers(const std::vector<std::string>& servers,
                              std::vector<config::Address>& out);

// Sorts by family, address bytes, port; records with the same address and port merge into one
// with the largest weight and the smallest TTL.
std::vector<DnsRecord> normalize_dns_records(std::vector<DnsRecord> records);

// The A and AAAA answers for one name combined as resolve_addresses() documents.
DnsResult combine_address_answers(const DnsAnswer& a, const DnsAnswer& aaaa, std::uint16_t port,
                                  std::uint32_t weight);

// The SRV records resolve_srv() follows: the lowest priority value, targets sorted by name, then
// port; at most `max_targets` distinct targets (the first by name).
std::vector<DnsSrvRecord> select_srv_records(std::vector<DnsSrvRecord> records, std::size_t max_targets);

}  // namespace passgate
