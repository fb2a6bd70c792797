#include "tests/support/kube_api_server.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace integration {

namespace {

using nlohmann::json;

constexpr Millis control_timeout{10000};
constexpr std::size_t max_control_reply_bytes = 64u << 20;

std::string base64(const std::string& data) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        const unsigned value = (static_cast<unsigned char>(data[i]) << 16) |
                               (static_cast<unsigned char>(data[i + 1]) << 8) |
                               static_cast<unsigned char>(data[i + 2]);
        out += alphabet[(value >> 18) & 63];
        out += alphabet[(value >> 12) & 63];
        out += alphabet[(value >> 6) & 63];
        out += alphabet[value & 63];
    }
    if (i < data.size()) {
        unsigned value = static_cast<unsigned char>(data[i]) << 16;
        if (i + 1 < data.size()) value |= static_cast<unsigned char>(data[i + 1]) << 8;
        out += alphabet[(value >> 18) & 63];
        out += alphabet[(value >> 12) & 63];
        out += i + 1 < data.size() ? alphabet[(value >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string strip(const std::string& text) {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// Closes the descriptor it owns.
class Socket {
public:
    explicit Socket(int fd) : fd_(fd) {}
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

private:
    int fd_;
};

struct ControlReply {
    int status = 0;
    std::string body;
};

// One HTTP/1.1 request with "Connection: close" to 127.0.0.1:port; nullopt on any failure.
std::optional<ControlReply> http_request(std::uint16_t port, const std::string& method,
                                         const std::string& path, const std::string& body) {
    const Clock::time_point deadline = Clock::now() + control_timeout;
    Socket socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (socket.fd() < 0) return std::nullopt;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(socket.fd(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        return std::nullopt;
    }
    const std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                "Content-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    if (::send(socket.fd(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        return std::nullopt;
    }
    std::string reply;
    // Read until EOF; bounded by the deadline, a size cap and a round count.
    for (int round = 0; round < 100000 && reply.size() < max_control_reply_bytes; ++round) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        pollfd item{socket.fd(), POLLIN, 0};
        if (left <= 0 || ::poll(&item, 1, static_cast<int>(left)) != 1) return std::nullopt;
        char buffer[65536];
        const ssize_t got = ::recv(socket.fd(), buffer, sizeof buffer, 0);
        if (got < 0) return std::nullopt;
        if (got == 0) break;
        reply.append(buffer, static_cast<std::size_t>(got));
    }
    const std::size_t space = reply.find(' ');
    const std::size_t header_end = reply.find("\r\n\r\n");
    if (reply.compare(0, 5, "HTTP/") != 0 || space == std::string::npos ||
        header_end == std::string::npos) {
        return std::nullopt;
    }
    return ControlReply{std::atoi(reply.c_str() + space + 1), reply.substr(header_end + 4)};
}

// A kind the test API server has: its resource, where its preferred version is served, and
// whether it is namespaced (as RESOURCES in kube_api_server.py).
struct KubeKind {
    const char* kind;
    const char* resource;
    const char* prefix;
    bool namespaced;
};

constexpr KubeKind kube_kinds[] = {
    {"Service", "services", "/api/v1", true},
    {"Namespace", "namespaces", "/api/v1", false},
    {"EndpointSlice", "endpointslices", "/apis/discovery.k8s.io/v1", true},
    {"Lease", "leases", "/apis/coordination.k8s.io/v1", true},
    {"GatewayClass", "gatewayclasses", "/apis/gateway.networking.k8s.io/v1", false},
    {"Gateway", "gateways", "/apis/gateway.networking.k8s.io/v1", true},
    {"TLSRoute", "tlsroutes", "/apis/gateway.networking.k8s.io/v1", true},
    {"ReferenceGrant", "referencegrants", "/apis/gateway.networking.k8s.io/v1", true},
};

const KubeKind& kube_kind(const std::string& kind) {
    for (const KubeKind& known : kube_kinds) {
        if (kind == known.kind || kind == known.resource) return known;
    }
    FAIL("KubeApiServer: unknown kind " << kind);
    return kube_kinds[0];
}

// The control port's path of an object: /objects/{resource}[/{ns}]/{name}.
std::string control_object_path(const std::string& kind, const std::string& name_space,
                                const std::string& name) {
    const KubeKind& known = kube_kind(kind);
    return std::string("/objects/") + known.resource + "/" + (known.namespaced ? name_space + "/" : "") + name;
}

}  // namespace

std::string kube_object_path(const std::string& kind, const std::string& name_space,
                             const std::string& name) {
    const KubeKind& known = kube_kind(kind);
    std::string path = known.prefix;
    if (known.namespaced && !name_space.empty()) path += "/namespaces/" + name_space;
    path += std::string("/") + known.resource;
    if (!name.empty()) path += "/" + name;
    return path;
}

std::string kube_api_server_script() {
    return required_env("PASSGATE_SOURCE_ROOT") + "/tests/support/kube_api_server.py";
}

KubeApiServer::KubeApiServer(int watch_timeout_seconds)
    : port_(free_port()), control_port_(free_port()) {
    // free_port() closes its socket at once: two calls can return the same port.
    for (int attempt = 0; attempt < 10 && control_port_ == port_; ++attempt) control_port_ = free_port();
    SpawnOptions options;
    options.argv = {"python3", kube_api_server_script(), "--dir", dir_.path().string(),
                    "--port", std::to_string(port_), "--control-port", std::to_string(control_port_),
                    "--watch-timeout-seconds", std::to_string(watch_timeout_seconds)};
    options.stdout_path = dir_.file("kube_api_server.out");
    options.stderr_path = dir_.file("kube_api_server.err");
    process_.emplace(options);
    const bool ready = wait_until(
        [&] { return !process_->running() || process_->stdout_text().find("ready\n") != std::string::npos; },
        Millis(20000), Millis(20));
    INFO("kube_api_server.py stderr: " << process_->stderr_text());
    REQUIRE(ready);
    REQUIRE(process_->running());
}

KubeApiServer::~KubeApiServer() {
    if (process_) process_->terminate(Millis(3000));
}

void KubeApiServer::stop() {
    REQUIRE(process_);
    const int status = process_->terminate(Millis(5000));
    INFO("kube_api_server.py stderr: " << process_->stderr_text());
    process_.reset();
    REQUIRE(status == 0);
}

std::string KubeApiServer::token() const { return strip(read_file(token_file())); }

void KubeApiServer::set_token(const std::string& token) const {
    // Written to a new file and renamed, so the server never reads half a token.
    const std::string next = dir_.file("token.next");
    write_file(next, token + "\n");
    REQUIRE(std::rename(next.c_str(), token_file().c_str()) == 0);
}

void KubeApiServer::write_kubeconfig(const std::string& path, KubeAuth auth,
                                     const std::string& name_space) const {
    std::string cluster = "    server: " + url() + "\n";
    std::string user;
    switch (auth) {
    case KubeAuth::token_file:
        cluster += "    certificate-authority: " + ca_file() + "\n";
        user = "    tokenFile: " + token_file() + "\n";
        break;
    case KubeAuth::token:
        cluster += "    certificate-authority: " + ca_file() + "\n";
        user = "    token: " + token() + "\n";
        break;
    case KubeAuth::client_cert_files:
        cluster += "    certificate-authority: " + ca_file() + "\n";
        user = "    client-certificate: " + client_cert_file() + "\n    client-key: " +
               client_key_file() + "\n";
        break;
    case KubeAuth::client_cert_data:
        cluster += "    certificate-authority-data: " + base64(read_file(ca_file())) + "\n";
        user = "    client-certificate-data: " + base64(read_file(client_cert_file())) +
               "\n    client-key-data: " + base64(read_file(client_key_file())) + "\n";
        break;
    }
    write_file(path,
               "apiVersion: v1\n"
               "kind: Config\n"
               "clusters:\n"
               "- name: passgate-test\n"
               "  cluster:\n" + cluster +
               "users:\n"
               "- name: passgate\n"
               "  user:\n" + user +
               "contexts:\n"
               "- name: passgate-test\n"
               "  context:\n"
               "    cluster: passgate-test\n"
               "    user: passgate\n"
               "    namespace: " + name_space + "\n"
               "current-context: passgate-test\n");
}

std::string KubeApiServer::control(const std::string& method, const std::string& path,
                                   const std::string& body) {
    const std::optional<ControlReply> reply = http_request(control_port_, method, path, body);
    INFO("kube_api_server.py control " << method << " " << path << ": "
                                       << (reply ? reply->body : std::string("no answer")));
    REQUIRE(reply);
    REQUIRE(reply->status == 200);
    return reply->body;
}

std::string KubeApiServer::put(const std::string& object_json) {
    const json stored = json::parse(control("PUT", "/objects", object_json));
    return stored.at("metadata").at("resourceVersion").get<std::string>();
}

std::string KubeApiServer::put_object(const std::string& object_json) {
    return control("PUT", "/objects", object_json);
}

void KubeApiServer::remove(const std::string& kind, const std::string& name_space,
                           const std::string& name) {
    control("DELETE", control_object_path(kind, name_space, name));
}

std::optional<std::string> KubeApiServer::object(const std::string& kind, const std::string& name_space,
                                                 const std::string& name) {
    const std::string path = control_object_path(kind, name_space, name);
    const std::optional<ControlReply> reply = http_request(control_port_, "GET", path, "");
    INFO("kube_api_server.py control GET " << path << ": " << (reply ? reply->body : std::string("no answer")));
    REQUIRE(reply);
    REQUIRE((reply->status == 200 || reply->status == 404));
    if (reply->status == 404) return std::nullopt;
    return reply->body;
}

KubeApiResponse KubeApiServer::api(const std::string& method, const std::string& path, const std::string& body,
                                   const std::string& content_type) {
    // The token goes in a header file, not on the command line; the body in a file too.
    const std::string header = dir_.file("api-request.header");
    write_file(header, "Authorization: Bearer " + token() + "\nContent-Type: " + content_type + "\n");
    std::vector<std::string> argv = {"curl", "--silent", "--show-error", "--max-time", "20",
                                     "--cacert", ca_file(), "-H", "@" + header, "-X", method,
                                     "--write-out", "\n%{http_code}", url() + path};
    if (!body.empty()) {
        write_file(dir_.file("api-request.body"), body);
        argv.insert(argv.end() - 1, {"--data-binary", "@" + dir_.file("api-request.body")});
    }
    const RunResult result = run(argv, dir_, "api-request");
    INFO("curl " << method << " " << path << ": " << result.err);
    REQUIRE(result.status == 0);
    const std::size_t last_line = result.out.rfind('\n');
    REQUIRE(last_line != std::string::npos);
    return KubeApiResponse{std::atoi(result.out.c_str() + last_line + 1), result.out.substr(0, last_line)};
}

KubeApiResponse KubeApiServer::patch_status(const std::string& kind, const std::string& name_space,
                                            const std::string& name, const std::string& merge_patch_json) {
    return api("PATCH", kube_object_path(kind, name_space, name) + "/status", merge_patch_json,
               "application/merge-patch+json");
}

std::string KubeApiServer::compact() {
    return json::parse(control("POST", "/compact")).at("compactedResourceVersion").get<std::string>();
}

void KubeApiServer::close_watches() { control("POST", "/close-watches"); }

int KubeApiServer::bookmark() { return json::parse(control("POST", "/bookmark")).at("bookmarks").get<int>(); }

void KubeApiServer::set_listening(bool up) {
    control("POST", "/listening", json{{"up", up}}.dump());
    if (up) REQUIRE(port_accepts(port_, Millis(2000)));
}

void KubeApiServer::fail_next(int status, int count) {
    control("POST", "/fail", json{{"status", status}, {"count", count}}.dump());
}

std::string KubeApiServer::resource_version() {
    return json::parse(control("GET", "/state")).at("resourceVersion").get<std::string>();
}

int KubeApiServer::open_watches() {
    return json::parse(control("GET", "/state")).at("watches").get<int>();
}

std::vector<KubeApiRequest> KubeApiServer::requests() {
    std::vector<KubeApiRequest> seen;
    for (const json& entry : json::parse(control("GET", "/requests"))) {
        seen.push_back(KubeApiRequest{entry.at("method").get<std::string>(),
                                      entry.at("path").get<std::string>(),
                                      entry.at("query").get<std::string>(),
                                      entry.at("token").get<std::string>(),
                                      entry.at("client_cn").get<std::string>(),
                                      entry.at("status").get<int>(), entry.at("watch").get<bool>(),
                                      entry.at("content_type").get<std::string>(),
                                      entry.at("body").get<std::string>()});
    }
    return seen;
}

std::string service_json(const std::string& name_space, const std::string& name,
                         const std::vector<KubeServicePort>& ports) {
    json port_list = json::array();
    for (const KubeServicePort& port : ports) {
        json entry = {{"protocol", "TCP"}, {"port", port.port}, {"targetPort", port.target_port}};
        if (!port.name.empty()) entry["name"] = port.name;
        port_list.push_back(entry);
    }
    const json service = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", name},
          {"namespace", name_space},
          {"labels", {{"app", name}, {"service", name}}}}},
        {"spec",
         {{"type", "ClusterIP"},
          {"clusterIP", "10.96.200.10"},
          {"clusterIPs", {"10.96.200.10"}},
          {"ipFamilies", {"IPv4"}},
          {"ipFamilyPolicy", "SingleStack"},
          {"internalTrafficPolicy", "Cluster"},
          {"sessionAffinity", "None"},
          {"selector", {{"app", name}}},
          {"ports", port_list}}},
        {"status", {{"loadBalancer", json::object()}}}};
    return service.dump();
}

