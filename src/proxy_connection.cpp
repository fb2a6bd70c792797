#include "src/proxy_connection.h"

#include "config/address.h"
#include "reactor/socket.h"
#include "src/log.h"
#include "src/proxy_protocol.h"
#include "src/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace passgate {

namespace {
constexpr std::uint32_t readable_events = POLLIN | POLLRDHUP;
// Per wake-up, a direction moves at most this many pipe-fulls before yielding to other
// connections (it resumes on the next loop iteration): one busy stream cannot starve the rest.
constexpr int pump_rounds_per_turn = 8;

}  // namespace

std::string_view close_reason_name(CloseReason reason) {
    switch (reason) {
        case CloseReason::completed: return "completed";
        case CloseReason::hello_timeout: return "hello_timeout";
        case CloseReason::hello_rejected: return "hello_rejected";
        case CloseReason::client_closed: return "client_closed";
        case CloseReason::no_sni: return "no_sni";
        case CloseReason::no_route: return "no_route";
        case CloseReason::no_endpoint: return "no_endpoint";
        case CloseReason::connect_failed: return "connect_failed";
        case CloseReason::client_error: return "client_error";
        case CloseReason::backend_error: return "backend_error";
        case CloseReason::idle_timeout: return "idle_timeout";
        case CloseReason::out_of_resources: return "out_of_resources";
        case CloseReason::route_removed: return "route_removed";
        case CloseReason::denied: return "denied";
        case CloseReason::listener_limit: return "listener_limit";
        case CloseReason::rate_limit: return "rate_limit";
        case CloseReason::route_limit: return "route_limit";
        case CloseReason::max_duration: return "max_duration";
        case CloseReason::proxy_untrusted: return "proxy_untrusted";
        case CloseReason::proxy_missing: return "proxy_missing";
        case CloseReason::proxy_malformed: return "proxy_malformed";
        case CloseReason::proxy_timeout: return "proxy_timeout";
        case CloseReason::shutdown: return "shutdown";
    }
    return "unknown";
}

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
    summary_.listener = listener;
    started_ = worker_.loop().now();
    started_us_ = reactor::monotonic_micros();
    last_activity_ = started_;
    shard_ = worker_.index();
    metrics().listeners[listener].active.add(shard_, 1);
}

const SnapshotMetrics& ProxyConnection::metrics() const { return generation_.snapshot->metrics(); }

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
}  // namespace

// ---- 0. Accept ---------------------------------------------------------------------------------

