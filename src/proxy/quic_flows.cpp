#include "src/proxy/quic_flows.h"

#include "config/address.h"
#include "reactor/socket.h"
#include "src/observe/access_log.h"
#include "src/observe/app_metrics.h"
#include "src/observe/log.h"
#include "src/proxy/worker.h"
#include "src/wire/quic_initial.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace passgate {

namespace {

// recvmmsg batch: 32 buffers of up to 64 KiB (one datagram each, or a UDP GRO train of the
// backend's; 65,535 is the most an IPv4 UDP datagram or a GRO buffer holds). At most
// kBatchesPerWakeup batches per wake-up: one busy socket cannot starve the others; the poll
// is one-shot and re-armed, so what is left wakes it again at once.
constexpr std::size_t kBatch = 32;
constexpr std::size_t kDatagramSize = 65535;
constexpr int kBatchesPerWakeup = 4;
// Datagrams kept per flow before its hello is complete, beyond the Initial reader's own packet
// bound: coalesced 0-RTT or stray datagrams must not make the queue unbounded.
constexpr std::size_t kExtraQueued = 8;
constexpr std::size_t kMinShortPacket = 21;

std::size_t max_initial_packets(std::uint32_t max_hello_size) {
    // An Initial datagram carries at least ~1,100 bytes of CRYPTO data in practice; retransmits
    // and padding-only packets get some slack.
    return std::clamp<std::size_t>(max_hello_size / 1000 + 4, 8, 80);
}

std::string format_address(const reactor::SocketAddress& address) {
    return config::format_sockaddr(&address.any, reactor::address_length(address));
}

bool is_long_header(std::span<const std::uint8_t> datagram) {
    return !datagram.empty() && (datagram[0] & 0x80) != 0;
}

// The connection IDs of a long header by the version-independent invariants (RFC 8999 §5.1),
// whatever its fixed bit: peers that negotiated grease_quic_bit (RFC 9287; ngtcp2 does) clear it
// on any packet but a client's first Initial, which quic::read_header refuses as not QUIC. Flow
// lookups and the server CIDs learned must not depend on it.
struct LongHeaderIds {
    std::span<const std::uint8_t> dcid;
    std::span<const std::uint8_t> scid;
    std::uint32_t version = 0;
};
std::optional<LongHeaderIds> long_header_ids(std::span<const std::uint8_t> datagram) {
    if (!is_long_header(datagram) || datagram.size() < 7) return std::nullopt;
    const std::size_t dcid_length = datagram[5];
    if (dcid_length > quic::max_cid_length || datagram.size() < 7 + dcid_length) return std::nullopt;
    const std::size_t scid_length = datagram[6 + dcid_length];
    if (scid_length > quic::max_cid_length || datagram.size() < 7 + dcid_length + scid_length) return std::nullopt;
    LongHeaderIds ids;
    ids.version = static_cast<std::uint32_t>(datagram[1]) << 24 | static_cast<std::uint32_t>(datagram[2]) << 16 |
                  static_cast<std::uint32_t>(datagram[3]) << 8 | datagram[4];
    ids.dcid = datagram.subspan(6, dcid_length);
    ids.scid = datagram.subspan(7 + dcid_length, scid_length);
    return ids;
}

}  // namespace

// A listener socket being read.
struct QuicFlows::Socket final : reactor::WatchHandler {
    Socket(QuicFlows& owner_, int fd_) : owner(owner_), fd(fd_), watch(owner_.worker_.loop(), *this) {
        watch.poll(fd, POLLIN, false);
    }
    void on_watch(int result) override { owner.on_socket_readable(*this, result); }
    QuicFlows& owner;
    int fd;
    reactor::Watch watch;
};

// The old process's end of the forwarding channel, read by every worker (each message is taken
// by one of them; a flow on another worker is reached through the hand-off channels).
struct QuicFlows::ForwardReader final : reactor::WatchHandler {
    ForwardReader(QuicFlows& owner_, int fd_) : owner(owner_), fd(fd_), watch(owner_.worker_.loop(), *this) {
        watch.poll(fd, POLLIN, false);
    }
    void on_watch(int result) override { owner.on_forwarded(result); }
    QuicFlows& owner;
    int fd;
    reactor::Watch watch;
};

