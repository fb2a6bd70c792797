#include "src/discovery/http_client.h"

#include <curl/curl.h>
#include <poll.h>
#include <strings.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace passgate {

namespace {

// An error body of a non-2xx response is kept up to this size (the header's promise).
constexpr std::size_t max_error_body_bytes = 64u << 10;

// curl_global_init is not thread-safe; clients may be made on several threads (tests, perf).
void init_curl_library() {
    static std::once_flag once;
    static CURLcode status = CURLE_OK;
    std::call_once(once, [] { status = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (status != CURLE_OK) throw std::runtime_error(std::string("curl: ") + curl_easy_strerror(status));
}

// Host and port of a URL for error texts ("127.0.0.1:6443", "[::1]:443"); empty when unparsable.
std::string url_host_port(const std::string& url) {
    CURLU* parsed = curl_url();
    if (parsed == nullptr) return {};
    std::string out;
    char* host = nullptr;
    char* port = nullptr;
    if (curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
        curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(parsed, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        out = std::string(host) + ":" + port;
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(parsed);
    return out;
}

// A transfer's info item, or `fallback` when curl has none (it then leaves the output alone).
template <class T>
T transfer_info(CURL* easy, CURLINFO item, T fallback) {
    T value = fallback;
    if (curl_easy_getinfo(easy, item, &value) != CURLE_OK) return fallback;
    return value;
}

std::string ms_text(std::chrono::milliseconds value) { return std::to_string(value.count()) + " ms"; }

void erase_string(std::string& text) {
    if (!text.empty()) explicit_bzero(text.data(), text.size());
    text.clear();
}

bool is_tls_error(CURLcode code) {
    switch (code) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
            return true;
        default:
            return false;
    }
}

}  // namespace

// ---- State --------------------------------------------------------------------------------------

struct HttpClient::Impl {
    struct Request;
    struct SocketWatch;
    explicit Impl(reactor::Loop& loop);
    ~Impl();

    RequestId start(HttpRequest spec, bool streaming, OnLine on_line, Done done);
    std::string configure(Request& request);
    void cancel(RequestId id);

    // curl's callbacks: static trampolines to the members.
    static int socket_callback(CURL* easy, curl_socket_t fd, int what, void* client, void* socket_data);
    static int timer_callback(CURLM* multi, long timeout_ms, void* client);
    static std::size_t write_callback(char* data, std::size_t size, std::size_t count, void* request);
    static std::size_t header_callback(char* data, std::size_t size, std::size_t count, void* request);
    int on_socket(curl_socket_t fd, int what);
    void on_curl_timer_request(long timeout_ms);
    std::size_t on_body(Request& request, const char* data, std::size_t size);

    void on_socket_ready(int fd, int revents);
    void on_curl_timer();
    void arm_poll(SocketWatch& socket);
    void collect_finished();
    HttpResponse response_of(Request& request, CURLcode code);
    void detach(Request& request);
    void finish(Request& request, HttpResponse response);
    void deliver();

    reactor::Loop& loop;
    CURLM* multi = nullptr;
    RequestId next_id = 1;
    bool destroying = false;
    bool in_on_line = false;  // cancel() and destruction are forbidden from on_line
    std::map<RequestId, std::unique_ptr<Request>> requests;  // until `done` runs or cancel()
    std::map<int, std::unique_ptr<SocketWatch>> sockets;      // curl's open sockets by fd
    struct Ready {
        RequestId id;
        HttpResponse response;
    };
    std::vector<Ready> ready;  // finished, waiting for the deliver timer
    reactor::MemberTimer<Impl, &Impl::on_curl_timer> curl_timer{*this};
    reactor::MemberTimer<Impl, &Impl::deliver> deliver_timer{*this};
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

// One request, from get()/stream() until its `done` is delivered (or it is cancelled).
struct HttpClient::Impl::Request {
    Request(Impl& owner, RequestId id) : owner(owner), id(id), idle_timer(*this) {}
    ~Request();
    void on_idle_timeout();
    void restart_idle_timer() {
        if (spec.idle_timeout.count() > 0)
            owner.loop.arm_timer(idle_timer, reactor::monotonic_millis() + spec.idle_timeout.count());
    }

    Impl& owner;
    const RequestId id;
    HttpRequest spec;
    std::string host_port;  // for error texts
    bool streaming = false;
    OnLine on_line;
    Done done;
    CURL* easy = nullptr;  // set while curl has the transfer
    curl_slist* headers = nullptr;
    char error_buffer[CURL_ERROR_SIZE] = {};
    // Set by our callbacks when they end the transfer; takes precedence over curl's code.
    std::string failure;
    bool error_body_cut = false;  // a non-2xx body reached 64 KiB: ended on purpose, not an error
    long status = 0;              // known from the first body byte on
    std::string body;
    std::string partial_line;  // stream(): bytes after the last '\n'
    reactor::MemberTimer<Request, &Request::on_idle_timeout> idle_timer;
};

// A socket curl has open, watched with one-shot polls for what curl wants. One-shot, like
// DnsResolver's: re-armed after each curl_multi_socket_action, which gives level-triggered
// readiness (curl need not drain a socket per call).
struct HttpClient::Impl::SocketWatch final : reactor::WatchHandler {
    SocketWatch(Impl& owner, int fd);
    void on_watch(int result) override;

    Impl& owner;
    const int fd;
    bool readable = false;
    bool writable = false;
    std::uint32_t polled_events = 0;  // what the poll in flight waits for
    reactor::Watch watch;
};

HttpClient::Impl::Request::~Request() {
    // The header carries the bearer token; the copies we hold are wiped before their memory goes.
    for (curl_slist* item = headers; item != nullptr; item = item->next) {
        if (item->data != nullptr) explicit_bzero(item->data, std::strlen(item->data));
    }
    curl_slist_free_all(headers);
    erase_string(spec.bearer_token);
    erase_string(spec.tls.client_key_pem);
}

HttpClient::Impl::SocketWatch::SocketWatch(Impl& owner, int fd) : owner(owner), fd(fd), watch(owner.loop, *this) {}

void HttpClient::Impl::SocketWatch::on_watch(int result) { owner.on_socket_ready(fd, result); }

// ---- Client -------------------------------------------------------------------------------------

HttpClient::Impl::Impl(reactor::Loop& loop) : loop(loop) {
    init_curl_library();
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl: cannot create a multi handle");
    if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &socket_callback) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &timer_callback) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this) != CURLM_OK) {
        curl_multi_cleanup(multi);
        throw std::runtime_error("curl: cannot set the multi handle's callbacks");
    }
}

