#include "src/discovery/dns_resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>

namespace passgate {

namespace {

ares_channel as_channel(void* channel) { return static_cast<ares_channel>(channel); }

// c-ares statuses as DnsResult errors: the server's RCODE where c-ares reports one, short words
// otherwise.
std::string ares_error_text(int status) {
    switch (status) {
        case ARES_ETIMEOUT: return "timeout";
        case ARES_ECONNREFUSED: return "connection refused";
        case ARES_ESERVFAIL: return "SERVFAIL";
        case ARES_EREFUSED: return "REFUSED";
        case ARES_ENOTIMP: return "NOTIMP";
        case ARES_EFORMERR: return "FORMERR";
        case ARES_ENOTFOUND: return "NXDOMAIN";
        case ARES_EBADNAME: return "bad name";
        case ARES_EBADRESP: return "bad response";
        case ARES_ENOMEM: return "out of memory";
        default: return ares_strerror(status);
    }
}

// ares_library_init is not thread-safe and only does real work on Windows and Android; a
// function-local once keeps it from racing if resolvers are ever made on several threads.
int init_ares_library() {
    static const int status = ares_library_init(ARES_LIB_INIT_ALL);
    return status;
}

// Orders addresses by family, then address bytes (network order), then port.
auto address_key(const config::Address& address) {
    std::array<std::uint8_t, 16> bytes{};
    if (address.family() == AF_INET) {
        std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in&>(address.storage).sin_addr, 4);
    } else if (address.family() == AF_INET6) {
        std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in6&>(address.storage).sin6_addr, 16);
    }
    return std::make_tuple(address.family(), bytes, address.port());
}

config::Address with_port(config::Address address, std::uint16_t port) {
    if (address.family() == AF_INET) reinterpret_cast<sockaddr_in&>(address.storage).sin_port = htons(port);
    if (address.family() == AF_INET6) reinterpret_cast<sockaddr_in6&>(address.storage).sin6_port = htons(port);
    return address;
}

std::uint32_t min_ttl(const std::vector<DnsRecord>& records) {
    if (records.empty()) return 0;
    std::uint32_t ttl = records.front().ttl_seconds;
    for (const DnsRecord& record : records) ttl = std::min(ttl, record.ttl_seconds);
    return ttl;
}

}  // namespace

// ---- Pure helpers -------------------------------------------------------------------------------

std::string parse_dns_servers(const std::vector<std::string>& servers,
                              std::vector<config::Address>& out) {
    out.clear();
    for (const std::string& server : servers) {
        const auto address = config::parse_address(server);
        if (!address) {
            return "DNS server \"" + server +
                   "\" is not a numeric address with a port (\"127.0.0.1:53\", \"[::1]:53\")";
        }
        out.push_back(*address);
    }
    return {};
}

std::vector<DnsRecord> normalize_dns_records(std::vector<DnsRecord> records) {
    std::sort(records.begin(), records.end(), [](const DnsRecord& a, const DnsRecord& b) {
        return address_key(a.address) < address_key(b.address);
    });
    std::vector<DnsRecord> out;
    out.reserve(records.size());
    for (DnsRecord& record : records) {
        if (!out.empty() && out.back().address == record.address) {
            out.back().weight = std::max(out.back().weight, record.weight);
            out.back().ttl_seconds = std::min(out.back().ttl_seconds, record.ttl_seconds);
            continue;
        }
        out.push_back(std::move(record));
    }
    return out;
}

DnsResult combine_address_answers(const DnsAnswer& a, const DnsAnswer& aaaa, std::uint16_t port,
                                  std::uint32_t weight) {
    DnsResult result;
    for (const DnsAnswer* answer : {&a, &aaaa}) {
        if (!answer->ok()) continue;
        for (const DnsAddressRecord& record : answer->addresses) {
            result.records.push_back(DnsRecord{dns_record_address(record, port), weight, record.ttl});
        }
    }
    if (result.records.empty() && (!a.ok() || !aaaa.ok())) {
        if (!a.ok() && !aaaa.ok() && a.error == aaaa.error) {
            result.error = a.error;
        } else {
            if (!a.ok()) result.error = "A: " + a.error;
            if (!aaaa.ok()) result.error += (result.error.empty() ? "" : "; ") + ("AAAA: " + aaaa.error);
        }
        return result;
    }
    result.records = normalize_dns_records(std::move(result.records));
    result.ttl_seconds = min_ttl(result.records);
    return result;
}

