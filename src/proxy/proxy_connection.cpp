#include "src/proxy/proxy_connection.h"

#include "config/address.h"
#include "reactor/socket.h"
#include "src/observe/log.h"
#include "src/wire/proxy_protocol.h"
#include "src/proxy/worker.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace passgate {

namespace {
constexpr std::uint32_t readable_events = POLLIN | POLLRDHUP;

}  // namespace

ProxyConnection::ProxyConnection(Worker& worker, Generation& generation, std::size_t listener,
                                 reactor::Fd client)
    : worker_(worker),
      generation_(generation),
      client_(std::move(client)),
      client_readable_(worker.loop(), client_readable_handler_),
      client_writable_(worker.loop(), client_writable_handler_),
      backend_readable_(worker.loop(), backend_readable_handler_),
      backend_writable_(worker.loop(), backend_writable_handler_) {
    ++generation_.connections;
    listener_ = static_cast<std::uint32_t>(listener);
    started_ = worker_.loop().now();
    phase_started_us_ = reactor::monotonic_micros();
    last_activity_ = started_;
    metrics().listeners[listener].active.add(shard(), 1);
}

const SnapshotMetrics& ProxyConnection::metrics() const { return generation_.snapshot->metrics(); }

std::size_t ProxyConnection::shard() const { return worker_.index(); }

const sockaddr* ProxyConnection::client_address() const {
    return client_address_known_ ? &client_address_.any : nullptr;
}

ProxyConnection::~ProxyConnection() { --generation_.connections; }

namespace {
// An IPv4 or IPv6 address out of a sockaddr_storage (the PROXY header's); others are not
// INET addresses (has_addresses() is false for them).
InetAddress inet_address(const sockaddr_storage& storage) {
    InetAddress address{};
    if (storage.ss_family == AF_INET) std::memcpy(&address.v4, &storage, sizeof address.v4);
    else if (storage.ss_family == AF_INET6) std::memcpy(&address.v6, &storage, sizeof address.v6);
    return address;
}

sockaddr_storage storage_of(const InetAddress& address) {
    sockaddr_storage storage{};
    std::memcpy(&storage, &address, sizeof address);
    return storage;
}

const config::Listener& listener_config(const Generation& generation, std::size_t listener) {
    return *generation.snapshot->listeners()[listener].listener;
}

std::string format_client(const sockaddr* address) {
    if (address == nullptr) return "?";
    return config::format_sockaddr(address, address->sa_family == AF_INET ? sizeof(sockaddr_in)
                                                                          : sizeof(sockaddr_in6));
}

// ALPN protocol names in their wire form: a length byte, then the name, each (names are 1..255
// bytes, as on the wire; the parser has checked that).
std::string alpn_wire(const std::vector<std::string>& protocols) {
    std::string wire;
    for (const std::string& protocol : protocols) {
        assert(!protocol.empty() && protocol.size() <= 255);
        wire += static_cast<char>(protocol.size());
        wire += protocol;
    }
    return wire;
}

std::vector<std::string> alpn_list(std::string_view wire) {
    std::vector<std::string> protocols;
    while (!wire.empty()) {
        const std::size_t length = static_cast<unsigned char>(wire.front());
        protocols.emplace_back(wire.substr(1, length));
        wire.remove_prefix(std::min(wire.size(), 1 + length));
    }
    return protocols;
}

std::string_view first_alpn(std::string_view wire) {
    if (wire.empty()) return {};
    return wire.substr(1, static_cast<unsigned char>(wire.front()));
}
}  // namespace

// The life in proxy_connection.h, in order: a PROXY header (only before any byte is read), the
// hello, the connect, forwarding; a close from anywhere, once.
bool ProxyConnection::legal_transition(State from, State to) {
    switch (to) {
        case State::reading_proxy_header: return from == State::reading_hello;
        case State::reading_hello: return from == State::reading_proxy_header;
        case State::connecting: return from == State::reading_hello;
        case State::forwarding: return from == State::connecting;
        case State::closed: return from != State::closed;
    }
    return false;
}