HttpClient::Impl::~Impl() {
    // Requests in flight end without their callbacks; curl_multi_cleanup then closes the cached
    // connections (its socket callback stops their watches), and the timers go with the members.
    assert(!in_on_line && "an HttpClient must not be destroyed from on_line");
    destroying = true;
    for (auto& [id, request] : requests) detach(*request);
    requests.clear();
    ready.clear();
    curl_multi_cleanup(multi);
    sockets.clear();
}

HttpClient::HttpClient(reactor::Loop& loop) : impl_(std::make_unique<Impl>(loop)) {}

HttpClient::~HttpClient() = default;

HttpClient::RequestId HttpClient::get(HttpRequest request, Done done) {
    return impl_->start(std::move(request), false, {}, std::move(done));
}

HttpClient::RequestId HttpClient::stream(HttpRequest request, OnLine on_line, Done done) {
    return impl_->start(std::move(request), true, std::move(on_line), std::move(done));
}

void HttpClient::cancel(RequestId id) { impl_->cancel(id); }

std::size_t HttpClient::requests_in_flight() const { return impl_->requests.size(); }

HttpClient::RequestId HttpClient::Impl::start(HttpRequest spec, bool streaming, OnLine on_line, Done done) {
    const RequestId id = next_id++;
    auto owned = std::make_unique<Request>(*this, id);
    Request& request = *owned;
    request.spec = std::move(spec);
    request.streaming = streaming;
    request.on_line = std::move(on_line);
    request.done = std::move(done);
    request.host_port = url_host_port(request.spec.url);
    requests.emplace(id, std::move(owned));

    // Failures to set up are reported like any other: through `done`, from the deliver timer.
    std::string error = configure(request);
    if (error.empty() && curl_multi_add_handle(multi, request.easy) != CURLM_OK) error = "curl: cannot add the transfer";
    if (!error.empty()) {
        if (request.easy != nullptr) curl_easy_cleanup(request.easy);
        request.easy = nullptr;
        HttpResponse response;
        response.error = std::move(error);
        finish(request, std::move(response));
        return id;
    }
    // The idle clock runs from the start: connecting and waiting for the headers count as silence.
    request.restart_idle_timer();
    return id;  // curl's timer callback (delay 0) has armed curl_timer: the transfer starts soon
}