std::vector<DnsSrvRecord> select_srv_records(std::vector<DnsSrvRecord> records, std::size_t max_targets) {
    if (records.empty()) return records;
    std::uint16_t lowest = records.front().priority;
    for (const DnsSrvRecord& record : records) lowest = std::min(lowest, record.priority);
    std::erase_if(records, [&](const DnsSrvRecord& record) { return record.priority != lowest; });
    std::sort(records.begin(), records.end(), [](const DnsSrvRecord& a, const DnsSrvRecord& b) {
        return std::tie(a.target, a.port, a.weight, a.ttl) < std::tie(b.target, b.port, b.weight, b.ttl);
    });
    std::size_t targets = 0;
    std::size_t keep = 0;
    for (; keep < records.size(); ++keep) {
        if (keep == 0 || records[keep].target != records[keep - 1].target) {
            if (targets == max_targets) break;
            ++targets;
        }
    }
    records.resize(keep);
    return records;
}

// ---- Resolver state -----------------------------------------------------------------------------

// One socket c-ares has open, watched with a one-shot poll for what c-ares wants. One-shot, not
// multishot: c-ares reads a TCP socket once per ares_process_fd call, so readiness has to be
// level-triggered; re-arming after each call gives exactly that.
struct DnsResolver::SocketWatch final : reactor::WatchHandler {
    SocketWatch(DnsResolver& owner, int fd) : owner(owner), fd(fd), watch(owner.loop_, *this) {}
    void on_watch(int result) override { owner.on_socket_ready(fd, result); }

    DnsResolver& owner;
    const int fd;
    bool readable = false;
    bool writable = false;
    std::uint32_t polled_events = 0;  // what the poll in flight waits for
    reactor::Watch watch;
};

// One ares_send in flight; c-ares owns it until answer_callback deletes it.
struct DnsResolver::Query {
    DnsResolver* resolver;
    std::uint16_t qtype;
    AnswerCallback done;
};

struct DnsResolver::AddressLookup {
    std::uint16_t port = 0;
    DnsAnswer a;
    DnsAnswer aaaa;
    int pending = 2;
    std::function<void(DnsResult)> done;
};

struct DnsResolver::SrvLookup {
    std::vector<DnsSrvRecord> services;
    std::uint32_t srv_ttl = 0;
    std::vector<std::string> targets;          // distinct, sorted
    std::map<std::string, DnsResult> results;  // by target
    std::size_t pending = 0;
    std::function<void(DnsResult)> done;
};

DnsResolverCreate DnsResolver::create(reactor::Loop& loop, DnsResolverOptions options) {
    DnsResolverCreate out;
    std::vector<config::Address> servers;
    out.error = parse_dns_servers(options.servers, servers);
    if (!out.error.empty()) return out;
    if (options.timeout.count() <= 0 || options.timeout.count() > 600'000) {
        out.error = "DNS timeout must be between 1 ms and 600 s";
        return out;
    }
    if (options.tries < 1 || options.tries > 16) {
        out.error = "DNS tries must be between 1 and 16";
        return out;
    }
    std::unique_ptr<DnsResolver> resolver(new DnsResolver(loop, std::move(options)));
    out.error = resolver->init();
    if (out.error.empty()) out.resolver = std::move(resolver);
    return out;
}

DnsResolver::DnsResolver(reactor::Loop& loop, DnsResolverOptions options)
    : loop_(loop), options_(std::move(options)) {}

std::string DnsResolver::init() {
    const int library = init_ares_library();
    if (library != ARES_SUCCESS) return std::string("c-ares: ") + ares_strerror(library);

    ares_options options{};
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    options.timeout = static_cast<int>(options_.timeout.count());
    options.tries = options_.tries;
    options.sock_state_cb = &DnsResolver::sock_state_callback;
    options.sock_state_cb_data = this;
    ares_channel channel = nullptr;
    const int status = ares_init_options(&channel, &options, mask);
    if (status != ARES_SUCCESS) return std::string("c-ares: ") + ares_strerror(status);
    channel_ = channel;

    if (!options_.servers.empty()) {
        std::vector<config::Address> servers;
        if (std::string error = parse_dns_servers(options_.servers, servers); !error.empty()) return error;
        std::vector<ares_addr_port_node> nodes(servers.size());
        for (std::size_t i = 0; i < servers.size(); ++i) {
            ares_addr_port_node& node = nodes[i];
            node.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
            node.family = servers[i].family();
            node.udp_port = servers[i].port();
            node.tcp_port = servers[i].port();
            if (node.family == AF_INET) {
                node.addr.addr4 = reinterpret_cast<const sockaddr_in&>(servers[i].storage).sin_addr;
            } else {
                std::memcpy(&node.addr.addr6,
                            &reinterpret_cast<const sockaddr_in6&>(servers[i].storage).sin6_addr, 16);
            }
        }
        const int set = ares_set_servers_ports(channel, nodes.data());
        if (set != ARES_SUCCESS) return std::string("c-ares servers: ") + ares_strerror(set);
    }
    return {};
}

