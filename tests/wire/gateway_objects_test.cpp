#include "src/wire/gateway_objects.h"

#include <catch2/catch.hpp>

#include <string>

using namespace passgate::gateway_api;
using nlohmann::json;

namespace {

// The quickstart's Gateway `eg` after the guide's patch, as the API server returns it.
json guide_gateway() {
    return json::parse(R"json({
      "apiVersion": "gateway.networking.k8s.io/v1beta1",
      "kind": "Gateway",
      "metadata": {"name": "eg", "namespace": "default", "uid": "u-1", "resourceVersion": "17",
                   "generation": 2, "creationTimestamp": "2026-12-01T10:00:00Z"},
      "spec": {
        "gatewayClassName": "eg",
        "listeners": [
          {"name": "http", "protocol": "HTTP", "port": 80},
          {"name": "tls", "protocol": "TLS", "hostname": "passthrough.example.com",
           "tls": {"mode": "Passthrough"}, "port": 6443}
        ]
      },
      "status": {"conditions": []}
    })json");
}

// The guide's TLSRoute (v1alpha2, no namespace written).
json guide_route() {
    return json::parse(R"json({
      "apiVersion": "gateway.networking.k8s.io/v1alpha2",
      "kind": "TLSRoute",
      "metadata": {"name": "tlsroute"},
      "spec": {
        "parentRefs": [{"name": "eg"}],
        "hostnames": ["passthrough.example.com"],
        "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": "passthrough-echoserver",
                                    "port": 443, "weight": 1}]}]
      }
    })json");
}

template <typename T>
T decoded_as(const json& document) {
    const DecodedObject decoded = decode_object(document);
    INFO(decoded.field << ": " << decoded.error);
    REQUIRE(decoded.ok());
    REQUIRE(std::holds_alternative<T>(*decoded.value));
    return std::get<T>(*decoded.value);
}

// The field and message of a document that must not decode.
std::pair<std::string, std::string> failure(const json& document) {
    const DecodedObject decoded = decode_object(document);
    REQUIRE_FALSE(decoded.ok());
    return {decoded.field, decoded.error};
}

}  // namespace

TEST_CASE("gateway objects: the guide's Gateway with the patched tls listener", "[gateway_objects]") {
    const Gateway gateway = decoded_as<Gateway>(guide_gateway());
    CHECK(gateway.metadata.name == "eg");
    CHECK(gateway.metadata.namespace_name == "default");
    CHECK(gateway.metadata.uid == "u-1");
    CHECK(gateway.metadata.resource_version == "17");
    CHECK(gateway.metadata.generation == 2);
    CHECK(gateway.metadata.creation_timestamp == "2026-12-01T10:00:00Z");
    CHECK(gateway.gateway_class_name == "eg");
    REQUIRE(gateway.listeners.size() == 2);
    CHECK(gateway.listeners[0].name == "http");
    CHECK(gateway.listeners[0].protocol == "HTTP");
    CHECK(gateway.listeners[0].port == 80);
    CHECK_FALSE(gateway.listeners[0].hostname);
    CHECK_FALSE(gateway.listeners[0].tls_mode);
    const GatewayListener& tls = gateway.listeners[1];
    CHECK(tls.name == "tls");
    CHECK(tls.protocol == "TLS");
    CHECK(tls.port == 6443);
    CHECK(tls.hostname == "passthrough.example.com");
    CHECK(tls.tls_mode == "Passthrough");
    CHECK(tls.allowed_routes.from == AllowedRoutes::From::same);
    CHECK(tls.allowed_routes.kinds.empty());
    const Object object = gateway;
    CHECK(kind_of(object) == "Gateway");
    CHECK(name_of(object) == "default/eg");
}

