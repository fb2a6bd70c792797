#pragma once
// A test Kubernetes API server for the tests (Debian has no kube-apiserver):
// tests/support/kube_api_server.py, started as a child process. It serves Services,
// EndpointSlices, Namespaces, Leases and the Gateway API kinds (GatewayClass, Gateway, TLSRoute,
// ReferenceGrant in their served versions): get, list, watch with resourceVersions, bookmarks,
// 410 Expired, server-side watch timeouts; status PATCH (merge patch) and PUT of the Gateway API
// kinds; Lease create and update with resourceVersion preconditions. Over HTTPS on 127.0.0.1
// with its own CA, a bearer token (re-read from its file on every request) or a client
// certificate; a plain-HTTP control port lets the test change objects and inject faults. Its
// fidelity is checked with Debian's kubectl (tests/integration/kube_api_server_test.cpp).

#include "tests/support/process.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace integration {

// How the kubeconfig written by KubeApiServer::write_kubeconfig authenticates.
enum class KubeAuth {
    token_file,         // user.tokenFile: the server's token file (a rewrite rotates the token)
    token,              // user.token: the token inline
    client_cert_files,  // user.client-certificate / client-key: file paths
    client_cert_data,   // user.client-certificate-data / client-key-data and the cluster's
                        // certificate-authority-data: everything embedded, base64
};

// One API request the server saw (GET /requests on the control port), oldest first.
struct KubeApiRequest {
    std::string method;
    std::string path;
    std::string query;      // raw, as sent
    std::string token;      // the bearer token presented, "" without one
    std::string client_cn;  // the verified client certificate's CN, "" without one
    int status = 0;         // 200 for a watch as soon as its stream starts
    bool watch = false;
    std::string content_type;  // the request's Content-Type header, "" without one
    std::string body;          // a write's request body as text, "" for a read
};

// The answer to a request on the API (KubeApiServer::api): HTTP status and body.
struct KubeApiResponse {
    int status = 0;
    std::string body;
};

class KubeApiServer {
public:
    // Starts the server with its certificates and token in a fresh temporary directory and waits
    // (bounded) for its "ready" line; REQUIREs that it comes. A watch stream is closed by the
    // server after min(timeoutSeconds, watch_timeout_seconds).
    explicit KubeApiServer(int watch_timeout_seconds = 1800);
    ~KubeApiServer();
    KubeApiServer(const KubeApiServer&) = delete;
    KubeApiServer& operator=(const KubeApiServer&) = delete;

    std::uint16_t port() const { return port_; }
    std::uint16_t control_port() const { return control_port_; }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
    std::string ca_file() const { return dir_.file("ca.crt"); }
    std::string token_file() const { return dir_.file("token"); }
    std::string client_cert_file() const { return dir_.file("client.crt"); }
    std::string client_key_file() const { return dir_.file("client.key"); }
    // The token the server accepts now (its file's content, stripped).
    std::string token() const;
    // Rewrites the token file: from the next request on only `token` is accepted.
    void set_token(const std::string& token) const;

    // Writes a kubeconfig with one cluster (this server, its CA), one user (`auth`), one context
    // (namespace `name_space`) and current-context set to it.
    void write_kubeconfig(const std::string& path, KubeAuth auth,
                          const std::string& name_space = "default") const;

    // Creates or replaces an object of a kind the server has, in any version it serves (JSON
    // text with apiVersion, kind, metadata.name and, when namespaced, metadata.namespace: default
    // "default"); watches see ADDED/MODIFIED. Its status is stored as given. Returns the stored
    // object's metadata.resourceVersion. REQUIREs success.
    std::string put(const std::string& object_json);
    // The same, returning the stored object (JSON text, with uid, resourceVersion, generation).
    std::string put_object(const std::string& object_json);
    // Deletes it; `kind` is the kind ("TLSRoute") or the resource ("tlsroutes"); `name_space` is
    // ignored for a cluster-scoped kind (GatewayClass, Namespace). Watches see DELETED. REQUIREs
    // that it existed.
    void remove(const std::string& kind, const std::string& name_space, const std::string& name);
    // The stored object now (JSON text, as stored), nullopt when there is none. Read through the
    // control port: no request appears in requests().
    std::optional<std::string> object(const std::string& kind, const std::string& name_space,
                                      const std::string& name);
    // One request on the API with curl (HTTPS, this server's CA, its current token); `body` is
    // sent as is with `content_type` when not empty. REQUIREs that curl got an answer.
    KubeApiResponse api(const std::string& method, const std::string& path, const std::string& body = "",
                        const std::string& content_type = "application/json");
    // PATCH of the status subresource with an RFC 7386 merge patch (application/merge-patch+json).
    KubeApiResponse patch_status(const std::string& kind, const std::string& name_space,
                                 const std::string& name, const std::string& merge_patch_json);
    // Forgets the event history up to now: a watch from an older resourceVersion gets an ERROR
    // event with 410 Expired. Returns the current resourceVersion.
    std::string compact();
    // Ends every open watch stream cleanly, as a server-side timeout does.
    void close_watches();
    // Sends a BOOKMARK with the current resourceVersion to every watch that allowed bookmarks;
    // returns how many got one.
    int bookmark();
    // false: closes the listening socket and every open API connection (state is kept);
    // true: listens again on the same port.
    void set_listening(bool up);
    // The next `count` API requests get `status` with a Status body.
    void fail_next(int status, int count);
    // The global resourceVersion now.
    std::string resource_version();
    // How many watch streams are open now (a closed client is noticed within about a second).
    int open_watches();
    std::vector<KubeApiRequest> requests();
    // SIGTERM; REQUIREs that it exits with 0.
    void stop();

private:
    std::string control(const std::string& method, const std::string& path,
                        const std::string& body = "");