class QuicFlow final : public reactor::WatchHandler {
public:
    QuicFlow(QuicFlows& owner, Generation& generation, std::size_t listener, int listen_fd,
             const reactor::DatagramBatch::Received& first)
        : owner_(owner),
          generation_(generation),
          listener_(listener),
          listen_fd_(listen_fd),
          client_(*first.peer),
          local_(first.local),
          has_local_(first.has_local),
          backend_readable_(owner.worker_.loop(), *this) {
        ++generation_.connections;
        const config::Listener& config = listener_config();
        assembler_ = std::make_unique<quic::InitialAssembler>(config.max_client_hello_size,
                                                               max_initial_packets(config.max_client_hello_size));
        started_ = owner_.worker_.loop().now();
        last_activity_ = started_;
        metrics().active.add(owner_.shard(), 1);
        owner_.worker_.loop().arm_timer(timer_, started_ + config.client_hello_timeout.count());
    }
    ~QuicFlow() { --generation_.connections; }

    void on_watch(int result) override { on_backend_readable(result); }

    // A datagram from the client (on the flow's address, or one that moved it here).
    void from_client(std::span<const std::uint8_t> data) {
        last_activity_ = owner_.worker_.loop().now();
        if (state_ == State::forwarding) return send_to_backend(data);
        if (state_ != State::assembling) return;
        if (queued_.size() >= max_initial_packets(listener_config().max_client_hello_size) + kExtraQueued)
            return reject(static_cast<std::size_t>(quic::InitialError::too_many_packets));
        if (!owner_.worker_.charge_hello_memory(data.size(), queued_bytes_ + data.size())) {
            return reject(static_cast<std::size_t>(QuicInitialLimit::hello_memory_limit));
        }
        queued_bytes_ += data.size();
        queued_.emplace_back(data.begin(), data.end());
        const quic::InitialProgress progress = assembler_->feed(data);
        if (progress.status == quic::InitialProgress::Status::rejected) {
            hello_error_ = progress.hello_error;
            return reject(static_cast<std::size_t>(progress.error));
        }
        if (progress.status == quic::InitialProgress::Status::complete) route(progress.hello);
    }

    // The client now sends from `peer` (and to `local`): replies follow it.
    void move_to(const reactor::DatagramBatch::Received& datagram) {
        owner_.unindex_address(*this);
        client_ = *datagram.peer;
        local_ = datagram.local;
        has_local_ = datagram.has_local;
        owner_.index_address(*this);
        ++migrations_;
    }

    // Process shutdown, the listener socket gone.
    void abort(CloseReason reason) { close(reason); }
    // A reload removed its route, which asked for a drain_timeout.
    void close_after(reactor::Millis delay) {
        if (state_ != State::forwarding) return;
        drain_at_ = owner_.worker_.loop().now() + delay;
        arm_idle_timer();
    }
    const config::Route* route() const {
        return routed_ ? &generation_.snapshot->config().routes[route_index_] : nullptr;
    }

    const reactor::SocketAddress& client() const { return client_; }
    int listen_fd() const { return listen_fd_; }
    std::vector<std::string> keys;  // its entries in the owner's connection ID index
    std::size_t slot = 0;

private:
    enum class State { assembling, forwarding, closed };

    const config::Listener& listener_config() const { return *generation_.snapshot->listeners()[listener_].listener; }
    const QuicListenerMetrics& metrics() const { return snapshot_metrics().quic_listeners[listener_]; }
    const SnapshotMetrics& snapshot_metrics() const { return generation_.snapshot->metrics(); }
    std::size_t shard() const { return owner_.shard(); }

    // Refused before routing: counted by reason (the Initial reader's, or a limit).
    void reject(std::size_t reason) {
        metrics().initial_rejected[reason].inc(shard());
        close(reason == static_cast<std::size_t>(QuicInitialLimit::timeout) ? CloseReason::hello_timeout
              : reason == static_cast<std::size_t>(QuicInitialLimit::hello_memory_limit) ? CloseReason::hello_memory_limit
                                                                                         : CloseReason::hello_rejected);
    }

