// GatewayWatch and StatusWriter against the test API server (tests/support/kube_api_server.py)
// with a real HttpClient on a real loop: objects listed and followed, a 410 relist, status writes
// that land with their conditions, one writer among two "nodes" through the Lease, and no
// rewrites of an unchanged status.

#include "src/gateway/gateway_watch.h"
#include "src/gateway/status_writer.h"

#include "tests/discovery/run_until.h"
#include "tests/support/kube_api_server.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

using namespace passgate;
using namespace passgate::gateway_api;
using discovery_test::run_for;
using discovery_test::run_until;
using integration::KubeApiServer;
using json = nlohmann::json;
using Millis = std::chrono::milliseconds;

namespace {

const std::string kOurs = "passgate.io/gateway-controller";

std::string namespace_json(const std::string& name) {
    return json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}, {"labels", {{"team", name}}}}}}
        .dump();
}

// The guide's objects, with the class ours.
void put_guide_objects(KubeApiServer& api) {
    api.put(namespace_json("default"));
    api.put(integration::gateway_class_json("eg", kOurs));
    api.put(integration::gateway_json());
    api.put(integration::tls_route_json());
    api.put(integration::service_json());
}

// A loop, a client and a watch on `api`, with short retry delays.
struct WatchRig {
    explicit WatchRig(KubeApiServer& api) {
        credentials.server = api.url();
        credentials.tls.ca_file = api.ca_file();
        credentials.token_file = api.token_file();
        credentials.description = "test";
        settings.configured = true;
        settings.retry_initial_delay = Millis(50);
        settings.retry_max_delay = Millis(200);
        gateway_api.configured = true;
        gateway_api.watch = true;
        gateway_api.gateway_classes = {"eg"};
        gateway_api.lease_duration = Millis(1000);
        watch = std::make_unique<GatewayWatch>(loop, client, credentials, settings, metrics, [this] { ++changes; });
    }
    ~WatchRig() {
        writers.clear();
        watch.reset();
    }
    StatusWriter& add_writer(const std::string& identity) {
        writers.push_back(std::make_unique<StatusWriter>(loop, client, credentials, settings, gateway_api, metrics, identity));
        return *writers.back();
    }
    double counter(metrics::CounterFamily& family, const std::vector<std::string>& labels) {
        return static_cast<double>(family.with(labels).value());
    }
    bool synced_with_changes() { return watch->synced() && changes >= 1; }

    reactor::Loop loop;
    HttpClient client{loop};
    AppMetrics metrics{1};
    KubernetesCredentials credentials;
    config::Kubernetes settings;
    config::GatewayApi gateway_api;
    int changes = 0;
    std::unique_ptr<GatewayWatch> watch;
    std::vector<std::unique_ptr<StatusWriter>> writers;
};

std::size_t route_count(const GatewayWatch& watch) { return watch.objects().tls_routes.size(); }

Condition condition(std::string type, bool status, std::string reason, std::int64_t generation = 1) {
    std::string message = reason + " (test)";
    return Condition{std::move(type), status, std::move(reason), std::move(message), generation};
}

// What a translation of the guide's objects says (hand-made: the writer is under test here).
Statuses guide_statuses(const std::string& route_reason = "Accepted") {
    Statuses statuses;
    statuses.gateway_classes.push_back({"eg", {condition("Accepted", true, "Accepted")}});
    GatewayStatus gateway;
    gateway.namespace_name = "default";
    gateway.name = "eg";
    gateway.addresses = {"127.0.0.1"};
    gateway.conditions = {condition("Accepted", true, "Accepted"), condition("Programmed", true, "Programmed")};
    ListenerStatus http;
    http.name = "http";
    http.conditions = {condition("Accepted", false, "UnsupportedProtocol"), condition("Programmed", false, "Invalid")};
    ListenerStatus tls;
    tls.name = "tls";
    tls.attached_routes = 1;
    tls.supported_kinds = {RouteGroupKind{kGroup, "TLSRoute"}};
    tls.conditions = {condition("Accepted", true, "Accepted"), condition("Programmed", true, "Programmed"),
                      condition("ResolvedRefs", true, "ResolvedRefs")};
    gateway.listeners = {http, tls};
    statuses.gateways.push_back(gateway);
    TLSRouteStatus route;
    route.namespace_name = "default";
    route.name = "tlsroute";
    RouteParentStatus parent;
    parent.parent_ref.name = "eg";
    parent.parent_ref.namespace_name = "default";
    parent.conditions = {condition("Accepted", route_reason == "Accepted", route_reason),
                         condition("ResolvedRefs", true, "ResolvedRefs")};
    route.parents = {parent};
    statuses.tls_routes.push_back(route);
    return statuses;
}