TEST_CASE("gateway objects: the guide's TLSRoute, with the API's defaults", "[gateway_objects]") {
    const TLSRoute route = decoded_as<TLSRoute>(guide_route());
    CHECK(route.api_version == "gateway.networking.k8s.io/v1alpha2");
    CHECK(route.metadata.name == "tlsroute");
    CHECK(route.metadata.namespace_name.empty());  // the manifest loader fills in "default"
    REQUIRE(route.parent_refs.size() == 1);
    CHECK(route.parent_refs[0].group == "gateway.networking.k8s.io");
    CHECK(route.parent_refs[0].kind == "Gateway");
    CHECK(route.parent_refs[0].name == "eg");
    CHECK_FALSE(route.parent_refs[0].namespace_name);
    CHECK_FALSE(route.parent_refs[0].section_name);
    CHECK_FALSE(route.parent_refs[0].port);
    CHECK(route.hostnames == std::vector<std::string>{"passthrough.example.com"});
    REQUIRE(route.rules.size() == 1);
    REQUIRE(route.rules[0].backend_refs.size() == 1);
    const BackendReference& backend = route.rules[0].backend_refs[0];
    CHECK(backend.group.empty());
    CHECK(backend.kind == "Service");
    CHECK(backend.name == "passthrough-echoserver");
    CHECK(backend.port == 443);
    CHECK(backend.weight == 1);
    CHECK(name_of(Object(route)) == "tlsroute");

    json defaults = guide_route();
    defaults["spec"]["rules"][0]["backendRefs"][0] = {{"name", "b"}};
    defaults["spec"]["parentRefs"][0] = {{"name", "eg"}, {"namespace", "infra"}, {"sectionName", "tls"}, {"port", 6443}};
    const TLSRoute with_defaults = decoded_as<TLSRoute>(defaults);
    const BackendReference& defaulted = with_defaults.rules[0].backend_refs[0];
    CHECK(defaulted.group.empty());
    CHECK(defaulted.kind == "Service");
    CHECK(defaulted.weight == 1);
    CHECK_FALSE(defaulted.port);
    CHECK(with_defaults.parent_refs[0].namespace_name == "infra");
    CHECK(with_defaults.parent_refs[0].section_name == "tls");
    CHECK(with_defaults.parent_refs[0].port == 6443);
}

TEST_CASE("gateway objects: TLSRoute versions v1alpha2, v1alpha3 and v1; others are errors", "[gateway_objects]") {
    for (const char* version : {"v1alpha2", "v1alpha3", "v1"}) {
        json route = guide_route();
        route["apiVersion"] = std::string("gateway.networking.k8s.io/") + version;
        CHECK(decoded_as<TLSRoute>(route).api_version == route["apiVersion"]);
    }
    json old = guide_route();
    old["apiVersion"] = "gateway.networking.k8s.io/v1alpha1";
    CHECK(failure(old) == std::pair<std::string, std::string>{
                              "apiVersion", "unsupported apiVersion gateway.networking.k8s.io/v1alpha1 for "
                                            "TLSRoute (v1alpha2, v1alpha3, v1)"});
    json gateway = guide_gateway();
    gateway["apiVersion"] = "gateway.networking.k8s.io/v1alpha2";
    CHECK(failure(gateway).second == "unsupported apiVersion gateway.networking.k8s.io/v1alpha2 for Gateway "
                                     "(v1beta1, v1)");
    gateway["apiVersion"] = "gateway.networking.k8s.io/v1";
    CHECK(decode_object(gateway).ok());
}

TEST_CASE("gateway objects: hostnames are required from v1alpha3 on", "[gateway_objects]") {
    json route = guide_route();
    route["spec"].erase("hostnames");
    CHECK(decoded_as<TLSRoute>(route).hostnames.empty());
    route["apiVersion"] = "gateway.networking.k8s.io/v1alpha3";
    CHECK(failure(route) == std::pair<std::string, std::string>{"spec.hostnames", "required"});
}

TEST_CASE("gateway objects: GatewayClass, ReferenceGrant and Namespace", "[gateway_objects]") {
    const GatewayClass gateway_class = decoded_as<GatewayClass>(json::parse(R"json({
      "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "GatewayClass",
      "metadata": {"name": "eg"},
      "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}})json"));
    CHECK(gateway_class.metadata.name == "eg");
    CHECK(gateway_class.controller_name == "gateway.envoyproxy.io/gatewayclass-controller");
    CHECK(name_of(Object(gateway_class)) == "eg");
    CHECK(kind_of(Object(gateway_class)) == "GatewayClass");

    const ReferenceGrant grant = decoded_as<ReferenceGrant>(json::parse(R"json({
      "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
      "metadata": {"name": "allow-routes", "namespace": "backends"},
      "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "TLSRoute", "namespace": "default"}],
               "to": [{"group": "", "kind": "Service"}, {"group": "", "kind": "Service", "name": "echo"}]}})json"));
    REQUIRE(grant.from.size() == 1);
    CHECK(grant.from[0].group == "gateway.networking.k8s.io");
    CHECK(grant.from[0].kind == "TLSRoute");
    CHECK(grant.from[0].namespace_name == "default");
    REQUIRE(grant.to.size() == 2);
    CHECK(grant.to[0].group.empty());
    CHECK_FALSE(grant.to[0].name);
    CHECK(grant.to[1].name == "echo");
    CHECK(name_of(Object(grant)) == "backends/allow-routes");

    const Namespace ns = decoded_as<Namespace>(json::parse(R"json({
      "apiVersion": "v1", "kind": "Namespace",
      "metadata": {"name": "backends", "labels": {"kubernetes.io/metadata.name": "backends", "team": "a"}}})json"));
    CHECK(ns.metadata.name == "backends");
    CHECK(ns.metadata.labels.at("team") == "a");
    CHECK(ns.metadata.labels.size() == 2);
}

