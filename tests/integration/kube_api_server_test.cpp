// The test Kubernetes API server (tests/support/kube_api_server.py) checked against real clients:
// Debian's kubectl (package kubernetes-client) gets the guide's Service, lists and watches
// EndpointSlices through it with a kubeconfig and fails on a wrong token; curl sees the watch
// protocol itself: chunked newline-delimited events, 410 Expired for a compacted
// resourceVersion, bookmarks, server-side timeouts and close-watches, token rotation, injected
// failures and a stopped listener.

#include "tests/support/kube_api_server.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using namespace integration;
using nlohmann::json;

namespace {

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

// The JSON values kubectl printed one after another: pretty-printed over several lines, or one
// per line (kubectl 1.20 prints watch events so); a value ends with the first line that
// completes it.
std::vector<json> json_values(const std::string& text) {
    std::vector<json> values;
    std::istringstream lines(text);
    std::string line;
    std::string value;
    while (std::getline(lines, line)) {
        value += line + "\n";
        if (json::accept(value)) {
            values.push_back(json::parse(value));
            value.clear();
        }
    }
    return values;
}

std::vector<KubeEndpoint> endpoints(const std::vector<std::string>& addresses) {
    std::vector<KubeEndpoint> list;
    for (const std::string& address : addresses) list.push_back({address, true, true, false});
    return list;
}

std::string slice(const std::string& name, const std::vector<std::string>& addresses) {
    return endpoint_slice_json("default", name, "passthrough-echoserver", "https", 8443, "IPv4",
                               endpoints(addresses));
}

bool has_watch_request(KubeApiServer& server, const std::string& path_part) {
    for (const KubeApiRequest& request : server.requests()) {
        if (request.watch && request.path.find(path_part) != std::string::npos) return true;
    }
    return false;
}

// curl arguments for a GET on the API with the CA and a bearer token (from a header file, so it
// is not on the command line).
std::vector<std::string> curl_api(const TempDir& dir, KubeApiServer& server, const std::string& path_and_query,
                                  const std::string& token) {
    const std::string header = dir.file("authorization.header");
    write_file(header, "Authorization: Bearer " + token + "\n");
    return {"curl", "--silent", "--show-error", "--no-buffer", "--max-time", "20", "--cacert", server.ca_file(),
            "-H", "@" + header, "-D", dir.file("curl.headers"), server.url() + path_and_query};
}

std::vector<json> json_lines(const std::string& text) {
    std::vector<json> values;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty()) values.push_back(json::parse(line));
    }
    return values;
}

const char* slices_path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

}  // namespace

TEST_CASE("kubectl gets the guide's Service and lists EndpointSlices through the test API server",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    server.put(service_json());
    server.put(slice("passthrough-echoserver-abc12", {"10.244.0.11", "10.244.0.12"}));
    server.put(slice("passthrough-echoserver-def34", {"10.244.1.13"}));
    server.put(endpoint_slice_json("default", "other-xyz", "other", "https", 8443, "IPv4", endpoints({"10.244.2.1"})));

    const std::vector<std::pair<KubeAuth, const char*>> auths = {{KubeAuth::token, "token"},
                                                                 {KubeAuth::token_file, "tokenFile"},
                                                                 {KubeAuth::client_cert_files, "client-certificate"},
                                                                 {KubeAuth::client_cert_data, "client-certificate-data"}};
    for (const auto& [auth, auth_name] : auths) {
        INFO("kubeconfig user authenticates with " << auth_name);
        const std::string kubeconfig = dir.file(std::string("kubeconfig-") + auth_name);
        server.write_kubeconfig(kubeconfig, auth);

        const RunResult service = kubectl(dir, kubeconfig, {"get", "service", "passthrough-echoserver", "-o", "json"});
        INFO("kubectl get service: " << service.err);
        REQUIRE(service.status == 0);
        const json object = json::parse(service.out);
        CHECK(object.at("kind") == "Service");
        CHECK(object.at("apiVersion") == "v1");
        CHECK(object.at("metadata").at("name") == "passthrough-echoserver");
        CHECK(!object.at("metadata").at("resourceVersion").get<std::string>().empty());
        const json& port = object.at("spec").at("ports").at(0);
        CHECK(port.at("name") == "https");
        CHECK(port.at("port") == 443);
        CHECK(port.at("targetPort") == 8443);

        const RunResult list = kubectl(dir, kubeconfig, {"get", "endpointslices", "-l",
                                                         "kubernetes.io/service-name=passthrough-echoserver",
                                                         "-o", "json"});
        INFO("kubectl get endpointslices: " << list.err);
        REQUIRE(list.status == 0);
        const json items = json::parse(list.out).at("items");
        REQUIRE(items.size() == 2);
        CHECK(items.at(0).at("kind") == "EndpointSlice");
        CHECK(items.at(0).at("metadata").at("name") == "passthrough-echoserver-abc12");
        CHECK(items.at(0).at("endpoints").at(1).at("addresses").at(0) == "10.244.0.12");
        CHECK(items.at(0).at("endpoints").at(1).at("conditions").at("ready") == true);
        CHECK(items.at(1).at("metadata").at("name") == "passthrough-echoserver-def34");
        CHECK(items.at(1).at("ports").at(0).at("port") == 8443);
    }

    // Every request authenticated the way its kubeconfig said; none was refused.
    bool saw_token = false;
    bool saw_client_cn = false;
    for (const KubeApiRequest& request : server.requests()) {
        CHECK(request.status == 200);
        saw_token = saw_token || request.token == server.token();
        saw_client_cn = saw_client_cn || request.client_cn == "passgate";
    }
    CHECK(saw_token);
    CHECK(saw_client_cn);
}