    void route(const ClientHello& hello) {
        sni_ = hello.sni;
        alpn_ = hello.alpn;
        hello_bytes_ = queued_bytes_;
        const Snapshot& snapshot = *generation_.snapshot;
        const ListenerRoutes::Match match = snapshot.listeners()[listener_].routes.match(hello.sni, hello.alpn);
        if (match.route == nullptr)
            return close(match.miss == ListenerRoutes::Miss::no_sni ? CloseReason::no_sni : CloseReason::no_route);
        route_index_ = snapshot.route_index(match.route);
        routed_ = true;
        const config::Route& route = *match.route;
        if (!route.access.permits(&client_.any)) return close(CloseReason::denied);
        if (!owner_.worker_.admit_route(generation_, route_index_, counted_route_)) return close(CloseReason::route_limit);
        if (route.max_connection_duration) max_duration_at_ = started_ + route.max_connection_duration->count();
        metrics().flows_by_route[route_index_].inc(shard());
        const std::optional<std::size_t> service = generation_.balancer.pick_service(route_index_);
        if (!service) return close(CloseReason::no_endpoint);
        if (*service == WeightedService::invalid) return close(CloseReason::invalid_backend);
        service_ = *service;
        service_picked_ = true;
        connect();
    }

    // A UDP "connect" sends nothing: only local failures show here (no route to the address,
    // out of sockets). A backend that does not listen answers with ICMP, seen on the first read.
    void connect() {
        const config::Service& service = generation_.snapshot->config().services[service_];
        ServicePool& pool = *generation_.pools[service_];
        std::vector<EndpointRef> tried;
        while (tried.size() < service.connect_attempts) {
            PickRequest request;
            request.now_ms = owner_.worker_.loop().now();
            request.tried = tried;
            if (pool.settings().balance == config::Balance::maglev)
                request.key_hash = pool.settings().hash_key == config::HashKey::sni ? stable_hash(sni_) : client_hash();
            const PickResult picked = pool.pick(request);
            if (!picked.endpoint) break;
            if (picked.panic) snapshot_metrics().services[service_].panic.inc(shard());
            tried.push_back(picked.endpoint);
            ++connect_attempts_;
            const config::Address& address = picked.endpoint->endpoint.address;
            reactor::UdpConnect attempt = reactor::connect_udp(address.sockaddr_ptr(), address.length, true);
            if (!attempt.socket) {
                error_ = attempt.error;
                if (reactor::is_local_resource_error(attempt.error)) return close(CloseReason::out_of_resources);
                continue;
            }
            endpoint_ = picked.endpoint;
            add_open(*endpoint_, shard());
            endpoint_open_ = true;
            endpoint_->endpoint.metrics.connections.inc(shard());
            backend_ = std::move(attempt.socket);
            return start_forwarding();
        }
        close(connect_attempts_ == 0 ? CloseReason::no_endpoint : CloseReason::connect_failed);
    }

    std::uint64_t client_hash() const {
        if (client_.any.sa_family == AF_INET)
            return stable_hash(std::string_view(reinterpret_cast<const char*>(&client_.v4.sin_addr), sizeof client_.v4.sin_addr));
        return stable_hash(std::string_view(reinterpret_cast<const char*>(&client_.v6.sin6_addr), sizeof client_.v6.sin6_addr));
    }

    void start_forwarding() {
        state_ = State::forwarding;
        // The client's first DCID stays a way to find the flow (a retransmitted Initial from a
        // new port); the server's own IDs are added as its long headers show them.
        owner_.index_cid(*this, assembler_->original_dcid());
        assembler_.reset();  // its reassembly buffer is not needed any more
        for (const std::vector<std::uint8_t>& datagram : queued_) send_to_backend(datagram);
        owner_.worker_.release_hello_memory(queued_bytes_);
        queued_.clear();
        queued_.shrink_to_fit();
        queued_bytes_ = 0;
        backend_readable_.poll(backend_.get(), POLLIN, false);
        arm_idle_timer();
    }

    void send_to_backend(std::span<const std::uint8_t> data) {
        const ssize_t sent = ::send(backend_.get(), data.data(), data.size(), MSG_DONTWAIT);
        if (sent < 0) {
            metrics().dropped[static_cast<std::size_t>(QuicDrop::send_failed)].inc(shard());
            return;
        }
        bytes_client_to_backend_ += data.size();
        metrics().packets_client_to_backend.inc(shard());
        metrics().bytes_client_to_backend.inc(shard(), data.size());
        snapshot_metrics().routes[route_index_].bytes_client_to_backend.inc(shard(), data.size());
    }

