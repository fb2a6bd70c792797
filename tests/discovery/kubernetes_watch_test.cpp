// KubernetesWatch: its pure helpers here; the watch itself against the test API server
// (tests/support/kube_api_server.py) with a real HttpClient on a real loop.

#include "src/discovery/kubernetes_watch.h"

#include "tests/discovery/run_until.h"
#include "tests/support/kube_api_server.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>

using namespace passgate;

TEST_CASE("kubernetes watch: request paths escape the selector and carry the watch parameters", "[kubernetes_watch]") {
    CHECK(kubernetes_list_path("/api/v1/namespaces/default/services", "fieldSelector=metadata.name%3Decho", "", 500) ==
          "/api/v1/namespaces/default/services?fieldSelector=metadata.name%3Decho&limit=500");
    CHECK(kubernetes_list_path("/x", "labelSelector=a", "eyJ2Ijoi+/=", 10) ==
          "/x?labelSelector=a&limit=10&continue=eyJ2Ijoi%2B%2F%3D");
    CHECK(kubernetes_watch_path("/x", "labelSelector=a", "12345", 300) ==
          "/x?labelSelector=a&watch=1&allowWatchBookmarks=true&resourceVersion=12345&timeoutSeconds=300");
}

TEST_CASE("kubernetes watch: the retry delay doubles up to the maximum, with jitter in [half, all]", "[kubernetes_watch]") {
    CHECK(kubernetes_retry_delay(500, 30000, 0, 1.0) == 500);
    CHECK(kubernetes_retry_delay(500, 30000, 0, 0.0) == 250);
    CHECK(kubernetes_retry_delay(500, 30000, 1, 1.0) == 1000);
    CHECK(kubernetes_retry_delay(500, 30000, 5, 1.0) == 16000);
    CHECK(kubernetes_retry_delay(500, 30000, 6, 1.0) == 30000);    // capped
    CHECK(kubernetes_retry_delay(500, 30000, 1000, 1.0) == 30000); // no overflow however many
    CHECK(kubernetes_retry_delay(500, 30000, 1000, 0.0) == 15000);
    for (unsigned attempt = 0; attempt < 70; ++attempt) {
        const reactor::Millis delay = kubernetes_retry_delay(100, 2000, attempt, 0.37);
        CHECK(delay >= 50);
        CHECK(delay <= 2000);
    }
}

TEST_CASE("kubernetes watch: failure reasons by status and transport error", "[kubernetes_watch]") {
    auto reason = [](long status, std::string error = "") {
        HttpResponse response;
        response.status = status;
        response.error = std::move(error);
        return kubernetes_failure_reason(response);
    };
    CHECK(reason(401) == "unauthorized");
    CHECK(reason(403) == "forbidden");
    CHECK(reason(404) == "not_found");
    CHECK(reason(500) == "server_error");
    CHECK(reason(503) == "server_error");
    CHECK(reason(429) == "http_error");
    CHECK(reason(200) == "bad_response");
    CHECK(reason(0, "connect to 127.0.0.1:1: Connection refused") == "connect");
    CHECK(reason(0, "timeout after 10000 ms") == "timeout");
    CHECK(reason(0, "TLS: certificate verify failed") == "tls");
}

// ---- The watch against the test API server --------------------------------------------------------

namespace {

using discovery_test::run_for;
using discovery_test::run_until;
using integration::KubeApiServer;
using integration::KubeEndpoint;
using Millis = std::chrono::milliseconds;

const std::string kService = "passthrough-echoserver";

std::string slice(const std::string& name, const std::vector<KubeEndpoint>& pods) {
    return integration::endpoint_slice_json("default", name, kService, "https", 8443, "IPv4", pods);
}

// A loop, a client and a watch of the guide's Service on `api`, with short retry delays.
struct WatchRig {
    explicit WatchRig(KubeApiServer& api) {
        credentials.server = api.url();
        credentials.tls.ca_file = api.ca_file();
        credentials.token_file = api.token_file();
        credentials.description = "test";
        settings.configured = true;
        settings.retry_initial_delay = Millis(50);
        settings.retry_max_delay = Millis(200);
        watch = std::make_unique<KubernetesWatch>(loop, client, credentials, settings, metrics, "default", kService,
                                                  [this] { ++changes; }, [this] { ++failures; });
    }
    ~WatchRig() { watch.reset(); }

    double counter(metrics::CounterFamily& family, const std::string& resource, const std::string& reason) {
        return static_cast<double>(family.with({"default", kService, resource, reason}).value());
    }
    std::size_t slice_count() const { return watch->slices().size(); }

    reactor::Loop loop;
    HttpClient client{loop};
    AppMetrics metrics{1};
    KubernetesCredentials credentials;
    config::Kubernetes settings;
    int changes = 0;
    int failures = 0;
    std::unique_ptr<KubernetesWatch> watch;
};

}  // namespace

