// The test Kubernetes API server (tests/support/kube_api_server.py) checked against real clients:
// Debian's kubectl (package kubernetes-client) gets the guide's Service, lists and watches
// EndpointSlices through it with a kubeconfig and fails on a wrong token; it gets the Gateway API
// objects (tables with the CRDs' columns, -o yaml/json in the preferred and older versions) with
// the status written through the status subresource, and a Lease. curl sees the watch protocol
// itself: chunked newline-delimited events, 410 Expired for a compacted resourceVersion,
// bookmarks, server-side timeouts and close-watches, token rotation, injected failures and a
// stopped listener; and the writes: status PATCH/PUT and Lease create/update with their
// resourceVersion preconditions (409 Conflict, 409 AlreadyExists, 422, 415, 404, 401).

#include "tests/support/kube_api_server.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace integration;
using nlohmann::json;

namespace {

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

namespace {

// The words of each line of a kubectl table, header first.
std::vector<std::vector<std::string>> table_words(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::vector<std::string> row;
        std::string word;
        while (words >> word) row.push_back(word);
        if (!row.empty()) rows.push_back(row);
    }
    return rows;
}

const char* gateway_controller = "passgate.io/gateway-controller";

// The status passgate writes, as status PATCH bodies (RFC 7386 merge patches).
json accepted_condition(const std::string& type, const std::string& reason, int generation = 1) {
    return {{"type", type}, {"status", "True"}, {"reason", reason}, {"message", type + " by passgate"},
            {"observedGeneration", generation}, {"lastTransitionTime", "2026-01-01T00:00:00Z"}};
}

json gateway_class_status() {
    return {{"status", {{"conditions", {accepted_condition("Accepted", "Accepted")}}}}};
}

json gateway_status() {
    const json listener = {{"name", "tls"},
                           {"attachedRoutes", 1},
                           {"supportedKinds", {{{"group", "gateway.networking.k8s.io"}, {"kind", "TLSRoute"}}}},
                           {"conditions",
                            {accepted_condition("Accepted", "Accepted"), accepted_condition("Programmed", "Programmed"),
                             accepted_condition("ResolvedRefs", "ResolvedRefs")}}};
    return {{"status",
             {{"addresses", {{{"type", "IPAddress"}, {"value", "127.0.0.1"}}}},
              {"conditions", {accepted_condition("Accepted", "Accepted"), accepted_condition("Programmed", "Programmed")}},
              {"listeners", {listener}}}}};
}

json tls_route_status(const std::string& gateway_namespace) {
    const json parent = {{"parentRef", {{"group", "gateway.networking.k8s.io"}, {"kind", "Gateway"},
                                        {"name", "eg"}, {"namespace", gateway_namespace}}},
                         {"controllerName", gateway_controller},
                         {"conditions", {accepted_condition("Accepted", "Accepted"),
                                         accepted_condition("ResolvedRefs", "ResolvedRefs")}}};
    return {{"status", {{"parents", {parent}}}}};
}

// The guide's objects (GatewayClass and Gateway v1beta1, TLSRoute v1alpha2) and a v1 TLSRoute in
// another namespace, with a ReferenceGrant and the namespaces.
void put_gateway_objects(KubeApiServer& server) {
    for (const char* name_space : {"default", "other"}) {
        server.put(json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name_space}}},
                        {"status", {{"phase", "Active"}}}}.dump());
    }
    server.put(gateway_class_json("eg", gateway_controller));
    server.put(gateway_json());
    server.put(tls_route_json());
    server.put(tls_route_json("other", "other-route", "eg", {"other.example.com"}, "other-echoserver", 443,
                              "gateway.networking.k8s.io/v1"));
    server.put(json{{"apiVersion", "gateway.networking.k8s.io/v1beta1"},
                    {"kind", "ReferenceGrant"},
                    {"metadata", {{"name", "from-other"}, {"namespace", "default"}}},
                    {"spec",
                     {{"from", {{{"group", "gateway.networking.k8s.io"}, {"kind", "TLSRoute"}, {"namespace", "other"}}}},
                      {"to", {{{"group", ""}, {"kind", "Service"}}}}}}}
                   .dump());
}

}  // namespace