void ProxyConnection::enter(State next) {
    assert(legal_transition(state_, next));
    // A PROXY header is read first or not at all; a connect follows a route and a service pick;
    // forwarding, a connected backend.
    assert(next != State::reading_proxy_header || hello_.empty());
    assert(next != State::connecting || (routed_ && service_picked_));
    assert(next != State::forwarding || (routed_ && service_picked_ && backend_ && endpoint_open_));
    state_ = next;
}

// ---- 0. Accept ---------------------------------------------------------------------------------

void ProxyConnection::start() {
    socklen_t length = sizeof client_address_;
    auto* address = reinterpret_cast<sockaddr*>(&client_address_);
    client_address_known_ = ::getpeername(client_.get(), address, &length) == 0;
    const config::Listener& listener = listener_config(generation_, listener_);
    // Access control and limits, before a byte is read: refused connections close at once.
    // Behind a load balancer the peer is the balancer: it must be a trusted one, and allow/deny
    // wait for the client's own address from its PROXY header.
    if (listener.accept_proxy_protocol) {
        if (!config::contains_any(listener.trusted_proxies, client_address()))
            return finish(CloseReason::proxy_untrusted);
    } else if (!listener.access.permits(client_address())) {
        return finish(CloseReason::denied);
    }
    if (const std::optional<CloseReason> refused = worker_.admit_listener(generation_, listener_))
        return finish(*refused);
    counted_listener_ = true;
    // One deadline for the PROXY header and the hello together.
    worker_.loop().arm_timer_after(deadline_, listener.client_hello_timeout.count());
    // Bytes are usually waiting already (they arrive with the handshake's last ACK): read first;
    // the client's socket is watched only if the hello is not all there (wait_for_client()).
    if (listener.accept_proxy_protocol) {
        enter(State::reading_proxy_header);
        return on_client_readable_proxy_header();
    }
    on_client_readable_hello();
}

// ---- 0b. Read the PROXY header from a trusted load balancer ------------------------------------