    void on_backend_readable(int result) {
        if (state_ != State::forwarding) return;
        if (result < 0) return close(CloseReason::backend_error, -result);
        reactor::DatagramBatch& batch = owner_.batch_;
        std::uint64_t packets = 0;
        std::uint64_t bytes = 0;
        for (int round = 0; round < kBatchesPerWakeup; ++round) {
            const int received = batch.receive(backend_.get());
            if (received < 0) {
                // ICMP port unreachable and the like, reported on the connected socket.
                const int error = -received;
                if (bytes_backend_to_client_ + bytes == 0 && error == ECONNREFUSED) {
                    // The endpoint does not listen: a connect failure, for outlier detection too.
                    endpoint_->endpoint.metrics.failures[static_cast<std::size_t>(connect_failure_of(error))].inc(shard());
                    if (generation_.pools[service_]->on_connect_failure(*endpoint_, owner_.worker_.loop().now()))
                        endpoint_->endpoint.metrics.ejections.inc(shard());
                    return close(CloseReason::connect_failed, error);
                }
                return close(CloseReason::backend_error, error);
            }
            for (int i = 0; i < received; ++i) {
                const reactor::DatagramBatch::Received datagram = batch.at(static_cast<std::size_t>(i));
                if (datagram.truncated) continue;
                learn_server_cid(datagram.data);
                // A GRO buffer (the server's burst) leaves as one GSO message of the same segments.
                owner_.sender_.add(listen_fd_, datagram.data, client_, has_local_ ? &local_ : nullptr,
                                   datagram.segment_size);
                packets += datagram.datagrams();
                bytes += datagram.data.size();
            }
            const std::size_t failed = owner_.sender_.flush();
            if (failed > 0) metrics().dropped[static_cast<std::size_t>(QuicDrop::send_failed)].inc(shard(), failed);
            if (static_cast<std::size_t>(received) < batch.count()) break;
        }
        if (packets > 0) {
            // The endpoint's first answer: it is up (outlier detection counts from here).
            if (bytes_backend_to_client_ == 0) generation_.pools[service_]->on_connected(*endpoint_);
            last_activity_ = owner_.worker_.loop().now();
            bytes_backend_to_client_ += bytes;
            metrics().packets_backend_to_client.inc(shard(), packets);
            metrics().bytes_backend_to_client.inc(shard(), bytes);
            snapshot_metrics().routes[route_index_].bytes_backend_to_client.inc(shard(), bytes);
        }
        backend_readable_.poll(backend_.get(), POLLIN, false);
    }

    // The SCID of the server's long-header packets (Initial, Handshake, Retry): the DCID the
    // client's later packets carry. Only the first packet of a datagram is read: the server's
    // coalesced packets share its SCID.
    void learn_server_cid(std::span<const std::uint8_t> datagram) {
        if (server_cids_ >= kMaxServerCids) return;
        const std::optional<LongHeaderIds> ids = long_header_ids(datagram);
        if (!ids || ids->scid.empty() || ids->version == 0) return;  // version 0: Version Negotiation
        if (owner_.find_by_cid(listen_fd_, ids->scid) == this) return;
        owner_.index_cid(*this, ids->scid);
        ++server_cids_;
    }

    void arm_idle_timer() {
        reactor::Millis deadline = last_activity_ + listener_config().quic_flow_idle_timeout.count();
        if (max_duration_at_ != 0) deadline = std::min(deadline, max_duration_at_);
        if (drain_at_ != 0) deadline = std::min(deadline, drain_at_);
        owner_.worker_.loop().arm_timer(timer_, deadline);
    }

    void on_timer() {
        const reactor::Millis now = owner_.worker_.loop().now();
        if (state_ == State::assembling) return reject(static_cast<std::size_t>(QuicInitialLimit::timeout));
        if (state_ != State::forwarding) return;
        if (max_duration_at_ != 0 && now >= max_duration_at_) return close(CloseReason::max_duration);
        if (drain_at_ != 0 && now >= drain_at_) return close(CloseReason::route_removed);
        if (now - last_activity_ >= listener_config().quic_flow_idle_timeout.count()) return close(CloseReason::idle_timeout);
        arm_idle_timer();
    }

    void close(CloseReason reason, int error = 0) {
        if (state_ == State::closed) return;
        if (error != 0) error_ = error;
        state_ = State::closed;
        Worker& worker = owner_.worker_;
        worker.loop().cancel_timer(timer_);
        backend_readable_.stop();
        if (backend_) worker.loop().close(std::move(backend_));
        if (queued_bytes_ > 0) worker.release_hello_memory(queued_bytes_);
        queued_.clear();
        queued_bytes_ = 0;
        if (counted_route_) worker.release_route(generation_, route_index_);
        if (counted_listener) worker.release_listener(generation_, listener_);
        if (endpoint_open_) release_open(*endpoint_, shard());
        metrics().active.add(shard(), -1);
        metrics().closed[static_cast<std::size_t>(reason)].inc(shard());
        log_flow(reason);
        owner_.retire(*this);
    }

