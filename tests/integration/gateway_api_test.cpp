// Gateway API objects as passgate's configuration, with real processes: the guide's own YAML
// (tests/data/gateway/guide/) from files, the Service's endpoints from the test API server
// (tests/support/kube_api_server.py) or from a TOML [[service]]; `--check`, `passgate route`,
// the data path (curl, identifying backends) and reloads of the manifests.

#include "tests/support/backends.h"
#include "tests/support/kube_api_server.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"
#include "tests/support/walkthrough.h"

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>
#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace integration;

namespace {

// The guide's Gateway listens on 6443: here on this address, which nothing else of the tests uses
// (6443 may be taken on 127.0.0.1 on a shared machine; 127.0.0.0/8 is all loopback). The other
// tests write their own Gateways, on free ports of 127.0.0.1.
const std::string kGuideHost = "127.0.0.61";

std::string guide_manifests() {
    return std::string(std::getenv("PASSGATE_SOURCE_ROOT")) + "/tests/data/gateway/guide/";
}

std::string gateway_table(const std::string& manifests, const std::string& listen_address = "127.0.0.1") {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[gateway_api]\ngateway_class = \"eg\"\nmanifests = [\"" + manifests + "\"]\n"
           "listen_address = \"" + listen_address + "\"\n\n";
}

// Replaces `path` by a new file renamed over it (what a config management tool does).
void replace_file(const std::string& path, const std::string& text) {
    write_file(path + ".tmp", text);
    std::filesystem::rename(path + ".tmp", path);
}

// The quickstart's GatewayClass and a Gateway "eg" with `listeners` (YAML list items, indented
// by four spaces).
std::string gateway_yaml(const std::string& listeners) {
    return "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: eg\n"
           "spec:\n  controllerName: gateway.envoyproxy.io/gatewayclass-controller\n---\n"
           "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: eg\n"
           "  namespace: default\nspec:\n  gatewayClassName: eg\n  listeners:\n" + listeners;
}

std::string tls_listener(const std::string& name, int port, const std::string& hostname = "") {
    return "    - name: " + name + "\n      protocol: TLS\n      port: " + std::to_string(port) + "\n" +
           (hostname.empty() ? "" : "      hostname: \"" + hostname + "\"\n") +
           "      tls:\n        mode: Passthrough\n";
}

// A TLSRoute in namespace default; `backends` are YAML backendRef items indented by eight spaces.
std::string route_yaml(const std::string& name, const std::string& parent_refs,
                       const std::vector<std::string>& hostnames, const std::string& backends) {
    std::string out = "---\napiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata:\n"
                      "  name: " + name + "\n  namespace: default\nspec:\n  parentRefs:\n" + parent_refs;
    if (!hostnames.empty()) {
        out += "  hostnames:\n";
        for (const std::string& hostname : hostnames) out += "    - \"" + hostname + "\"\n";
    }
    return out + "  rules:\n    - backendRefs:\n" + backends;
}

std::string backend_ref(const std::string& service, int port, int weight = 1, const std::string& kind = "Service") {
    return "        - kind: " + kind + "\n          name: " + service + "\n          port: " +
           std::to_string(port) + "\n          weight: " + std::to_string(weight) + "\n";
}

std::string static_service(const std::string& name, std::uint16_t port) {
    return "[[service]]\nname = \"" + name + "\"\nendpoints = [\"127.0.0.1:" + std::to_string(port) + "\"]\n\n";
}

std::string ask(std::uint16_t port, const std::string& sni) { return ask_backend(port, minimal_client_hello(sni)); }

// `config` as a file that --check (or a start-up by hand) reads: "@ADMIN@" made a real address.
void write_config(const std::string& path, std::string config) {
    const std::string admin = "@ADMIN@";
    config.replace(config.find(admin), admin.size(), "127.0.0.1:" + std::to_string(free_port()));
    write_file(path, config);
}

RunResult check_config(const TempDir& dir, const std::string& path) {
    return run({passgate_binary(), "--check", "--config", path}, dir, "check", Millis(10000));
}

}  // namespace