// The header is read into hello_, never more than proxy_header_max_bytes: whatever follows it in
// the buffer is the start of the hello and stays there.
void ProxyConnection::on_client_readable_proxy_header() {
    for (;;) {
        std::uint8_t chunk[proxy_header_max_bytes];
        const std::size_t room = proxy_header_max_bytes - hello_.size();
        if (room == 0) break;  // the decoder decides on this many bytes, whatever they are
        const ssize_t got = ::recv(client_.get(), chunk, room, MSG_DONTWAIT);
        if (got > 0) {
            if (!reserve_hello(static_cast<std::size_t>(got))) return finish(CloseReason::hello_memory_limit);
            hello_.insert(hello_.end(), chunk, chunk + got);
            continue;
        }
        if (got == 0) {
            client_to_backend_.source_eof = true;  // as for the hello: may still route
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return finish(CloseReason::client_closed, errno);
    }
    const ProxyHeaderParse parse = parse_proxy_header(hello_);
    switch (parse.status) {
        case ProxyHeaderParse::Status::incomplete:
            if (client_to_backend_.source_eof) return finish(CloseReason::client_closed);
            return wait_for_client();  // the deadline is running
        case ProxyHeaderParse::Status::error:
            if (log_enabled(LogLevel::debug))
                log_line(LogLevel::debug, "PROXY header from " + format_client(client_address()) + " rejected: " +
                                              std::string(proxy_header_error_name(parse.error)));
            return finish(parse.error == ProxyHeaderError::not_proxy ? CloseReason::proxy_missing
                                                                     : CloseReason::proxy_malformed);
        case ProxyHeaderParse::Status::ok:
            break;
    }
    const ProxyHeader& header = parse.header;
    // LOCAL (the balancer's own health check), UNKNOWN, UNSPEC, UNIX: the socket's addresses stand.
    if (header.has_addresses()) {
        client_address_ = inet_address(header.source);
        client_address_known_ = true;
        proxied_destination_ = inet_address(header.destination);
        proxied_destination_known_ = true;
    }
    hello_.erase(hello_.begin(), hello_.begin() + static_cast<std::ptrdiff_t>(header.consumed));
    // The listener's allow/deny, on the client's address now that it is known.
    const config::Listener& listener = listener_config(generation_, listener_);
    if (!listener.access.permits(client_address())) return finish(CloseReason::denied);
    enter(State::reading_hello);
    // The hello may be complete already (it often arrives with the header); if not, its reader
    // drains the socket and waits like any other.
    on_client_readable_hello();
}

// The PROXY header or the hello is incomplete: watch the client's socket for the rest. Armed once
// and kept through connecting and forwarding (wake-ups before forwarding only set a flag).
void ProxyConnection::wait_for_client() {
    if (!client_readable_.active()) client_readable_.poll(client_.get(), readable_events, true);
}

// ---- 1. Read the ClientHello ------------------------------------------------------------------

// The buffer grows by doubling (linear copying in all), up to the most the hello may need, and
// each growth is charged to the worker's hello budget before it happens.
bool ProxyConnection::reserve_hello(std::size_t extra) {
    const std::size_t needed = hello_.size() + extra;
    if (needed <= hello_.capacity()) return true;
    const std::size_t most = listener_config(generation_, listener_).max_client_hello_size + proxy_header_max_bytes;
    const std::size_t grown = std::max(needed, std::min(2 * hello_.capacity(), most));
    if (!worker_.charge_hello_memory(grown - hello_charged_, grown)) return false;
    hello_.reserve(grown);
    hello_charged_ = grown;
    return true;
}

void ProxyConnection::charge_hello_capacity() {
    if (hello_.capacity() <= hello_charged_) return;
    // Charged whatever the budget says: a bounded few bytes for a hello already accepted.
    worker_.add_hello_memory(hello_.capacity() - hello_charged_);
    hello_charged_ = hello_.capacity();
}

void ProxyConnection::free_hello() {
    std::vector<std::uint8_t>().swap(hello_);
    worker_.release_hello_memory(hello_charged_);
    hello_charged_ = 0;
}

void ProxyConnection::on_client_readable_hello() {
    const std::size_t cap = listener_config(generation_, listener_).max_client_hello_size;
    for (;;) {
        // Read what has arrived, at most up to the cap; the buffer grows only by what arrives.
        std::uint8_t chunk[16 * 1024];
        const std::size_t room = std::min(sizeof chunk, cap - std::min(cap, hello_.size()));
        bool short_read = false;
        bool drained = false;  // this read proved the socket empty (short read, EAGAIN or EOF)
        if (room > 0) {
            const ssize_t got = ::recv(client_.get(), chunk, room, MSG_DONTWAIT);
            if (got > 0) {
                if (!reserve_hello(static_cast<std::size_t>(got)))
                    return finish(CloseReason::hello_memory_limit);
                hello_.insert(hello_.end(), chunk, chunk + got);
                // A full chunk: more may be waiting. A short read emptied the socket's queue:
                // try the parser before paying for the read that would say EAGAIN.
                if (static_cast<std::size_t>(got) == room) continue;
                short_read = drained = true;
            } else if (got == 0) {
                // The client may send its hello and its FIN together: the hello still routes
                // and the half-close passes through once the hello is delivered.
                client_to_backend_.source_eof = drained = true;
            } else if (errno == EINTR) {
                continue;
            } else if (errno != EAGAIN) {
                return finish(CloseReason::client_closed, errno);
            } else {
                drained = true;
            }
        }
        const HelloParse parse = hello_reader_.parse(hello_, cap);
        switch (parse.status) {
            case HelloParse::Status::need_more:
                // After a short read the FIN may be queued behind the bytes: read on to see
                // EAGAIN (then wait; the deadline is running) or the end of the stream.
                if (short_read) continue;
                if (client_to_backend_.source_eof) return finish(CloseReason::client_closed);
                return wait_for_client();  // the deadline is running
            case HelloParse::Status::rejected:
                hello_error_ = parse.error;
                return finish(CloseReason::hello_rejected);
            case HelloParse::Status::complete: {
                const ListenerMetrics& listener = metrics().listeners[listener_];
                listener.hello_bytes.observe(shard(), static_cast<double>(parse.hello.record_bytes));
                listener.hello_duration.observe(
                    shard(), static_cast<double>(reactor::monotonic_micros() - phase_started_us_) / 1e6);
                hello_bytes_ = static_cast<std::uint32_t>(parse.hello.record_bytes);
                // Complete at exactly max_client_hello_size, more may wait unread: forwarding
                // must read it (no further wake-up will say so).
                if (!drained) client_bytes_waiting_ = true;
                return route_and_connect(parse.hello);
            }
        }
    }
}

// ---- 2. Route ----------------------------------------------------------------------------------

void ProxyConnection::route_and_connect(const ClientHello& hello) {
    worker_.loop().cancel_timer(deadline_);
    sni_ = hello.sni;
    alpn_wire_ = alpn_wire(hello.alpn);
    const Snapshot& snapshot = *generation_.snapshot;
    const ListenerRoutes::Match match =
        snapshot.listeners()[listener_].routes.match(hello.sni, hello.alpn);
    if (match.route == nullptr)
        return finish(match.miss == ListenerRoutes::Miss::no_sni ? CloseReason::no_sni
                                                                  : CloseReason::no_route);
    route_index_ = static_cast<std::uint32_t>(snapshot.route_index(match.route));
    routed_ = true;
    // The route's access control and limit, before any backend is touched.
    const config::Route& route = *match.route;
    if (!route.access.permits(client_address())) return finish(CloseReason::denied);
    if (!worker_.admit_route(generation_, route_index_, counted_route_))
        return finish(CloseReason::route_limit);
    if (route.max_connection_duration) {
        max_duration_at_ = started_ + route.max_connection_duration->count();
        arm_lifetime_limit();
    }
    metrics().listeners[listener_].connections_by_route[route_index_].inc(shard());
    const std::optional<std::size_t> service = generation_.balancer.pick_service(route_index_);
    if (!service) return finish(CloseReason::no_endpoint);
    if (*service == WeightedService::invalid) return finish(CloseReason::invalid_backend);
    service_ = static_cast<std::uint32_t>(*service);
    service_picked_ = true;
    // Until the backend is connected the client's bytes wait in its socket buffer. A watch armed
    // for a slow hello stays armed (wake-ups meanwhile are ignored; forwarding starts by draining
    // both sides): cancelling and re-arming it would cost two more operations per connection.
    if (client_to_backend_.source_eof) client_readable_.stop();
    enter(State::connecting);
    connect_next();
}

// ---- 3. Connect, trying other endpoints on failure ---------------------------------------------

void ProxyConnection::connect_next() {
    const config::Service& service = generation_.snapshot->config().services[service_];
    ServicePool& pool = *generation_.pools[service_];
    while (connect_attempts_ < service.connect_attempts) {
        PickRequest request;
        request.now_ms = worker_.loop().now();
        request.tried = tried_endpoints_;
        if (pool.settings().balance == config::Balance::maglev) request.key_hash = balance_key_hash(pool);
        const PickResult picked = pool.pick(request);
        if (!picked.endpoint) break;
        if (picked.panic) metrics().services[service_].panic.inc(shard());
        tried_endpoints_.push_back(picked.endpoint);
        endpoint_ = picked.endpoint;
        add_open(*endpoint_, shard());  // counted from the attempt: max_connections covers connects in flight
        endpoint_open_ = true;
        ++connect_attempts_;
        phase_started_us_ = reactor::monotonic_micros();
        const config::Address& address = endpoint_->endpoint.address;
        // The hello (or PROXY header) is written the moment the connect completes: the
        // handshake's last ACK goes with it.
        reactor::ConnectStart attempt = reactor::start_connect(address.sockaddr_ptr(), address.length,
                                                               reactor::ConnectOptions{.ack_with_first_data = true});
        if (!attempt.socket) {
            error_ = attempt.error;
            if (reactor::is_local_resource_error(attempt.error)) {
                // Our own shortage, not the endpoint's fault: no failure counted against it.
                return finish(CloseReason::out_of_resources, attempt.error);
            }
            count_connect_failure(attempt.error);  // e.g. ENETUNREACH: nothing sent, try the next
            continue;
        }
        backend_ = std::move(attempt.socket);
        worker_.loop().arm_timer_after(deadline_, service.connect_timeout.count());
        backend_writable_.poll(backend_.get(), POLLOUT, false);
        return;
    }
    if (connect_attempts_ == 0) return finish(CloseReason::no_endpoint);
    finish(CloseReason::connect_failed, error_);
}

// What maglev hashes: the client's IP address (no port: a client's connections stay together),
// or the SNI.
std::uint64_t ProxyConnection::balance_key_hash(const ServicePool& pool) const {
    if (pool.settings().hash_key == config::HashKey::sni) return stable_hash(sni_);
    if (!client_address_known_) return 0;
    if (client_address_.any.sa_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(client_address_);
        return stable_hash(std::string_view(reinterpret_cast<const char*>(&v4.sin_addr), sizeof v4.sin_addr));
    }
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(client_address_);
    return stable_hash(std::string_view(reinterpret_cast<const char*>(&v6.sin6_addr), sizeof v6.sin6_addr));
}

// A failed attempt: counted, fed to outlier detection, and the endpoint's open count released.
void ProxyConnection::count_connect_failure(int error) {
    EndpointState& endpoint = *endpoint_;
    endpoint.endpoint.metrics.failures[static_cast<std::size_t>(connect_failure_of(error))].inc(shard());
    if (generation_.pools[service_]->on_connect_failure(endpoint, worker_.loop().now())) {
        endpoint.endpoint.metrics.ejections.inc(shard());
        log_line(LogLevel::warning, "worker " + std::to_string(worker_.index()) + ": endpoint " +
                                        endpoint.endpoint.name + " of service " +
                                        generation_.snapshot->config().services[service_].name +
                                        " ejected after consecutive connect failures (last: " +
                                        strerror(error) + ")");
    }
    release_open(endpoint, shard());
    endpoint_open_ = false;  // endpoint_ still names it: the last endpoint tried, for the log
}

void ProxyConnection::on_connect_result(int error) {
    worker_.loop().cancel_timer(deadline_);
    if (error == 0) {
        error_ = 0;  // an earlier attempt's error is not this connection's (connect_attempts tells)
        endpoint_->endpoint.metrics.connections.inc(shard());
        generation_.pools[service_]->on_connected(*endpoint_);
        metrics().services[service_].connect_duration.observe(
            shard(), static_cast<double>(reactor::monotonic_micros() - phase_started_us_) / 1e6);
        return start_forwarding();
    }
    if (reactor::is_local_resource_error(error)) return finish(CloseReason::out_of_resources, error);
    count_connect_failure(error);
    error_ = error;
    backend_writable_.stop();
    worker_.loop().close(std::move(backend_));
    log_line(LogLevel::debug, "connect to " + endpoint_->endpoint.name + " failed: " +
                                  std::string(strerror(error)));
    connect_next();
}

// ---- 4. Replay the hello, then 5. forward ------------------------------------------------------

void ProxyConnection::start_forwarding() {
    enter(State::forwarding);
    std::vector<EndpointRef>().swap(tried_endpoints_);  // no more retries: free it (idle memory)
    const config::Listener& listener = listener_config(generation_, listener_);
    last_activity_ = worker_.loop().now();
    worker_.loop().arm_timer_after(deadline_, listener.idle_timeout.count());
    // Armed already if the hello took more than one read. Bytes or an end that came while
    // connecting show at once: a poll reports the state of the socket when it is armed.
    // once_then_multishot: a short connection's first wake-up on each side is usually its end,
    // and then no cancel is needed (reactor/loop.h).
    if (!client_to_backend_.source_eof && !client_readable_.active())
        client_readable_.poll(client_.get(), readable_events, reactor::Watch::PollMode::once_then_multishot);
    backend_readable_.poll(backend_.get(), readable_events, reactor::Watch::PollMode::once_then_multishot);
    prepend_proxy_header();
    write_hello();
}

// The PROXY protocol header goes in front of the hello, so both leave in one write.
void ProxyConnection::prepend_proxy_header() {
    const config::Service& service = generation_.snapshot->config().services[service_];
    if (service.send_proxy_protocol == config::ProxyProtocol::none) return;
    // The client's address was read at accept, or from the balancer's PROXY header, and so was
    // the address it connected to; without a header that is ours.
    sockaddr_storage source = storage_of(client_address_);
    sockaddr_storage destination = storage_of(proxied_destination_);
    socklen_t destination_length = sizeof destination;
    const bool known =
        client_address_known_ &&
        (proxied_destination_known_ ||
         ::getsockname(client_.get(), reinterpret_cast<sockaddr*>(&destination), &destination_length) == 0);
    if (!known) source.ss_family = destination.ss_family = AF_UNSPEC;  // encoded as UNKNOWN
    const auto* from = reinterpret_cast<const sockaddr*>(&source);
    const auto* to = reinterpret_cast<const sockaddr*>(&destination);
    const std::vector<std::uint8_t> header =
        service.send_proxy_protocol == config::ProxyProtocol::v1
            ? encode_proxy_v1(from, to)
            : encode_proxy_v2(from, to, sni_, first_alpn(alpn_wire_));
    hello_.insert(hello_.begin(), header.begin(), header.end());
    charge_hello_capacity();  // a few hundred bytes more at most: charged, never refused
    proxy_header_bytes_ = header.size();
}

void ProxyConnection::write_hello() {
    while (hello_sent_ < hello_.size()) {
        const ssize_t sent = ::send(backend_.get(), hello_.data() + hello_sent_,
                                    hello_.size() - hello_sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) {
            hello_sent_ += static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && errno == EAGAIN) {
            // (Anything the backend says meanwhile is reported by its readable watch.)
            backend_writable_.poll(backend_.get(), POLLOUT, false);
            return;
        }
        return finish(CloseReason::backend_error, errno);
    }
    // Bytes forwarded from the client: the PROXY header is ours, not the client's.
    const std::size_t client_bytes = hello_.size() - proxy_header_bytes_;
    client_to_backend_.bytes += client_bytes;
    metrics().routes[route_index_].bytes_client_to_backend.inc(shard(), client_bytes);
    free_hello();  // release the buffer: the hello is delivered
    hello_sent_ = 0;
    // The client's socket was read empty of data with the hello; only bytes that came since, or
    // the end of its stream (signalled by a wake-up already seen, or read), need a read now. The
    // backend's side is reported by its readable watch, armed already.
    const Direction& client = client_to_backend_;
    if (client_bytes_waiting_ || client.source_eof || client.fin_seen || client.error_seen)
        pump_direction(true);
}

namespace {
bool hello_pending(const std::vector<std::uint8_t>& hello) { return !hello.empty(); }
}  // namespace

// Both sockets, both watches and both failure reasons of a direction, picked here once.
ProxyConnection::Flow ProxyConnection::flow(bool client_to_backend) {
    const RouteMetrics& route = metrics().routes[route_index_];
    if (client_to_backend)
        return Flow{client_to_backend_,  backend_to_client_,   {client_.get(), backend_.get()},
                    client_readable_,    backend_writable_,    CloseReason::client_error,
                    CloseReason::backend_error, route.bytes_client_to_backend};
    return Flow{backend_to_client_,  client_to_backend_,   {backend_.get(), client_.get()},
                backend_readable_,   client_writable_,     CloseReason::backend_error,
                CloseReason::client_error, route.bytes_backend_to_client};
}

// Moves what can move in one direction, then closes the connection when both are done.
void ProxyConnection::pump_direction(bool client_to_backend) {
    if (state_ != State::forwarding) return;
    if (client_to_backend && hello_pending(hello_)) return;  // the hello goes first
    // Forwarding follows the route decision and a connected backend, never precedes them.
    assert(routed_ && service_picked_ && client_ && backend_);
    const Flow flow = this->flow(client_to_backend);
    if (!flow.direction.finished && !flow.direction.waiting_writable) {
        after_forward(flow, forward(flow.direction, flow.ends, worker_.pipes(), flow.other.finished));
        if (state_ != State::forwarding) return;
    }
    if (client_to_backend_.finished && backend_to_client_.finished) finish(CloseReason::completed);
}

void ProxyConnection::pump_both() {
    pump_direction(true);
    pump_direction(false);
}

// What the forwarder did, in the session's terms: metrics, watches, the resume timer, or a close.
void ProxyConnection::after_forward(const Flow& flow, const ForwardResult& result) {
    count_forwarded(flow, result.moved);
    // The end stays readable: stop watching, or every wake-up on this socket (ACKs for the other
    // direction) would report it again.
    if (result.source_ended) flow.source_readable.stop();
    switch (result.outcome) {
        case ForwardResult::Outcome::source_empty:
        case ForwardResult::Outcome::finished:
            return;
        case ForwardResult::Outcome::destination_full:
            flow.destination_writable.poll(flow.ends.destination, POLLOUT, false);
            return;
        case ForwardResult::Outcome::budget_spent:
            worker_.loop().arm_timer(resume_, worker_.loop().now());
            return;
        case ForwardResult::Outcome::out_of_pipes:
            return finish(CloseReason::out_of_resources, result.error);
        case ForwardResult::Outcome::source_error:
            return finish(flow.source_failed, result.error);
        case ForwardResult::Outcome::destination_error:
            return finish(flow.destination_failed, result.error);
    }
}

// Direction::bytes is counted by the forwarder; the route's counters and the idle clock here.
void ProxyConnection::count_forwarded(const Flow& flow, std::size_t bytes) {
    if (bytes == 0) return;
    flow.bytes_forwarded.inc(shard(), bytes);
    last_activity_ = worker_.loop().now();
}

// ---- Events ------------------------------------------------------------------------------------

void ProxyConnection::on_client_readable(int result) {
    if (result < 0) return finish(CloseReason::client_error, -result);
    client_to_backend_.note_end_events(result);
    if (state_ == State::reading_proxy_header) return on_client_readable_proxy_header();
    if (state_ == State::reading_hello) return on_client_readable_hello();
    if (state_ == State::connecting || hello_pending(hello_)) {
        client_bytes_waiting_ = true;  // read once the hello is delivered
        return;
    }
    pump_direction(true);
}

void ProxyConnection::on_backend_readable(int result) {
    if (result < 0) return finish(CloseReason::backend_error, -result);
    backend_to_client_.note_end_events(result);
    pump_direction(false);
}

void ProxyConnection::on_client_writable(int result) {
    if (result < 0) return finish(CloseReason::client_error, -result);
    backend_to_client_.on_writable();
    pump_direction(false);
}

void ProxyConnection::on_backend_writable(int result) {
    if (state_ == State::connecting) {
        // Writable without an error condition: connected (SO_ERROR would say 0; skip the call).
        const bool connected = result >= 0 && (result & POLLOUT) != 0 && (result & (POLLERR | POLLHUP)) == 0;
        const int error = result < 0 ? -result : connected ? 0 : reactor::socket_error(backend_.get());
        return on_connect_result(error);
    }
    if (result < 0) return finish(CloseReason::backend_error, -result);
    if (hello_pending(hello_)) return write_hello();
    client_to_backend_.on_writable();
    pump_direction(true);
}

void ProxyConnection::on_resume() { pump_both(); }

void ProxyConnection::on_deadline() {
    switch (state_) {
        case State::reading_proxy_header:
            return finish(CloseReason::proxy_timeout);
        case State::reading_hello:
            return finish(CloseReason::hello_timeout);
        case State::connecting:
            return on_connect_result(ETIMEDOUT);
        case State::forwarding: {
            const reactor::Millis idle = listener_config(generation_, listener_).idle_timeout.count();
            const reactor::Millis quiet_until = last_activity_ + idle;
            if (worker_.loop().now() >= quiet_until) return finish(CloseReason::idle_timeout);
            worker_.loop().arm_timer(deadline_, quiet_until);
            return;
        }
        case State::closed:
            return;
    }
}

// ---- Close -------------------------------------------------------------------------------------

void ProxyConnection::abort(CloseReason reason) { finish(reason); }

void ProxyConnection::close_after(reactor::Millis delay) {
    if (state_ == State::closed || route_drain_at_ != 0) return;
    route_drain_at_ = worker_.loop().now() + delay;
    arm_lifetime_limit();
}

// One timer for both limits on a connection's life: the earlier deadline.
void ProxyConnection::arm_lifetime_limit() {
    reactor::Millis at = max_duration_at_;
    if (route_drain_at_ != 0 && (at == 0 || route_drain_at_ < at)) at = route_drain_at_;
    worker_.loop().arm_timer(lifetime_limit_, at);
}

void ProxyConnection::on_lifetime_limit() {
    const bool drained = route_drain_at_ != 0 && worker_.loop().now() >= route_drain_at_;
    finish(drained ? CloseReason::route_removed : CloseReason::max_duration);
}

const config::Route* ProxyConnection::route() const {
    if (!routed_) return nullptr;
    return &generation_.snapshot->config().routes[route_index_];
}

void ProxyConnection::finish(CloseReason reason, int error) {
    if (state_ == State::closed) return;
    enter(State::closed);
    if (error != 0) error_ = error;
    client_readable_.stop();
    client_writable_.stop();
    backend_readable_.stop();
    backend_writable_.stop();
    worker_.loop().cancel_timer(deadline_);
    worker_.loop().cancel_timer(resume_);
    worker_.loop().cancel_timer(lifetime_limit_);
    if (counted_listener_) worker_.release_listener(generation_, listener_);
    if (counted_route_) worker_.release_route(generation_, route_index_);
    counted_listener_ = counted_route_ = false;
    if (endpoint_open_) {
        release_open(*endpoint_, shard());
        endpoint_open_ = false;
    }
    tried_endpoints_.clear();
    free_hello();
    // Pipes with bytes still inside are destroyed, never pooled (PipeLease::release).
    client_to_backend_.pipe.release();
    backend_to_client_.pipe.release();
    // Both closes go with the loop's next submission, batched with the other connections' work;
    // except when this process ran out of descriptors or memory: the descriptors are wanted
    // back now, by the next connection of this batch (its backend socket), not after it.
    if (reason == CloseReason::out_of_resources) {
        client_.reset();
        backend_.reset();
    } else {
        worker_.loop().close(std::move(client_));
        worker_.loop().close(std::move(backend_));
    }
    count_close(reason);
    worker_.retire(*this, summarize(reason));
}

// What the access log and the worker's accounting see. Built once, at the end: the connection
// keeps only the compact state it needs while it lives.
ConnectionSummary ProxyConnection::summarize(CloseReason reason) {
    ConnectionSummary summary;
    const config::Config& config = generation_.snapshot->config();
    summary.listener = listener_;
    if (routed_) summary.route = &config.routes[route_index_].name;
    if (service_picked_) summary.service = &config.services[service_].name;
    if (endpoint_) summary.endpoint = endpoint_->endpoint.name;
    summary.client = format_client(client_address());
    summary.sni = std::move(sni_);
    summary.alpn = alpn_list(alpn_wire_);
    summary.hello_bytes = hello_bytes_;
    summary.bytes_client_to_backend = client_to_backend_.bytes;
    summary.bytes_backend_to_client = backend_to_client_.bytes;
    summary.duration_ms = worker_.loop().now() - started_;
    summary.connect_attempts = connect_attempts_;
    summary.reason = reason;
    summary.hello_error = hello_error_;
    summary.error = error_;
    return summary;
}

void ProxyConnection::count_close(CloseReason reason) {
    const ListenerMetrics& listener = metrics().listeners[listener_];
    listener.active.add(shard(), -1);
    listener.closed[static_cast<std::size_t>(reason)].inc(shard());
    const std::optional<HelloReject> rejected = hello_reject_of(reason, hello_error_);
    if (rejected) listener.rejected[static_cast<std::size_t>(*rejected)].inc(shard());
    if (const std::optional<ProxyReject> proxy = proxy_reject_of(reason))
        listener.proxy_rejected[static_cast<std::size_t>(*proxy)].inc(shard());
    if (const std::optional<Refusal> refused = refusal_of(reason))
        listener.refused[static_cast<std::size_t>(*refused)].inc(shard());
}

}  // namespace passgate