TEST_CASE("kubectl gets the Gateway API objects with the status written through the status subresource",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    const std::string kubeconfig = dir.file("kubeconfig");
    server.write_kubeconfig(kubeconfig, KubeAuth::token);
    put_gateway_objects(server);

    // The status PATCHes (as passgate sends them) carry other fields too: only .status changes.
    json route_patch = tls_route_status("default");
    route_patch["spec"] = {{"hostnames", {"not-applied.example.com"}}};
    route_patch["metadata"] = {{"labels", {{"not", "applied"}}}};
    const std::vector<std::tuple<std::string, std::string, std::string, json>> patches = {
        {"GatewayClass", "", "eg", gateway_class_status()},
        {"Gateway", "default", "eg", gateway_status()},
        {"TLSRoute", "default", "tlsroute", route_patch},
        {"TLSRoute", "other", "other-route", tls_route_status("default")}};
    for (const auto& [kind, name_space, name, patch] : patches) {
        const std::string before = server.resource_version();
        const KubeApiResponse response = server.patch_status(kind, name_space, name, patch.dump());
        INFO(kind << " " << name << ": " << response.body);
        REQUIRE(response.status == 200);
        const json stored = json::parse(response.body);
        CHECK(std::stoi(stored.at("metadata").at("resourceVersion").get<std::string>()) == std::stoi(before) + 1);
        CHECK(stored.at("metadata").at("generation") == 1);  // a status change is no new generation
        CHECK(stored.at("status") == patch.at("status"));
    }

    SECTION("kubectl get tlsroute -A -o yaml") {
        const RunResult yaml = kubectl(dir, kubeconfig, {"get", "tlsroute", "-A", "-o", "yaml"});
        INFO("kubectl: " << yaml.out << yaml.err);
        REQUIRE(yaml.status == 0);
        // Served in the preferred version v1 whatever version it was stored in.
        CHECK(yaml.out.find("- apiVersion: gateway.networking.k8s.io/v1\n  kind: TLSRoute\n") != std::string::npos);
        CHECK(yaml.out.find("v1alpha2") == std::string::npos);
        CHECK(yaml.out.find("  status:\n    parents:\n    - conditions:\n") != std::string::npos);
        CHECK(yaml.out.find("      controllerName: passgate.io/gateway-controller\n") != std::string::npos);
        CHECK(yaml.out.find("        reason: ResolvedRefs\n") != std::string::npos);
        CHECK(yaml.out.find("not-applied") == std::string::npos);

        const RunResult list = kubectl(dir, kubeconfig, {"get", "tlsroute", "-A", "-o", "json"});
        REQUIRE(list.status == 0);
        const json items = json::parse(list.out).at("items");
        REQUIRE(items.size() == 2);
        CHECK(items.at(0).at("metadata").at("namespace") == "default");
        CHECK(items.at(0).at("spec").at("hostnames") == json{"passthrough.example.com"});
        CHECK(items.at(0).at("metadata").count("labels") == 0);
        const json& parent = items.at(0).at("status").at("parents").at(0);
        CHECK(parent.at("controllerName") == gateway_controller);
        CHECK(parent.at("conditions").at(0).at("type") == "Accepted");
        CHECK(parent.at("conditions").at(0).at("status") == "True");
        CHECK(parent.at("conditions").at(1).at("type") == "ResolvedRefs");
        CHECK(items.at(1).at("metadata").at("name") == "other-route");
        CHECK(items.at(1).at("status").at("parents").at(0).at("parentRef").at("namespace") == "default");

        // The table kubectl prints without -o: NAMESPACE, NAME, AGE (the CRD's printer column).
        const RunResult table = kubectl(dir, kubeconfig, {"get", "tlsroutes", "-A"});
        REQUIRE(table.status == 0);
        const auto rows = table_words(table.out);
        REQUIRE(rows.size() == 3);
        CHECK(rows.at(0) == std::vector<std::string>{"NAMESPACE", "NAME", "AGE"});
        CHECK(rows.at(1).at(0) == "default");
        CHECK(rows.at(1).at(1) == "tlsroute");
        CHECK(rows.at(2).at(0) == "other");
        CHECK(rows.at(2).at(1) == "other-route");

        // An older served version by its full name: the same object, that apiVersion.
        const RunResult old = kubectl(dir, kubeconfig, {"get", "tlsroutes.v1alpha2.gateway.networking.k8s.io",
                                                        "-n", "other", "other-route", "-o", "json"});
        INFO("kubectl v1alpha2: " << old.err);
        REQUIRE(old.status == 0);
        CHECK(json::parse(old.out).at("apiVersion") == "gateway.networking.k8s.io/v1alpha2");
    }

    SECTION("kubectl get gateway -n default eg -o yaml") {
        const RunResult yaml = kubectl(dir, kubeconfig, {"get", "gateway", "-n", "default", "eg", "-o", "yaml"});
        INFO("kubectl: " << yaml.out << yaml.err);
        REQUIRE(yaml.status == 0);
        CHECK(yaml.out.find("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n") == 0);
        CHECK(yaml.out.find("  addresses:\n  - type: IPAddress\n    value: 127.0.0.1\n") != std::string::npos);
        CHECK(yaml.out.find("  listeners:\n  - attachedRoutes: 1\n") != std::string::npos);
        CHECK(yaml.out.find("      reason: Programmed\n") != std::string::npos);

        const RunResult object = kubectl(dir, kubeconfig, {"get", "gtw", "eg", "-o", "json"});  // short name
        REQUIRE(object.status == 0);
        const json gateway = json::parse(object.out);
        CHECK(gateway.at("spec").at("listeners").at(1).at("tls").at("mode") == "Passthrough");
        const json& listener = gateway.at("status").at("listeners").at(0);
        CHECK(listener.at("name") == "tls");
        CHECK(listener.at("attachedRoutes") == 1);
        CHECK(listener.at("conditions").size() == 3);

        const RunResult table = kubectl(dir, kubeconfig, {"get", "gateway", "eg"});
        REQUIRE(table.status == 0);
        const auto rows = table_words(table.out);
        REQUIRE(rows.size() == 2);
        CHECK(rows.at(0) == std::vector<std::string>{"NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"});
        CHECK(std::vector<std::string>(rows.at(1).begin(), rows.at(1).end() - 1) ==
              std::vector<std::string>{"eg", "eg", "127.0.0.1", "True"});
    }

    SECTION("kubectl get gatewayclass") {
        const RunResult table = kubectl(dir, kubeconfig, {"get", "gatewayclass"});
        INFO("kubectl: " << table.out << table.err);
        REQUIRE(table.status == 0);
        const auto rows = table_words(table.out);
        REQUIRE(rows.size() == 2);
        CHECK(rows.at(0) == std::vector<std::string>{"NAME", "CONTROLLER", "ACCEPTED", "AGE"});
        CHECK(std::vector<std::string>(rows.at(1).begin(), rows.at(1).end() - 1) ==
              std::vector<std::string>{"eg", gateway_controller, "True"});

        // Cluster-scoped: found from any namespace's context, by its short name too.
        const RunResult object = kubectl(dir, kubeconfig, {"get", "gc", "eg", "-n", "other", "-o", "json"});
        REQUIRE(object.status == 0);
        const json gateway_class = json::parse(object.out);
        CHECK(gateway_class.at("apiVersion") == "gateway.networking.k8s.io/v1");
        CHECK(gateway_class.at("metadata").count("namespace") == 0);
        CHECK(gateway_class.at("status").at("conditions").at(0).at("reason") == "Accepted");

        // Deleted through the control API: gone for kubectl.
        server.remove("GatewayClass", "", "eg");
        CHECK(!server.object("GatewayClass", "", "eg"));
        const RunResult gone = kubectl(dir, kubeconfig, {"get", "gatewayclass", "eg"});
        CHECK(gone.status != 0);
        CHECK(gone.err.find("gatewayclasses.gateway.networking.k8s.io \"eg\" not found") != std::string::npos);
    }

    SECTION("kubectl get gateway --watch prints Table rows: one header, a row per event") {
        SpawnOptions options;
        options.argv = kubectl_argv(dir, kubeconfig, {"get", "gateways", "--watch"});
        options.stdout_path = dir.file("watch.out");
        options.stderr_path = dir.file("watch.err");
        Process watch(options);
        INFO("kubectl --watch stderr: " << watch.stderr_text());
        REQUIRE(wait_until([&] { return has_watch_request(server, "gateways"); }, Millis(15000), Millis(50)));
        server.patch_status("Gateway", "default", "eg",
                            R"({"status":{"conditions":[{"type":"Programmed","status":"False"}]}})");
        std::vector<std::vector<std::string>> rows;
        const bool printed = wait_until([&] {
            rows = table_words(read_file(dir.file("watch.out")));
            return rows.size() >= 3;
        }, Millis(15000), Millis(50));
        INFO("kubectl --watch stdout: " << read_file(dir.file("watch.out")));
        REQUIRE(printed);
        REQUIRE(rows.size() == 3);
        CHECK(rows.at(0) == std::vector<std::string>{"NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"});
        CHECK(rows.at(1).at(3) == "True");
        // A merge patch replaces the conditions list and keeps the addresses.
        CHECK(std::vector<std::string>(rows.at(2).begin(), rows.at(2).end() - 1) ==
              std::vector<std::string>{"eg", "eg", "127.0.0.1", "False"});
    }

    SECTION("kubectl api-resources lists the kinds as the CRDs and the built-in API do") {
        const RunResult resources = kubectl(dir, kubeconfig, {"api-resources", "--api-group", "gateway.networking.k8s.io"});
        INFO("kubectl: " << resources.out << resources.err);
        REQUIRE(resources.status == 0);
        const auto rows = table_words(resources.out);
        REQUIRE(rows.size() == 5);
        CHECK(rows.at(1) == std::vector<std::string>{"gatewayclasses", "gc", "gateway.networking.k8s.io/v1", "false", "GatewayClass"});
        CHECK(rows.at(2) == std::vector<std::string>{"gateways", "gtw", "gateway.networking.k8s.io/v1", "true", "Gateway"});
        CHECK(rows.at(3) == std::vector<std::string>{"referencegrants", "refgrant", "gateway.networking.k8s.io/v1", "true", "ReferenceGrant"});
        CHECK(rows.at(4) == std::vector<std::string>{"tlsroutes", "gateway.networking.k8s.io/v1", "true", "TLSRoute"});

        const RunResult leases = kubectl(dir, kubeconfig, {"api-resources", "--api-group", "coordination.k8s.io"});
        REQUIRE(leases.status == 0);
        CHECK(table_words(leases.out).at(1) == std::vector<std::string>{"leases", "coordination.k8s.io/v1", "true", "Lease"});
        const RunResult namespaces = kubectl(dir, kubeconfig, {"get", "namespaces", "-o", "name"});
        REQUIRE(namespaces.status == 0);
        CHECK(namespaces.out == "namespace/default\nnamespace/other\n");
    }
}