TEST_CASE("gateway api: the guide's objects as they are: --check accepts them, the guide's curl reaches the "
          "application through Gateway eg's listener tls, `passgate route` names both objects",
          "[integration][gateway_api]") {
    TempDir dir;
    make_walkthrough_certificates(dir);
    HttpsBackend backend(dir);
    // The guide's Service (one unnamed port, 443 -> 8443) and its pod, on the test API server.
    KubeApiServer api;
    api.put(service_json("default", "passthrough-echoserver", {{"", 443, 8443}}));
    api.put(endpoint_slice_json("default", "passthrough-echoserver-abcde", "passthrough-echoserver", "",
                                backend.port, "IPv4", {{"127.0.0.1"}}));
    api.write_kubeconfig(dir.file("kubeconfig"), KubeAuth::token_file);
    const std::string config = "[kubernetes]\nkubeconfig = \"" + dir.file("kubeconfig") + "\"\n\n" +
                               gateway_table(guide_manifests(), kGuideHost);

    write_config(dir.file("check.toml"), config);
    const RunResult check = check_config(dir, dir.file("check.toml"));
    INFO("--check stdout:\n" << check.out << "\nstderr:\n" << check.err);
    REQUIRE(check.status == 0);
    CHECK(check.out.find("  default/eg/tls " + kGuideHost + ":6443 hostname=passthrough.example.com (from " +
                         guide_manifests() + "quickstart.yaml:") != std::string::npos);
    CHECK(check.out.find("Gateway default/eg listener tls)") != std::string::npos);
    CHECK(check.out.find("    route default/tlsroute: passthrough.example.com (from " + guide_manifests() +
                         "tls-passthrough.yaml:") != std::string::npos);
    CHECK(check.out.find("  default/passthrough-echoserver:443: kubernetes default/passthrough-echoserver port 443") !=
          std::string::npos);
    CHECK(check.out.find("1 GatewayClass, 1 Gateway, 1 TLSRoute, 0 ReferenceGrant, 1 Service") != std::string::npos);
    CHECK(check.out.find("1 document(s) of other kinds ignored") != std::string::npos);  // the Deployment
    // The http listener is not passgate's business: not an error, said as a warning.
    CHECK(check.err.find("listener http") != std::string::npos);

    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());
    // The guide's check "with an external load balancer", GATEWAY_HOST being passgate's address.
    for (int attempt = 0; attempt < 3; ++attempt) {
        const RunResult result = run({"curl", "-v", "-HHost:passthrough.example.com", "--resolve",
                                      "passthrough.example.com:6443:" + kGuideHost, "--cacert", "example.com.crt",
                                      "https://passthrough.example.com:6443/get"},
                                     dir, "curl-guide-" + std::to_string(attempt), Millis(20000));
        check_walkthrough_reply(result);
    }
    CHECK(passgate.log_lines_with({" reason=completed ", " listener=default/eg/tls ", " route=default/tlsroute ",
                                   " service=default/passthrough-echoserver:443 "}).size() == 3);

    const RunResult route = run({passgate_binary(), "route", "--config", passgate.config_path(), "--sni",
                                 "passthrough.example.com"}, dir, "route", Millis(10000));
    INFO("route:\n" << route.out << route.err);
    CHECK(route.status == 0);
    CHECK(route.out.find("listener \"default/eg/tls\" " + kGuideHost + ":6443 hostname=passthrough.example.com (from " +
                         guide_manifests() + "quickstart.yaml:") != std::string::npos);
    CHECK(route.out.find("route \"default/tlsroute\": exact") != std::string::npos);
    CHECK(route.out.find("TLSRoute default/tlsroute)") != std::string::npos);
    CHECK(route.out.find("kubernetes default/passthrough-echoserver port 443") != std::string::npos);
    stop_and_check(passgate);
}