std::string HttpClient::Impl::configure(Request& request) {
    request.easy = curl_easy_init();
    if (request.easy == nullptr) return "curl: cannot create a transfer";
    CURL* easy = request.easy;
    const HttpRequest& spec = request.spec;
    const HttpTls& tls = spec.tls;
    if (!tls.ca_file.empty() && !tls.ca_pem.empty()) return "TLS: both a CA file and CA PEM data given";
    if (!tls.client_cert_file.empty() && !tls.client_cert_pem.empty())
        return "TLS: both a client certificate file and PEM data given";
    if (!tls.client_key_file.empty() && !tls.client_key_pem.empty())
        return "TLS: both a client key file and PEM data given";

    if (!spec.bearer_token.empty()) {
        std::string header = "Authorization: Bearer " + spec.bearer_token;
        curl_slist* appended = curl_slist_append(request.headers, header.c_str());
        erase_string(header);
        if (appended == nullptr) return "curl: out of memory";
        request.headers = appended;
    }
    std::vector<std::string> header_lines = spec.headers;
    if (spec.method != "GET") {
        // Not curl's defaults for a body: no "Expect: 100-continue" wait, and no form
        // Content-Type the caller did not ask for.
        header_lines.emplace_back("Expect:");
        const bool typed = std::any_of(header_lines.begin(), header_lines.end(), [](const std::string& line) {
            return line.size() >= 13 && strncasecmp(line.c_str(), "content-type:", 13) == 0;
        });
        if (!typed) header_lines.emplace_back("Content-Type:");
    }
    for (const std::string& line : header_lines) {
        curl_slist* appended = curl_slist_append(request.headers, line.c_str());
        if (appended == nullptr) return "curl: out of memory";
        request.headers = appended;
    }

    bool ok = true;
    auto set = [&](CURLoption option, auto value) { ok = ok && curl_easy_setopt(easy, option, value) == CURLE_OK; };
    set(CURLOPT_URL, spec.url.c_str());
    set(CURLOPT_PRIVATE, static_cast<void*>(&request));
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85
    set(CURLOPT_PROTOCOLS_STR, "https,http");
#else
    set(CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
    if (spec.method != "GET") {
        // A body is sent for any method that has one (and for POST/PUT/PATCH even when empty);
        // curl copies it.
        const bool has_body = !spec.body.empty() || spec.method == "POST" || spec.method == "PUT" ||
                              spec.method == "PATCH";
        if (has_body) {
            set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(spec.body.size()));
            set(CURLOPT_COPYPOSTFIELDS, spec.body.c_str());
        }
        set(CURLOPT_CUSTOMREQUEST, spec.method.c_str());
    }
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_TCP_KEEPIDLE, 30L);
    set(CURLOPT_TCP_KEEPINTVL, 10L);
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(spec.timeout.count()));
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(spec.connect_timeout.count()));
    set(CURLOPT_ERRORBUFFER, request.error_buffer);
    set(CURLOPT_WRITEFUNCTION, &write_callback);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&request));
    set(CURLOPT_HEADERFUNCTION, &header_callback);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&request));
    if (request.headers != nullptr) set(CURLOPT_HTTPHEADER, request.headers);
    // A Content-Length over the bound fails before any byte is read (the write callback bounds
    // the rest).
    if (!request.streaming) set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(spec.max_body_bytes));

    auto set_blob = [&](CURLoption option, const std::string& pem) {
        curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
        set(option, &blob);
    };
    if (!tls.ca_file.empty()) set(CURLOPT_CAINFO, tls.ca_file.c_str());
    if (!tls.ca_pem.empty()) set_blob(CURLOPT_CAINFO_BLOB, tls.ca_pem);
    if (!tls.client_cert_file.empty()) set(CURLOPT_SSLCERT, tls.client_cert_file.c_str());
    if (!tls.client_cert_pem.empty()) set_blob(CURLOPT_SSLCERT_BLOB, tls.client_cert_pem);
    if (!tls.client_cert_file.empty() || !tls.client_cert_pem.empty()) set(CURLOPT_SSLCERTTYPE, "PEM");
    if (!tls.client_key_file.empty()) set(CURLOPT_SSLKEY, tls.client_key_file.c_str());
    if (!tls.client_key_pem.empty()) set_blob(CURLOPT_SSLKEY_BLOB, tls.client_key_pem);
    if (!tls.client_key_file.empty() || !tls.client_key_pem.empty()) set(CURLOPT_SSLKEYTYPE, "PEM");
    if (tls.insecure_skip_verify) {
        set(CURLOPT_SSL_VERIFYPEER, 0L);
        set(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!ok) return "curl: an option was refused (libcurl too old?)";
    // curl copied the blobs: our copy of the key is not needed any more.
    erase_string(request.spec.tls.client_key_pem);
    return {};
}

