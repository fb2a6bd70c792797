#pragma once
// HTTPS requests (GETs, streamed GETs, and PATCH/PUT/POST with a body) for the control thread, on libcurl's multi interface driven by a reactor::Loop:
// curl's sockets are watched with one-shot polls (CURLMOPT_SOCKETFUNCTION starts and stops them;
// readiness goes to curl_multi_socket_action) and its timeout by a loop timer
// (CURLMOPT_TIMERFUNCTION). No thread per request, no blocking call. Used by the Kubernetes
// watch; it knows nothing of Kubernetes.
//
// Threading: a client belongs to the thread that runs its loop; every call and every callback
// happens there.
//
// Callbacks: `on_line` runs from inside curl's processing: it must not call cancel() or destroy
// the client; it returns false to abort its request (done then reports "aborted"). `done` runs
// after curl has let go of the request (from a zero-delay timer): it may start new requests,
// cancel others, or destroy the client. Destroying the client (or cancel()) ends requests in
// flight without calling their callbacks.
//
// Bounds: a whole body is at most `max_body_bytes` (beyond: the request fails "response over N
// bytes"); a streamed line is at most `max_line_bytes`; an error body kept for a non-2xx status
// is cut at 64 KiB.
//
// Secrets: the bearer token and the client key are handed to curl and appear in no error text.

#include "reactor/loop.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

// TLS and authentication of one server. For each of CA, client certificate and key: a file path
// or PEM text (kubeconfig's *-data fields, decoded), not both.
struct HttpTls {
    std::string ca_file;
    std::string ca_pem;
    std::string client_cert_file;
    std::string client_cert_pem;
    std::string client_key_file;
    std::string client_key_pem;
    bool insecure_skip_verify = false;  // kubeconfig's insecure-skip-tls-verify

    friend bool operator==(const HttpTls&, const HttpTls&) = default;
};

struct HttpRequest {
    std::string url;  // "https://127.0.0.1:6443/api/v1/namespaces/default/services/echo"
    // "GET", or "PATCH", "PUT", "POST", "DELETE" with `body` sent as is (its Content-Type goes in
    // `headers`, e.g. "Content-Type: application/merge-patch+json").
    std::string method = "GET";
    std::string body;
    HttpTls tls;
    std::string bearer_token;  // sent as "Authorization: Bearer ..." when not empty
    std::vector<std::string> headers;  // extra "Name: value" lines
    // Whole request (connect to last byte); 0 = none (watches: the server's timeout ends them, and
    // `idle_timeout` catches a dead peer).
    std::chrono::milliseconds timeout{10000};
    std::chrono::milliseconds connect_timeout{5000};
    // Streams: fail when no byte arrives for this long (0 = off). The Kubernetes watch sets it
    // above the bookmark interval.
    std::chrono::milliseconds idle_timeout{0};
    std::size_t max_body_bytes = 64u << 20;
    std::size_t max_line_bytes = 64u << 20;
};

struct HttpResponse {
    // Empty when an HTTP response arrived whole (any status); otherwise what went wrong:
    // "connect to 127.0.0.1:6443: Connection refused", "TLS: certificate verify failed ...",
    // "timeout after 10000 ms", "response over N bytes", "aborted", ...
    std::string error;
    long status = 0;       // HTTP status, 0 when none arrived
    std::string body;      // whole body (get); for stream(), the body only when status is not 2xx
    bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

class HttpClient {
public:
    using RequestId = std::uint64_t;
    using Done = std::function<void(HttpResponse)>;
    using OnLine = std::function<bool(std::string_view line)>;  // without the '\n'

    // Throws std::runtime_error when curl cannot be set up.
    explicit HttpClient(reactor::Loop& loop);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // The request's method (GET unless set) with its body; the whole response body delivered to
    // `done`. (The name is from when only GETs were made.)
    RequestId get(HttpRequest request, Done done);
    // The same: reads better for PATCH, PUT and POST.
    RequestId send(HttpRequest request, Done done) { return get(std::move(request), std::move(done)); }
    // GET whose 2xx body is a stream of '\n'-terminated lines (a Kubernetes watch): each complete
    // line goes to `on_line` as it arrives (chunked transfer is decoded by curl); `done` when the
    // stream ends (server closed it: ok() with status 200), fails, or on_line returned false. A
    // last line without '\n' at the end of the stream is delivered too.
    RequestId stream(HttpRequest request, OnLine on_line, Done done);
    // Ends a request; its callbacks are not called. Unknown or finished ids are ignored.
    void cancel(RequestId id);

    std::size_t requests_in_flight() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace passgate