TEST_CASE("test API server: a status PATCH is one MODIFIED event in every served version; a stale "
          "resourceVersion is 409 Conflict",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    put_gateway_objects(server);
    const std::string route_version = json::parse(*server.object("TLSRoute", "default", "tlsroute"))
                                          .at("metadata").at("resourceVersion").get<std::string>();
    const std::string watched_from = server.resource_version();

    // With the current resourceVersion as a precondition: applied.
    json patch = tls_route_status("default");
    patch["metadata"] = {{"resourceVersion", route_version}};
    const KubeApiResponse applied = server.patch_status("TLSRoute", "default", "tlsroute", patch.dump());
    INFO("PATCH: " << applied.body);
    REQUIRE(applied.status == 200);
    const std::string patched_version = json::parse(applied.body).at("metadata").at("resourceVersion").get<std::string>();
    CHECK(patched_version == std::to_string(std::stoi(watched_from) + 1));

    // The same precondition again is stale now: 409 with the real server's Status, nothing changes.
    patch["status"]["parents"][0]["conditions"][0]["status"] = "False";
    const KubeApiResponse stale = server.patch_status("TLSRoute", "default", "tlsroute", patch.dump());
    CHECK(stale.status == 409);
    CHECK(json::parse(stale.body) ==
          json{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
               {"message", "Operation cannot be fulfilled on tlsroutes.gateway.networking.k8s.io \"tlsroute\": the "
                           "object has been modified; please apply your changes to the latest version and try again"},
               {"reason", "Conflict"},
               {"details", {{"name", "tlsroute"}, {"group", "gateway.networking.k8s.io"}, {"kind", "tlsroutes"}}},
               {"code", 409}});
    // A PATCH that changes nothing is a no-op, as on the real server: no resourceVersion, no event.
    const KubeApiResponse same = server.patch_status("TLSRoute", "default", "tlsroute",
                                                     tls_route_status("default").dump());
    CHECK(same.status == 200);
    CHECK(server.resource_version() == patched_version);

    // PUT of the status: the whole object, its resourceVersion required and current.
    json object = json::parse(*server.object("TLSRoute", "default", "tlsroute"));
    const std::string status_path = kube_object_path("TLSRoute", "default", "tlsroute") + "/status";
    object["status"]["parents"][0]["conditions"][1]["reason"] = "BackendNotFound";
    object["metadata"]["resourceVersion"] = watched_from;
    CHECK(server.api("PUT", status_path, object.dump()).status == 409);
    object["metadata"].erase("resourceVersion");
    const KubeApiResponse unversioned = server.api("PUT", status_path, object.dump());
    CHECK(unversioned.status == 422);
    CHECK(json::parse(unversioned.body).at("reason") == "Invalid");
    object["metadata"]["resourceVersion"] = patched_version;
    const KubeApiResponse put = server.api("PUT", status_path, object.dump());
    REQUIRE(put.status == 200);
    const std::string put_version = json::parse(put.body).at("metadata").at("resourceVersion").get<std::string>();

    // Not a merge patch, a missing object, no token: refused with a Status, nothing changed.
    CHECK(server.api("PATCH", status_path, "{}", "application/strategic-merge-patch+json").status == 415);
    const KubeApiResponse missing = server.patch_status("TLSRoute", "default", "no-such-route", "{\"status\":{}}");
    CHECK(missing.status == 404);
    CHECK(json::parse(missing.body).at("message") == "tlsroutes.gateway.networking.k8s.io \"no-such-route\" not found");
    CHECK(server.patch_status("Gateway", "other", "eg", gateway_status().dump()).status == 404);
    const std::string token = server.token();
    server.set_token("rotated");
    CHECK(server.api("PATCH", status_path, "{\"status\":null}", "application/merge-patch+json").status == 200);
    server.set_token(token);  // api() sends the current token: rotate by hand for a wrong one
    write_file(dir.file("wrong.header"), "Authorization: Bearer wrong\nContent-Type: application/merge-patch+json\n");
    const RunResult unauthorized = run({"curl", "--silent", "--cacert", server.ca_file(), "-H", "@" + dir.file("wrong.header"),
                                        "-X", "PATCH", "--data-binary", "{\"status\":null}", "--write-out", "%{http_code}",
                                        "-o", "/dev/null", server.url() + status_path},
                                       dir, "curl-unauthorized");
    CHECK(unauthorized.out == "401");
    const std::string final_version = server.resource_version();
    CHECK(final_version == std::to_string(std::stoi(put_version) + 1));  // the status:null PATCH only

    // Every change after watched_from, in order, through a cluster-wide watch of each version.
    // (The last of them removed the status: status:null.)
    for (const std::string version : {"v1", "v1alpha3", "v1alpha2"}) {
        INFO("watch through " << version);
        const RunResult watch = run(curl_api(dir, server, "/apis/gateway.networking.k8s.io/" + version +
                                             "/tlsroutes?watch=true&timeoutSeconds=1&resourceVersion=" + watched_from,
                                             server.token()),
                                    dir, "watch-" + version);
        REQUIRE(watch.status == 0);
        const std::vector<json> events = json_lines(watch.out);
        REQUIRE(events.size() == 3);
        for (const json& event : events) {
            CHECK(event.at("type") == "MODIFIED");
            CHECK(event.at("object").at("apiVersion") == "gateway.networking.k8s.io/" + version);
        }
        CHECK(events.at(0).at("object").at("metadata").at("resourceVersion") == patched_version);
        CHECK(events.at(0).at("object").at("status").at("parents").at(0).at("controllerName") == gateway_controller);
        CHECK(events.at(1).at("object").at("metadata").at("resourceVersion") == put_version);
        CHECK(events.at(1).at("object").at("status").at("parents").at(0).at("conditions").at(1).at("reason") ==
              "BackendNotFound");
        CHECK(events.at(2).at("object").count("status") == 0);
    }
    // The namespace's watch of another namespace sees none of it.
    const RunResult other = run(curl_api(dir, server, "/apis/gateway.networking.k8s.io/v1/namespaces/other/tlsroutes?"
                                         "watch=true&timeoutSeconds=1&resourceVersion=" + watched_from, server.token()),
                                dir, "watch-other");
    REQUIRE(other.status == 0);
    CHECK(other.out.empty());

    // A spec change through the control API (as kubectl apply): a new generation; the status the
    // controller wrote stays until it writes the next.
    REQUIRE(server.patch_status("TLSRoute", "other", "other-route", tls_route_status("default").dump()).status == 200);
    const json changed = json::parse(server.put_object(tls_route_json("other", "other-route", "eg", {"changed.example.com"},
                                                                      "other-echoserver", 443,
                                                                      "gateway.networking.k8s.io/v1")));
    CHECK(changed.at("metadata").at("generation") == 2);
    CHECK(changed.at("status") == tls_route_status("default").at("status"));
    json relabel = json::parse(*server.object("TLSRoute", "other", "other-route"));
    relabel["metadata"]["labels"] = {{"team", "edge"}};
    CHECK(json::parse(server.put_object(relabel.dump())).at("metadata").at("generation") == 2);  // no spec change

    // Every write is in the request log with its method, path, Content-Type and body.
    std::vector<KubeApiRequest> writes;
    for (const KubeApiRequest& request : server.requests()) {
        if (request.method != "GET") writes.push_back(request);
    }
    REQUIRE(writes.size() == 12);
    CHECK(writes.at(0).method == "PATCH");
    CHECK(writes.at(0).path == status_path);
    CHECK(writes.at(0).content_type == "application/merge-patch+json");
    CHECK(json::parse(writes.at(0).body).at("metadata").at("resourceVersion") == route_version);
    CHECK(writes.at(0).status == 200);
    CHECK(writes.at(1).status == 409);
    CHECK(writes.at(3).method == "PUT");
    CHECK(writes.at(3).status == 409);
    CHECK(writes.at(9).token == "rotated");
    CHECK(writes.at(10).status == 401);
    CHECK(writes.at(10).token == "wrong");
}