json stored(KubeApiServer& api, const std::string& kind, const std::string& name_space, const std::string& name) {
    const std::optional<std::string> text = api.object(kind, name_space, name);
    return text ? json::parse(*text) : json();
}

std::string route_accepted_reason(KubeApiServer& api) {
    const json route = stored(api, "TLSRoute", "default", "tlsroute");
    const json* parents = route.contains("status") ? &route["status"]["parents"] : nullptr;
    if (parents == nullptr || !parents->is_array()) return "";
    for (const json& parent : *parents)
        if (parent.value("controllerName", "") == kOurs)
            for (const json& condition : parent["conditions"])
                if (condition.value("type", "") == "Accepted") return condition.value("reason", "");
    return "";
}

int status_writes(KubeApiServer& api) {
    int count = 0;
    for (const integration::KubeApiRequest& request : api.requests())
        if (request.method == "PATCH" && request.path.size() > 7 &&
            request.path.compare(request.path.size() - 7, 7, "/status") == 0)
            ++count;
    return count;
}

}  // namespace

TEST_CASE("gateway watch: every kind listed, then changes and deletions followed", "[gateway_watch][api]") {
    KubeApiServer api;
    put_guide_objects(api);
    WatchRig rig(api);
    REQUIRE(run_until(rig.loop, [&] { return rig.synced_with_changes(); }, Millis(10000)));
    INFO(rig.watch->last_error());
    ObjectSet objects = rig.watch->objects();
    CHECK(objects.complete);
    CHECK(objects.gateway_classes.size() == 1);
    REQUIRE(objects.gateways.size() == 1);
    CHECK(objects.gateways[0].object.listeners.size() == 2);
    REQUIRE(objects.tls_routes.size() == 1);
    CHECK(objects.tls_routes[0].object.hostnames == std::vector<std::string>{"passthrough.example.com"});
    CHECK(objects.services.size() == 1);
    CHECK(objects.namespaces.size() == 1);
    // The raw objects carry what they are (a list's items do not say it themselves).
    const json* raw = rig.watch->raw_object("TLSRoute", "default", "tlsroute");
    REQUIRE(raw != nullptr);
    CHECK((*raw)["kind"] == "TLSRoute");
    CHECK(rig.watch->raw_object("GatewayClass", "", "eg") != nullptr);
    CHECK(rig.watch->object_path("TLSRoute", "default", "tlsroute") ==
          "/apis/gateway.networking.k8s.io/" + rig.watch->served_version("TLSRoute") + "/namespaces/default/tlsroutes/tlsroute");
    CHECK(rig.metrics.gateway_api_objects.with({"TLSRoute"}).value() == 1);

    // Modified, added, deleted.
    api.put(integration::tls_route_json("default", "tlsroute", "eg", {"other.example.com"}));
    REQUIRE(run_until(rig.loop, [&] {
        const ObjectSet now = rig.watch->objects();
        return now.tls_routes.size() == 1 && now.tls_routes[0].object.hostnames == std::vector<std::string>{"other.example.com"};
    }, Millis(5000)));
    api.put(integration::tls_route_json("default", "second"));
    REQUIRE(run_until(rig.loop, [&] { return route_count(*rig.watch) == 2; }, Millis(5000)));
    api.remove("TLSRoute", "default", "tlsroute");
    REQUIRE(run_until(rig.loop, [&] { return route_count(*rig.watch) == 1; }, Millis(5000)));
    CHECK(rig.watch->raw_object("TLSRoute", "default", "tlsroute") == nullptr);
    api.remove("Gateway", "default", "eg");
    REQUIRE(run_until(rig.loop, [&] { return rig.watch->objects().gateways.empty(); }, Millis(5000)));

    // An object that does not decode is left out and named.
    json bad = json::parse(integration::tls_route_json("default", "bad"));
    bad["spec"]["hostnames"] = json::array({5});
    api.put(bad.dump());
    REQUIRE(run_until(rig.loop, [&] { return !rig.watch->invalid_objects().empty(); }, Millis(5000)));
    const std::vector<std::string> invalid = rig.watch->invalid_objects();
    REQUIRE(invalid.size() == 1);
    CHECK(invalid[0].rfind("TLSRoute default/bad: spec.hostnames[0]", 0) == 0);
    CHECK(route_count(*rig.watch) == 1);
    run_for(rig.loop, Millis(50));
    CHECK(rig.metrics.gateway_api_invalid_objects.with({"TLSRoute"}).value() == 1);
    CHECK(rig.watch->last_error().empty());

    // A valid route changed into one that does not decode keeps its last valid version (like a
    // bad reload), named as such; fixed, the new version is used; deleted, it is gone.
    const auto hostnames_of = [&](const std::string& name) {
        for (const auto& route : rig.watch->objects().tls_routes)
            if (route.object.metadata.name == name) return route.object.hostnames;
        return std::vector<std::string>{};
    };
    json broken = json::parse(integration::tls_route_json("default", "second", "eg", {"second.example.com"}));
    api.put(broken.dump());
    REQUIRE(run_until(rig.loop, [&] { return hostnames_of("second") == std::vector<std::string>{"second.example.com"}; },
                      Millis(5000)));
    broken["spec"]["hostnames"] = json::array({7});
    api.put(broken.dump());
    REQUIRE(run_until(rig.loop, [&] { return rig.watch->invalid_objects().size() == 2; }, Millis(5000)));
    run_for(rig.loop, Millis(50));
    CHECK(hostnames_of("second") == std::vector<std::string>{"second.example.com"});
    const std::vector<std::string> both = rig.watch->invalid_objects();
    CHECK(std::count_if(both.begin(), both.end(), [](const std::string& line) {
              return line.rfind("TLSRoute default/second: spec.hostnames[0]", 0) == 0 &&
                     line.ends_with(" (its last valid version keeps serving)");
          }) == 1);
    api.put(integration::tls_route_json("default", "second", "eg", {"fixed.example.com"}));
    REQUIRE(run_until(rig.loop, [&] { return hostnames_of("second") == std::vector<std::string>{"fixed.example.com"}; },
                      Millis(5000)));
    api.remove("TLSRoute", "default", "second");
    REQUIRE(run_until(rig.loop, [&] { return hostnames_of("second").empty(); }, Millis(5000)));
}

