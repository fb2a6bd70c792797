#include "src/control/admin_server.h"

#include "config/hostname.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace passgate {

namespace {
constexpr std::size_t max_request_head = 8 * 1024;

std::string_view status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 202: return "Accepted";
        case 403: return "Forbidden";
        case 409: return "Conflict";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

// The client's IP address (no port) as bytes: the key of the per-source limit.
std::string source_of(int socket) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getpeername(socket, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
    if (address.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        return std::string(reinterpret_cast<const char*>(&v4.sin_addr), sizeof v4.sin_addr);
    }
    if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        return std::string(reinterpret_cast<const char*>(&v6.sin6_addr), sizeof v6.sin6_addr);
    }
    return {};
}
// `source` as source_of gives it: 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104.
bool is_loopback_source(const std::string& source) {
    if (source.size() == 4) return static_cast<unsigned char>(source[0]) == 127;
    if (source.size() != 16) return false;
    static const unsigned char ipv6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(source.data(), ipv6_loopback, 16) == 0) return true;
    return std::memcmp(source.data(), v4_mapped, 12) == 0 && static_cast<unsigned char>(source[12]) == 127;
}
}  // namespace

HttpParse parse_http_request(std::string_view head) {
    HttpParse parse;
    const std::size_t end = head.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (head.size() >= max_request_head) parse.status = HttpParse::Status::bad;
        return parse;
    }
    parse.status = HttpParse::Status::bad;
    // The limit holds for complete heads too: the server reads past it by up to one chunk.
    if (end + 4 > max_request_head) return parse;
    const std::string_view lines = head.substr(0, end);
    const std::size_t line_end = lines.find("\r\n");
    const std::string_view request_line = lines.substr(0, line_end);
    const std::size_t first_space = request_line.find(' ');
    if (first_space == std::string_view::npos) return parse;
    const std::size_t second_space = request_line.find(' ', first_space + 1);
    if (second_space == std::string_view::npos) return parse;
    const std::string_view version = request_line.substr(second_space + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return parse;
    parse.request.method = std::string(request_line.substr(0, first_space));
    std::string_view target = request_line.substr(first_space + 1, second_space - first_space - 1);
    if (target.empty() || target[0] != '/') return parse;
    target = target.substr(0, target.find('?'));
    parse.request.path = std::string(target);
    std::string_view rest = line_end == std::string_view::npos ? std::string_view{}
                                                               : lines.substr(line_end + 2);
    while (!rest.empty()) {
        const std::size_t next = rest.find("\r\n");
        const std::string_view header = rest.substr(0, next);
        rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 2);
        const std::size_t colon = header.find(':');
        if (colon == std::string_view::npos) return parse;
        if (config::ascii_lower(header.substr(0, colon)) == "accept") {
            std::string_view value = header.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            parse.request.accept = std::string(value);
        }
    }
    parse.status = HttpParse::Status::complete;
    return parse;
}

// One request/response on one admin connection.
class AdminServer::Exchange final : public reactor::WatchHandler, private reactor::Timer {
public:
    Exchange(AdminServer& server, reactor::Fd socket, std::string source)
        : source(std::move(source)), server_(server), socket_(std::move(socket)), watch_(server.loop_, *this) {}
    ~Exchange() = default;
    std::list<std::unique_ptr<Exchange>>::iterator position;
    const std::string source;  // the client's address, for the per-source limit

    // The head often arrives with the connection: read it at once, and wait only if it is not
    // all there.
    void start() {
        server_.loop_.arm_timer_after(*this, server_.options_.request_timeout);
        watch_.poll(socket_.get(), POLLIN | POLLRDHUP, true);
        read_request();
    }
    bool waiting_for_head() const { return !responding_; }
    // Closed to make room for a newer connection.
    void evict() { done(); }

    void on_watch(int result) override {
        if (result < 0) return done();
        if (!responding_) return read_request();
        write_response();
    }

private:
    void on_timer() override {
        ++server_.stats_.timed_out;
        done();
    }