DnsResolver::~DnsResolver() {
    // ares_destroy ends every query in flight with ARES_EDESTRUCTION (answer_callback then frees
    // it without calling anyone back) and closes its sockets (sock_state_callback stops their
    // watches). Results already queued for delivery are dropped with ready_.
    destroying_ = true;
    if (channel_ != nullptr) ares_destroy(as_channel(channel_));
    channel_ = nullptr;
    sockets_.clear();
}

// ---- Lookups ------------------------------------------------------------------------------------

void DnsResolver::resolve_addresses(std::string name, std::uint16_t port,
                                    std::function<void(DnsResult)> done) {
    ++lookups_in_flight_;
    start_addresses(name, port, [this, done = std::move(done)](DnsResult result) mutable {
        finish(done, std::move(result));
    });
}

void DnsResolver::resolve_srv(std::string name, std::function<void(DnsResult)> done) {
    ++lookups_in_flight_;
    auto lookup = std::make_shared<SrvLookup>();
    lookup->done = [this, done = std::move(done)](DnsResult result) mutable {
        finish(done, std::move(result));
    };
    send_query(name, dns_type_srv, [this, lookup](DnsAnswer answer) {
        if (!answer.ok()) {
            lookup->done(DnsResult{std::move(answer.error), {}, 0});
            return;
        }
        lookup->services = select_srv_records(std::move(answer.services), max_srv_targets);
        if (lookup->services.empty()) {
            lookup->done(DnsResult{});  // NODATA, or only "." targets
            return;
        }
        lookup->srv_ttl = lookup->services.front().ttl;
        for (const DnsSrvRecord& service : lookup->services) {
            lookup->srv_ttl = std::min(lookup->srv_ttl, service.ttl);
            if (lookup->targets.empty() || lookup->targets.back() != service.target)
                lookup->targets.push_back(service.target);
        }
        lookup->pending = lookup->targets.size();
        // Copied: a callback below may run before the loop ends (ares_send can fail at once).
        const std::vector<std::string> targets = lookup->targets;
        for (const std::string& target : targets) {
            start_addresses(target, 0, [lookup, target](DnsResult result) {
                lookup->results[target] = std::move(result);
                if (--lookup->pending > 0) return;
                DnsResult out;
                std::string first_error;
                bool any_ok = false;
                for (const std::string& name : lookup->targets) {
                    const DnsResult& resolved = lookup->results[name];
                    if (!resolved.ok()) {
                        if (first_error.empty()) first_error = "SRV target " + name + ": " + resolved.error;
                        continue;
                    }
                    any_ok = true;
                    for (const DnsSrvRecord& service : lookup->services) {
                        if (service.target != name) continue;
                        for (const DnsRecord& record : resolved.records) {
                            out.records.push_back(DnsRecord{
                                with_port(record.address, service.port),
                                std::max<std::uint32_t>(service.weight, 1),
                                std::min(record.ttl_seconds, service.ttl)});
                        }
                    }
                }
                if (!any_ok) {
                    lookup->done(DnsResult{first_error, {}, 0});
                    return;
                }
                out.records = normalize_dns_records(std::move(out.records));
                out.ttl_seconds = out.records.empty() ? 0 : std::min(min_ttl(out.records), lookup->srv_ttl);
                lookup->done(std::move(out));
            });
        }
    });
}

void DnsResolver::start_addresses(const std::string& name, std::uint16_t port,
                                  std::function<void(DnsResult)> done) {
    auto lookup = std::make_shared<AddressLookup>();
    lookup->port = port;
    lookup->done = std::move(done);
    for (const std::uint16_t qtype : {dns_type_a, dns_type_aaaa}) {
        send_query(name, qtype, [lookup, qtype](DnsAnswer answer) {
            (qtype == dns_type_a ? lookup->a : lookup->aaaa) = std::move(answer);
            if (--lookup->pending > 0) return;
            lookup->done(combine_address_answers(lookup->a, lookup->aaaa, lookup->port, 1));
        });
    }
}

void DnsResolver::send_query(const std::string& name, std::uint16_t qtype, AnswerCallback done) {
    unsigned char* buffer = nullptr;
    int length = 0;
    // ID 0: ares_send puts its own random, unique ID in. RD set: the server may recurse.
    const int status = ares_create_query(name.c_str(), dns_class_in, qtype, 0, 1, &buffer, &length, 0);
    if (status != ARES_SUCCESS) {
        done(DnsAnswer{ares_error_text(status), {}, {}});
        return;
    }
    auto* query = new Query{this, qtype, std::move(done)};
    // May call answer_callback before returning (no servers, out of memory).
    ares_send(as_channel(channel_), buffer, length, &DnsResolver::answer_callback, query);
    ares_free_string(buffer);
    update_ares_timer();
}