TEST_CASE("kubernetes watch: lists, then follows events; the Service's deletion is seen", "[kubernetes_watch][api]") {
    KubeApiServer api;
    api.put(integration::service_json());
    api.put(slice("echo-1", {{"10.0.0.1"}}));
    WatchRig rig(api);
    REQUIRE(run_until(rig.loop, [&] { return rig.watch->synced(); }, Millis(10000)));
    REQUIRE(rig.watch->service());
    CHECK(rig.watch->service()->ports.at(0).port == 443);
    CHECK(rig.slice_count() == 1);
    REQUIRE(run_until(rig.loop, [&] { return rig.changes >= 1; }, Millis(2000)));

    api.put(slice("echo-2", {{"10.0.0.2"}}));
    REQUIRE(run_until(rig.loop, [&] { return rig.slice_count() == 2; }, Millis(5000)));
    api.put(slice("echo-2", {{"10.0.0.3"}}));
    REQUIRE(run_until(rig.loop, [&] {
        return rig.watch->slices().at("echo-2").endpoints.at(0).addresses.at(0) == "10.0.0.3";
    }, Millis(5000)));
    api.remove("EndpointSlice", "default", "echo-1");
    REQUIRE(run_until(rig.loop, [&] { return rig.slice_count() == 1; }, Millis(5000)));
    api.remove("Service", "default", kService);
    REQUIRE(run_until(rig.loop, [&] { return !rig.watch->service(); }, Millis(5000)));
    // Another Service's slices are not ours.
    api.put(integration::endpoint_slice_json("default", "other-1", "other", "https", 8443, "IPv4", {{"10.9.9.9"}}));
    run_for(rig.loop, Millis(300));
    CHECK(rig.slice_count() == 1);
    CHECK(rig.counter(rig.metrics.kubernetes_relists, "endpointslices", "initial") == 1);
    CHECK(rig.counter(rig.metrics.kubernetes_relists, "services", "initial") == 1);
    CHECK(rig.failures == 0);
}

TEST_CASE("kubernetes watch: a watch the server ends goes on from the last resourceVersion, bookmarks move it",
          "[kubernetes_watch][api]") {
    KubeApiServer api;
    api.put(integration::service_json());
    api.put(slice("echo-1", {{"10.0.0.1"}}));
    WatchRig rig(api);
    REQUIRE(run_until(rig.loop, [&] { return rig.watch->synced(); }, Millis(10000)));
    run_for(rig.loop, Millis(200));  // the watches are open
    // Changes elsewhere move the server's resourceVersion; a bookmark tells the watch.
    api.put(integration::endpoint_slice_json("default", "other-1", "other", "https", 8443, "IPv4", {{"10.9.9.9"}}));
    const std::string bookmarked = api.resource_version();
    REQUIRE(api.bookmark() >= 2);
    run_for(rig.loop, Millis(200));
    api.close_watches();
    REQUIRE(run_until(rig.loop, [&] {
        return rig.counter(rig.metrics.kubernetes_watch_restarts, "endpointslices", "server_closed") >= 1;
    }, Millis(5000)));
    run_for(rig.loop, Millis(300));
    // The new slice watch started from the bookmark's resourceVersion.
    bool from_bookmark = false;
    for (const integration::KubeApiRequest& request : api.requests())
        if (request.watch && request.path.find("endpointslices") != std::string::npos &&
            request.query.find("resourceVersion=" + bookmarked + "&") != std::string::npos)
            from_bookmark = true;
    CHECK(from_bookmark);
    api.put(slice("echo-1", {{"10.0.0.7"}}));
    REQUIRE(run_until(rig.loop, [&] {
        return rig.watch->slices().at("echo-1").endpoints.at(0).addresses.at(0) == "10.0.0.7";
    }, Millis(5000)));
    CHECK(rig.counter(rig.metrics.kubernetes_relists, "endpointslices", "expired") == 0);
}

TEST_CASE("kubernetes watch: 410 Gone after failures: a new list, nothing lost; failures back off",
          "[kubernetes_watch][api]") {
    KubeApiServer api;
    api.put(integration::service_json());
    api.put(slice("echo-1", {{"10.0.0.1"}}));
    WatchRig rig(api);
    REQUIRE(run_until(rig.loop, [&] { return rig.watch->synced(); }, Millis(10000)));
    run_for(rig.loop, Millis(200));

    api.fail_next(500, 100000);
    api.close_watches();
    run_for(rig.loop, Millis(1500));
    // Retried with back-off (50 ms doubling to 200 ms, jittered): a few, not hundreds.
    const double failed = rig.counter(rig.metrics.kubernetes_request_failures, "endpointslices", "server_error");
    CHECK(failed >= 3);
    CHECK(failed <= 40);
    CHECK(rig.failures >= 3);
    CHECK(rig.slice_count() == 1);  // kept
    CHECK(rig.watch->last_error().find("HTTP 500") != std::string::npos);

    api.put(slice("echo-2", {{"10.0.0.2"}}));
    api.remove("EndpointSlice", "default", "echo-1");
    api.compact();
    api.fail_next(500, 0);
    REQUIRE(run_until(rig.loop, [&] {
        return rig.slice_count() == 1 && rig.watch->slices().count("echo-2") == 1;
    }, Millis(5000)));
    CHECK(rig.counter(rig.metrics.kubernetes_relists, "endpointslices", "expired") >= 1);
    // Both collections answer again (the services watch retries on its own back-off).
    CHECK(run_until(rig.loop, [&] { return rig.watch->last_error().empty(); }, Millis(3000)));
}

TEST_CASE("kubernetes watch: a list of more than one page is read whole", "[kubernetes_watch][api]") {
    KubeApiServer api;
    api.put(integration::service_json());
    constexpr int count = 501;  // the watch asks for 500 per page
    for (int i = 0; i < count; ++i)
        api.put(slice("echo-" + std::to_string(i), {{"10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)}}));
    WatchRig rig(api);
    REQUIRE(run_until(rig.loop, [&] { return rig.watch->synced(); }, Millis(20000)));
    CHECK(rig.slice_count() == static_cast<std::size_t>(count));
    int continued = 0;
    for (const integration::KubeApiRequest& request : api.requests())
        if (request.query.find("continue=") != std::string::npos) ++continued;
    CHECK(continued == 1);
}
