#pragma once
// A minimal HTTP/1.1 server for the admin address (GET /metrics, /healthz, /readyz, /upgrade,
// /config, /listeners, /endpoints; POST /upgrade), on the
// control thread's loop, so it answers whatever load the workers carry. One request per
// connection (Connection: close: a pipelined second request is not answered); request heads are
// bounded (8 KiB including the blank line, else 400; request_timeout).
//
// Idle or slow clients cannot lock it (a liveness probe must always get its answer): each
// connection has request_timeout to deliver its head (and again to take its response); at most
// max_connections are held, at most max_connections_per_source from one client address; when
// either is reached, a new connection closes the oldest one still waiting for its head (of that
// address, or of all; if none waits, the oldest being answered), so a new connection always gets
// a slot. A head that has already arrived at accept is answered at once.

#include "reactor/acceptor.h"
#include "reactor/fd.h"
#include "reactor/loop.h"

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace passgate {

// Named Admin*, not Http*: src/discovery/http_client.h has passgate::HttpRequest/HttpResponse,
// and two different classes of one name break the one-definition rule (the linker keeps one
// copy of their implicit members: an unoptimised ASan build corrupted memory with it).
struct AdminResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string allow;  // a 405's Allow header (the methods the path takes); none when empty
};

struct AdminRequest {
    std::string method;
    std::string path;    // without the query string
    std::string accept;  // Accept header, if any
    bool peer_loopback = false;  // the client's address is 127.0.0.0/8 or ::1
};

// Parses the request head; nullopt while incomplete; a 400 response for a malformed head.
struct HttpParse {
    enum class Status { incomplete, complete, bad };
    Status status = Status::incomplete;
    AdminRequest request;
};
HttpParse parse_http_request(std::string_view head);

struct AdminServerOptions {
    reactor::Millis request_timeout = 2000;
    std::size_t max_connections = 256;
    std::size_t max_connections_per_source = 16;
};

struct AdminServerStats {
    std::uint64_t evicted = 0;    // connections closed to make room for a new one
    std::uint64_t timed_out = 0;  // connections closed at request_timeout
};

class AdminServer {
public:
    using Handler = std::function<AdminResponse(const AdminRequest&)>;
    AdminServer(reactor::Loop& loop, reactor::Fd listen_socket, Handler handler,
                const AdminServerOptions& options = {});
    ~AdminServer();

    std::size_t connections() const { return exchanges_.size(); }
    // Accepts no new connection (an upgrade's new process serves the socket now); the open
    // exchanges are answered.
    void stop_accepting() { acceptor_.finish(); }
    const AdminServerStats& stats() const { return stats_; }

private:
    class Exchange;
    void accept(reactor::Fd socket);
    // Closes the oldest exchange waiting for its head among those `matching`, else the oldest
    // of them (none when nothing matches).
    void evict_oldest(const std::function<bool(const Exchange&)>& matching);
    void retire(Exchange* exchange);  // hands it to the loop's defer_destroy

    reactor::Loop& loop_;
    reactor::Fd listen_socket_;
    Handler handler_;
    AdminServerOptions options_;
    AdminServerStats stats_;
    std::list<std::unique_ptr<Exchange>> exchanges_;  // oldest first
    std::unordered_map<std::string, std::size_t> per_source_;  // open exchanges by client address
    reactor::Acceptor acceptor_;
};

}  // namespace passgate