void DnsResolver::answer_callback(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<Query> query(static_cast<Query*>(arg));
    if (status == ARES_EDESTRUCTION || query->resolver->destroying_) return;
    DnsAnswer answer;
    if (status != ARES_SUCCESS) {
        answer.error = ares_error_text(status);
    } else if (abuf == nullptr || alen <= 0) {
        answer.error = "empty response";
    } else {
        answer = parse_dns_answer(std::span<const std::uint8_t>(abuf, static_cast<std::size_t>(alen)),
                                  query->qtype);
    }
    query->done(std::move(answer));
}

void DnsResolver::finish(std::function<void(DnsResult)>& done, DnsResult result) {
    ready_.push_back(Ready{std::move(done), std::move(result)});
    if (!deliver_timer_.armed()) loop_.arm_timer(deliver_timer_, 0);  // next loop iteration
}

void DnsResolver::deliver() {
    // A callback may start lookups (their results arrive in later rounds: c-ares does not answer
    // synchronously except on immediate failure, which is queued) or destroy the resolver.
    const std::weak_ptr<bool> alive = alive_;
    std::vector<Ready> batch = std::move(ready_);
    ready_.clear();
    for (Ready& item : batch) {
        --lookups_in_flight_;
        item.done(std::move(item.result));
        if (alive.expired()) return;  // destroyed from the callback: the rest is dropped
    }
}

// ---- c-ares sockets and timers ------------------------------------------------------------------

void DnsResolver::sock_state_callback(void* data, int fd, int readable, int writable) {
    static_cast<DnsResolver*>(data)->on_sock_state(fd, readable != 0, writable != 0);
}

void DnsResolver::on_sock_state(int fd, bool readable, bool writable) {
    auto it = sockets_.find(fd);
    if (!readable && !writable) {
        // c-ares closes the socket right after this; the watch's poll is cancelled first.
        if (it != sockets_.end()) sockets_.erase(it);
        return;
    }
    if (destroying_) return;
    if (it == sockets_.end()) it = sockets_.emplace(fd, std::make_unique<SocketWatch>(*this, fd)).first;
    SocketWatch& socket = *it->second;
    socket.readable = readable;
    socket.writable = writable;
    arm_poll(socket);
}

void DnsResolver::arm_poll(SocketWatch& socket) {
    const std::uint32_t events = (socket.readable ? POLLIN : 0u) | (socket.writable ? POLLOUT : 0u);
    if (socket.watch.active()) {
        if (socket.polled_events == events) return;
        socket.watch.stop();
    }
    socket.polled_events = events;
    socket.watch.poll(socket.fd, events, false);
}

void DnsResolver::on_socket_ready(int fd, int revents) {
    // The one-shot poll is over. An error from the poll itself (not expected on a live socket)
    // is handed to c-ares as readiness both ways: its read or write then meets the error.
    const bool failed = revents < 0;
    const auto events = static_cast<unsigned>(failed ? 0 : revents);
    const bool read = failed || (events & (POLLIN | POLLERR | POLLHUP)) != 0;
    const bool write = failed || (events & (POLLOUT | POLLERR | POLLHUP)) != 0;
    // May close this socket (its SocketWatch is then gone) and open others.
    ares_process_fd(as_channel(channel_), read ? fd : ARES_SOCKET_BAD, write ? fd : ARES_SOCKET_BAD);
    // Re-arm if c-ares still has the socket (or a new one with the same number) and nothing is
    // polling it yet.
    if (auto it = sockets_.find(fd); it != sockets_.end() && !it->second->watch.active())
        arm_poll(*it->second);
    update_ares_timer();
}

void DnsResolver::on_ares_timer() {
    // Nothing ready: c-ares only checks for queries whose time is up (and resends them).
    ares_process_fd(as_channel(channel_), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    update_ares_timer();
}

void DnsResolver::update_ares_timer() {
    timeval wait{};
    if (ares_timeout(as_channel(channel_), nullptr, &wait) == nullptr) {
        loop_.cancel_timer(ares_timer_);
        return;
    }
    // Rounded up: firing a millisecond early would only find nothing due and re-arm.
    const reactor::Millis delay = static_cast<reactor::Millis>(wait.tv_sec) * 1000 + (wait.tv_usec + 999) / 1000;
    loop_.arm_timer(ares_timer_, reactor::monotonic_millis() + delay);
}

}  // namespace passgate