    void log_flow(CloseReason reason) {
        AccessLog* log = owner_.worker_.access_log();
        if (log == nullptr) return;
        const config::Config& config = generation_.snapshot->config();
        ConnectionSummary summary;
        summary.listener = listener_;
        if (routed_) summary.route = &config.routes[route_index_].name;
        if (service_picked_) summary.service = &config.services[service_].name;
        if (endpoint_) summary.endpoint = endpoint_->endpoint.name;
        summary.client = format_address(client_);
        summary.sni = sni_;
        summary.alpn = alpn_;
        summary.hello_bytes = hello_bytes_;
        summary.bytes_client_to_backend = bytes_client_to_backend_;
        summary.bytes_backend_to_client = bytes_backend_to_client_;
        summary.duration_ms = owner_.worker_.loop().now() - started_;
        summary.connect_attempts = connect_attempts_;
        summary.reason = reason;
        summary.hello_error = hello_error_;
        summary.error = error_;
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        AccessRecord record = make_access_record(summary, listener_config().name, owner_.worker_.index(), now);
        record.protocol = "quic";
        log->submit(owner_.worker_.index(), std::move(record));
    }

public:
    bool counted_listener = false;

private:
    static constexpr std::size_t kMaxServerCids = 8;

    QuicFlows& owner_;
    Generation& generation_;
    std::size_t listener_;
    int listen_fd_;
    reactor::SocketAddress client_;
    reactor::SocketAddress local_;
    bool has_local_;
    State state_ = State::assembling;
    std::unique_ptr<quic::InitialAssembler> assembler_;
    std::vector<std::vector<std::uint8_t>> queued_;
    std::size_t queued_bytes_ = 0;
    std::size_t hello_bytes_ = 0;
    std::size_t route_index_ = 0;
    std::size_t service_ = 0;
    bool routed_ = false;
    bool service_picked_ = false;
    bool counted_route_ = false;
    bool endpoint_open_ = false;
    unsigned connect_attempts_ = 0;
    unsigned migrations_ = 0;
    std::size_t server_cids_ = 0;
    int error_ = 0;
    HelloError hello_error_ = HelloError::none;
    std::string sni_;
    std::vector<std::string> alpn_;
    EndpointRef endpoint_;
    reactor::Fd backend_;
    reactor::Millis started_ = 0;
    reactor::Millis last_activity_ = 0;
    reactor::Millis max_duration_at_ = 0;
    reactor::Millis drain_at_ = 0;  // a reload removed the route: its drain_timeout
    std::uint64_t bytes_client_to_backend_ = 0;
    std::uint64_t bytes_backend_to_client_ = 0;
    reactor::Watch backend_readable_;
    reactor::MemberTimer<QuicFlow, &QuicFlow::on_timer> timer_{*this};
};

QuicFlows::QuicFlows(Worker& worker, std::uint32_t max_flows, const QuicMesh& mesh)
    : worker_(worker), max_flows_(max_flows), batch_(kBatch, kDatagramSize), sender_(kBatch), handoff_to_(mesh.to) {
    for (QuicHandoffChannel* channel : mesh.from)
        handoff_from_.push_back(std::make_unique<reactor::ChannelReceiver<QuicHandoff>>(
            worker_.loop(), *channel, [this](QuicHandoff handoff) { on_handoff(std::move(handoff)); }));
}

QuicFlows::~QuicFlows() {
    handoff_from_.clear();
    forward_reader_.reset();
    flows_.clear();
    sockets_.clear();
}

const QuicListenerMetrics& QuicFlows::metrics(std::size_t listener) const {
    return worker_.current_generation().snapshot->metrics().quic_listeners[listener];
}

std::size_t QuicFlows::shard() const { return worker_.index(); }

void QuicFlows::add_socket(int fd) { sockets_.push_back(std::make_unique<Socket>(*this, fd)); }

void QuicFlows::remove_socket(int fd, CloseReason reason) {
    std::erase_if(sockets_, [fd](const std::unique_ptr<Socket>& socket) { return socket->fd == fd; });
    std::vector<QuicFlow*> closing;
    for (const auto& flow : flows_)
        if (flow->listen_fd() == fd) closing.push_back(flow.get());
    for (QuicFlow* flow : closing) flow->abort(reason);
}

