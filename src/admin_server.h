#pragma once
// A minimal HTTP/1.1 server for the admin address (GET /metrics, /healthz, /readyz), on the
// control thread's loop, so it answers whatever load the workers carry. One request per
// connection (Connection: close); requests are bounded (8 KiB, 5 s).

#include "reactor/acceptor.h"
#include "reactor/fd.h"
#include "reactor/loop.h"

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

namespace passgate {

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

struct HttpRequest {
    std::string method;
    std::string path;    // without the query string
    std::string accept;  // Accept header, if any
};

// Parses the request head; nullopt while incomplete; a 400 response for a malformed head.
struct HttpParse {
    enum class Status { incomplete, complete, bad };
    Status status = Status::incomplete;
    HttpRequest request;
};
HttpParse parse_http_request(std::string_view head);

class AdminServer : private reactor::Timer {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;
    AdminServer(reactor::Loop& loop, reactor::Fd listen_socket, Handler handler);
    ~AdminServer();

private:
    class Exchange;
    void retire(Exchange* exchange);
    void on_timer() override;  // frees retired exchanges, one loop iteration later

    reactor::Loop& loop_;
    reactor::Fd listen_socket_;
    Handler handler_;
    std::list<std::unique_ptr<Exchange>> exchanges_;
    std::list<std::unique_ptr<Exchange>> retired_;
    reactor::Acceptor acceptor_;
};

}  // namespace passgate
