// The status writer's pure parts: the merge patch that makes an object carry its desired status
// (or none when it carries it already), times, and Lease expiry. The writer itself against the
// test API server is in gateway_watch_test.cpp.

#include "src/gateway/status_writer.h"

#include <catch2/catch.hpp>

#include <chrono>

using namespace passgate;
using namespace passgate::gateway_api;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kOurs = "passgate.io/gateway-controller";
const auto kThen = std::chrono::system_clock::from_time_t(1700000000);  // 2023-11-14T22:13:20Z
const auto kNow = kThen + 3600s;

Condition condition(std::string type, bool status, std::string reason, std::int64_t generation = 1) {
    std::string message = "message of " + reason;
    return Condition{std::move(type), status, std::move(reason), std::move(message), generation};
}

json gateway_class(const std::string& controller) {
    return json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"GatewayClass",
        "metadata":{"name":"eg","resourceVersion":"11","generation":1},
        "spec":{"controllerName":")" + controller + R"("}})");
}

// `raw` with `patch` applied as a merge patch (RFC 7386), metadata aside.
json applied(json raw, const json& patch) {
    raw.merge_patch(patch);
    return raw;
}

}  // namespace

TEST_CASE("status patch: a GatewayClass of another controller gets none", "[status_writer]") {
    const GatewayClassStatus desired{"eg", {condition("Accepted", true, "Accepted")}};
    CHECK(status_patch(desired, gateway_class("gateway.envoyproxy.io/gatewayclass-controller"), kNow, kOurs).is_null());
}

TEST_CASE("status patch: GatewayClass conditions, then nothing once written; lastTransitionTime kept while the status stays",
          "[status_writer]") {
    const GatewayClassStatus desired{"eg", {condition("Accepted", true, "Accepted")}};
    const json raw = gateway_class(kOurs);
    const json patch = status_patch(desired, raw, kThen, kOurs);
    REQUIRE(patch.is_object());
    CHECK(patch["metadata"]["resourceVersion"] == "11");
    const json expected_condition = {{"type", "Accepted"},       {"status", "True"},
                                     {"reason", "Accepted"},     {"message", "message of Accepted"},
                                     {"observedGeneration", 1},  {"lastTransitionTime", "2023-11-14T22:13:20Z"}};
    CHECK(patch["status"]["conditions"] == json::array({expected_condition}));

    const json written = applied(raw, patch);
    // The same desired status an hour later: nothing to write (no flapping, no time churn).
    CHECK(status_patch(desired, written, kNow, kOurs).is_null());

    // A new message, same status: written, the transition time kept.
    GatewayClassStatus reworded = desired;
    reworded.conditions[0].message = "other words";
    const json reworded_patch = status_patch(reworded, written, kNow, kOurs);
    REQUIRE(reworded_patch.is_object());
    CHECK(reworded_patch["status"]["conditions"][0]["lastTransitionTime"] == "2023-11-14T22:13:20Z");

    // The status flips: a new transition time.
    GatewayClassStatus flipped = desired;
    flipped.conditions[0].status = false;
    flipped.conditions[0].reason = "InvalidParameters";
    const json flipped_patch = status_patch(flipped, written, kNow, kOurs);
    REQUIRE(flipped_patch.is_object());
    CHECK(flipped_patch["status"]["conditions"][0]["status"] == "False");
    CHECK(flipped_patch["status"]["conditions"][0]["lastTransitionTime"] == "2023-11-14T23:13:20Z");

    // A new generation is a change too (observedGeneration).
    GatewayClassStatus newer = desired;
    newer.conditions[0].observed_generation = 2;
    CHECK(status_patch(newer, written, kNow, kOurs).is_object());
}