TEST_CASE("test API server: Lease create, get and update with resourceVersion preconditions",
          "[integration][kubernetes]") {
    KubeApiServer server;
    TempDir dir;
    const std::string leases = kube_object_path("Lease", "default", "");
    const std::string lease_path = kube_object_path("Lease", "default", "passgate-status");
    const json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                        {"kind", "Lease"},
                        {"metadata", {{"name", "passgate-status"}, {"namespace", "default"}}},
                        {"spec", {{"holderIdentity", "node-a"}, {"leaseDurationSeconds", 15},
                                  {"renewTime", "2026-01-01T00:00:00.000000Z"}}}};

    CHECK(server.api("GET", lease_path).status == 404);
    const KubeApiResponse created = server.api("POST", leases, lease.dump());
    INFO("POST: " << created.body);
    REQUIRE(created.status == 201);
    const std::string created_version = json::parse(created.body).at("metadata").at("resourceVersion").get<std::string>();

    // A second node creating it too: 409 AlreadyExists.
    json second = lease;
    second["spec"]["holderIdentity"] = "node-b";
    const KubeApiResponse exists = server.api("POST", leases, second.dump());
    CHECK(exists.status == 409);
    CHECK(json::parse(exists.body).at("reason") == "AlreadyExists");
    CHECK(json::parse(exists.body).at("message") == "leases.coordination.k8s.io \"passgate-status\" already exists");

    // Both read it; node-a renews first, node-b's update with the old resourceVersion conflicts.
    const KubeApiResponse read = server.api("GET", lease_path);
    REQUIRE(read.status == 200);
    json renewal = json::parse(read.body);
    CHECK(renewal.at("spec").at("holderIdentity") == "node-a");
    renewal["spec"]["renewTime"] = "2026-01-01T00:00:05.000000Z";
    const KubeApiResponse renewed = server.api("PUT", lease_path, renewal.dump());
    REQUIRE(renewed.status == 200);
    const std::string renewed_version = json::parse(renewed.body).at("metadata").at("resourceVersion").get<std::string>();
    CHECK(std::stoi(renewed_version) == std::stoi(created_version) + 1);
    json takeover = json::parse(read.body);
    takeover["spec"]["holderIdentity"] = "node-b";
    const KubeApiResponse conflicted = server.api("PUT", lease_path, takeover.dump());
    CHECK(conflicted.status == 409);
    CHECK(json::parse(conflicted.body).at("reason") == "Conflict");
    CHECK(json::parse(conflicted.body).at("details").at("kind") == "leases");
    CHECK(server.api("PUT", kube_object_path("Lease", "default", "no-such-lease"),
                     json{{"metadata", {{"name", "no-such-lease"}}}}.dump()).status == 404);
    CHECK(server.api("PUT", lease_path, json{{"metadata", {{"name", "another-name"}}}}.dump()).status == 400);

    // kubectl reads what node-a wrote.
    const std::string kubeconfig = dir.file("kubeconfig");
    server.write_kubeconfig(kubeconfig, KubeAuth::client_cert_files);
    const RunResult got = kubectl(dir, kubeconfig, {"get", "lease", "passgate-status", "-o", "json"});
    INFO("kubectl: " << got.out << got.err);
    REQUIRE(got.status == 0);
    const json object = json::parse(got.out);
    CHECK(object.at("spec").at("holderIdentity") == "node-a");
    CHECK(object.at("spec").at("renewTime") == "2026-01-01T00:00:05.000000Z");
    CHECK(object.at("metadata").at("resourceVersion") == renewed_version);
}