TEST_CASE("kubectl get --watch sees ADDED, MODIFIED and DELETED from the test API server",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    const std::string kubeconfig = dir.file("kubeconfig");
    server.write_kubeconfig(kubeconfig, KubeAuth::token);
    server.put(service_json());
    server.put(slice("passthrough-echoserver-abc12", {"10.244.0.11"}));

    SpawnOptions options;
    options.argv = kubectl_argv(dir, kubeconfig, {"get", "endpointslices", "--watch", "--output-watch-events",
                                                  "-l", "kubernetes.io/service-name=passthrough-echoserver",
                                                  "-o", "json"});
    options.stdout_path = dir.file("watch.out");
    options.stderr_path = dir.file("watch.err");
    Process watch(options);
    INFO("kubectl --watch stderr: " << watch.stderr_text());
    REQUIRE(wait_until([&] { return has_watch_request(server, "endpointslices"); }, Millis(15000), Millis(50)));

    server.put(slice("passthrough-echoserver-def34", {"10.244.1.13"}));
    server.put(slice("passthrough-echoserver-abc12", {"10.244.0.11", "10.244.0.12"}));
    server.remove("EndpointSlice", "default", "passthrough-echoserver-def34");
    // Another Service's slice: not selected, never printed.
    server.put(endpoint_slice_json("default", "other-xyz", "other", "https", 8443, "IPv4", endpoints({"10.244.2.1"})));

    std::vector<json> events;
    const bool all_seen = wait_until([&] {
        events = json_values(read_file(dir.file("watch.out")));
        return events.size() >= 4;
    }, Millis(15000), Millis(50));
    INFO("kubectl --watch stdout: " << read_file(dir.file("watch.out")));
    REQUIRE(all_seen);
    REQUIRE(events.size() == 4);
    // The list's object first, then the watch's events in order.
    CHECK(events.at(0).at("type") == "ADDED");
    CHECK(events.at(0).at("object").at("metadata").at("name") == "passthrough-echoserver-abc12");
    CHECK(events.at(1).at("type") == "ADDED");
    CHECK(events.at(1).at("object").at("metadata").at("name") == "passthrough-echoserver-def34");
    CHECK(events.at(2).at("type") == "MODIFIED");
    CHECK(events.at(2).at("object").at("endpoints").size() == 2);
    CHECK(events.at(3).at("type") == "DELETED");
    CHECK(events.at(3).at("object").at("metadata").at("name") == "passthrough-echoserver-def34");
    CHECK(watch.running());

    // kubectl watched from its list's resourceVersion, with the label selector.
    bool watched_from_list = false;
    for (const KubeApiRequest& request : server.requests()) {
        if (request.watch) {
            watched_from_list = request.query.find("resourceVersion=3") != std::string::npos &&
                                request.query.find("labelSelector=kubernetes.io%2Fservice-name%3D"
                                                   "passthrough-echoserver") != std::string::npos;
        }
    }
    CHECK(watched_from_list);
}

