// Kubernetes discovery with real processes: passgate watches a Service and its EndpointSlices on
// the test API server (tests/support/kube_api_server.py, checked against Debian's kubectl in
// kube_api_server_test.cpp) and sends clients to identifying backends on 127.0.0.x, the pods.

#include "tests/support/backends.h"
#include "tests/support/kube_api_server.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace integration;

namespace {

const std::vector<std::uint8_t>& hello() { return captured_hello("curl-h2.bin").bytes; }

const std::string kService = "passthrough-echoserver";

std::string kubeconfig_line(const std::string& path) { return "kubeconfig = \"" + path + "\"\n"; }

// passgate with one route to service "pool" = the guide's Service, port 443; `credentials` are
// the [kubernetes] lines that say where the API server is and who passgate is.
std::string kubernetes_config(std::uint16_t port, const std::string& credentials) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[kubernetes]\n" + credentials +
           "retry_initial_delay = \"100ms\"\nretry_max_delay = \"500ms\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
           "[[route]]\nname = \"r\"\nlisteners = [\"tls\"]\nhostnames = [\"curl-h2.corpus.test\"]\n"
           "backends = [ { service = \"pool\" } ]\n\n"
           "[[service]]\nname = \"pool\"\n"
           "kubernetes = { namespace = \"default\", service = \"" + kService + "\", port = 443 }\n";
}

// One slice of the guide's Service holding `pods` (127.0.0.x addresses) on `port`.
std::string slice(const std::string& name, std::uint16_t port, const std::vector<KubeEndpoint>& pods) {
    return endpoint_slice_json("default", name, kService, "https", port, "IPv4", pods);
}

std::set<std::string> ids_seen(std::uint16_t port, int count) {
    std::set<std::string> ids;
    for (int i = 0; i < count; ++i) ids.insert(ask_backend(port, hello()));
    return ids;
}

double kube_metric(Passgate& passgate, const std::string& family, const std::string& resource,
                   const std::string& reason) {
    return labelled_sum(passgate, family, {"resource=\"" + resource + "\"", "reason=\"" + reason + "\""});
}

// Waits until passgate's pool is exactly `ids` (asking a few connections each round); returns the
// time it took.
Millis wait_for_ids(std::uint16_t port, const std::set<std::string>& ids, Millis limit) {
    const auto start = std::chrono::steady_clock::now();
    wait_until([&] { return ids_seen(port, static_cast<int>(ids.size()) * 4) == ids; }, limit, Millis(20));
    return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
}

// The test API server with the guide's Service, a kubeconfig for it (`auth`), and the pods' port.
struct Cluster {
    explicit Cluster(KubeAuth auth) {
        api.put(service_json());
        api.write_kubeconfig(dir.file("kubeconfig"), auth);
    }
    // passgate's config: listener on `port`, service "pool" on the Service through the kubeconfig.
    std::string config(std::uint16_t port) const {
        return kubernetes_config(port, kubeconfig_line(dir.file("kubeconfig")));
    }
    TempDir dir;
    KubeApiServer api;
    const std::uint16_t pod_port = free_port();
};

}  // namespace