void HttpClient::Impl::cancel(RequestId id) {
    assert(!in_on_line && "HttpClient::cancel must not be called from on_line");
    const auto it = requests.find(id);
    if (it == requests.end()) return;
    detach(*it->second);
    requests.erase(it);  // a result already queued for it finds no request and is dropped
}

// Takes the transfer away from curl (closing its connection if unfinished). No callback runs.
void HttpClient::Impl::detach(Request& request) {
    loop.cancel_timer(request.idle_timer);
    if (request.easy == nullptr) return;
    // Errors here mean curl did not have the handle: nothing else to undo.
    (void)curl_multi_remove_handle(multi, request.easy);
    curl_easy_cleanup(request.easy);
    request.easy = nullptr;
}

void HttpClient::Impl::finish(Request& request, HttpResponse response) {
    detach(request);
    // The token is handed to curl only as a header; this guards against any path echoing it.
    const std::string& token = request.spec.bearer_token;
    if (!token.empty()) {
        for (std::size_t at = response.error.find(token); at != std::string::npos; at = response.error.find(token))
            response.error.replace(at, token.size(), "<token>");
    }
    ready.push_back(Ready{request.id, std::move(response)});
    if (!deliver_timer.armed()) loop.arm_timer(deliver_timer, 0);  // next loop iteration
}

void HttpClient::Impl::deliver() {
    // A callback may start, cancel, or destroy the client: then the rest is dropped with it.
    const std::weak_ptr<bool> guard = alive;
    std::vector<Ready> batch = std::move(ready);
    ready.clear();
    for (Ready& item : batch) {
        const auto it = requests.find(item.id);
        if (it == requests.end()) continue;  // cancelled after it finished
        Done done = std::move(it->second->done);
        requests.erase(it);
        if (done) done(std::move(item.response));
        if (guard.expired()) return;
    }
}

// ---- Bodies -------------------------------------------------------------------------------------

std::size_t HttpClient::Impl::on_body(Request& request, const char* data, std::size_t size) {
    constexpr std::size_t stop = 0;  // any other count than `size` ends the transfer (write error)
    if (request.status == 0) request.status = transfer_info(request.easy, CURLINFO_RESPONSE_CODE, 0L);
    const bool success = request.status >= 200 && request.status < 300;
    if (!success) {
        // Kept for the caller's error text; the rest is not worth reading.
        const std::size_t room = max_error_body_bytes - request.body.size();
        request.body.append(data, std::min(room, size));
        if (size < room) return size;
        request.error_body_cut = true;
        return stop;
    }
    if (!request.streaming) {
        if (size > request.spec.max_body_bytes - request.body.size()) {
            request.failure = "response over " + std::to_string(request.spec.max_body_bytes) + " bytes";
            return stop;
        }
        request.body.append(data, size);
        return size;
    }
    std::string_view rest(data, size);
    while (!rest.empty()) {
        const std::size_t newline = rest.find('\n');
        const std::size_t take = newline == std::string_view::npos ? rest.size() : newline;
        if (take > request.spec.max_line_bytes - request.partial_line.size()) {
            request.failure = "line over " + std::to_string(request.spec.max_line_bytes) + " bytes";
            return stop;
        }
        if (newline == std::string_view::npos) {
            request.partial_line.append(rest);
            break;
        }
        bool keep_going = true;
        in_on_line = true;
        if (request.partial_line.empty()) {
            keep_going = request.on_line(rest.substr(0, newline));
        } else {
            request.partial_line.append(rest.substr(0, newline));
            keep_going = request.on_line(request.partial_line);
            request.partial_line.clear();
        }
        in_on_line = false;
        if (!keep_going) {
            request.failure = "aborted";
            return stop;
        }
        rest.remove_prefix(newline + 1);
    }
    return size;
}