TEST_CASE("kubectl fails with Unauthorized on a wrong token", "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    server.put(service_json());
    const std::string kubeconfig = dir.file("kubeconfig");
    server.write_kubeconfig(kubeconfig, KubeAuth::token);
    server.set_token("a-rotated-token-kubectl-does-not-know");

    const RunResult result = kubectl(dir, kubeconfig, {"get", "service", "passthrough-echoserver", "-o", "json"});
    INFO("kubectl: " << result.out << result.err);
    REQUIRE(result.status.has_value());
    CHECK(*result.status != 0);
    CHECK(result.err.find("Unauthorized") != std::string::npos);
    CHECK(result.out.find("passthrough-echoserver") == std::string::npos);
}

TEST_CASE("test API server: a watch from a compacted resourceVersion gets one ERROR event with 410 Expired",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    const std::string old_version = server.put(slice("passthrough-echoserver-abc12", {"10.244.0.11"}));
    server.put(slice("passthrough-echoserver-abc12", {"10.244.0.12"}));

    // Before compaction the watch replays the change after old_version, then ends at timeoutSeconds.
    const std::string query = std::string(slices_path) + "?watch=true&timeoutSeconds=1&resourceVersion=";
    RunResult before = run(curl_api(dir, server, query + old_version, server.token()), dir, "curl-before");
    INFO("curl: " << before.err);
    REQUIRE(before.status == 0);
    std::vector<json> events = json_lines(before.out);
    REQUIRE(events.size() == 1);
    CHECK(events.at(0).at("type") == "MODIFIED");

    const std::string compacted = server.compact();
    RunResult after = run(curl_api(dir, server, query + old_version, server.token()), dir, "curl-after");
    INFO("curl: " << after.err);
    REQUIRE(after.status == 0);  // 200 and a cleanly ended stream
    CHECK(read_file(dir.file("curl.headers")).find("HTTP/1.1 200") == 0);
    events = json_lines(after.out);
    REQUIRE(events.size() == 1);
    CHECK(events.at(0).at("type") == "ERROR");
    const json& status = events.at(0).at("object");
    CHECK(status.at("kind") == "Status");
    CHECK(status.at("code") == 410);
    CHECK(status.at("reason") == "Expired");
    CHECK(status.at("message") == "too old resource version: " + old_version + " (" + compacted + ")");

    // From the compaction point on, watching works again.
    RunResult current = run(curl_api(dir, server, query + compacted, server.token()), dir, "curl-current");
    REQUIRE(current.status == 0);
    CHECK(current.out.empty());
}