void QuicFlows::after_reload(const config::Config& next) {
    for (const auto& flow : flows_) {
        const config::Route* route = flow->route();
        if (route == nullptr || !route->drain_timeout || next.find_route(route->name) != nullptr) continue;
        flow->close_after(route->drain_timeout->count());
    }
}

void QuicFlows::stop() {
    sockets_.clear();
    while (!flows_.empty()) flows_.back()->abort(CloseReason::shutdown);
}

void QuicFlows::on_socket_readable(Socket& socket, int result) {
    const std::optional<std::size_t> listener = worker_.quic_listener_of(socket.fd);
    if (!listener) return;  // not a current listener's socket: left unread, it is about to go
    if (result < 0) {
        socket.watch.poll(socket.fd, POLLIN, false);
        return;
    }
    for (int round = 0; round < kBatchesPerWakeup; ++round) {
        const int received = batch_.receive(socket.fd);
        if (received <= 0) break;  // an error on an unconnected UDP socket: nothing to do
        for (int i = 0; i < received; ++i)
            on_client_datagram(socket.fd, *listener, batch_.at(static_cast<std::size_t>(i)));
        if (static_cast<std::size_t>(received) < batch_.count()) break;
    }
    socket.watch.poll(socket.fd, POLLIN, false);
}

void QuicFlows::on_client_datagram(int fd, std::size_t listener, const reactor::DatagramBatch::Received& datagram) {
    const QuicListenerMetrics& counters = metrics(listener);
    const auto drop = [&](QuicDrop reason) { counters.dropped[static_cast<std::size_t>(reason)].inc(shard()); };
    if (datagram.truncated) return drop(QuicDrop::truncated);
    if (const auto found = by_address_.find(address_key(fd, *datagram.peer)); found != by_address_.end())
        return found->second->from_client(datagram.data);
    // A known connection ID from a new address: the client moved (NAT rebinding, migration).
    // By the invariant header: the fixed bit may be greased (RFC 9287) once a flow exists.
    QuicFlow* moved = nullptr;
    const std::optional<LongHeaderIds> ids = long_header_ids(datagram.data);
    if (!is_long_header(datagram.data)) {
        // Header protection samples 16 bytes 4 past the packet number's start (RFC 9001 §5.4.2):
        // no short-header packet is under 21 bytes.
        if (datagram.data.size() < kMinShortPacket) return drop(QuicDrop::not_quic);
        moved = find_by_short_dcid(fd, datagram.data);
        if (moved == nullptr) {
            // During an upgrade it is most likely an old flow's: to the old process, and to the
            // other workers too (one of this process's flows may have moved to another worker).
            const bool forwarded = forward_to_old(listener, datagram);
            if (!handoff_to_.empty()) return hand_off(listener, datagram);
            if (forwarded) return;
        }
    } else if (ids) {
        moved = find_by_cid(fd, ids->dcid);
    }
    if (moved != nullptr) {
        moved->move_to(datagram);
        return moved->from_client(datagram.data);
    }
    const std::optional<quic::PacketHeader> header = quic::read_header(datagram.data, 0);
    if (!header) {
        // A long header with a greased fixed bit (RFC 9287) is a flow's, not a new one.
        if (ids && ids->version != 0 && forward_to_old(listener, datagram)) return;
        return drop(QuicDrop::not_quic);
    }
    switch (header->form) {
        case quic::PacketForm::initial:
            if (draining_) return drop(QuicDrop::draining);
            return start_flow(fd, listener, datagram);
        case quic::PacketForm::unsupported_version:
        case quic::PacketForm::version_negotiation:
            return drop(QuicDrop::unsupported_version);
        default:
            // Handshake or 0-RTT of no flow here: an old flow's during an upgrade.
            if (forward_to_old(listener, datagram)) return;
            return drop(QuicDrop::no_flow);
    }
}