TEST_CASE("gateway watch: 410 Gone after failures: a new list, nothing lost", "[gateway_watch][api]") {
    KubeApiServer api;
    put_guide_objects(api);
    WatchRig rig(api);
    REQUIRE(run_until(rig.loop, [&] { return rig.synced_with_changes(); }, Millis(10000)));
    run_for(rig.loop, Millis(200));  // the watches are open

    api.fail_next(500, 100000);
    api.close_watches();
    run_for(rig.loop, Millis(500));
    CHECK(rig.watch->last_error().find("HTTP 500") != std::string::npos);
    CHECK(route_count(*rig.watch) == 1);  // kept

    api.put(integration::tls_route_json("default", "second"));
    api.remove("TLSRoute", "default", "tlsroute");
    api.compact();
    api.fail_next(500, 0);
    REQUIRE(run_until(rig.loop, [&] {
        const ObjectSet now = rig.watch->objects();
        return now.tls_routes.size() == 1 && now.tls_routes[0].object.metadata.name == "second";
    }, Millis(5000)));
    CHECK(rig.counter(rig.metrics.kubernetes_relists, {"", "", "tlsroutes", "expired"}) >= 1);
    CHECK(run_until(rig.loop, [&] { return rig.watch->last_error().empty(); }, Millis(3000)));
}