TEST_CASE("kubernetes: the Service's endpoints are followed 1 -> 3 -> 1 within a second, no client fails",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token_file);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    IdentBackend a("a", pod_port, "127.0.0.2"), b("b", pod_port, "127.0.0.3"), c("c", pod_port, "127.0.0.4");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {cluster.config(port), {}, 2});
    REQUIRE(passgate.wait_ready());  // ready after the first complete lists
    CHECK(ids_seen(port, 10) == std::set<std::string>{"a"});
    CHECK(passgate.metric({"passgate_service_endpoints"}) == 1.0);

    ClientLoop clients([port] { return !ask_backend(port, hello()).empty(); });
    // Scale to 3: a second slice appears and the first one grows (as the controller does it).
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}, {"127.0.0.3"}}));
    api.put(slice("echo-2", pod_port, {{"127.0.0.4"}}));
    const Millis up = wait_for_ids(port, {"a", "b", "c"}, Millis(5000));
    // Scale to 1: b's and c's pods go.
    api.remove("EndpointSlice", "default", "echo-2");
    api.put(slice("echo-1", pod_port, {{"127.0.0.3"}}));
    const Millis down = wait_for_ids(port, {"b"}, Millis(5000));
    wait_until([&] { return clients.succeeded() >= 20; }, Millis(5000));
    clients.stop();
    WARN("scale 1 -> 3 followed in " << up.count() << " ms, 3 -> 1 in " << down.count() << " ms; client connections: "
                                     << clients.succeeded() << " ok, " << clients.failed() << " failed");
    CHECK(up < Millis(1000));
    CHECK(down < Millis(1000));
    CHECK(clients.failed() == 0);
    CHECK(clients.succeeded() >= 20);
    CHECK(passgate.metric({"passgate_service_endpoints"}) == 1.0);
    CHECK(kube_metric(passgate, "passgate_kubernetes_relists_total", "endpointslices", "initial") == 1.0);
    CHECK(passgate.metric({"passgate_discovery_updates_total", "result=\"success\""}).value_or(0) >= 3);

    // A burst of changes (a Service that churns): at most one count line a second, the next one
    // summing up the changes it stands for.
    const auto count_lines = [&] { return passgate.log_lines_with({"service pool: ", " endpoints (was "}).size(); };
    const std::size_t lines_before = count_lines();
    for (int change = 0; change < 20; ++change)
        api.put(slice("echo-1", pod_port, change % 2 == 0 ? std::vector<KubeEndpoint>{{"127.0.0.3"}, {"127.0.0.4"}}
                                                          : std::vector<KubeEndpoint>{{"127.0.0.3"}}));
    CHECK(passgate.wait_for_log(" changes", Millis(3000)));
    CHECK(count_lines() - lines_before <= 3);
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: a terminating endpoint keeps its established stream and gets no new connection",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    // "old": answers its id, then echoes every byte until the client's end.
    TcpServer old_pod(
        [](int fd, std::size_t) {
            std::vector<std::uint8_t> buffer(65536);
            std::size_t hello_left = hello().size();
            const Deadline deadline = deadline_in(Millis(20000));
            while (hello_left > 0) {
                const auto got = recv_some(fd, buffer.data(), std::min(buffer.size(), hello_left), deadline);
                if (!got || *got == 0) return;
                hello_left -= *got;
            }
            if (!send_all(fd, "old\n", 4, deadline)) return;
            for (;;) {
                const auto got = recv_some(fd, buffer.data(), buffer.size(), deadline);
                if (!got || *got == 0) break;
                if (!send_all(fd, buffer.data(), *got, deadline)) return;
            }
            ::shutdown(fd, SHUT_WR);
        },
        pod_port, "127.0.0.2");
    IdentBackend fresh("new", pod_port, "127.0.0.3");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {cluster.config(port), {}, 2});
    REQUIRE(passgate.wait_ready());

    // A stream to the old pod, established before it starts terminating.
    Socket stream = connect_to(port);
    REQUIRE(stream);
    REQUIRE(read_backend_id(stream.get(), hello()) == "old");
    constexpr std::size_t chunk = 64 * 1024;
    constexpr int chunks = 64;  // 4 MiB, sent while the endpoint set changes
    ByteStream sent_bytes(42);
    Fnv1a64 sent_hash;
    Fnv1a64 echoed_hash;
    std::uint64_t echoed = 0;
    std::vector<std::uint8_t> out(chunk), in(chunk);
    const Deadline deadline = deadline_in(Millis(30000));
    for (int i = 0; i < chunks; ++i) {
        if (i == chunks / 4) {
            // The pod starts terminating (serving, not ready) and a new one is ready.
            api.put(slice("echo-1", pod_port, {{"127.0.0.2", false, true, true}, {"127.0.0.3"}}));
        }
        if (i == chunks / 2) {
            // From here on, new connections all go to the new pod.
            REQUIRE(wait_until([&] { return ids_seen(port, 4) == std::set<std::string>{"new"}; }, Millis(5000)));
        }
        sent_bytes.fill(out.data(), out.size());
        sent_hash.add(out.data(), out.size());
        REQUIRE(send_all(stream.get(), out.data(), out.size(), deadline));
        // Read back what has come so far (the echo keeps pace with the sender).
        while (echoed < static_cast<std::uint64_t>(i) * chunk) {
            const auto got = recv_some(stream.get(), in.data(), in.size(), deadline);
            REQUIRE(got);
            REQUIRE(*got > 0);
            echoed_hash.add(in.data(), *got);
            echoed += *got;
        }
    }
    ::shutdown(stream.get(), SHUT_WR);
    bool eof = false;
    while (!eof) {
        const auto got = recv_some(stream.get(), in.data(), in.size(), deadline);
        REQUIRE(got);
        eof = *got == 0;
        echoed_hash.add(in.data(), *got);
        echoed += *got;
    }
    // Every byte came back, in order, through the endpoint that was terminating meanwhile.
    CHECK(echoed == static_cast<std::uint64_t>(chunks) * chunk);
    CHECK(echoed_hash.value == sent_hash.value);
    // New connections never reached the terminating pod after the change was seen.
    const std::size_t old_accepted = old_pod.accepted();
    CHECK(ids_seen(port, 20) == std::set<std::string>{"new"});
    CHECK(old_pod.accepted() == old_accepted);
    // Nothing ready: the serving, terminating pod is used rather than refusing (kube-proxy's fallback).
    api.put(slice("echo-1", pod_port, {{"127.0.0.2", false, true, true}, {"127.0.0.3", false, false, false}}));
    CHECK(wait_until([&] { return passgate.wait_for_log("serving, terminating endpoints", Millis(100)); }, Millis(5000)));
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: a watch ended by the server's timeout and a 410 Gone lose no update",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::client_cert_files);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    IdentBackend a("a", pod_port, "127.0.0.2"), b("b", pod_port, "127.0.0.3"), c("c", pod_port, "127.0.0.4");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {cluster.config(port), {}, 2});
    REQUIRE(passgate.wait_ready());

    // The server's timeout ends the watches: passgate watches again from its last resourceVersion,
    // and a change made right after is seen.
    api.close_watches();
    api.put(slice("echo-1", pod_port, {{"127.0.0.3"}}));
    CHECK(wait_for_ids(port, {"b"}, Millis(5000)) < Millis(5000));
    CHECK(kube_metric(passgate, "passgate_kubernetes_watch_restarts_total", "endpointslices", "server_closed") >= 1);
    CHECK(kube_metric(passgate, "passgate_kubernetes_relists_total", "endpointslices", "expired") == 0);

    // The watch fails (500s) while a change is made and the history is compacted: passgate's
    // resourceVersion is gone (410), it lists again and finds the change.
    api.fail_next(500, 1000);
    api.close_watches();
    REQUIRE(wait_until([&] {
        return kube_metric(passgate, "passgate_kubernetes_request_failures_total", "endpointslices", "server_error") >= 1;
    }, Millis(5000)));
    api.put(slice("echo-1", pod_port, {{"127.0.0.4"}}));
    api.put(slice("echo-1", pod_port, {{"127.0.0.4"}, {"127.0.0.2"}}));
    api.compact();
    api.fail_next(500, 0);
    CHECK(wait_for_ids(port, {"a", "c"}, Millis(5000)) < Millis(5000));
    CHECK(kube_metric(passgate, "passgate_kubernetes_relists_total", "endpointslices", "expired") >= 1);
    CHECK(passgate.metric({"passgate_discovery_updates_total", "result=\"failure\""}).value_or(0) >= 1);
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: the API server gone for 10 s: the last set keeps serving, failures are counted, it recovers",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::client_cert_data);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    IdentBackend a("a", pod_port, "127.0.0.2"), b("b", pod_port, "127.0.0.3");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {cluster.config(port), {}, 2});
    REQUIRE(passgate.wait_ready());

    ClientLoop clients([port] { return !ask_backend(port, hello()).empty(); });
    api.set_listening(false);
    std::this_thread::sleep_for(Millis(10000));  // the outage the issue names
    const double failures = kube_metric(passgate, "passgate_kubernetes_request_failures_total", "endpointslices", "connect");
    CHECK(failures >= 2);  // retried with back-off, not once and not in a spin
    CHECK(failures < 200);
    CHECK(passgate.wait_for_log("keeping the last state"));
    api.set_listening(true);
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}, {"127.0.0.3"}}));
    CHECK(wait_for_ids(port, {"a", "b"}, Millis(5000)) < Millis(5000));
    clients.stop();
    CHECK(clients.failed() == 0);
    CHECK(clients.succeeded() > 100);
    CHECK(passgate.wait_for_log("the API server answers again"));
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: a rotated token file is used by the next request", "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token_file);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    IdentBackend a("a", pod_port, "127.0.0.2"), b("b", pod_port, "127.0.0.3");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {cluster.config(port), {}, 2});
    REQUIRE(passgate.wait_ready());
    const std::string old_token = api.token();

    api.set_token("rotated-token-0123456789");
    api.close_watches();  // the next requests are new watches
    api.put(slice("echo-1", pod_port, {{"127.0.0.3"}}));
    CHECK(wait_for_ids(port, {"b"}, Millis(5000)) < Millis(5000));
    int with_new = 0;
    int unauthorized = 0;
    for (const KubeApiRequest& request : api.requests()) {
        if (request.token == "rotated-token-0123456789" && request.status == 200) ++with_new;
        if (request.status == 401) ++unauthorized;
    }
    CHECK(with_new >= 2);  // the services and endpointslices watches
    CHECK(unauthorized == 0);
    // Neither token is in passgate's log.
    CHECK(passgate.stderr_text().find(old_token) == std::string::npos);
    CHECK(passgate.stderr_text().find("rotated-token-0123456789") == std::string::npos);
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: a wrong CA and a bad token give clear errors naming the file and the server's answer",
          "[integration][kubernetes]") {
    TempDir dir;
    KubeApiServer api, other;  // `other`'s CA did not sign `api`'s certificate
    api.put(service_json());
    const std::uint16_t port = free_port();
    const std::string good_token = api.token();
    SECTION("wrong CA") {
        const std::string credentials = "api_server = \"" + api.url() + "\"\nca_file = \"" + other.ca_file() +
                                        "\"\ntoken_file = \"" + api.token_file() + "\"\n";
        Passgate passgate(dir, {kubernetes_config(port, credentials), {}, 1});
        CHECK(passgate.wait_for_log("(CA " + other.ca_file() + ")"));
        CHECK(passgate.wait_for_log("keeping the last state"));
        CHECK(wait_until([&] {
            return kube_metric(passgate, "passgate_kubernetes_request_failures_total", "services", "tls") >= 1;
        }, Millis(3000)));
        // Not ready: the first list never came.
        CHECK(wait_until([&] {
            const auto ready = http_get(passgate.admin_port(), "/readyz", Millis(1000));
            return ready && ready->status == 503;
        }, Millis(3000)));
        CHECK(passgate.stderr_text().find(good_token) == std::string::npos);
        stop_and_check(passgate);
    }
    SECTION("bad token") {
        write_file(dir.file("bad-token"), "not-the-token\n");
        const std::string credentials = "api_server = \"" + api.url() + "\"\nca_file = \"" + api.ca_file() +
                                        "\"\ntoken_file = \"" + dir.file("bad-token") + "\"\n";
        Passgate passgate(dir, {kubernetes_config(port, credentials), {}, 1});
        CHECK(passgate.wait_for_log("HTTP 401 Unauthorized: Unauthorized"));
        CHECK(passgate.wait_for_log("(token_file " + dir.file("bad-token") + ")"));
        CHECK(wait_until([&] {
            return kube_metric(passgate, "passgate_kubernetes_request_failures_total", "endpointslices", "unauthorized") >= 1;
        }, Millis(3000)));
        CHECK(passgate.stderr_text().find("not-the-token") == std::string::npos);
        stop_and_check(passgate);
    }
}