    TempDir dir_;
    std::uint16_t port_;
    std::uint16_t control_port_;
    std::optional<Process> process_;
};

struct KubeServicePort {
    std::string name;  // "" is allowed for a Service with one port
    int port = 0;
    int target_port = 0;
};

// A Service as the API server returns it (ClusterIP, TCP ports, empty status.loadBalancer).
// The default is the Envoy Gateway TLS passthrough guide's Service: port 443 named "https",
// targetPort 8443, selector app=passthrough-echoserver.
std::string service_json(const std::string& name_space = "default",
                         const std::string& name = "passthrough-echoserver",
                         const std::vector<KubeServicePort>& ports = {{"https", 443, 8443}});

struct KubeEndpoint {
    std::string address;
    bool ready = true;
    bool serving = true;
    bool terminating = false;
};

// An EndpointSlice of `service` (label kubernetes.io/service-name) with one port and one
// endpoint per entry (conditions ready/serving/terminating). address_type: "IPv4", "IPv6", "FQDN".
std::string endpoint_slice_json(const std::string& name_space, const std::string& name,
                                const std::string& service, const std::string& port_name, int port,
                                const std::string& address_type,
                                const std::vector<KubeEndpoint>& endpoints);

// The API path of an object (name "": its collection) as the server's preferred version serves
// it: "/apis/gateway.networking.k8s.io/v1/namespaces/default/tlsroutes/NAME". `kind` is the
// kind or the resource; `name_space` is ignored for a cluster-scoped kind, and "" for a
// namespaced one means all namespaces. FAILs for a kind the server does not have.
std::string kube_object_path(const std::string& kind, const std::string& name_space,
                             const std::string& name);

struct GatewayListener {
    std::string name = "tls";
    std::string protocol = "TLS";
    int port = 6443;
    std::string hostname = "passthrough.example.com";  // "" for none
    std::string tls_mode = "Passthrough";              // "" for no tls block
};

// The guide's objects are the defaults below (/work/shared/seed-guide.md era: GatewayClass and
// Gateway v1beta1, TLSRoute v1alpha2).

// A GatewayClass (cluster-scoped) of `controller`; the default is the quickstart's `eg`.
std::string gateway_class_json(const std::string& name = "eg",
                               const std::string& controller = "gateway.envoyproxy.io/gatewayclass-controller",
                               const std::string& api_version = "gateway.networking.k8s.io/v1beta1");

// A Gateway; the default is the quickstart Gateway `eg` (listener http, HTTP, port 80) with the
// listener the guide's patch appends (tls, TLS, 6443, passthrough.example.com, Passthrough).
std::string gateway_json(const std::string& name_space = "default", const std::string& name = "eg",
                         const std::string& gateway_class = "eg",
                         const std::vector<GatewayListener>& listeners = {{"http", "HTTP", 80, "", ""},
                                                                          GatewayListener{}},
                         const std::string& api_version = "gateway.networking.k8s.io/v1beta1");

// A TLSRoute with one parentRef (a Gateway in the route's namespace), its hostnames and one
// rule with one backendRef (core Service, weight 1); the default is the guide's `tlsroute`.
std::string tls_route_json(const std::string& name_space = "default",
                           const std::string& name = "tlsroute",
                           const std::string& parent_gateway = "eg",
                           const std::vector<std::string>& hostnames = {"passthrough.example.com"},
                           const std::string& backend_service = "passthrough-echoserver",
                           int backend_port = 443,
                           const std::string& api_version = "gateway.networking.k8s.io/v1alpha2");

// Debian's kubectl: $PASSGATE_KUBECTL, else where .ci/run extracts the kubernetes-client package
// (FAILs, saying how to get it, when there is none).
std::string debian_kubectl();
// kubectl --kubeconfig KUBECONFIG (its cache in `dir`) ARGUMENTS..., run in `dir`.
std::vector<std::string> kubectl_argv(const TempDir& dir, const std::string& kubeconfig,
                                      const std::vector<std::string>& arguments);
RunResult kubectl(const TempDir& dir, const std::string& kubeconfig, const std::vector<std::string>& arguments);

// The path of tests/support/kube_api_server.py (from PASSGATE_SOURCE_ROOT).
std::string kube_api_server_script();

}  // namespace integration
