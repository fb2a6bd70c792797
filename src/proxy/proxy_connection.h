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
//   5. forward both directions, readiness from io_uring, the bytes moved by the forwarder
//      (forwarder.h: each wake-up's first bytes through an 8 KiB buffer, streams with splice(2)
//      through leased pipes); passing half-closes through, until both directions are closed,
//      an error, or idle_timeout.

#include "reactor/fd.h"
#include "reactor/loop.h"
#include "src/wire/client_hello.h"
#include "src/observe/connection_summary.h"
#include "src/observe/app_metrics.h"
#include "src/proxy/forwarder.h"
#include "src/routing/service_pool.h"

#include <cstddef>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
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

    // One direction as the session sees it: its forwarding state, its two sockets, the watches
    // that wake it, and what its failures close the connection as. Chosen in flow() only.
    struct Flow {
        Direction& direction;
        const Direction& other;
        DirectionEnds ends;
        reactor::Watch& source_readable;
        reactor::Watch& destination_writable;
        CloseReason source_failed;
        CloseReason destination_failed;
        const metrics::Counter& bytes_forwarded;  // the route's byte counter of this direction
    };

    // Hello buffer memory, charged to the worker's budget ([runtime] max_hello_memory):
    // room for `extra` more bytes (false: over budget, nothing changed), and the charge's end.
    bool reserve_hello(std::size_t extra);
    void charge_hello_capacity();
    void free_hello();
    // 0b. PROXY header from an upstream load balancer
    void on_client_readable_proxy_header();
    // 1. hello
    void on_client_readable_hello();
    void wait_for_client();
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
    Flow flow(bool client_to_backend);
    void pump_direction(bool client_to_backend);
    void pump_both();
    void after_forward(const Flow& flow, const ForwardResult& result);
    void count_forwarded(const Flow& flow, std::size_t bytes);
    // Every change of state_ goes through here: the order of the life above, or closed.
    void enter(State next);
    static bool legal_transition(State from, State to);
    void finish(CloseReason reason, int error = 0);
    ConnectionSummary summarize(CloseReason reason);

    // Event entry points.
    void on_client_readable(int result);
    void on_client_writable(int result);
    void on_backend_readable(int result);
    void on_backend_writable(int result);
    void on_deadline();
    void on_resume();
    void on_lifetime_limit();
    void arm_lifetime_limit();

    // The client's address as access control, logs, balancing and our own PROXY header see it:
    // the socket's peer (read at accept: once the client resets, it cannot be read any more),
    // or the address a trusted PROXY header carried. nullptr if unknown.
    const sockaddr* client_address() const;
    const SnapshotMetrics& metrics() const;
    std::size_t shard() const;  // this worker's metrics shard
    void count_close(CloseReason reason);

    Worker& worker_;
    Generation& generation_;
    State state_ = State::reading_hello;
    reactor::Fd client_;
    reactor::Fd backend_;
    std::uint32_t listener_ = 0;     // index in the snapshot
    std::uint32_t route_index_ = 0;  // valid once routed_
    std::uint32_t service_ = 0;      // valid once service_picked_
    bool routed_ = false;
    bool service_picked_ = false;
    // Counted as open in the worker's listener / route limits (released in finish()).
    bool counted_listener_ = false;
    bool counted_route_ = false;
    bool client_address_known_ = false;
    bool proxied_destination_known_ = false;
    // Client bytes (or its FIN) arrived while connecting or while the hello was being written
    // (or the hello ended exactly at the size cap): read them once the hello is delivered.
    bool client_bytes_waiting_ = false;
    std::uint8_t connect_attempts_ = 0;
    HelloError hello_error_ = HelloError::none;
    int error_ = 0;  // errno behind the close, or of the last failed connect attempt
    std::uint32_t hello_bytes_ = 0;
    reactor::Millis started_ = 0;
    reactor::Millis last_activity_ = 0;
    // Accept time until the hello is parsed (hello duration histogram), then the current connect
    // attempt's start (connect duration histogram).
    std::int64_t phase_started_us_ = 0;
    // Deadlines of the lifetime timer (0: none): the route's max_connection_duration, and the
    // drain a reload that removed the route grants (close_after).
    reactor::Millis max_duration_at_ = 0;
    reactor::Millis route_drain_at_ = 0;
    InetAddress client_address_{};
    // The address the client connected to, when a PROXY header carried it (else getsockname).
    InetAddress proxied_destination_{};
    // The endpoint being connected to or forwarded to, or the last one tried; counted in its
    // `open` while endpoint_open_.
    EndpointRef endpoint_;
    bool endpoint_open_ = false;

    std::string sni_;
    // The ALPN protocols offered, in their wire form (one length byte, then the name, each): one
    // short string instead of a vector of strings, for the access log and the PROXY v2 TLV.
    std::string alpn_wire_;

    std::vector<std::uint8_t> hello_;  // bytes received before routing; forwarded unchanged
    // Walks hello_ as it grows, resuming where the last arrival left off (linear in the bytes,
    // however the client frames and splits them); hello_ is only appended to until it decides.
    HelloReader hello_reader_;
    std::size_t hello_sent_ = 0;
    std::size_t hello_charged_ = 0;  // hello_'s capacity as charged to the worker's budget
    std::size_t proxy_header_bytes_ = 0;  // PROXY protocol header at the front of hello_
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
    reactor::MemberTimer<ProxyConnection, &ProxyConnection::on_lifetime_limit> lifetime_limit_{*this};
};

}  // namespace passgate
