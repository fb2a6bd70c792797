#pragma once
// One client connection, from accept to close. Its life reads top to bottom in
// proxy_connection.cpp:
//   0. the listener's allow/deny, max_connections and max_connection_rate (refused: closed at once);
//      with accept_proxy_protocol, trusted_proxies instead of allow/deny here, then
//   0b. read the PROXY header (bounded by proxy_header_max_bytes and client_hello_timeout); its
//      addresses replace the socket's; allow/deny on them;
//   1. read the ClientHello (bounded by max_client_hello_size and client_hello_timeout);
//   2. route it (SNI, ALPN), apply the route's allow/deny and max_connections, arm its
//      max_connection_duration, and pick a service and an endpoint;
//   3. connect without blocking (connect_timeout), trying other endpoints on failure;
//   4. write the buffered hello bytes unchanged, then
//   5. forward both directions with splice(2) through leased pipes, readiness from io_uring,
//      passing half-closes through, until both directions are closed, an error, or idle_timeout.

#include "reactor/fd.h"
#include "reactor/loop.h"
#include "src/client_hello.h"
#include "src/connection_summary.h"
#include "src/app_metrics.h"
#include "src/pipe_pool.h"
#include "src/service_pool.h"

#include <cstddef>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

namespace passgate {

class Worker;
struct Generation;

// An IPv4 or IPv6 socket address, all a TCP peer can be: 28 bytes where sockaddr_storage takes
// 128. Every connection holds two of these (idle connections' memory is a design target).
union InetAddress {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
};

class ProxyConnection {
public:
    ProxyConnection(Worker& worker, Generation& generation, std::size_t listener,
                    reactor::Fd client);
    ProxyConnection(const ProxyConnection&) = delete;
    ProxyConnection& operator=(const ProxyConnection&) = delete;
    ~ProxyConnection();

    void start();
    // Closes at once (process shutdown).
    void abort(CloseReason reason);
    // Closes with route_removed after `delay` unless it ends before (a reload removed its route).
    void close_after(reactor::Millis delay);
    // The route it was routed by (in its own snapshot), or nullptr before routing.
    const config::Route* route() const;
    const Generation& generation() const { return generation_; }

    std::size_t slot = 0;  // position in the worker's connection table

private:
    enum class State { reading_proxy_header, reading_hello, connecting, forwarding, closed };

    // One direction of the byte stream.
    struct Direction {
        int from = -1;
        int to = -1;
        reactor::Watch* readable = nullptr;  // on `from`
        reactor::Watch* writable = nullptr;  // on `to`, armed only while `to` is full
        PipeLease pipe;
        bool source_eof = false;     // read side returned 0
        bool finished = false;       // EOF forwarded as shutdown(SHUT_WR)
        bool waiting_writable = false;
        std::uint64_t bytes = 0;
    };
    enum class Pump { idle, error_from, error_to, out_of_pipes, budget_spent };

    // 0b. PROXY header from an upstream load balancer
    void on_client_readable_proxy_header();
    // 1. hello
    void on_client_readable_hello();
    // 2-3. route and connect
    void route_and_connect(const ClientHello& hello);
    void connect_next();
    void on_connect_result(int error);
    void count_connect_failure(int error);
    std::uint64_t balance_key_hash(const ServicePool& pool) const;
    // 4-5. forward
    void start_forwarding();
    void prepend_proxy_header();
    void write_hello();
    Pump pump(Direction& direction);
    void pump_direction(bool client_to_backend);
    void pump_both();
    void after_pump(Pump result, bool client_to_backend);
    void finish(CloseReason reason, int error = 0);

    // Event entry points.
    void on_client_readable(int result);
    void on_client_writable(int result);
    void on_backend_readable(int result);
    void on_backend_writable(int result);
    void on_deadline();
    void on_resume();
    void on_route_drained();
    void on_max_duration();

    Worker& worker_;
    Generation& generation_;
    State state_ = State::reading_hello;
    reactor::Fd client_;
    reactor::Fd backend_;
    ConnectionSummary summary_;
    reactor::Millis started_ = 0;
    std::int64_t started_us_ = 0;          // accept time, for the hello duration histogram
    std::int64_t connect_started_us_ = 0;  // current attempt, for the connect duration histogram
    std::size_t shard_ = 0;                // this worker's metrics shard
    std::size_t route_index_ = 0;
    // The client's address as access control, logs, balancing and our own PROXY header see it:
    // the socket's peer (getpeername), or the address a trusted PROXY header carried.
    InetAddress client_address_{};
    bool client_address_known_ = false;
    // The address the client connected to, when a PROXY header carried it (else getsockname).
    InetAddress proxied_destination_{};
    bool proxied_destination_known_ = false;
    // Counted as open in the worker's listener / route limits (released in finish()).
    bool counted_listener_ = false;
    bool counted_route_ = false;
    EndpointRef endpoint_;  // the endpoint being connected to or forwarded to (counted as open)
    const SnapshotMetrics& metrics() const;
    void count_close();
    reactor::Millis last_activity_ = 0;

    std::vector<std::uint8_t> hello_;  // bytes received before routing; forwarded unchanged
    std::size_t hello_sent_ = 0;
    std::size_t proxy_header_bytes_ = 0;  // PROXY protocol header at the front of hello_
    std::size_t service_ = 0;
    std::vector<EndpointRef> tried_endpoints_;

    Direction client_to_backend_;
    Direction backend_to_client_;

    reactor::MemberWatchHandler<ProxyConnection, &ProxyConnection::on_client_readable> client_readable_handler_{*this};
    reactor::MemberWatchHandler<ProxyConnection, &ProxyConnection::on_client_writable> client_writable_handler_{*this};
    reactor::MemberWatchHandler<ProxyConnection, &ProxyConnection::on_backend_readable> backend_readable_handler_{*this};
    reactor::MemberWatchHandler<ProxyConnection, &ProxyConnection::on_backend_writable> backend_writable_handler_{*this};
    reactor::Watch client_readable_;
    reactor::Watch client_writable_;
    reactor::Watch backend_readable_;
    reactor::Watch backend_writable_;
    reactor::MemberTimer<ProxyConnection, &ProxyConnection::on_deadline> deadline_{*this};
    reactor::MemberTimer<ProxyConnection, &ProxyConnection::on_resume> resume_{*this};
    reactor::MemberTimer<ProxyConnection, &ProxyConnection::on_route_drained> route_drain_{*this};
    reactor::MemberTimer<ProxyConnection, &ProxyConnection::on_max_duration> max_duration_{*this};
};

}  // namespace passgate