std::string endpoint_slice_json(const std::string& name_space, const std::string& name,
                                const std::string& service, const std::string& port_name, int port,
                                const std::string& address_type,
                                const std::vector<KubeEndpoint>& endpoints) {
    json endpoint_list = json::array();
    for (const KubeEndpoint& endpoint : endpoints) {
        endpoint_list.push_back({{"addresses", {endpoint.address}},
                                 {"conditions",
                                  {{"ready", endpoint.ready},
                                   {"serving", endpoint.serving},
                                   {"terminating", endpoint.terminating}}}});
    }
    const json slice = {
        {"apiVersion", "discovery.k8s.io/v1"},
        {"kind", "EndpointSlice"},
        {"metadata",
         {{"name", name},
          {"namespace", name_space},
          {"generateName", service + "-"},
          {"labels",
           {{"kubernetes.io/service-name", service},
            {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}}}},
        {"addressType", address_type},
        {"endpoints", endpoint_list},
        {"ports", {{{"name", port_name}, {"protocol", "TCP"}, {"port", port}}}}};
    return slice.dump();
}

}  // namespace integration

namespace integration {

std::string gateway_class_json(const std::string& name, const std::string& controller,
                               const std::string& api_version) {
    const json object = {{"apiVersion", api_version},
                         {"kind", "GatewayClass"},
                         {"metadata", {{"name", name}}},
                         {"spec", {{"controllerName", controller}}}};
    return object.dump();
}

std::string gateway_json(const std::string& name_space, const std::string& name,
                         const std::string& gateway_class, const std::vector<GatewayListener>& listeners,
                         const std::string& api_version) {
    json listener_list = json::array();
    for (const GatewayListener& listener : listeners) {
        json entry = {{"name", listener.name}, {"protocol", listener.protocol}, {"port", listener.port}};
        if (!listener.hostname.empty()) entry["hostname"] = listener.hostname;
        if (!listener.tls_mode.empty()) entry["tls"] = {{"mode", listener.tls_mode}};
        listener_list.push_back(entry);
    }
    const json object = {{"apiVersion", api_version},
                         {"kind", "Gateway"},
                         {"metadata", {{"name", name}, {"namespace", name_space}}},
                         {"spec", {{"gatewayClassName", gateway_class}, {"listeners", listener_list}}}};
    return object.dump();
}

std::string tls_route_json(const std::string& name_space, const std::string& name,
                           const std::string& parent_gateway, const std::vector<std::string>& hostnames,
                           const std::string& backend_service, int backend_port, const std::string& api_version) {
    const json backend = {{"group", ""}, {"kind", "Service"}, {"name", backend_service},
                          {"port", backend_port}, {"weight", 1}};
    const json object = {{"apiVersion", api_version},
                         {"kind", "TLSRoute"},
                         {"metadata", {{"name", name}, {"namespace", name_space}}},
                         {"spec",
                          {{"parentRefs", {{{"name", parent_gateway}}}},
                           {"hostnames", hostnames},
                           {"rules", {{{"backendRefs", {backend}}}}}}}};
    return object.dump();
}

// Debian's kubectl: $PASSGATE_KUBECTL, else where .ci/run extracts the kubernetes-client package.
// The package is not installed (it conflicts with other kubectl builds), only extracted.
std::string debian_kubectl() {
    if (const char* path = std::getenv("PASSGATE_KUBECTL"); path != nullptr && *path != '\0') {
        if (!std::filesystem::exists(path)) FAIL("PASSGATE_KUBECTL=" << path << ": no such file");
        return path;
    }
    for (const char* path : {"/opt/debian-kubernetes-client/usr/bin/kubectl", "/opt/debian-kubectl/usr/bin/kubectl"}) {
        if (std::filesystem::exists(path)) return path;
    }
    FAIL("Debian's kubectl was not found: set PASSGATE_KUBECTL, or extract the package as .ci/run does: "
         "cd $(mktemp -d) && apt-get download kubernetes-client && "
         "sudo dpkg-deb -x kubernetes-client_*.deb /opt/debian-kubernetes-client");
    return {};
}

std::vector<std::string> kubectl_argv(const TempDir& dir, const std::string& kubeconfig,
                                      const std::vector<std::string>& arguments) {
    std::vector<std::string> argv = {debian_kubectl(), "--kubeconfig", kubeconfig,
                                     "--cache-dir", dir.file("kubectl-cache"), "--request-timeout", "20s"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return argv;
}

RunResult kubectl(const TempDir& dir, const std::string& kubeconfig, const std::vector<std::string>& arguments) {
    return run(kubectl_argv(dir, kubeconfig, arguments), dir, "kubectl", Millis(30000));
}

}  // namespace integration