    void read_request() {
        char chunk[4096];
        for (;;) {
            const ssize_t got = ::recv(socket_.get(), chunk, sizeof chunk, MSG_DONTWAIT);
            if (got > 0) {
                head_.append(chunk, static_cast<std::size_t>(got));
                if (head_.size() > max_request_head) break;
                continue;
            }
            if (got < 0 && errno == EINTR) continue;
            if (got < 0 && errno == EAGAIN) break;
            return done();  // closed or failed before a full request
        }
        const HttpParse parse = parse_http_request(head_);
        if (parse.status == HttpParse::Status::incomplete) return;
        AdminResponse response;
        if (parse.status == HttpParse::Status::bad) {
            response.status = 400;
            response.body = "bad request\n";
        } else {
            AdminRequest request = parse.request;
            request.peer_loopback = is_loopback_source(source);
            response = server_.handler_(request);
        }
        out_ = "HTTP/1.1 " + std::to_string(response.status) + " " +
               std::string(status_text(response.status)) + "\r\nContent-Type: " +
               response.content_type + "\r\nContent-Length: " +
               std::to_string(response.body.size()) + "\r\n" +
               (response.allow.empty() ? std::string() : "Allow: " + response.allow + "\r\n") +
               "Connection: close\r\n\r\n";
        if (parse.request.method != "HEAD") out_ += response.body;
        responding_ = true;
        watch_.stop();
        // The response gets its own request_timeout: a slow reader is closed then.
        server_.loop_.arm_timer_after(*this, server_.options_.request_timeout);
        write_response();
    }

    void write_response() {
        while (sent_ < out_.size()) {
            const ssize_t sent = ::send(socket_.get(), out_.data() + sent_, out_.size() - sent_,
                                        MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent > 0) {
                sent_ += static_cast<std::size_t>(sent);
                continue;
            }
            if (sent < 0 && errno == EINTR) continue;
            if (sent < 0 && errno == EAGAIN) {
                if (!watch_.active()) watch_.poll(socket_.get(), POLLOUT, false);
                return;
            }
            return done();
        }
        ::shutdown(socket_.get(), SHUT_WR);
        done();
    }

    void done() {
        watch_.stop();
        server_.loop_.cancel_timer(*this);
        server_.retire(this);
    }

    AdminServer& server_;
    reactor::Fd socket_;
    reactor::Watch watch_;
    std::string head_;
    std::string out_;
    std::size_t sent_ = 0;
    bool responding_ = false;
};

AdminServer::AdminServer(reactor::Loop& loop, reactor::Fd listen_socket, Handler handler,
                         const AdminServerOptions& options)
    : loop_(loop),
      listen_socket_(std::move(listen_socket)),
      handler_(std::move(handler)),
      options_(options),
      acceptor_(loop, listen_socket_.get(), [this](reactor::Fd socket) { accept(std::move(socket)); }) {
    options_.max_connections = std::max<std::size_t>(options_.max_connections, 1);
    options_.max_connections_per_source = std::max<std::size_t>(options_.max_connections_per_source, 1);
}

// Room first (the per-source limit, then the total), so that the newest connection always gets
// a slot: a probe is never turned away by clients that only hold connections open.
void AdminServer::accept(reactor::Fd socket) {
    std::string source = source_of(socket.get());
    const auto held = per_source_.find(source);
    if (held != per_source_.end() && held->second >= options_.max_connections_per_source)
        evict_oldest([&](const Exchange& exchange) { return exchange.source == source; });
    if (exchanges_.size() >= options_.max_connections)
        evict_oldest([](const Exchange&) { return true; });
    ++per_source_[source];
    exchanges_.push_back(std::make_unique<Exchange>(*this, std::move(socket), std::move(source)));
    exchanges_.back()->position = std::prev(exchanges_.end());
    exchanges_.back()->start();  // may answer and retire it at once
}

void AdminServer::evict_oldest(const std::function<bool(const Exchange&)>& matching) {
    Exchange* oldest = nullptr;
    for (const auto& exchange : exchanges_) {
        if (!matching(*exchange)) continue;
        if (exchange->waiting_for_head()) {
            oldest = exchange.get();
            break;
        }
        if (oldest == nullptr) oldest = exchange.get();
    }
    if (oldest == nullptr) return;
    ++stats_.evicted;
    oldest->evict();
}

AdminServer::~AdminServer() {
    acceptor_.stop();
    exchanges_.clear();
}

void AdminServer::retire(Exchange* exchange) {
    const auto held = per_source_.find(exchange->source);
    if (held != per_source_.end() && --held->second == 0) per_source_.erase(held);
    // Still on the call stack now: freed (socket closed) by the loop after this batch of events.
    std::unique_ptr<Exchange> owned = std::move(*exchange->position);
    exchanges_.erase(exchange->position);
    loop_.defer_destroy(std::move(owned));
}

}  // namespace passgate