TEST_CASE("status patch: Gateway addresses, conditions and listeners; written once", "[status_writer]") {
    const json raw = json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway",
        "metadata":{"name":"eg","namespace":"default","resourceVersion":"21","generation":3},
        "spec":{"gatewayClassName":"eg","listeners":[{"name":"tls","port":6443,"protocol":"TLS"}]},
        "status":{"conditions":[{"type":"Accepted","status":"Unknown","reason":"Pending","message":"Waiting for controller",
                                 "lastTransitionTime":"1970-01-01T00:00:00Z","observedGeneration":1}]}})");
    GatewayStatus desired;
    desired.namespace_name = "default";
    desired.name = "eg";
    desired.addresses = {"127.0.0.1"};
    desired.conditions = {condition("Accepted", true, "Accepted", 3), condition("Programmed", true, "Programmed", 3)};
    ListenerStatus listener;
    listener.name = "tls";
    listener.attached_routes = 1;
    listener.supported_kinds = {RouteGroupKind{kGroup, "TLSRoute"}};
    listener.conditions = {condition("Accepted", true, "Accepted", 3), condition("Programmed", true, "Programmed", 3),
                           condition("ResolvedRefs", true, "ResolvedRefs", 3)};
    desired.listeners = {listener};

    const json patch = status_patch(desired, raw, kThen, kOurs);
    REQUIRE(patch.is_object());
    CHECK(patch["metadata"]["resourceVersion"] == "21");
    CHECK(patch["status"]["addresses"] == json::parse(R"([{"type":"IPAddress","value":"127.0.0.1"}])"));
    CHECK(patch["status"]["conditions"].size() == 2);
    // Unknown -> True is a transition.
    CHECK(patch["status"]["conditions"][0]["lastTransitionTime"] == "2023-11-14T22:13:20Z");
    const json& written_listener = patch["status"]["listeners"][0];
    CHECK(written_listener["name"] == "tls");
    CHECK(written_listener["attachedRoutes"] == 1);
    CHECK(written_listener["supportedKinds"] == json::parse(R"([{"group":"gateway.networking.k8s.io","kind":"TLSRoute"}])"));
    CHECK(written_listener["conditions"].size() == 3);

    const json written = applied(raw, patch);
    CHECK(status_patch(desired, written, kNow, kOurs).is_null());

    // No address to write: the old ones are removed (null in a merge patch), then nothing.
    GatewayStatus no_address = desired;
    no_address.addresses.clear();
    const json removal = status_patch(no_address, written, kNow, kOurs);
    REQUIRE(removal.is_object());
    CHECK(removal["status"]["addresses"].is_null());
    CHECK(status_patch(no_address, applied(written, removal), kNow, kOurs).is_null());

    // One more attached route: written.
    GatewayStatus more = desired;
    more.listeners[0].attached_routes = 2;
    CHECK(status_patch(more, written, kNow, kOurs).is_object());
}