TEST_CASE("status writer: the holder writes the statuses; the same statuses again write nothing", "[gateway_watch][api]") {
    KubeApiServer api;
    put_guide_objects(api);
    WatchRig rig(api);
    StatusWriter& writer = rig.add_writer("node-a");
    REQUIRE(run_until(rig.loop, [&] { return rig.synced_with_changes() && writer.leader(); }, Millis(10000)));
    const int changes_before = rig.changes;
    writer.publish(guide_statuses(), *rig.watch);
    REQUIRE(run_until(rig.loop, [&] { return route_accepted_reason(api) == "Accepted"; }, Millis(5000)));

    // The watch sees the writes; each publish after them finds nothing to write.
    REQUIRE(run_until(rig.loop, [&] { return writer.writes_in_flight() == 0 && rig.changes > changes_before; },
                      Millis(5000)));
    run_for(rig.loop, Millis(300));
    const int writes = status_writes(api);
    CHECK(writes == 3);  // GatewayClass, Gateway, TLSRoute: once each
    for (int i = 0; i < 5; ++i) {
        writer.publish(guide_statuses(), *rig.watch);
        run_for(rig.loop, Millis(100));
    }
    CHECK(status_writes(api) == writes);
    CHECK(rig.metrics.gateway_api_status_writes.with({"TLSRoute", "ok"}).value() == 1);

    const json route = stored(api, "TLSRoute", "default", "tlsroute");
    const json& parent = route["status"]["parents"][0];
    CHECK(parent["controllerName"] == kOurs);
    CHECK(parent["parentRef"]["name"] == "eg");
    CHECK(parent["conditions"][0]["type"] == "Accepted");
    CHECK(parent["conditions"][0]["status"] == "True");
    CHECK(parent["conditions"][1]["type"] == "ResolvedRefs");
    const json gateway = stored(api, "Gateway", "default", "eg");
    CHECK(gateway["status"]["addresses"][0]["value"] == "127.0.0.1");
    CHECK(gateway["status"]["listeners"][1]["attachedRoutes"] == 1);
    CHECK(stored(api, "GatewayClass", "", "eg")["status"]["conditions"][0]["status"] == "True");
    // The write carried the merge-patch type and the resourceVersion precondition.
    bool merge_patch = false;
    for (const integration::KubeApiRequest& request : api.requests())
        if (request.method == "PATCH")
            merge_patch = request.content_type == "application/merge-patch+json" &&
                          request.body.find("\"resourceVersion\"") != std::string::npos;
    CHECK(merge_patch);

    // A changed status is written, once.
    writer.publish(guide_statuses("NoMatchingListenerHostname"), *rig.watch);
    REQUIRE(run_until(rig.loop, [&] { return route_accepted_reason(api) == "NoMatchingListenerHostname"; }, Millis(5000)));
    run_for(rig.loop, Millis(300));
    writer.publish(guide_statuses("NoMatchingListenerHostname"), *rig.watch);
    run_for(rig.loop, Millis(300));
    CHECK(status_writes(api) == writes + 1);
}