TEST_CASE("gateway api: without an API server, a [[service]] named namespace/service:port gives a backendRef its "
          "endpoints", "[integration][gateway_api]") {
    TempDir dir;
    make_walkthrough_certificates(dir);
    HttpsBackend backend(dir);
    const std::string config = gateway_table(guide_manifests(), kGuideHost) +
                               static_service("default/passthrough-echoserver:443", backend.port);
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());
    check_walkthrough_reply(curl(dir, "passthrough.example.com", 6443, 0, kGuideHost));
    // The access-log line is written once passgate has seen both sides close, after curl returned.
    CHECK(passgate.wait_for_log(" service=default/passthrough-echoserver:443 "));
    CHECK(passgate.log_lines_with({" reason=completed ", " service=default/passthrough-echoserver:443 ",
                                   " endpoint=127.0.0.1:" + std::to_string(backend.port) + " "}).size() == 1);
    stop_and_check(passgate);
}

TEST_CASE("gateway api: an invalid backendRef keeps its weight and rejects its share; the valid one gets the rest",
          "[integration][gateway_api]") {
    TempDir dir;
    IdentBackend a("a");
    const std::uint16_t port = free_port();
    write_file(dir.file("gateway.yaml"),
               gateway_yaml(tls_listener("tls", port)) +
                   route_yaml("split", "    - name: eg\n", {"app.example.com"},
                              backend_ref("app", 443) + backend_ref("app", 443, 1, "Deployment")));
    const std::string config = gateway_table(dir.file("gateway.yaml")) + static_service("default/app:443", a.port());
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());
    constexpr int total = 20;
    int answered = 0;
    for (int i = 0; i < total; ++i)
        if (ask(port, "app.example.com") == "a") ++answered;
    // Smooth weighted round robin per worker alternates 1:1; over two workers, 9 to 11 of 20.
    CHECK(answered >= 9);
    CHECK(answered <= 11);
    CHECK(wait_until([&] {
        return labelled_sum(passgate, "passgate_downstream_connections_closed_total", {"reason=\"invalid_backend\""}) ==
               total - answered;
    }, Millis(3000)));
    const RunResult route = run({passgate_binary(), "route", "--config", passgate.config_path(), "--sni",
                                 "app.example.com"}, dir, "route", Millis(10000));
    INFO(route.out);
    CHECK(route.out.find("invalid backendRef weight 1 (50%): InvalidKind") != std::string::npos);
    stop_and_check(passgate);
}

TEST_CASE("gateway api: a reload moves a route to another listener; open connections keep running; a broken "
          "manifest is rejected with FILE:LINE and the last good objects keep serving",
          "[integration][gateway_api]") {
    TempDir dir;
    EchoBackend echo;
    const std::uint16_t first = free_port(), second = free_port();
    const std::string listeners = tls_listener("first", first) + tls_listener("second", second);
    const auto manifest = [&](const std::string& section) {
        return gateway_yaml(listeners) + route_yaml("app", "    - name: eg\n      sectionName: " + section + "\n",
                                                    {"app.example.com"}, backend_ref("echo", 443));
    };
    write_file(dir.file("gateway.yaml"), manifest("first"));
    const std::string config = gateway_table(dir.file("gateway.yaml")) + static_service("default/echo:443", echo.port());
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());

    const std::vector<std::uint8_t> hello = minimal_client_hello("app.example.com");
    Socket open = connect_to(first);
    REQUIRE(send_all(open.get(), hello, deadline_in(Millis(2000))));
    std::vector<std::uint8_t> back(hello.size());
    REQUIRE(recv_exact(open.get(), back.data(), back.size(), deadline_in(Millis(3000))));
    CHECK(echo_check(open.get(), "before").empty());

    replace_file(dir.file("gateway.yaml"), manifest("second"));
    REQUIRE(::kill(passgate.pid(), SIGHUP) == 0);
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(labelled_sum(passgate, "passgate_config_reloads_total", {"result=\"success\""}) == 1);
    // The open connection keeps its route; new ones follow the route to its new listener.
    CHECK(echo_check(open.get(), "after the move").empty());
    CHECK(echo_round_trip(second, hello, {'x'}).empty());
    CHECK_FALSE(echo_round_trip(first, hello, {'x'}).empty());

    // A broken version: rejected, named by file and line; the route stays where it was.
    replace_file(dir.file("gateway.yaml"), manifest("second") + "---\napiVersion: gateway.networking.k8s.io/v1\n"
                                           "kind: Gateway\nmetadata:\n  name: broken\nspec:\n  gatewayClassName: eg\n"
                                           "  listeners:\n    - name: x\n      protocol: TLS\n      port: 70000\n");
    REQUIRE(::kill(passgate.pid(), SIGHUP) == 0);
    REQUIRE(wait_for_reloads(passgate, 2));
    CHECK(labelled_sum(passgate, "passgate_config_reloads_total", {"result=\"failure\""}) == 1);
    CHECK(passgate.wait_for_log("configuration reload rejected, keeping the running one: " + dir.file("gateway.yaml") +
                                ":"));
    CHECK(passgate.wait_for_log("Gateway default/broken: spec.listeners[0].port"));
    CHECK(echo_check(open.get(), "after the rejected reload").empty());
    CHECK(echo_round_trip(second, hello, {'y'}).empty());
    open.reset();
    stop_and_check(passgate);
}