int HttpClient::Impl::socket_callback(CURL* /*easy*/, curl_socket_t fd, int what, void* client,
                                      void* /*socket_data*/) {
    return static_cast<Impl*>(client)->on_socket(fd, what);
}

int HttpClient::Impl::timer_callback(CURLM* /*multi*/, long timeout_ms, void* client) {
    static_cast<Impl*>(client)->on_curl_timer_request(timeout_ms);
    return 0;
}

std::size_t HttpClient::Impl::write_callback(char* data, std::size_t size, std::size_t count, void* opaque) {
    auto& request = *static_cast<Request*>(opaque);
    request.restart_idle_timer();
    return request.owner.on_body(request, data, size * count);
}

std::size_t HttpClient::Impl::header_callback(char* /*data*/, std::size_t size, std::size_t count, void* opaque) {
    static_cast<Request*>(opaque)->restart_idle_timer();
    return size * count;
}

// ---- Results ------------------------------------------------------------------------------------

void HttpClient::Impl::Request::on_idle_timeout() {
    HttpResponse response;
    response.error = "idle timeout: no data for " + ms_text(spec.idle_timeout);
    response.status = transfer_info(easy, CURLINFO_RESPONSE_CODE, 0L);
    owner.finish(*this, std::move(response));
}

HttpResponse HttpClient::Impl::response_of(Request& request, CURLcode code) {
    HttpResponse response;
    response.status = transfer_info(request.easy, CURLINFO_RESPONSE_CODE, 0L);
    if (!request.failure.empty()) {
        response.error = std::move(request.failure);
        return response;
    }
    if (code == CURLE_WRITE_ERROR && request.error_body_cut) code = CURLE_OK;
    if (code == CURLE_OK) {
        const bool success = response.status >= 200 && response.status < 300;
        if (request.streaming && success && !request.partial_line.empty()) {
            // The stream ended without a last '\n': the line is whole all the same.
            in_on_line = true;
            const bool keep_going = request.on_line(request.partial_line);
            in_on_line = false;
            if (!keep_going) {
                response.error = "aborted";
                return response;
            }
        }
        if (!request.streaming || !success) response.body = std::move(request.body);
        return response;
    }
    const std::string detail = request.error_buffer[0] != '\0' ? request.error_buffer : curl_easy_strerror(code);
    const std::string& where = request.host_port;
    switch (code) {
        case CURLE_COULDNT_CONNECT: {
            const long os_errno = transfer_info(request.easy, CURLINFO_OS_ERRNO, 0L);
            response.error = "connect to " + where + ": " +
                             (os_errno != 0 ? std::strerror(static_cast<int>(os_errno)) : detail);
            break;
        }
        case CURLE_COULDNT_RESOLVE_HOST: response.error = "resolve " + where + ": " + detail; break;
        case CURLE_OPERATION_TIMEDOUT: {
            // CURLOPT_CONNECTTIMEOUT covers TCP and the TLS handshake.
            const bool https = request.spec.url.rfind("https:", 0) == 0;
            const curl_off_t connected_at = transfer_info(
                request.easy, https ? CURLINFO_APPCONNECT_TIME_T : CURLINFO_CONNECT_TIME_T, curl_off_t{0});
            const auto total = request.spec.timeout;
            const auto connect = request.spec.connect_timeout;
            if (connected_at == 0 && (total.count() == 0 || connect <= total)) {
                response.error = "connect to " + where + ": timeout after " + ms_text(connect);
            } else {
                response.error = "timeout after " + ms_text(total);
            }
            break;
        }
        case CURLE_FILESIZE_EXCEEDED:
            response.error = "response over " + std::to_string(request.spec.max_body_bytes) + " bytes";
            break;
        case CURLE_GOT_NOTHING: response.error = "empty reply from " + where; break;
        default:
            if (is_tls_error(code)) {
                // "SSL certificate problem: unable to get local issuer certificate"
                constexpr std::string_view curl_prefix = "SSL certificate problem: ";
                std::string text = detail;
                if (text.rfind(curl_prefix, 0) == 0) text = "certificate verify failed: " + text.substr(curl_prefix.size());
                response.error = "TLS: " + text;
            } else {
                response.error = where + ": " + detail;
            }
    }
    return response;
}