TEST_CASE("test API server: chunked watch events, bookmarks, close-watches and server-side timeouts",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    server.put(slice("passthrough-echoserver-abc12", {"10.244.0.11"}));

    // --raw: curl prints the chunked framing as it arrives.
    std::vector<std::string> argv = curl_api(dir, server, std::string(slices_path) +
                                             "?watch=1&allowWatchBookmarks=true&labelSelector="
                                             "kubernetes.io%2Fservice-name%3Dpassthrough-echoserver",
                                             server.token());
    argv.insert(argv.begin() + 1, "--raw");
    SpawnOptions options;
    options.argv = argv;
    options.stdout_path = dir.file("watch.out");
    options.stderr_path = dir.file("watch.err");
    Process watch(options);
    const auto output_has = [&](const std::string& text) {
        return wait_until([&] { return read_file(dir.file("watch.out")).find(text) != std::string::npos; },
                          Millis(10000), Millis(20));
    };
    // Without a resourceVersion the watch starts with ADDED for what exists.
    REQUIRE(output_has("\"ADDED\""));
    server.put(slice("passthrough-echoserver-abc12", {"10.244.0.12"}));
    REQUIRE(output_has("\"MODIFIED\""));
    CHECK(server.bookmark() == 1);
    REQUIRE(output_has("\"BOOKMARK\""));
    CHECK(server.open_watches() == 1);
    server.close_watches();
    const std::optional<int> status = watch.wait_exit(Millis(10000));
    INFO("curl stderr: " << watch.stderr_text());
    REQUIRE(status == 0);  // the stream ended with its last chunk, not a reset

    const std::string headers = read_file(dir.file("curl.headers"));
    CHECK(headers.find("HTTP/1.1 200") == 0);
    CHECK(headers.find("Transfer-Encoding: chunked") != std::string::npos);
    // Each event is one chunk: "<hex size>\r\n<json>\n\r\n", then the last chunk "0\r\n\r\n".
    std::string raw = read_file(dir.file("watch.out"));
    std::vector<json> events;
    for (int chunk = 0; chunk < 10 && !raw.empty(); ++chunk) {
        const std::size_t line_end = raw.find("\r\n");
        REQUIRE(line_end != std::string::npos);
        const std::size_t size = std::stoul(raw.substr(0, line_end), nullptr, 16);
        if (size == 0) {
            CHECK(raw == "0\r\n\r\n");
            raw.clear();
            break;
        }
        const std::string data = raw.substr(line_end + 2, size);
        REQUIRE(data.size() == size);
        CHECK(data.back() == '\n');
        CHECK(data.find('\n') == size - 1);
        events.push_back(json::parse(data));
        REQUIRE(raw.compare(line_end + 2 + size, 2, "\r\n") == 0);
        raw = raw.substr(line_end + 4 + size);
    }
    CHECK(raw.empty());
    REQUIRE(events.size() == 3);
    CHECK(events.at(0).at("type") == "ADDED");
    CHECK(events.at(1).at("type") == "MODIFIED");
    CHECK(events.at(2).at("type") == "BOOKMARK");
    // A bookmark carries only kind, apiVersion and the current resourceVersion.
    CHECK(events.at(2).at("object") == json{{"kind", "EndpointSlice"}, {"apiVersion", "discovery.k8s.io/v1"},
                                            {"metadata", {{"resourceVersion", server.resource_version()}}}});

    // timeoutSeconds=1: the server ends the stream cleanly after about a second.
    const Clock::time_point start = Clock::now();
    const RunResult timed = run(curl_api(dir, server, std::string(slices_path) + "?watch=true&timeoutSeconds=1&"
                                         "resourceVersion=" + server.resource_version(), server.token()),
                                dir, "curl-timeout");
    CHECK(timed.status == 0);
    CHECK(Clock::now() - start >= Millis(900));
    CHECK(wait_until([&] { return server.open_watches() == 0; }, Millis(5000), Millis(50)));
}

TEST_CASE("test API server: 401 without a valid token, token rotation, injected failures, a stopped listener",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    server.put(service_json());
    const std::string service_path = "/api/v1/namespaces/default/services/passthrough-echoserver";
    const auto get = [&](const std::string& token, const std::string& name) {
        std::vector<std::string> argv = curl_api(dir, server, service_path, token);
        argv.insert(argv.begin() + 1, {"--write-out", "\n%{http_code}"});
        const RunResult result = run(argv, dir, name);
        return result.status == 0 ? result.out.substr(result.out.rfind('\n') + 1) : "curl failed: " + result.err;
    };
    const std::string first_token = server.token();
    CHECK(get(first_token, "ok") == "200");
    CHECK(get("wrong", "wrong") == "401");
    CHECK(json::parse(read_file(dir.file("wrong.out")).substr(0, read_file(dir.file("wrong.out")).rfind('\n'))) ==
          json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                          "message":"Unauthorized","reason":"Unauthorized","code":401})"));

    server.set_token("rotated-token");
    CHECK(get(first_token, "old-token") == "401");
    CHECK(get("rotated-token", "new-token") == "200");

    server.fail_next(503, 2);
    CHECK(get("rotated-token", "fail-1") == "503");
    CHECK(get("rotated-token", "fail-2") == "503");
    CHECK(get("rotated-token", "after-fail") == "200");

    server.set_listening(false);
    CHECK(!port_accepts(server.port(), Millis(200)));
    CHECK(get("rotated-token", "down").rfind("curl failed", 0) == 0);
    server.set_listening(true);
    CHECK(get("rotated-token", "up-again") == "200");  // the Service is still there

    const std::vector<KubeApiRequest> requests = server.requests();
    REQUIRE(requests.size() == 8);  // the connection refused while down reached no handler
    CHECK(requests.at(1).status == 401);
    CHECK(requests.at(1).token == "wrong");
    CHECK(requests.at(3).token == "rotated-token");
    CHECK(requests.at(3).path == service_path);
    CHECK(!requests.at(3).watch);

    server.stop();  // SIGTERM: exit status 0
}