TEST_CASE("kubernetes: services naming the same Kubernetes Service share one watch; a reload keeps it",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token_file);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    IdentBackend a("a", pod_port, "127.0.0.2"), b("b", pod_port, "127.0.0.3");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    // "pool" takes the Service's port by number, "pool-by-name" by its name: the same endpoints.
    const auto config = [&](const std::string& extra) {
        std::string text = kubernetes_config(port, kubeconfig_line(dir.file("kubeconfig")));
        const std::string one = "backends = [ { service = \"pool\" } ]";
        text.replace(text.find(one), one.size(),
                     "backends = [ { service = \"pool\" }, { service = \"pool-by-name\" } ]");
        return text + "\n[[service]]\nname = \"pool-by-name\"\n"
                      "kubernetes = { namespace = \"default\", service = \"" + kService + "\", port = \"https\" }\n" + extra;
    };
    Passgate passgate(dir, {config(""), {}, 2});
    REQUIRE(passgate.wait_ready());
    CHECK(labelled_sum(passgate, "passgate_service_endpoints", {}) == 2.0);  // one in each service

    const auto lists_and_watches = [&] {
        int lists = 0, watches = 0;
        for (const KubeApiRequest& request : api.requests()) {
            if (request.path.find("endpointslices") == std::string::npos) continue;
            (request.watch ? watches : lists) += 1;
        }
        return std::pair<int, int>{lists, watches};
    };
    CHECK(wait_until([&] { return lists_and_watches() == std::pair<int, int>{1, 1}; }, Millis(3000)));

    // A reload that changes something else keeps the watch and what it knows.
    reload_with(passgate, config("connect_timeout = \"2s\"\n"));
    REQUIRE(wait_for_reloads(passgate, 1));
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"success\"}") == 1.0);
    api.put(slice("echo-1", pod_port, {{"127.0.0.3"}}));
    CHECK(wait_for_ids(port, {"b"}, Millis(5000)) < Millis(5000));
    CHECK(lists_and_watches() == std::pair<int, int>{1, 1});
    CHECK(kube_metric(passgate, "passgate_kubernetes_relists_total", "endpointslices", "initial") == 1.0);

    // A reload whose [kubernetes] changes starts the watches again.
    std::string changed = config("");
    changed.replace(changed.find("retry_max_delay = \"500ms\""), 25, "retry_max_delay = \"600ms\"");
    reload_with(passgate, changed);
    REQUIRE(wait_for_reloads(passgate, 2));
    CHECK(wait_until([&] { return lists_and_watches().first == 2; }, Millis(5000)));
    CHECK(wait_for_ids(port, {"b"}, Millis(5000)) < Millis(5000));  // the set was kept meanwhile
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: the Service's port renamed or the Service deleted leaves no endpoints until it is back",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token_file);
    TempDir& dir = cluster.dir;
    KubeApiServer& api = cluster.api;
    const std::uint16_t pod_port = cluster.pod_port;
    IdentBackend a("a", pod_port, "127.0.0.2");
    api.put(slice("echo-1", pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {cluster.config(port), {}, 1});
    REQUIRE(passgate.wait_ready());
    CHECK(ids_seen(port, 2) == std::set<std::string>{"a"});

    // Port 443 now has another name: the slices' "https" port is no longer the Service's port 443.
    api.put(service_json("default", kService, {{"tls", 443, 8443}}));
    CHECK(passgate.wait_for_log("service pool: 0 endpoints (was 1)", Millis(5000)));
    CHECK(wait_until([&] { return passgate.metric({"passgate_service_endpoints"}) == 0.0; }, Millis(5000)));
    CHECK(ask_backend(port, hello()).empty());  // no endpoint: the connection is closed
    api.put(service_json());
    CHECK(wait_for_ids(port, {"a"}, Millis(5000)) < Millis(5000));

    api.remove("Service", "default", kService);
    CHECK(wait_until([&] { return passgate.metric({"passgate_service_endpoints"}) == 0.0; }, Millis(5000)));
    CHECK(passgate.wait_for_log("kubernetes default/" + kService + " port 443: Service not found; no endpoints", Millis(1000)));
    api.put(service_json());
    CHECK(wait_for_ids(port, {"a"}, Millis(5000)) < Millis(5000));
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: every worker observes the delay from the watch event to using the new set",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token_file);  // nothing connects to the pods here
    cluster.api.put(slice("echo-1", cluster.pod_port, {{"127.0.0.2"}}));
    const std::uint16_t port = free_port();
    Passgate passgate(cluster.dir, {cluster.config(port), {}, 2});
    REQUIRE(passgate.wait_ready());
    const std::string count_name = "passgate_endpoint_update_delay_seconds_count";
    const std::string sum_name = "passgate_endpoint_update_delay_seconds_sum";
    // The first list's set may still be on its way to the workers: wait until the count is still.
    std::optional<double> before = passgate.metric({count_name});
    REQUIRE(before.has_value());
    for (int round = 0; round < 50; ++round) {
        std::this_thread::sleep_for(Millis(100));
        const std::optional<double> now = passgate.metric({count_name});
        if (now == before) break;
        before = now;
    }
    const double sum_before = passgate.metric({sum_name}).value_or(-1);

    cluster.api.put(slice("echo-1", cluster.pod_port, {{"127.0.0.2"}, {"127.0.0.3"}}));
    // One set for the one event, installed by each of the 2 workers.
    CHECK(wait_until([&] { return passgate.metric({count_name}).value_or(0) >= *before + 2; }, Millis(5000)));
    std::this_thread::sleep_for(Millis(200));
    CHECK(passgate.metric({count_name}).value_or(0) == *before + 2);
    // Measured from the event's arrival (not from an unset time point): well under a second each.
    const double added = passgate.metric({sum_name}).value_or(-1) - sum_before;
    CHECK(added > 0.0);
    CHECK(added < 2.0);
    stop_and_check(passgate);
}