bool QuicFlows::forward_to_old(std::size_t listener, const reactor::DatagramBatch::Received& datagram) {
    if (forward_fd_ < 0) return false;
    const QuicListenerMetrics& counters = metrics(listener);
    const std::string& name = worker_.current_generation().snapshot->listeners()[listener].listener->name;
    std::uint8_t name_length = static_cast<std::uint8_t>(std::min<std::size_t>(name.size(), 255));
    std::uint8_t has_local = datagram.has_local ? 1 : 0;
    reactor::SocketAddress peer = *datagram.peer;
    reactor::SocketAddress local = datagram.local;
    iovec parts[6] = {
        {&name_length, 1},
        {const_cast<char*>(name.data()), name_length},
        {&peer, sizeof peer},
        {&local, sizeof local},
        {&has_local, 1},
        {const_cast<std::uint8_t*>(datagram.data.data()), datagram.data.size()},
    };
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = 6;
    if (::sendmsg(forward_fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
        counters.upgrade_forwarded.inc(shard());
        return true;
    }
    if (errno == EPIPE || errno == ECONNREFUSED || errno == ECONNRESET || errno == ENOTCONN) {
        // The old process exited: its flows are gone, nothing to forward to any more.
        forward_fd_ = -1;
        return false;
    }
    counters.upgrade_full.inc(shard());  // EAGAIN/ENOBUFS: the old process is behind
    return true;
}

void QuicFlows::hand_over(int forward_fd) {
    for (const auto& socket : sockets_) socket->watch.stop();
    if (forward_fd < 0) return;
    forward_buffer_.resize(kDatagramSize + 512);
    forward_reader_ = std::make_unique<ForwardReader>(*this, forward_fd);
}

void QuicFlows::on_forwarded(int result) {
    ForwardReader& reader = *forward_reader_;
    if (result >= 0) {
        // Bounded per wake-up like a listener socket; the one-shot poll is re-armed below.
        for (std::size_t round = 0; round < kBatch * kBatchesPerWakeup; ++round) {
            const ssize_t got = ::recv(reader.fd, forward_buffer_.data(), forward_buffer_.size(), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return;  // the new process is gone
            if (got < 0) break;
            const std::span<std::uint8_t> message(forward_buffer_.data(), static_cast<std::size_t>(got));
            const std::size_t name_length = message[0];
            const std::size_t header = 1 + name_length + 2 * sizeof(reactor::SocketAddress) + 1;
            if (message.size() <= header) continue;
            const std::string name(reinterpret_cast<const char*>(message.data() + 1), name_length);
            const std::optional<std::pair<int, std::size_t>> socket = worker_.quic_socket_of(name);
            if (!socket) continue;  // a listener this process does not have
            reactor::SocketAddress peer{};
            reactor::DatagramBatch::Received datagram{};
            std::memcpy(&peer, message.data() + 1 + name_length, sizeof peer);
            std::memcpy(&datagram.local, message.data() + 1 + name_length + sizeof peer, sizeof datagram.local);
            datagram.has_local = message[header - 1] != 0;
            datagram.peer = &peer;
            datagram.data = message.subspan(header);
            metrics(socket->second).upgrade_received.inc(shard());
            on_client_datagram(socket->first, socket->second, datagram);
        }
    }
    reader.watch.poll(reader.fd, POLLIN, false);
}

void QuicFlows::start_flow(int fd, std::size_t listener, const reactor::DatagramBatch::Received& datagram) {
    const QuicListenerMetrics& counters = metrics(listener);
    if (flows_.size() >= max_flows_) {
        counters.initial_rejected[static_cast<std::size_t>(QuicInitialLimit::flow_limit)].inc(shard());
        return;
    }
    Generation& generation = worker_.current_generation();
    const config::Listener& config = *generation.snapshot->listeners()[listener].listener;
    // The listener's allow/deny and limits before anything is held for the client.
    if (!config.access.permits(&datagram.peer->any)) {
        counters.closed[static_cast<std::size_t>(CloseReason::denied)].inc(shard());
        return;
    }
    if (const std::optional<CloseReason> refused = worker_.admit_listener(generation, listener)) {
        counters.closed[static_cast<std::size_t>(*refused)].inc(shard());
        return;
    }
    auto flow = std::make_unique<QuicFlow>(*this, generation, listener, fd, datagram);
    flow->counted_listener = true;
    flow->slot = flows_.size();
    QuicFlow& started = *flow;
    flows_.push_back(std::move(flow));
    index_address(started);
    started.from_client(datagram.data);
}

QuicFlow* QuicFlows::find_by_short_dcid(int fd, std::span<const std::uint8_t> datagram) {
    for (const auto& entry : cid_lengths_) {
        const std::size_t length = entry.first;
        if (datagram.size() < 1 + length) break;
        if (QuicFlow* flow = find_by_cid(fd, datagram.subspan(1, length))) return flow;
    }
    return nullptr;
}

// One copy to each other worker, each channel bounded (a full one drops its copy, counted): a
// flood of unknown short headers costs at most the channels' capacity per wake-up of the others.
void QuicFlows::hand_off(std::size_t listener, const reactor::DatagramBatch::Received& datagram) {
    const QuicListenerMetrics& counters = metrics(listener);
    counters.handoffs_sent.inc(shard());
    const std::string& name = worker_.current_generation().snapshot->listeners()[listener].listener->name;
    for (QuicHandoffChannel* channel : handoff_to_) {
        QuicHandoff handoff{.listener = name, .data = {datagram.data.begin(), datagram.data.end()},
                            .peer = *datagram.peer, .local = datagram.local, .has_local = datagram.has_local};
        if (!channel->try_send(std::move(handoff))) counters.handoffs_full.inc(shard());
    }
}

void QuicFlows::on_handoff(QuicHandoff handoff) {
    const std::optional<std::pair<int, std::size_t>> socket = worker_.quic_socket_of(handoff.listener);
    if (!socket) return;
    QuicFlow* flow = find_by_short_dcid(socket->first, handoff.data);
    if (flow == nullptr) return;  // another worker's, or no one's (sent minus claimed)
    metrics(socket->second).handoffs_claimed.inc(shard());
    reactor::DatagramBatch::Received datagram;
    datagram.data = handoff.data;
    datagram.peer = &handoff.peer;
    datagram.local = handoff.local;
    datagram.has_local = handoff.has_local;
    if (address_key(socket->first, flow->client()) != address_key(socket->first, handoff.peer)) flow->move_to(datagram);
    flow->from_client(handoff.data);
}

QuicFlow* QuicFlows::find_by_cid(int fd, std::span<const std::uint8_t> cid) {
    if (cid.empty()) return nullptr;
    const auto found = by_cid_.find(cid_key(fd, cid));
    return found == by_cid_.end() ? nullptr : found->second;
}

std::string QuicFlows::address_key(int fd, const reactor::SocketAddress& address) {
    std::string key(reinterpret_cast<const char*>(&fd), sizeof fd);
    if (address.any.sa_family == AF_INET) {
        key.append(reinterpret_cast<const char*>(&address.v4.sin_port), sizeof address.v4.sin_port);
        key.append(reinterpret_cast<const char*>(&address.v4.sin_addr), sizeof address.v4.sin_addr);
    } else {
        key.append(reinterpret_cast<const char*>(&address.v6.sin6_port), sizeof address.v6.sin6_port);
        key.append(reinterpret_cast<const char*>(&address.v6.sin6_addr), sizeof address.v6.sin6_addr);
    }
    return key;
}

std::string QuicFlows::cid_key(int fd, std::span<const std::uint8_t> cid) {
    std::string key(reinterpret_cast<const char*>(&fd), sizeof fd);
    key.append(reinterpret_cast<const char*>(cid.data()), cid.size());
    return key;
}

void QuicFlows::index_address(QuicFlow& flow) {
    by_address_[address_key(flow.listen_fd(), flow.client())] = &flow;
}

void QuicFlows::unindex_address(QuicFlow& flow) {
    const auto found = by_address_.find(address_key(flow.listen_fd(), flow.client()));
    if (found != by_address_.end() && found->second == &flow) by_address_.erase(found);
}

// A connection ID already held by another flow stays with it: the first to show it owns it
// (IDs are random, a clash is a client or server reusing one on purpose).
void QuicFlows::index_cid(QuicFlow& flow, std::span<const std::uint8_t> cid) {
    if (cid.empty()) return;
    std::string key = cid_key(flow.listen_fd(), cid);
    if (!by_cid_.emplace(key, &flow).second) return;
    flow.keys.push_back(std::move(key));
    ++cid_lengths_[cid.size()];
}

void QuicFlows::retire(QuicFlow& flow) {
    unindex_address(flow);
    for (const std::string& key : flow.keys) {
        by_cid_.erase(key);
        const std::size_t length = key.size() - sizeof(int);
        if (--cid_lengths_[length] == 0) cid_lengths_.erase(length);
    }
    flow.keys.clear();
    const std::size_t slot = flow.slot;
    std::unique_ptr<QuicFlow> owned = std::move(flows_[slot]);
    if (slot + 1 != flows_.size()) {
        flows_[slot] = std::move(flows_.back());
        flows_[slot]->slot = slot;
    }
    flows_.pop_back();
    worker_.flow_retired();
    worker_.loop().defer_destroy(std::move(owned));
}

}  // namespace passgate