TEST_CASE("status patch: TLSRoute parents: other controllers' entries kept, ours replaced, parentRef as written",
          "[status_writer]") {
    const json raw = json::parse(R"({"apiVersion":"gateway.networking.k8s.io/v1alpha2","kind":"TLSRoute",
        "metadata":{"name":"tlsroute","namespace":"default","resourceVersion":"31","generation":1},
        "spec":{"parentRefs":[{"name":"eg"},{"name":"other-gw","namespace":"infra"}],
                "hostnames":["passthrough.example.com"],
                "rules":[{"backendRefs":[{"name":"passthrough-echoserver","port":443}]}]},
        "status":{"parents":[
            {"parentRef":{"name":"other-gw","namespace":"infra"},"controllerName":"example.com/other",
             "conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":"",
                            "lastTransitionTime":"2020-01-01T00:00:00Z","observedGeneration":1}]},
            {"parentRef":{"name":"stale"},"controllerName":"passgate.io/gateway-controller","conditions":[]}]}})");
    TLSRouteStatus desired;
    desired.namespace_name = "default";
    desired.name = "tlsroute";
    RouteParentStatus parent;
    parent.parent_ref.name = "eg";
    parent.parent_ref.namespace_name = "default";  // filled in by the translation
    parent.conditions = {condition("Accepted", true, "Accepted"), condition("ResolvedRefs", true, "ResolvedRefs")};
    desired.parents = {parent};

    const json patch = status_patch(desired, raw, kThen, kOurs);
    REQUIRE(patch.is_object());
    CHECK(patch["metadata"]["resourceVersion"] == "31");
    const json& parents = patch["status"]["parents"];
    REQUIRE(parents.size() == 2);
    CHECK(parents[0]["controllerName"] == "example.com/other");
    CHECK(parents[0]["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z");
    CHECK(parents[1]["controllerName"] == kOurs);
    CHECK(parents[1]["parentRef"] == json::parse(R"({"name":"eg"})"));  // as the route wrote it
    CHECK(parents[1]["conditions"].size() == 2);
    CHECK(parents[1]["conditions"][1]["type"] == "ResolvedRefs");

    const json written = applied(raw, patch);
    CHECK(status_patch(desired, written, kNow, kOurs).is_null());

    // Rejected now: Accepted=False with the spec's reason, a new transition time.
    TLSRouteStatus rejected = desired;
    rejected.parents[0].conditions[0] = condition("Accepted", false, "NoMatchingListenerHostname");
    const json rejected_patch = status_patch(rejected, written, kNow, kOurs);
    REQUIRE(rejected_patch.is_object());
    CHECK(rejected_patch["status"]["parents"][1]["conditions"][0]["reason"] == "NoMatchingListenerHostname");
    CHECK(rejected_patch["status"]["parents"][1]["conditions"][0]["status"] == "False");
    CHECK(rejected_patch["status"]["parents"][1]["conditions"][0]["lastTransitionTime"] == "2023-11-14T23:13:20Z");
    // ResolvedRefs did not change: its time stays.
    CHECK(rejected_patch["status"]["parents"][1]["conditions"][1]["lastTransitionTime"] == "2023-11-14T22:13:20Z");

    // No longer one of our parents: our entry goes, the other controller's stays.
    const TLSRouteStatus none{"default", "tlsroute", {}};
    const json removal = status_patch(none, written, kNow, kOurs);
    REQUIRE(removal.is_object());
    REQUIRE(removal["status"]["parents"].size() == 1);
    CHECK(removal["status"]["parents"][0]["controllerName"] == "example.com/other");
    CHECK(status_patch(none, applied(written, removal), kNow, kOurs).is_null());
}

TEST_CASE("status writer: RFC 3339 times and Lease expiry", "[status_writer]") {
    CHECK(rfc3339(kThen) == "2023-11-14T22:13:20Z");
    CHECK(rfc3339_micro(kThen + 123456us) == "2023-11-14T22:13:20.123456Z");
    CHECK(parse_rfc3339("2023-11-14T22:13:20.123456Z") == kThen + 123456us);
    CHECK(parse_rfc3339("2023-11-14T22:13:20Z") == kThen);
    CHECK(parse_rfc3339("2023-11-14T22:13:20.5Z") == kThen + 500ms);
    CHECK(!parse_rfc3339("2023-11-14 22:13:20Z"));
    CHECK(!parse_rfc3339("2023-11-14T22:13:20"));
    CHECK(!parse_rfc3339("2023-11-14T22:13:20.Z"));

    const json lease = json::parse(R"({"spec":{"holderIdentity":"node-a_12","leaseDurationSeconds":15,
        "renewTime":"2023-11-14T22:13:20.000000Z"}})");
    CHECK(!lease_expired(lease, kThen + 10s));
    CHECK(!lease_expired(lease, kThen + 15s));
    CHECK(lease_expired(lease, kThen + 16s));
    CHECK(lease_expired(json::parse(R"({"spec":{"leaseDurationSeconds":15}})"), kThen));  // no holder
    CHECK(lease_expired(json::parse(R"({"spec":{"holderIdentity":"x","renewTime":"bad"}})"), kThen));
}