TEST_CASE("gateway objects: the guide's Service decodes as kubernetes_objects does", "[gateway_objects]") {
    const auto service = decoded_as<passgate::kubernetes::Service>(json::parse(R"json({
      "apiVersion": "v1", "kind": "Service",
      "metadata": {"name": "passthrough-echoserver", "labels": {"run": "passthrough-echoserver"}},
      "spec": {"ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}],
               "selector": {"run": "passthrough-echoserver"}}})json"));
    CHECK(service.metadata.name == "passthrough-echoserver");
    REQUIRE(service.ports.size() == 1);
    CHECK(service.ports[0].port == 443);
    CHECK(service.ports[0].name.empty());
    CHECK(std::get<std::uint16_t>(service.ports[0].target_port) == 8443);
    CHECK(kind_of(Object(service)) == "Service");

    const auto bad = failure(json::parse(R"json({"apiVersion": "v1", "kind": "Service",
      "metadata": {"name": "s"}, "spec": {"ports": [{"port": 0}]}})json"));
    CHECK(bad.first == "spec.ports[0].port");
    CHECK(bad.second == "0 is not in 1..65535");
}

TEST_CASE("gateway objects: other kinds are Ignored, whatever they hold", "[gateway_objects]") {
    const Ignored deployment = decoded_as<Ignored>(json::parse(R"json({
      "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "passthrough-echoserver"},
      "spec": {"replicas": 1}})json"));
    CHECK(deployment.kind == "Deployment");
    CHECK(deployment.api_version == "apps/v1");
    CHECK(deployment.name == "passthrough-echoserver");
    const Ignored secret = decoded_as<Ignored>(json::parse(R"json({
      "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "server-certs"},
      "data": {"tls.key": 12}})json"));
    CHECK(kind_of(Object(secret)) == "Secret");
    CHECK(name_of(Object(secret)) == "server-certs");
    decoded_as<Ignored>(json::parse(R"json({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
      "metadata": {"name": "r"}})json"));
    // A Service of another group (Knative's) is not core v1's.
    decoded_as<Ignored>(json::parse(R"json({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
      "metadata": {"name": "r"}})json"));
}