TEST_CASE("kubernetes: in_cluster takes the API server from KUBERNETES_SERVICE_HOST/PORT and the service account's files",
          "[integration][kubernetes]") {
    Cluster cluster(KubeAuth::token_file);
    IdentBackend a("a", cluster.pod_port, "127.0.0.2");
    cluster.api.put(slice("echo-1", cluster.pod_port, {{"127.0.0.2"}}));
    // What the kubelet mounts into a pod: the token and the cluster's CA.
    const std::string account = cluster.dir.file("serviceaccount");
    REQUIRE(std::filesystem::create_directory(account));
    write_file(account + "/token", cluster.api.token() + "\n");
    write_file(account + "/ca.crt", read_file(cluster.api.ca_file()));
    const std::uint16_t port = free_port();
    const std::string config =
        kubernetes_config(port, "in_cluster = true\nservice_account_dir = \"" + account + "\"\n");
    Passgate passgate(cluster.dir, {config, {}, 1}, "passgate",
                      PassgateLaunch{{"env", "KUBERNETES_SERVICE_HOST=127.0.0.1",
                                      "KUBERNETES_SERVICE_PORT=" + std::to_string(cluster.api.port())},
                                     true});
    REQUIRE(passgate.wait_ready());
    CHECK(ids_seen(port, 3) == std::set<std::string>{"a"});
    int authorized = 0;
    for (const KubeApiRequest& request : cluster.api.requests())
        if (request.token == cluster.api.token() && request.status == 200) ++authorized;
    CHECK(authorized >= 2);  // the lists, with the service account's token
    stop_and_check(passgate);
}