void ProxyConnection::start() {
    socklen_t length = sizeof client_address_;
    auto* address = reinterpret_cast<sockaddr*>(&client_address_);
    client_address_known_ = ::getpeername(client_.get(), address, &length) == 0;
    summary_.client = client_address_known_ ? config::format_sockaddr(address, length) : "?";
    const config::Listener& listener = listener_config(generation_, summary_.listener);
    // Access control and limits, before a byte is read: refused connections close at once.
    // Behind a load balancer the peer is the balancer: it must be a trusted one, and allow/deny
    // wait for the client's own address from its PROXY header.
    if (listener.accept_proxy_protocol) {
        if (!config::contains_any(listener.trusted_proxies, client_address_known_ ? address : nullptr))
            return finish(CloseReason::proxy_untrusted);
    } else if (!listener.access.permits(client_address_known_ ? address : nullptr)) {
        return finish(CloseReason::denied);
    }
    if (const std::optional<CloseReason> refused = worker_.admit_listener(generation_, summary_.listener))
        return finish(*refused);
    counted_listener_ = true;
    // One deadline for the PROXY header and the hello together.
    worker_.loop().arm_timer_after(deadline_, listener.client_hello_timeout.count());
    client_readable_.poll(client_.get(), readable_events, true);
    // Bytes may already be waiting (they often arrive with the handshake's last ACK).
    if (listener.accept_proxy_protocol) {
        state_ = State::reading_proxy_header;
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
            return;  // wait for more bytes (the deadline is running)
        case ProxyHeaderParse::Status::error:
            if (log_enabled(LogLevel::debug))
                log_line(LogLevel::debug, "PROXY header from " + summary_.client + " rejected: " +
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
        summary_.client = config::format_sockaddr(reinterpret_cast<const sockaddr*>(&client_address_),
                                                  sizeof client_address_);
    }
    hello_.erase(hello_.begin(), hello_.begin() + static_cast<std::ptrdiff_t>(header.consumed));
    // The listener's allow/deny, on the client's address now that it is known.
    const config::Listener& listener = listener_config(generation_, summary_.listener);
    if (!listener.access.permits(client_address_known_ ? reinterpret_cast<const sockaddr*>(&client_address_)
                                                       : nullptr))
        return finish(CloseReason::denied);
    state_ = State::reading_hello;
    // The hello may be complete already (it often arrives with the header); if not, its reader
    // drains the socket and waits like any other.
    on_client_readable_hello();
}

// ---- 1. Read the ClientHello ------------------------------------------------------------------

void ProxyConnection::on_client_readable_hello() {
    const std::size_t cap = listener_config(generation_, summary_.listener).max_client_hello_size;
    // Read what has arrived, at most up to the cap; the buffer grows only by what arrives.
    for (;;) {
        std::uint8_t chunk[16 * 1024];
        const std::size_t room = std::min(sizeof chunk, cap - std::min(cap, hello_.size()));
        if (room == 0) break;
        const ssize_t got = ::recv(client_.get(), chunk, room, MSG_DONTWAIT);
        if (got > 0) {
            hello_.insert(hello_.end(), chunk, chunk + got);
            continue;
        }
        if (got == 0) {
            // The client may send its hello and its FIN together: the hello still routes and
            // the half-close passes through once the hello is delivered.
            client_to_backend_.source_eof = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return finish(CloseReason::client_closed, errno);
    }
    const HelloParse parse = parse_client_hello(hello_, cap);
    switch (parse.status) {
        case HelloParse::Status::need_more:
            if (client_to_backend_.source_eof) return finish(CloseReason::client_closed);
            return;  // wait for more bytes (the deadline is running)
        case HelloParse::Status::rejected:
            summary_.hello_error = parse.error;
            return finish(CloseReason::hello_rejected);
        case HelloParse::Status::complete: {
            const ListenerMetrics& listener = metrics().listeners[summary_.listener];
            listener.hello_bytes.observe(shard_, static_cast<double>(parse.hello.record_bytes));
            listener.hello_duration.observe(
                shard_, static_cast<double>(reactor::monotonic_micros() - started_us_) / 1e6);
            summary_.hello_bytes = parse.hello.record_bytes;
            return route_and_connect(parse.hello);
        }
    }
}

// ---- 2. Route ----------------------------------------------------------------------------------

void ProxyConnection::route_and_connect(const ClientHello& hello) {
    worker_.loop().cancel_timer(deadline_);
    summary_.sni = hello.sni;
    summary_.alpn = hello.alpn;
    const Snapshot& snapshot = *generation_.snapshot;
    const ListenerRoutes::Match match =
        snapshot.listeners()[summary_.listener].routes.match(hello.sni, hello.alpn);
    if (match.route == nullptr)
        return finish(match.miss == ListenerRoutes::Miss::no_sni ? CloseReason::no_sni
                                                                  : CloseReason::no_route);
    summary_.route = &match.route->name;
    route_index_ = snapshot.route_index(match.route);
    // The route's access control and limit, before any backend is touched.
    const config::Route& route = *match.route;
    if (!route.access.permits(client_address_known_ ? reinterpret_cast<const sockaddr*>(&client_address_)
                                                    : nullptr))
        return finish(CloseReason::denied);
    if (!worker_.admit_route(generation_, route_index_, counted_route_))
        return finish(CloseReason::route_limit);
    if (route.max_connection_duration)
        worker_.loop().arm_timer(max_duration_, started_ + route.max_connection_duration->count());
    metrics().listeners[summary_.listener].connections_by_route[route_index_].inc(shard_);
    const std::optional<std::size_t> service = generation_.balancer.pick_service(route_index_);
    if (!service) return finish(CloseReason::no_endpoint);
    service_ = *service;
    summary_.service = &snapshot.config().services[service_].name;
    // Until the backend is connected the client's bytes wait in its socket buffer.
    client_readable_.stop();
    state_ = State::connecting;
    connect_next();
}

// ---- 3. Connect, trying other endpoints on failure ---------------------------------------------

void ProxyConnection::connect_next() {
    const config::Service& service = generation_.snapshot->config().services[service_];
    ServicePool& pool = *generation_.pools[service_];
    while (summary_.connect_attempts < service.connect_attempts) {
        PickRequest request;
        request.now_ms = worker_.loop().now();
        request.tried = tried_endpoints_;
        if (pool.settings().balance == config::Balance::maglev) request.key_hash = balance_key_hash(pool);
        const PickResult picked = pool.pick(request);
        if (!picked.endpoint) break;
        if (picked.panic) metrics().services[service_].panic.inc(shard_);
        tried_endpoints_.push_back(picked.endpoint);
        endpoint_ = picked.endpoint;
        ++endpoint_->open;  // counted from the attempt: max_connections covers connects in flight
        ++summary_.connect_attempts;
        connect_started_us_ = reactor::monotonic_micros();
        const config::Address& address = endpoint_->endpoint.address;
        summary_.endpoint = endpoint_->endpoint.name;
        reactor::ConnectStart attempt = reactor::start_connect(address.sockaddr_ptr(), address.length);
        if (!attempt.socket) {
            summary_.error = attempt.error;
            if (attempt.error == EMFILE || attempt.error == ENFILE || attempt.error == ENOBUFS) {
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
    if (summary_.connect_attempts == 0) return finish(CloseReason::no_endpoint);
    finish(CloseReason::connect_failed, summary_.error);
}

// What maglev hashes: the client's IP address (no port: a client's connections stay together),
// or the SNI.
std::uint64_t ProxyConnection::balance_key_hash(const ServicePool& pool) const {
    if (pool.settings().hash_key == config::HashKey::sni) return stable_hash(summary_.sni);
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
    endpoint.endpoint.metrics.failures[static_cast<std::size_t>(connect_failure_of(error))].inc(shard_);
    if (generation_.pools[service_]->on_connect_failure(endpoint, worker_.loop().now())) {
        endpoint.endpoint.metrics.ejections.inc(shard_);
        log_line(LogLevel::warning, "worker " + std::to_string(worker_.index()) + ": endpoint " +
                                        endpoint.endpoint.name + " of service " + *summary_.service +
                                        " ejected after consecutive connect failures (last: " +
                                        strerror(error) + ")");
    }
    --endpoint.open;
    endpoint_.reset();
}

void ProxyConnection::on_connect_result(int error) {
    worker_.loop().cancel_timer(deadline_);
    if (error == 0) {
        summary_.error = 0;  // an earlier attempt's error is not this connection's (connect_attempts tells)
        endpoint_->endpoint.metrics.connections.inc(shard_);
        generation_.pools[service_]->on_connected(*endpoint_);
        metrics().services[service_].connect_duration.observe(
            shard_, static_cast<double>(reactor::monotonic_micros() - connect_started_us_) / 1e6);
        return start_forwarding();
    }
    count_connect_failure(error);
    summary_.error = error;
    backend_writable_.stop();
    backend_.reset();
    log_line(LogLevel::debug, "connect to " + summary_.endpoint + " failed: " +
                                  std::string(strerror(error)));
    connect_next();
}

// ---- 4. Replay the hello, then 5. forward ------------------------------------------------------

void ProxyConnection::start_forwarding() {
    state_ = State::forwarding;
    std::vector<EndpointRef>().swap(tried_endpoints_);  // no more retries: free it (idle memory)
    client_to_backend_.from = client_.get();
    client_to_backend_.to = backend_.get();
    backend_to_client_.from = backend_.get();
    backend_to_client_.to = client_.get();
    client_to_backend_.readable = &client_readable_;
    client_to_backend_.writable = &backend_writable_;
    backend_to_client_.readable = &backend_readable_;
    backend_to_client_.writable = &client_writable_;
    const config::Listener& listener = listener_config(generation_, summary_.listener);
    last_activity_ = worker_.loop().now();
    worker_.loop().arm_timer_after(deadline_, listener.idle_timeout.count());
    if (!client_to_backend_.source_eof) client_readable_.poll(client_.get(), readable_events, true);
    backend_readable_.poll(backend_.get(), readable_events, true);
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
            : encode_proxy_v2(from, to, summary_.sni,
                              summary_.alpn.empty() ? std::string_view{} : summary_.alpn.front());
    hello_.insert(hello_.begin(), header.begin(), header.end());
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
            backend_writable_.poll(backend_.get(), POLLOUT, false);
            pump_direction(false);  // the backend may already be talking
            return;
        }
        return finish(CloseReason::backend_error, errno);
    }
    // Bytes forwarded from the client: the PROXY header is ours, not the client's.
    const std::size_t client_bytes = hello_.size() - proxy_header_bytes_;
    client_to_backend_.bytes += client_bytes;
    metrics().routes[route_index_].bytes_client_to_backend.inc(shard_, client_bytes);
    std::vector<std::uint8_t>().swap(hello_);  // release the buffer: the hello is delivered
    hello_sent_ = 0;
    pump_both();
}

namespace {
bool hello_pending(const std::vector<std::uint8_t>& hello) { return !hello.empty(); }
}  // namespace

ProxyConnection::Pump ProxyConnection::pump(Direction& direction) {
    if (direction.finished || direction.waiting_writable) return Pump::idle;
    for (int round = 0; round < pump_rounds_per_turn; ++round) {
        bool source_empty = false;
        if (!direction.source_eof) {
            if (!direction.pipe.held() && !direction.pipe.acquire(worker_.pipes()))
                return Pump::out_of_pipes;
            const std::size_t room = direction.pipe.capacity() - direction.pipe.bytes_inside;
            // EAGAIN means "socket empty" only when the pipe was empty: a pipe also fills up by
            // slots (one per skb fragment), long before its byte capacity with small segments.
            const bool pipe_was_empty = direction.pipe.bytes_inside == 0;
            if (room > 0) {
                const ssize_t moved = ::splice(direction.from, nullptr,
                                               direction.pipe.pipe().write_end.get(), nullptr, room,
                                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (moved > 0) direction.pipe.bytes_inside += static_cast<std::size_t>(moved);
                else if (moved == 0) {
                    direction.source_eof = true;
                    // EOF stays readable: stop watching, or every wake-up on this socket
                    // (ACKs for the other direction) would report it again.
                    direction.readable->stop();
                }
                else if (errno == EAGAIN) source_empty = pipe_was_empty;
                else if (errno != EINTR) return Pump::error_from;
            }
        }
        if (direction.pipe.bytes_inside > 0) {
            const ssize_t moved = ::splice(direction.pipe.pipe().read_end.get(), nullptr,
                                           direction.to, nullptr, direction.pipe.bytes_inside,
                                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (moved > 0) {
                direction.pipe.bytes_inside -= static_cast<std::size_t>(moved);
                direction.bytes += static_cast<std::uint64_t>(moved);
                const RouteMetrics& route = metrics().routes[route_index_];
                (&direction == &client_to_backend_ ? route.bytes_client_to_backend
                                                   : route.bytes_backend_to_client)
                    .inc(shard_, static_cast<std::uint64_t>(moved));
                last_activity_ = worker_.loop().now();
            } else if (moved < 0 && errno == EAGAIN) {
                // Destination full: wait until it drains. Bytes stay in the pipe meanwhile.
                direction.waiting_writable = true;
                direction.writable->poll(direction.to, POLLOUT, false);
                return Pump::idle;
            } else if (moved < 0 && errno != EINTR) {
                return Pump::error_to;
            }
        }
        if (direction.pipe.bytes_inside == 0 && direction.source_eof) {
            // Half-close passes through: the peer sees our FIN when the source sent its own.
            direction.pipe.release();
            if (::shutdown(direction.to, SHUT_WR) != 0 && errno != ENOTCONN) return Pump::error_to;
            direction.finished = true;
            return Pump::idle;
        }
        if (direction.pipe.bytes_inside == 0 && source_empty) {
            direction.pipe.release();  // quiet: idle connections hold no pipe
            return Pump::idle;
        }
    }
    return Pump::budget_spent;
}

// Moves what can move in one direction, then closes the connection when both are done.
void ProxyConnection::pump_direction(bool client_to_backend) {
    if (state_ != State::forwarding) return;
    if (client_to_backend && hello_pending(hello_)) return;  // the hello goes first
    Direction& direction = client_to_backend ? client_to_backend_ : backend_to_client_;
    after_pump(pump(direction), client_to_backend);
    if (state_ != State::forwarding) return;
    if (client_to_backend_.finished && backend_to_client_.finished) finish(CloseReason::completed);
}

void ProxyConnection::pump_both() {
    pump_direction(true);
    pump_direction(false);
}

void ProxyConnection::after_pump(Pump result, bool client_to_backend) {
    const int error = errno;
    switch (result) {
        case Pump::idle:
            return;
        case Pump::budget_spent:
            worker_.loop().arm_timer(resume_, worker_.loop().now());
            return;
        case Pump::out_of_pipes:
            return finish(CloseReason::out_of_resources, error);
        case Pump::error_from:
            return finish(client_to_backend ? CloseReason::client_error : CloseReason::backend_error,
                          error);
        case Pump::error_to:
            return finish(client_to_backend ? CloseReason::backend_error : CloseReason::client_error,
                          error);
    }
}

// ---- Events ------------------------------------------------------------------------------------

void ProxyConnection::on_client_readable(int result) {
    if (result < 0) return finish(CloseReason::client_error, -result);
    if (state_ == State::reading_proxy_header) return on_client_readable_proxy_header();
    if (state_ == State::reading_hello) return on_client_readable_hello();
    pump_direction(true);
}

void ProxyConnection::on_backend_readable(int result) {
    if (result < 0) return finish(CloseReason::backend_error, -result);
    pump_direction(false);
}

void ProxyConnection::on_client_writable(int result) {
    if (result < 0) return finish(CloseReason::client_error, -result);
    backend_to_client_.waiting_writable = false;
    pump_direction(false);
}

void ProxyConnection::on_backend_writable(int result) {
    if (state_ == State::connecting) {
        const int error = result < 0 ? -result : reactor::socket_error(backend_.get());
        return on_connect_result(error);
    }
    if (result < 0) return finish(CloseReason::backend_error, -result);
    if (hello_pending(hello_)) return write_hello();
    client_to_backend_.waiting_writable = false;
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
            summary_.error = ETIMEDOUT;
            return on_connect_result(ETIMEDOUT);
        case State::forwarding: {
            const reactor::Millis idle =
                listener_config(generation_, summary_.listener).idle_timeout.count();
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
    if (state_ == State::closed || route_drain_.armed()) return;
    worker_.loop().arm_timer_after(route_drain_, delay);
}

void ProxyConnection::on_route_drained() { finish(CloseReason::route_removed); }

void ProxyConnection::on_max_duration() { finish(CloseReason::max_duration); }

const config::Route* ProxyConnection::route() const {
    if (summary_.route == nullptr) return nullptr;
    return &generation_.snapshot->config().routes[route_index_];
}

void ProxyConnection::finish(CloseReason reason, int error) {
    if (state_ == State::closed) return;
    state_ = State::closed;
    summary_.reason = reason;
    if (error != 0) summary_.error = error;
    client_readable_.stop();
    client_writable_.stop();
    backend_readable_.stop();
    backend_writable_.stop();
    worker_.loop().cancel_timer(deadline_);
    worker_.loop().cancel_timer(resume_);
    worker_.loop().cancel_timer(route_drain_);
    worker_.loop().cancel_timer(max_duration_);
    if (counted_listener_) worker_.release_listener(generation_, summary_.listener);
    if (counted_route_) worker_.release_route(generation_, route_index_);
    counted_listener_ = counted_route_ = false;
    if (endpoint_) {
        --endpoint_->open;
        endpoint_.reset();
    }
    tried_endpoints_.clear();
    // Pipes with bytes still inside are destroyed, never pooled (PipeLease::release).
    client_to_backend_.pipe.release();
    backend_to_client_.pipe.release();
    client_.reset();
    backend_.reset();
    summary_.bytes_client_to_backend = client_to_backend_.bytes;
    summary_.bytes_backend_to_client = backend_to_client_.bytes;
    summary_.duration_ms = worker_.loop().now() - started_;
    count_close();
    worker_.retire(*this, summary_);
}

void ProxyConnection::count_close() {
    const ListenerMetrics& listener = metrics().listeners[summary_.listener];
    listener.active.add(shard_, -1);
    listener.closed[static_cast<std::size_t>(summary_.reason)].inc(shard_);
    std::optional<HelloReject> rejected;
    switch (summary_.reason) {
        case CloseReason::hello_timeout: rejected = HelloReject::timeout; break;
        case CloseReason::client_closed: rejected = HelloReject::client_closed; break;
        case CloseReason::no_sni: rejected = HelloReject::no_sni; break;
        case CloseReason::no_route: rejected = HelloReject::no_route; break;
        case CloseReason::hello_rejected: {
            const std::string_view coarse = hello_error_metric_reason(summary_.hello_error);
            rejected = coarse == "not_tls"     ? HelloReject::not_tls
                       : coarse == "too_large" ? HelloReject::too_large
                                               : HelloReject::malformed;
            break;
        }
        default: break;
    }
    if (rejected) listener.rejected[static_cast<std::size_t>(*rejected)].inc(shard_);
    if (const std::optional<ProxyReject> proxy = proxy_reject_of(summary_.reason))
        listener.proxy_rejected[static_cast<std::size_t>(*proxy)].inc(shard_);
    if (const std::optional<Refusal> refused = refusal_of(summary_.reason))
        listener.refused[static_cast<std::size_t>(*refused)].inc(shard_);
}

}  // namespace passgate