TEST_CASE("status writer: a GatewayClass of another controller: its status and its Gateways' are not written",
          "[gateway_watch][api]") {
    KubeApiServer api;
    api.put(integration::gateway_class_json("eg"));  // Envoy Gateway's controller
    api.put(integration::gateway_json());
    api.put(integration::tls_route_json());
    WatchRig rig(api);
    StatusWriter& writer = rig.add_writer("node-a");
    REQUIRE(run_until(rig.loop, [&] { return rig.synced_with_changes() && writer.leader(); }, Millis(10000)));
    writer.publish(guide_statuses(), *rig.watch);
    REQUIRE(run_until(rig.loop, [&] { return route_accepted_reason(api) == "Accepted"; }, Millis(5000)));
    run_for(rig.loop, Millis(300));
    CHECK(status_writes(api) == 1);  // the TLSRoute's parent entry only
    CHECK(!stored(api, "GatewayClass", "", "eg").contains("status"));
}

TEST_CASE("status writer: two nodes: one holds the Lease and writes; the other takes over once it has expired",
          "[gateway_watch][api]") {
    KubeApiServer api;
    put_guide_objects(api);
    WatchRig rig(api);
    rig.add_writer("node-a");
    rig.add_writer("node-b");
    auto leaders = [&] {
        return std::count_if(rig.writers.begin(), rig.writers.end(), [](const auto& writer) { return writer->leader(); });
    };
    REQUIRE(run_until(rig.loop, [&] { return rig.synced_with_changes() && leaders() == 1; }, Millis(10000)));
    // Stable over several renew periods (1 s lease, renewed every 333 ms).
    int checks = 0;
    int single = 0;
    for (int i = 0; i < 15; ++i) {
        run_for(rig.loop, Millis(100));
        ++checks;
        if (leaders() == 1) ++single;
    }
    CHECK(single == checks);
    for (const auto& writer : rig.writers) writer->publish(guide_statuses(), *rig.watch);
    REQUIRE(run_until(rig.loop, [&] { return route_accepted_reason(api) == "Accepted"; }, Millis(5000)));
    run_for(rig.loop, Millis(500));
    CHECK(status_writes(api) == 3);  // one node wrote, once

    const std::size_t holder = rig.writers[0]->leader() ? 0 : 1;
    const std::string holder_name = rig.writers[holder]->identity();
    const json lease = json::parse(api.object("Lease", "default", "passgate-gateway-status").value_or("{}"));
    CHECK(lease["spec"]["holderIdentity"] == holder_name);
    CHECK(lease["spec"]["leaseDurationSeconds"] == 1);

    // The holder goes away without a word; the other takes over after the Lease expires.
    rig.writers.erase(rig.writers.begin() + static_cast<long>(holder));
    StatusWriter& other = *rig.writers[0];
    CHECK(!other.leader());
    REQUIRE(run_until(rig.loop, [&] { return other.leader(); }, Millis(5000)));
    const json taken = json::parse(api.object("Lease", "default", "passgate-gateway-status").value_or("{}"));
    CHECK(taken["spec"]["holderIdentity"] == other.identity());
    CHECK(taken["spec"]["leaseTransitions"] == 1);
    // The new holder writes what changed since.
    other.publish(guide_statuses("NotAllowedByListeners"), *rig.watch);
    REQUIRE(run_until(rig.loop, [&] { return route_accepted_reason(api) == "NotAllowedByListeners"; }, Millis(5000)));
    CHECK(rig.metrics.gateway_api_status_leader.with({}).value() == 1);
}

TEST_CASE("gateway watch: per kind, the first of its versions the server serves", "[gateway_watch]") {
    const std::vector<std::string> tls_route = {"v1", "v1alpha3", "v1alpha2"};
    CHECK(pick_version(tls_route, {"v1", "v1beta1", "v1alpha2"}) == "v1");
    CHECK(pick_version(tls_route, {"v1beta1", "v1alpha2"}) == "v1alpha2");
    CHECK(pick_version(tls_route, {"v1alpha3", "v1alpha2"}) == "v1alpha3");
    CHECK(pick_version({"v1", "v1beta1"}, {"v1alpha2"}).empty());  // not served: treated as none
}