TEST_CASE("gateway api: --check and start-up give the same FILE:LINE error for a manifest that does not decode",
          "[integration][gateway_api]") {
    TempDir dir;
    write_file(dir.file("gateway.yaml"), gateway_yaml("    - name: tls\n      protocol: TLS\n      port: 0\n"));
    write_config(dir.file("passgate.toml"), gateway_table(dir.file("gateway.yaml")));
    const RunResult check = check_config(dir, dir.file("passgate.toml"));
    INFO(check.out << check.err);
    CHECK(check.status == 1);
    // Line 18 of the file: the port.
    const std::string expected = dir.file("gateway.yaml") + ":18: Gateway default/eg: spec.listeners[0].port: ";
    CHECK(check.err.find(expected) == 0);
    const RunResult start = run({passgate_binary(), "--allow-root", "--config", dir.file("passgate.toml")}, dir, "start",
                                Millis(10000));
    CHECK(start.status == 1);
    CHECK(start.err.find(expected) == 0);
}

namespace {

const std::string kV1 = "gateway.networking.k8s.io/v1";

// A TLSRoute (v1) in `name_space` under Gateway default/eg, for `hostname`, to Service
// `service_namespace`/`service` port 443.
std::string cross_route_json(const std::string& name_space, const std::string& name, const std::string& hostname,
                             const std::string& service_namespace, const std::string& service) {
    return nlohmann::json{
        {"apiVersion", kV1}, {"kind", "TLSRoute"},
        {"metadata", {{"name", name}, {"namespace", name_space}}},
        {"spec", {{"parentRefs", {{{"name", "eg"}, {"namespace", "default"}}}},
                  {"hostnames", {hostname}},
                  {"rules", {{{"backendRefs", {{{"name", service}, {"namespace", service_namespace}, {"port", 443}}}}}}}}}}
        .dump();
}

std::string reference_grant_json(const std::string& name_space, const std::string& from_namespace) {
    return nlohmann::json{
        {"apiVersion", "gateway.networking.k8s.io/v1beta1"}, {"kind", "ReferenceGrant"},
        {"metadata", {{"name", "allow-routes"}, {"namespace", name_space}}},
        {"spec", {{"from", {{{"group", "gateway.networking.k8s.io"}, {"kind", "TLSRoute"}, {"namespace", from_namespace}}}},
                  {"to", {{{"group", ""}, {"kind", "Service"}}}}}}}
        .dump();
}

}  // namespace