TEST_CASE("gateway objects: errors name the field", "[gateway_objects]") {
    using Failure = std::pair<std::string, std::string>;
    json gateway = guide_gateway();
    gateway["spec"]["listeners"][1]["port"] = 0;
    CHECK(failure(gateway) == Failure{"spec.listeners[1].port", "must be 1..65535"});
    gateway["spec"]["listeners"][1]["port"] = 65536;
    CHECK(failure(gateway) == Failure{"spec.listeners[1].port", "must be 1..65535"});
    gateway["spec"]["listeners"][1]["port"] = "6443";
    CHECK(failure(gateway) == Failure{"spec.listeners[1].port", "not an integer"});
    gateway["spec"]["listeners"][1]["port"] = 6443.5;
    CHECK(failure(gateway) == Failure{"spec.listeners[1].port", "not an integer"});

    gateway = guide_gateway();
    gateway["spec"]["listeners"][1]["hostname"] = 7;
    CHECK(failure(gateway) == Failure{"spec.listeners[1].hostname", "not a string"});
    gateway = guide_gateway();
    gateway["spec"]["listeners"][1]["tls"]["mode"] = "Reencrypt";
    CHECK(failure(gateway) == Failure{"spec.listeners[1].tls.mode", "must be Passthrough or Terminate"});
    gateway = guide_gateway();
    gateway["spec"]["listeners"][0].erase("name");
    CHECK(failure(gateway) == Failure{"spec.listeners[0].name", "required"});
    gateway = guide_gateway();
    gateway["spec"].erase("gatewayClassName");
    CHECK(failure(gateway) == Failure{"spec.gatewayClassName", "required"});
    gateway = guide_gateway();
    gateway["spec"]["listeners"] = json::array();
    CHECK(failure(gateway) == Failure{"spec.listeners", "must have at least one element"});
    gateway = guide_gateway();
    gateway["metadata"]["name"] = std::string(254, 'a');
    CHECK(failure(gateway) == Failure{"metadata.name", "longer than 253 bytes"});
    gateway = guide_gateway();
    gateway["metadata"]["labels"] = {{"app.kubernetes.io/name", 1}};
    CHECK(failure(gateway) == Failure{"metadata.labels[\"app.kubernetes.io/name\"]", "not a string"});
    gateway = guide_gateway();
    gateway.erase("metadata");
    CHECK(failure(gateway) == Failure{"metadata", "required"});

    json route = guide_route();
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1000001;
    CHECK(failure(route) == Failure{"spec.rules[0].backendRefs[0].weight", "must be 0..1000000"});
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1;
    CHECK(failure(route) == Failure{"spec.rules[0].backendRefs[0].weight", "must be 0..1000000"});
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 0;
    CHECK(decoded_as<TLSRoute>(route).rules[0].backend_refs[0].weight == 0);
    route = guide_route();
    route["spec"]["parentRefs"][0]["port"] = 0;
    CHECK(failure(route) == Failure{"spec.parentRefs[0].port", "must be 1..65535"});
    route = guide_route();
    route["spec"].erase("rules");
    CHECK(failure(route) == Failure{"spec.rules", "required"});
    route = guide_route();
    route["spec"]["rules"] = json::array();
    for (int i = 0; i < 17; ++i) route["spec"]["rules"].push_back(json::object());
    CHECK(failure(route) == Failure{"spec.rules", "17 elements, at most 16"});
    route = guide_route();
    route["spec"]["hostnames"] = json::array();
    for (int i = 0; i < 17; ++i) route["spec"]["hostnames"].push_back("a.example.com");
    CHECK(failure(route) == Failure{"spec.hostnames", "17 elements, at most 16"});
    route = guide_route();
    // Hostnames are the translation's to check: here only their type and length.
    route["spec"]["hostnames"] = {"not a hostname!"};
    CHECK(decode_object(route).ok());

    CHECK(failure(json::array()) == Failure{"", "not an object"});
    CHECK(failure(json{{"kind", "Gateway"}}) == Failure{"apiVersion", "required"});
    CHECK(failure(json{{"apiVersion", "v1"}}) == Failure{"kind", "required"});
    const DecodedObject named = decode_object(json{{"apiVersion", "v1"}, {"kind", "Namespace"},
                                                   {"metadata", {{"name", 5}}}});
    CHECK(named.kind == "Namespace");
    CHECK(named.field == "metadata.name");
    CHECK(named.error == "not a string");
}

TEST_CASE("gateway objects: allowedRoutes, with Selector requiring a selector", "[gateway_objects]") {
    json gateway = guide_gateway();
    gateway["spec"]["listeners"][1]["allowedRoutes"] = json::parse(R"json({
      "namespaces": {"from": "Selector",
                     "selector": {"matchLabels": {"team": "a"},
                                  "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}},
      "kinds": [{"kind": "TLSRoute"}, {"group": "", "kind": "Other"}]})json");
    const Gateway decoded = decoded_as<Gateway>(gateway);
    const AllowedRoutes& allowed = decoded.listeners[1].allowed_routes;
    CHECK(allowed.from == AllowedRoutes::From::selector);
    CHECK(allowed.selector.match_labels.at("team") == "a");
    REQUIRE(allowed.selector.match_expressions.size() == 1);
    CHECK(allowed.selector.match_expressions[0].op == "In");
    CHECK(allowed.selector.match_expressions[0].values == std::vector<std::string>{"prod"});
    REQUIRE(allowed.kinds.size() == 2);
    CHECK(allowed.kinds[0].group == "gateway.networking.k8s.io");
    CHECK(allowed.kinds[1].group.empty());

    gateway["spec"]["listeners"][1]["allowedRoutes"]["namespaces"].erase("selector");
    CHECK(failure(gateway) == std::pair<std::string, std::string>{
                                  "spec.listeners[1].allowedRoutes.namespaces.selector", "required"});
    gateway["spec"]["listeners"][1]["allowedRoutes"]["namespaces"]["from"] = "Some";
    CHECK(failure(gateway) == std::pair<std::string, std::string>{
                                  "spec.listeners[1].allowedRoutes.namespaces.from", "must be Same, All or Selector"});
    gateway["spec"]["listeners"][1]["allowedRoutes"]["namespaces"]["from"] = "All";
    CHECK(decoded_as<Gateway>(gateway).listeners[1].allowed_routes.from == AllowedRoutes::From::all);
}