void HttpClient::Impl::collect_finished() {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
        if (message->msg != CURLMSG_DONE) continue;
        // Every handle in the multi is one of ours, its Request in CURLOPT_PRIVATE.
        auto& request = *static_cast<Request*>(transfer_info(message->easy_handle, CURLINFO_PRIVATE,
                                                             static_cast<void*>(nullptr)));
        const CURLcode code = message->data.result;  // `message` is invalid once the handle goes
        HttpResponse response = response_of(request, code);
        finish(request, std::move(response));
    }
}

// ---- curl's sockets and timer -------------------------------------------------------------------

int HttpClient::Impl::on_socket(curl_socket_t fd, int what) {
    auto it = sockets.find(fd);
    if (what == CURL_POLL_REMOVE) {
        // curl closes the socket after this (or keeps it idle in its cache, unwatched).
        if (it != sockets.end()) sockets.erase(it);
        return 0;
    }
    if (destroying) return 0;
    if (it == sockets.end()) it = sockets.emplace(fd, std::make_unique<SocketWatch>(*this, fd)).first;
    SocketWatch& socket = *it->second;
    socket.readable = what == CURL_POLL_IN || what == CURL_POLL_INOUT;
    socket.writable = what == CURL_POLL_OUT || what == CURL_POLL_INOUT;
    arm_poll(socket);
    return 0;
}

void HttpClient::Impl::arm_poll(SocketWatch& socket) {
    const std::uint32_t events = (socket.readable ? POLLIN : 0u) | (socket.writable ? POLLOUT : 0u);
    if (socket.watch.active()) {
        if (socket.polled_events == events) return;
        socket.watch.stop();
    }
    socket.polled_events = events;
    socket.watch.poll(socket.fd, events, false);
}

void HttpClient::Impl::on_socket_ready(int fd, int revents) {
    // The one-shot poll is over. An error from the poll itself is handed to curl as an error on
    // the socket: its next read or write meets the cause.
    int action = 0;
    if (revents < 0) {
        action = CURL_CSELECT_ERR;
    } else {
        const auto events = static_cast<unsigned>(revents);
        if ((events & (POLLIN | POLLHUP)) != 0) action |= CURL_CSELECT_IN;
        if ((events & POLLOUT) != 0) action |= CURL_CSELECT_OUT;
        if ((events & POLLERR) != 0) action |= CURL_CSELECT_ERR;
    }
    int running = 0;
    // Its only failure here would be an fd curl no longer knows (it closed it meanwhile): nothing
    // to do then. May close this socket (its SocketWatch is then gone) and open others.
    (void)curl_multi_socket_action(multi, fd, action, &running);
    if (auto it = sockets.find(fd); it != sockets.end() && !it->second->watch.active()) arm_poll(*it->second);
    collect_finished();
}

void HttpClient::Impl::on_curl_timer_request(long timeout_ms) {
    if (timeout_ms < 0) {
        loop.cancel_timer(curl_timer);
        return;
    }
    // 0 too goes through the timer: curl must not be re-entered from its own callback.
    loop.arm_timer(curl_timer, reactor::monotonic_millis() + timeout_ms);
}

void HttpClient::Impl::on_curl_timer() {
    int running = 0;
    // Fails only for a bad multi handle; transfers' own errors arrive through info_read.
    (void)curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_finished();
}

}  // namespace passgate