TEST_CASE("gateway api watch: the cluster's objects are served; each kind created, changed and deleted while "
          "clients run; status is written back and Debian's kubectl reads it",
          "[integration][gateway_api]") {
    TempDir dir;
    KubeApiServer api;
    IdentBackend app("app"), far("far");
    EchoBackend echo;
    const std::uint16_t port = free_port(), second_port = free_port();
    api.put(gateway_class_json("eg", "passgate.io/gateway-controller", kV1));
    api.put(gateway_json("default", "eg", "eg", {{"tls", "TLS", port, "*.example.com", "Passthrough"}}, kV1));
    api.put(service_json("default", "app", {{"https", 443, 8443}}));
    api.put(endpoint_slice_json("default", "app-1", "app", "https", app.port(), "IPv4", {{"127.0.0.1"}}));
    api.put(tls_route_json("default", "app", "eg", {"app.example.com"}, "app", 443, kV1));
    api.put(service_json("default", "echo", {{"https", 443, 8443}}));
    api.put(endpoint_slice_json("default", "echo-1", "echo", "https", echo.port(), "IPv4", {{"127.0.0.1"}}));
    api.put(tls_route_json("default", "echo", "eg", {"echo.example.com"}, "echo", 443, kV1));
    api.write_kubeconfig(dir.file("kubeconfig"), KubeAuth::token_file);
    const std::string config = "[admin]\naddress = \"@ADMIN@\"\n\n[kubernetes]\nkubeconfig = \"" +
                               dir.file("kubeconfig") + "\"\nretry_initial_delay = \"100ms\"\nretry_max_delay = \"500ms\"\n\n"
                               "[gateway_api]\ngateway_class = \"eg\"\nwatch = true\nlisten_address = \"127.0.0.1\"\n"
                               "lease_duration = \"2s\"\n";
    Passgate passgate(dir, {config, {}, 2});
    REQUIRE(passgate.wait_ready());
    REQUIRE(ask(port, "app.example.com") == "app");

    ClientLoop clients([port] { return ask(port, "app.example.com") == "app"; });
    // One established stream through every change below: no change touches its route.
    const std::vector<std::uint8_t> echo_hello = minimal_client_hello("echo.example.com");
    Socket stream = connect_to(port);
    REQUIRE(send_all(stream.get(), echo_hello, deadline_in(Millis(2000))));
    std::vector<std::uint8_t> echoed(echo_hello.size());
    REQUIRE(recv_exact(stream.get(), echoed.data(), echoed.size(), deadline_in(Millis(3000))));
    REQUIRE(echoed == echo_hello);
    const auto served = [&](std::uint16_t on, const std::string& sni, const std::string& id) {
        return wait_until([&] { return ask(on, sni) == id; }, Millis(10000), Millis(50));
    };
    const auto refused = [&](std::uint16_t on, const std::string& sni) {
        return wait_until([&] { return ask(on, sni).empty(); }, Millis(10000), Millis(50));
    };
    // A Namespace, a Service with its pod there, and a route to it from namespace default: not
    // permitted without a ReferenceGrant (its share refused), permitted with one.
    api.put(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team","labels":{"edge":"yes"}}})");
    api.put(service_json("team", "far", {{"https", 443, 8443}}));
    api.put(endpoint_slice_json("team", "far-1", "far", "https", far.port(), "IPv4", {{"127.0.0.1"}}));
    api.put(cross_route_json("default", "far", "far.example.com", "team", "far"));
    CHECK(wait_until([&] {
        return labelled_sum(passgate, "passgate_downstream_connections_closed_total", {"reason=\"invalid_backend\""}) > 0 ||
               (ask(port, "far.example.com"), false);
    }, Millis(10000), Millis(50)));
    api.put(reference_grant_json("team", "default"));
    CHECK(served(port, "far.example.com", "far"));
    // The route changed: its new hostname is served, the old one no more.
    api.put(cross_route_json("default", "far", "renamed.example.com", "team", "far"));
    CHECK(served(port, "renamed.example.com", "far"));
    CHECK(refused(port, "far.example.com"));
    // The Gateway changed: a second listener, which the routes without sectionName attach to.
    api.put(gateway_json("default", "eg", "eg",
                         {{"tls", "TLS", port, "*.example.com", "Passthrough"},
                          {"second", "TLS", second_port, "", "Passthrough"}}, kV1));
    CHECK(served(second_port, "app.example.com", "app"));
    // The grant deleted: the route's backend is not permitted any more; the route deleted.
    api.remove("ReferenceGrant", "team", "allow-routes");
    CHECK(refused(port, "renamed.example.com"));
    api.remove("TLSRoute", "default", "far");
    api.remove("Namespace", "", "team");
    // The GatewayClass changed, then deleted: [gateway_api] gateway_class says what passgate
    // serves, so the routes stay (only its status is not written any more).
    api.put(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"GatewayClass","metadata":{"name":"eg",)"
            R"("labels":{"changed":"yes"}},"spec":{"controllerName":"passgate.io/gateway-controller"}})");
    CHECK(echo_check(stream.get(), "after the GatewayClass changed").empty());
    CHECK(served(second_port, "app.example.com", "app"));
    CHECK(echo_check(stream.get(), "after every change").empty());

    // Status, as a conformant implementation writes it, read back with Debian's kubectl.
    const auto status_of = [&](const std::vector<std::string>& arguments) {
        return kubectl(dir, dir.file("kubeconfig"), arguments).out;
    };
    CHECK(wait_until([&] {
        const std::string route = status_of({"get", "tlsroute", "-n", "default", "app", "-o", "yaml"});
        return route.find("controllerName: passgate.io/gateway-controller") != std::string::npos &&
               route.find("reason: ResolvedRefs") != std::string::npos;
    }, Millis(15000), Millis(200)));
    const std::string route = status_of({"get", "tlsroute", "-n", "default", "app", "-o", "yaml"});
    INFO("kubectl get tlsroute app:\n" << route);
    CHECK(route.find("type: Accepted") != std::string::npos);
    CHECK(route.find("type: ResolvedRefs") != std::string::npos);
    CHECK(route.find("status: \"False\"") == std::string::npos);
    CHECK(wait_until([&] {
        return status_of({"get", "gateway", "-n", "default", "eg", "-o", "yaml"}).find("attachedRoutes: 2") != std::string::npos;  // app and echo
    }, Millis(15000), Millis(200)));
    const std::string gateway = status_of({"get", "gateway", "-n", "default", "eg", "-o", "yaml"});
    INFO("kubectl get gateway eg:\n" << gateway);
    CHECK(gateway.find("value: 127.0.0.1") != std::string::npos);
    CHECK(gateway.find("type: Programmed") != std::string::npos);
    const std::string gateway_class = status_of({"get", "gatewayclass", "eg", "-o", "yaml"});
    INFO("kubectl get gatewayclass eg:\n" << gateway_class);
    CHECK(gateway_class.find("type: Accepted") != std::string::npos);

    // A reload that only adds a comment above [gateway_api] (its line moves) is not a change of it.
    {
        const std::optional<double> before = reloads_handled(passgate);
        REQUIRE(before);
        std::string commented = config;
        commented.insert(commented.find("[gateway_api]"), "# the objects of the cluster\n");
        reload_with(passgate, commented);
        REQUIRE(wait_for_reloads(passgate, static_cast<int>(*before) + 1));
        CHECK(labelled_sum(passgate, "passgate_config_reloads_total", {"result=\"failure\""}) == 0);
    }
    // A reload that changes [gateway_api] itself is refused (it needs a restart); the running
    // configuration keeps serving.
    std::string changed = config;
    changed.replace(changed.find("lease_duration = \"2s\""), 22, "lease_duration = \"3s\"");
    // (Each applied change of the objects counts as a reload too; passgate's own status writes,
    // which change the objects' resourceVersions only, apply nothing.)
    const std::optional<double> handled = reloads_handled(passgate);
    REQUIRE(handled);
    INFO("reloads so far: " << *handled);
    CHECK(*handled <= 16);  // the start and the test's 14 changes at most (some coalesce)
    CHECK(passgate.log_lines_with({"reload: configuration unchanged"}).empty());
    reload_with(passgate, changed);
    REQUIRE(wait_for_reloads(passgate, static_cast<int>(*handled) + 1));
    CHECK(labelled_sum(passgate, "passgate_config_reloads_total", {"result=\"failure\""}) == 1);
    CHECK(passgate.wait_for_log("changes to [gateway_api] or to [kubernetes] with watch = true need a restart"));
    api.remove("GatewayClass", "", "eg");
    CHECK(served(port, "app.example.com", "app"));
    CHECK(echo_check(stream.get(), "after the GatewayClass was deleted").empty());
    stream.reset();
    clients.stop();
    INFO("clients: " << clients.succeeded() << " served, " << clients.failed() << " failed");
    CHECK(clients.succeeded() > 50);
    CHECK(clients.failed() == 0);
    CHECK(metric_sample(passgate, "passgate_gateway_api_status_leader") == 1.0);
    stop_and_check(passgate);
}
