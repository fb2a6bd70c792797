// translate(): Gateway API objects into passgate's listeners, routes and services, and the status
// the spec asks for. One case per TLSRoute conformance scenario of the Gateway API suite
// (written from the spec), plus what conformance skips (weights, route conflicts, a route moved
// between listeners). Each asserts the Listener/Route/Service output, the status conditions, and,
// through the merged config, what src/routing matches for an SNI.

#include "src/gateway/translate.h"

#include "config/config.h"
#include "src/routing/balancer.h"
#include "src/routing/routing.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace gw = passgate::gateway_api;
using passgate::config::Config;
using Strings = std::vector<std::string>;

namespace {

// ---------------------------------------------------------------------------------------------
// Builders: objects as the decoders would give them, each with an origin "gw.yaml:LINE".

int next_line = 1;
gw::Origin origin() { return gw::Origin{"gw.yaml", next_line++}; }

gw::ObjectMeta meta(const std::string& name, const std::string& ns, const std::string& created = "",
                    std::int64_t generation = 1) {
    gw::ObjectMeta metadata;
    metadata.name = name;
    metadata.namespace_name = ns;
    metadata.creation_timestamp = created;
    metadata.generation = generation;
    return metadata;
}

gw::GatewayListener tls_listener(const std::string& name, std::uint16_t port,
                                 std::optional<std::string> hostname = std::nullopt) {
    gw::GatewayListener listener;
    listener.name = name;
    listener.port = port;
    listener.protocol = "TLS";
    listener.tls_mode = "Passthrough";
    listener.hostname = std::move(hostname);
    return listener;
}

gw::GatewayListener other_listener(const std::string& name, std::uint16_t port, const std::string& protocol,
                                   std::optional<std::string> tls_mode = std::nullopt) {
    gw::GatewayListener listener;
    listener.name = name;
    listener.port = port;
    listener.protocol = protocol;
    listener.tls_mode = std::move(tls_mode);
    return listener;
}

gw::Sourced<gw::Gateway> gateway(const std::string& name, std::vector<gw::GatewayListener> listeners,
                                 const std::string& ns = "", const std::string& created = "",
                                 const std::string& class_name = "eg") {
    gw::Gateway object;
    object.metadata = meta(name, ns, created, 3);
    object.gateway_class_name = class_name;
    object.listeners = std::move(listeners);
    return {std::move(object), origin()};
}

gw::ParentReference parent(const std::string& name, std::optional<std::string> section = std::nullopt,
                           std::optional<std::uint16_t> port = std::nullopt,
                           std::optional<std::string> ns = std::nullopt) {
    gw::ParentReference ref;
    ref.name = name;
    ref.section_name = std::move(section);
    ref.port = port;
    ref.namespace_name = std::move(ns);
    return ref;
}

gw::BackendReference backend(const std::string& name, std::optional<std::uint16_t> port = 443,
                             std::uint32_t weight = 1, std::optional<std::string> ns = std::nullopt) {
    gw::BackendReference ref;
    ref.name = name;
    ref.port = port;
    ref.weight = weight;
    ref.namespace_name = std::move(ns);
    return ref;
}

gw::Sourced<gw::TLSRoute> tls_route(const std::string& name, std::vector<gw::ParentReference> parents,
                                    Strings hostnames, std::vector<gw::BackendReference> backends,
                                    const std::string& ns = "", const std::string& created = "") {
    gw::TLSRoute object;
    object.metadata = meta(name, ns, created, 7);
    object.api_version = "gateway.networking.k8s.io/v1alpha2";
    object.parent_refs = std::move(parents);
    object.hostnames = std::move(hostnames);
    object.rules.push_back(gw::TLSRoute::Rule{std::move(backends)});
    return {std::move(object), origin()};
}

gw::Sourced<passgate::kubernetes::Service> service(const std::string& name, std::vector<std::uint16_t> ports,
                                                   const std::string& ns = "") {
    passgate::kubernetes::Service object;
    object.metadata.name = name;
    object.metadata.namespace_name = ns;
    for (std::uint16_t port : ports) {
        passgate::kubernetes::ServicePort service_port;
        service_port.port = port;
        object.ports.push_back(service_port);
    }
    return {std::move(object), origin()};
}

gw::Sourced<gw::ReferenceGrant> grant(const std::string& ns, const std::string& from_ns,
                                      std::optional<std::string> to_name = std::nullopt,
                                      const std::string& from_kind = "TLSRoute") {
    gw::ReferenceGrant object;
    object.metadata = meta("allow", ns);
    object.from.push_back(gw::ReferenceGrant::From{gw::kGroup, from_kind, from_ns});
    object.to.push_back(gw::ReferenceGrant::To{"", "Service", std::move(to_name)});
    return {std::move(object), origin()};
}

gw::Sourced<gw::Namespace> namespace_object(const std::string& name, std::map<std::string, std::string> labels) {
    gw::Namespace object;
    object.metadata = meta(name, "");
    object.metadata.labels = std::move(labels);
    return {std::move(object), origin()};
}

// The TOML beside the objects: one [[listener]] on 127.0.0.1:7000, its route and service, and
// optionally a [[service]] named like a backendRef's; [gateway_api] set as the lead's parser would.
struct BaseOptions {
    bool kubernetes = true;
    std::string extra_toml;
    std::string listen_address = "0.0.0.0";
};
Config base_config(const BaseOptions& options = {}) {
    Config base = passgate::config::parse_config(
        "[[listener]]\nname = \"toml\"\naddress = \"127.0.0.1:7000\"\n"
        "[[route]]\nname = \"toml-route\"\nlisteners = [\"toml\"]\nbackends = [{ service = \"s\" }]\n"
        "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n" +
            options.extra_toml,
        "passgate.toml");
    base.gateway_api.configured = true;
    base.gateway_api.gateway_classes = {"eg"};
    base.gateway_api.listen_address = options.listen_address;
    base.kubernetes.configured = options.kubernetes;
    return base;
}

// A [[service]] named like a backendRef ("ns/name:port"), which the lead's [gateway_api] parsing
// admits in the TOML; set here directly, at `line`.
void add_toml_service(Config& base, const std::string& name, int line) {
    passgate::config::Service service;
    service.name = name;
    service.endpoints.push_back(passgate::config::Endpoint{*passgate::config::parse_address("127.0.0.1:9443"), 1, {}});
    service.line = line;
    base.services.push_back(std::move(service));
}

gw::Sourced<gw::GatewayClass> gateway_class(const std::string& name) {
    gw::GatewayClass object;
    object.metadata = meta(name, "", "", 2);
    object.controller_name = "passgate.io/gateway-controller";
    return {std::move(object), origin()};
}

// ---------------------------------------------------------------------------------------------
// Reading the result.

// "True/Accepted", "False/NoMatchingListenerHostname", or "absent".
std::string condition(const std::vector<gw::Condition>& conditions, const std::string& type) {
    for (const gw::Condition& c : conditions) {
        if (c.type == type) return std::string(c.status ? "True" : "False") + "/" + c.reason;
    }
    return "absent";
}

const gw::TLSRouteStatus* route_status(const gw::Translation& t, const std::string& ns, const std::string& name) {
    for (const auto& status : t.statuses.tls_routes) {
        if (status.namespace_name == ns && status.name == name) return &status;
    }
    return nullptr;
}

// Accepted and ResolvedRefs of parentRef `index` of route ns/name: "True/Accepted True/ResolvedRefs".
std::string parent_conditions(const gw::Translation& t, const std::string& name, std::size_t index = 0,
                              const std::string& ns = "default") {
    const gw::TLSRouteStatus* status = route_status(t, ns, name);
    if (status == nullptr) return "no status";
    if (index >= status->parents.size()) return "no parent " + std::to_string(index);
    const auto& conditions = status->parents[index].conditions;
    return condition(conditions, "Accepted") + " " + condition(conditions, "ResolvedRefs");
}

const gw::GatewayStatus* gateway_status(const gw::Translation& t, const std::string& name,
                                        const std::string& ns = "default") {
    for (const auto& status : t.statuses.gateways) {
        if (status.namespace_name == ns && status.name == name) return &status;
    }
    return nullptr;
}

const gw::ListenerStatus& listener_status(const gw::Translation& t, const std::string& gateway_name,
                                          const std::string& listener, const std::string& ns = "default") {
    const gw::GatewayStatus* status = gateway_status(t, gateway_name, ns);
    REQUIRE(status != nullptr);
    for (const auto& l : status->listeners) {
        if (l.name == listener) return l;
    }
    FAIL("no status for listener " << listener);
    throw;
}

// "Accepted Programmed ResolvedRefs [Conflicted]" of one listener.
std::string listener_conditions(const gw::ListenerStatus& status) {
    std::string out = condition(status.conditions, "Accepted") + " " + condition(status.conditions, "Programmed") +
                      " " + condition(status.conditions, "ResolvedRefs");
    const std::string conflicted = condition(status.conditions, "Conflicted");
    return conflicted == "absent" ? out : out + " " + conflicted;
}

const passgate::config::Route* find_route(const gw::Translation& t, const std::string& name) {
    for (const auto& route : t.routes) {
        if (route.name == name) return &route;
    }
    return nullptr;
}

Strings route_names(const gw::Translation& t) {
    Strings out;
    for (const auto& route : t.routes) out.push_back(route.name);
    return out;
}

Strings listener_names(const gw::Translation& t) {
    Strings out;
    for (const auto& listener : t.listeners) out.push_back(listener.name);
    return out;
}

// "service:weight" or "invalid(REASON):weight" per backend.
Strings backends_of(const passgate::config::Route& route) {
    Strings out;
    for (const auto& b : route.backends) {
        const std::string target =
            b.invalid.empty() ? b.service : "invalid(" + b.invalid.substr(0, b.invalid.find(':')) + ")";
        out.push_back(target + ":" + std::to_string(b.weight));
    }
    return out;
}

// What the data path picks on the merged config's listener for an SNI: a route name or "<none>".
std::string match(const Config& merged, const std::string& listener_name, const std::string& sni) {
    const passgate::config::Listener* listener = merged.find_listener(listener_name);
    REQUIRE(listener != nullptr);
    const passgate::ListenerRoutes routes(merged, *listener);
    const auto found = routes.match(sni, {});
    return found.route == nullptr ? "<none>" : found.route->name;
}

std::string joined(const Strings& lines) {
    std::string out;
    for (const auto& line : lines) out += line + "\n";
    return out;
}

// The guide's Gateway `eg` after its patch: an HTTP listener and the TLS passthrough one.
gw::Sourced<gw::Gateway> guide_gateway() {
    return gateway("eg", {other_listener("http", 80, "HTTP"), tls_listener("tls", 6443, "passthrough.example.com")});
}

// The guide's TLSRoute.
gw::Sourced<gw::TLSRoute> guide_route() {
    return tls_route("tlsroute", {parent("eg")}, {"passthrough.example.com"}, {backend("passthrough-echoserver", 443, 1)});
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("the guide's objects: same-namespace route, listener, Kubernetes service, status", "[translate]") {
    gw::ObjectSet objects;
    objects.gateway_classes = {gateway_class("eg")};
    objects.gateways = {guide_gateway()};
    objects.tls_routes = {guide_route()};
    objects.services = {service("passthrough-echoserver", {443})};
    const int gateway_line = objects.gateways[0].origin.line;
    const int route_line = objects.tls_routes[0].origin.line;

    const Config base = base_config();
    const gw::Translation t = gw::translate(base, objects);
    INFO(joined(t.errors) << joined(t.warnings));
    REQUIRE(t.errors.empty());

    REQUIRE(t.listeners.size() == 1);
    const auto& listener = t.listeners[0];
    CHECK(listener.name == "default/eg/tls");
    CHECK(listener.address.to_string() == "0.0.0.0:6443");
    CHECK(listener.hostname == std::optional<std::string>("passthrough.example.com"));
    CHECK(listener.origin == "gw.yaml:" + std::to_string(gateway_line) + ": Gateway default/eg listener tls");
    CHECK(listener.line == 0);
    CHECK(listener.client_hello_timeout == passgate::config::Listener{}.client_hello_timeout);

    REQUIRE(t.routes.size() == 1);
    const auto& route = t.routes[0];
    CHECK(route.name == "default/tlsroute");
    CHECK(route.listeners == Strings{"default/eg/tls"});
    CHECK(route.hostnames == Strings{"passthrough.example.com"});
    CHECK(backends_of(route) == Strings{"default/passthrough-echoserver:443:1"});
    CHECK(route.origin == "gw.yaml:" + std::to_string(route_line) + ": TLSRoute default/tlsroute");

    REQUIRE(t.services.size() == 1);
    const auto& made = t.services[0];
    CHECK(made.name == "default/passthrough-echoserver:443");
    CHECK(made.discovery == passgate::config::Discovery::kubernetes);
    REQUIRE(made.kubernetes);
    CHECK(*made.kubernetes == passgate::config::KubernetesBackend{"default", "passthrough-echoserver", std::uint16_t{443}});
    CHECK(made.origin == "gw.yaml:" + std::to_string(route_line) +
                             ": TLSRoute default/tlsroute backendRef default/passthrough-echoserver:443");

    // Status: the class, the Gateway (the HTTP listener is not served, which is not an error), the route.
    REQUIRE(t.statuses.gateway_classes.size() == 1);
    CHECK(t.statuses.gateway_classes[0].name == "eg");
    CHECK(condition(t.statuses.gateway_classes[0].conditions, "Accepted") == "True/Accepted");
    CHECK(t.statuses.gateway_classes[0].conditions[0].observed_generation == 2);

    const gw::GatewayStatus* gateway = gateway_status(t, "eg");
    REQUIRE(gateway != nullptr);
    CHECK(condition(gateway->conditions, "Accepted") == "True/ListenersNotValid");
    CHECK(condition(gateway->conditions, "Programmed") == "True/Programmed");
    CHECK(gateway->addresses.empty());  // listen_address 0.0.0.0, no status_address
    REQUIRE(gateway->listeners.size() == 2);
    CHECK(gateway->listeners[0].name == "http");
    CHECK(listener_conditions(gateway->listeners[0]) == "False/UnsupportedProtocol False/Invalid True/ResolvedRefs");
    CHECK(gateway->listeners[0].supported_kinds.empty());
    CHECK(gateway->listeners[1].name == "tls");
    CHECK(listener_conditions(gateway->listeners[1]) == "True/Accepted True/Programmed True/ResolvedRefs");
    CHECK(gateway->listeners[1].attached_routes == 1);
    REQUIRE(gateway->listeners[1].supported_kinds.size() == 1);
    CHECK(gateway->listeners[1].supported_kinds[0].group == "gateway.networking.k8s.io");
    CHECK(gateway->listeners[1].supported_kinds[0].kind == "TLSRoute");
    CHECK(gateway->listeners[1].conditions[0].observed_generation == 3);

    CHECK(parent_conditions(t, "tlsroute") == "True/Accepted True/ResolvedRefs");
    const gw::TLSRouteStatus* status = route_status(t, "default", "tlsroute");
    REQUIRE(status->parents.size() == 1);
    CHECK(status->parents[0].parent_ref.namespace_name == std::optional<std::string>("default"));
    CHECK(status->parents[0].parent_ref.name == "eg");
    CHECK(status->parents[0].conditions[0].observed_generation == 7);

    // One warning, for the HTTP listener.
    REQUIRE(t.warnings.size() == 1);
    CHECK(t.warnings[0] == "gw.yaml:" + std::to_string(gateway_line) +
                               ": Gateway default/eg: listener http: UnsupportedProtocol: protocol HTTP is not "
                               "served by passgate (TLS with tls.mode Passthrough only)");

    const Config merged = gw::merge_gateway_config(base, t);
    CHECK(match(merged, "default/eg/tls", "passthrough.example.com") == "default/tlsroute");
    CHECK(match(merged, "default/eg/tls", "other.example.com") == "<none>");
    CHECK(match(merged, "toml", "anything.example.com") == "toml-route");  // the TOML's own, unchanged
}

TEST_CASE("files mode: a backendRef uses the TOML [[service]] of its name, else is BackendNotFound", "[translate]") {
    gw::ObjectSet objects;
    objects.gateways = {guide_gateway()};
    objects.tls_routes = {guide_route()};

    SECTION("a [[service]] named ns/name:port gives the endpoints; no service is made") {
        Config base = base_config({false, ""});
        add_toml_service(base, "default/passthrough-echoserver:443", 20);
        const gw::Translation t = gw::translate(base, objects);
        REQUIRE(t.errors.empty());
        CHECK(t.services.empty());
        REQUIRE(find_route(t, "default/tlsroute") != nullptr);
        CHECK(backends_of(*find_route(t, "default/tlsroute")) == Strings{"default/passthrough-echoserver:443:1"});
        CHECK(parent_conditions(t, "tlsroute") == "True/Accepted True/ResolvedRefs");
    }
    SECTION("neither a [[service]] nor [kubernetes]: invalid, keeps its weight") {
        const gw::Translation t = gw::translate(base_config({false, ""}), objects);
        REQUIRE(t.errors.empty());
        CHECK(t.services.empty());
        const auto* route = find_route(t, "default/tlsroute");
        REQUIRE(route != nullptr);
        CHECK(backends_of(*route) == Strings{"invalid(BackendNotFound):1"});
        CHECK(route->backends[0].service.empty());
        CHECK(route->backends[0].invalid ==
              "BackendNotFound: Service default/passthrough-echoserver port 443: no [[service]] "
              "\"default/passthrough-echoserver:443\" in the TOML and no [kubernetes] to discover its endpoints");
        CHECK(parent_conditions(t, "tlsroute") == "True/Accepted False/BackendNotFound");
    }
    SECTION("a Service in the manifests without that port: BackendNotFound even with [kubernetes]") {
        objects.services = {service("passthrough-echoserver", {8080})};
        const gw::Translation t = gw::translate(base_config(), objects);
        CHECK(backends_of(*find_route(t, "default/tlsroute")) == Strings{"invalid(BackendNotFound):1"});
        CHECK(parent_conditions(t, "tlsroute") == "True/Accepted False/BackendNotFound");
        CHECK(t.services.empty());
    }
}

namespace {

struct HostnameCase {
    std::string name;
    std::optional<std::string> listener_hostname;
    Strings route_hostnames;
    std::string accepted;  // the parent's Accepted condition
    std::map<std::string, std::string> sni;  // SNI -> the route matched, or "<none>"
};

}  // namespace

TEST_CASE("hostname intersection: route hostnames against the listener's", "[translate][hostnames]") {
    const std::vector<HostnameCase> cases = {
        {"exact listener", "foo.example.com", {"foo.example.com", "bar.example.com"}, "True/Accepted",
         {{"foo.example.com", "default/r"}, {"bar.example.com", "<none>"}, {"example.com", "<none>"}}},
        {"*.example.com listener", "*.example.com", {"foo.example.com", "foo.other.org"}, "True/Accepted",
         {{"foo.example.com", "default/r"}, {"foo.other.org", "<none>"}, {"bar.example.com", "<none>"}}},
        {"*.com route under *.example.com listener", "*.example.com", {"*.com"}, "True/Accepted",
         {{"a.example.com", "default/r"}, {"a.b.example.com", "default/r"}, {"example.com", "<none>"},
          {"a.other.com", "<none>"}}},
        {"*.com route, listener without hostname", std::nullopt, {"*.com"}, "True/Accepted",
         {{"a.example.com", "default/r"}, {"example.org", "<none>"}, {"com", "<none>"}}},
        {"no hostnames anywhere: every SNI", std::nullopt, {}, "True/Accepted",
         {{"a.example.com", "default/r"}, {"x.org", "default/r"}}},
        {"route without hostnames takes the listener's", "foo.example.com", {}, "True/Accepted",
         {{"foo.example.com", "default/r"}, {"bar.example.com", "<none>"}}},
        {"no intersection", "foo.example.com", {"bar.example.com", "*.other.com"}, "False/NoMatchingListenerHostname",
         {}},
    };
    for (const HostnameCase& c : cases) {
        DYNAMIC_SECTION(c.name) {
            gw::ObjectSet objects;
            objects.gateways = {gateway("eg", {tls_listener("tls", 6443, c.listener_hostname)})};
            objects.tls_routes = {tls_route("r", {parent("eg")}, c.route_hostnames, {backend("svc")})};
            const Config base = base_config();
            const gw::Translation t = gw::translate(base, objects);
            REQUIRE(t.errors.empty());
            CHECK(condition(route_status(t, "default", "r")->parents.at(0).conditions, "Accepted") == c.accepted);
            const bool accepted = c.accepted == "True/Accepted";
            CHECK(listener_status(t, "eg", "tls").attached_routes == (accepted ? 1u : 0u));
            CHECK(route_names(t) == (accepted ? Strings{"default/r"} : Strings{}));
            if (accepted) CHECK(find_route(t, "default/r")->hostnames == c.route_hostnames);
            const Config merged = gw::merge_gateway_config(base, t);
            for (const auto& [sni, expected] : c.sni) {
                INFO("SNI " << sni);
                CHECK(match(merged, "default/eg/tls", sni) == expected);
            }
        }
    }
}

TEST_CASE("NoMatchingListenerHostname: status, a warning, no route, SNI refused", "[translate][hostnames]") {
    gw::ObjectSet objects;
    objects.gateways = {gateway("eg", {tls_listener("tls", 6443, "passthrough.example.com")})};
    objects.tls_routes = {tls_route("r", {parent("eg")}, {"other.example.com"}, {backend("svc")})};
    const Config base = base_config();
    const gw::Translation t = gw::translate(base, objects);
    REQUIRE(t.errors.empty());
    CHECK(parent_conditions(t, "r") == "False/NoMatchingListenerHostname True/ResolvedRefs");
    CHECK(t.routes.empty());
    CHECK(t.services.empty());  // a route that serves nowhere makes no service
    CHECK(listener_status(t, "eg", "tls").attached_routes == 0);
    REQUIRE(t.warnings.size() == 1);
    CHECK(t.warnings[0].find("TLSRoute default/r: parentRef 0 (Gateway default/eg): NoMatchingListenerHostname: ") !=
          std::string::npos);
    const Config merged = gw::merge_gateway_config(base, t);
    CHECK(match(merged, "default/eg/tls", "other.example.com") == "<none>");
    CHECK(match(merged, "default/eg/tls", "passthrough.example.com") == "<none>");
}

TEST_CASE("invalid backendRefs keep their weight and are reported: missing Service, unknown kind", "[translate][backends]") {
    gw::ObjectSet objects;
    objects.complete = true;  // watch mode: every Service that exists is here
    objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
    gw::BackendReference unknown_kind = backend("bucket", 443, 2);
    unknown_kind.group = "storage.example.com";
    unknown_kind.kind = "Bucket";
    objects.tls_routes = {
        tls_route("missing", {parent("eg")}, {"missing.example.com"}, {backend("good", 443, 1), backend("gone", 443, 1)}),
        tls_route("kind", {parent("eg")}, {"kind.example.com"}, {backend("good", 443, 1), unknown_kind}),
    };
    objects.services = {service("good", {443})};

    // A TOML [[service]] named like the missing one does not make it exist (the cluster says it does not).
    Config base = base_config();
    add_toml_service(base, "default/gone:443", 20);
    const gw::Translation t = gw::translate(base, objects);
    REQUIRE(t.errors.empty());

    const auto* missing = find_route(t, "default/missing");
    REQUIRE(missing != nullptr);
    CHECK(backends_of(*missing) == Strings{"default/good:443:1", "invalid(BackendNotFound):1"});
    CHECK(missing->backends[1].invalid == "BackendNotFound: Service default/gone port 443: no such Service");
    CHECK(parent_conditions(t, "missing") == "True/Accepted False/BackendNotFound");
    CHECK(route_status(t, "default", "missing")->parents[0].conditions[1].message ==
          "spec.rules[0].backendRefs[1]: BackendNotFound: Service default/gone port 443: no such Service");

    const auto* kind = find_route(t, "default/kind");
    REQUIRE(kind != nullptr);
    CHECK(backends_of(*kind) == Strings{"default/good:443:1", "invalid(InvalidKind):2"});
    CHECK(parent_conditions(t, "kind") == "True/Accepted False/InvalidKind");

    // One Kubernetes service, made once for both routes.
    REQUIRE(t.services.size() == 1);
    CHECK(t.services[0].name == "default/good:443");
    CHECK(t.listeners.size() == 1);
    CHECK(listener_status(t, "eg", "tls").attached_routes == 2);  // Accepted despite ResolvedRefs=False

    // The routes still serve their hostnames; the share is refused by the data path.
    const Config merged = gw::merge_gateway_config(base, t);
    CHECK(match(merged, "default/eg/tls", "missing.example.com") == "default/missing");
    CHECK(match(merged, "default/eg/tls", "kind.example.com") == "default/kind");
    const auto* merged_route = merged.find_route("default/kind");
    REQUIRE(merged_route != nullptr);
    CHECK(merged_route->backends[1].weight == 2);
    CHECK_FALSE(merged_route->backends[1].invalid.empty());
}

TEST_CASE("cross-namespace backendRef: ReferenceGrant present or absent", "[translate][backends]") {
    struct Case {
        std::string name;
        std::vector<gw::Sourced<gw::ReferenceGrant>> grants;
        std::string resolved;
    };
    const std::vector<Case> cases = {
        {"no grant", {}, "False/RefNotPermitted"},
        {"grant for every Service", {grant("backend", "app")}, "True/ResolvedRefs"},
        {"grant for this Service", {grant("backend", "app", "svc")}, "True/ResolvedRefs"},
        {"grant for another Service", {grant("backend", "app", "other")}, "False/RefNotPermitted"},
        {"grant from another namespace", {grant("backend", "elsewhere")}, "False/RefNotPermitted"},
        {"grant in the route's namespace", {grant("app", "app")}, "False/RefNotPermitted"},
        {"grant for HTTPRoutes", {grant("backend", "app", std::nullopt, "HTTPRoute")}, "False/RefNotPermitted"},
    };
    for (const Case& c : cases) {
        DYNAMIC_SECTION(c.name) {
            gw::ObjectSet objects;
            gw::Sourced<gw::Gateway> g = gateway("eg", {tls_listener("tls", 6443)});
            g.object.listeners[0].allowed_routes.from = gw::AllowedRoutes::From::all;
            objects.gateways = {g};
            objects.tls_routes = {tls_route("r", {parent("eg", std::nullopt, std::nullopt, "default")}, {"a.example.com"},
                                            {backend("svc", 443, 1, "backend")}, "app")};
            objects.reference_grants = c.grants;
            const gw::Translation t = gw::translate(base_config(), objects);
            REQUIRE(t.errors.empty());
            CHECK(parent_conditions(t, "r", 0, "app") == "True/Accepted " + c.resolved);
            const auto* route = find_route(t, "app/r");
            REQUIRE(route != nullptr);
            if (c.resolved == "True/ResolvedRefs") {
                CHECK(backends_of(*route) == Strings{"backend/svc:443:1"});
                REQUIRE(t.services.size() == 1);
                CHECK(t.services[0].kubernetes->namespace_name == "backend");
            } else {
                CHECK(backends_of(*route) == Strings{"invalid(RefNotPermitted):1"});
                CHECK(t.services.empty());
            }
        }
    }
}

TEST_CASE("unsupported listener kinds are reported in status, not programmed, not errors", "[translate][listeners]") {
    gw::GatewayListener http_kinds = tls_listener("tls-http-kinds", 6445);
    http_kinds.allowed_routes.kinds = {gw::RouteGroupKind{gw::kGroup, "HTTPRoute"}};
    gw::GatewayListener mixed_kinds = tls_listener("tls-mixed-kinds", 6446);
    mixed_kinds.allowed_routes.kinds = {gw::RouteGroupKind{gw::kGroup, "HTTPRoute"},
                                        gw::RouteGroupKind{gw::kGroup, "TLSRoute"}};
    gw::ObjectSet objects;
    objects.gateways = {gateway("eg", {other_listener("http", 80, "HTTP"), other_listener("https", 443, "HTTPS", "Terminate"),
                                       other_listener("tcp", 9000, "TCP"), other_listener("tls-terminate", 6443, "TLS", "Terminate"),
                                       other_listener("tls-no-mode", 6444, "TLS"), http_kinds, mixed_kinds})};
    objects.tls_routes = {
        tls_route("to-http", {parent("eg", "http")}, {}, {backend("svc")}),
        tls_route("to-terminate", {parent("eg", "tls-terminate")}, {}, {backend("svc")}),
        tls_route("to-http-kinds", {parent("eg", "tls-http-kinds")}, {}, {backend("svc")}),
        tls_route("to-mixed", {parent("eg", "tls-mixed-kinds")}, {}, {backend("svc")}),
        tls_route("to-nothing", {parent("eg", "nope")}, {}, {backend("svc")}),
        tls_route("wrong-port", {parent("eg", "tls-mixed-kinds", 6445)}, {}, {backend("svc")}),
    };
    const gw::Translation t = gw::translate(base_config(), objects);
    REQUIRE(t.errors.empty());

    CHECK(listener_conditions(listener_status(t, "eg", "http")) == "False/UnsupportedProtocol False/Invalid True/ResolvedRefs");
    CHECK(listener_conditions(listener_status(t, "eg", "https")) == "False/UnsupportedProtocol False/Invalid True/ResolvedRefs");
    CHECK(listener_conditions(listener_status(t, "eg", "tcp")) == "False/UnsupportedProtocol False/Invalid True/ResolvedRefs");
    CHECK(listener_conditions(listener_status(t, "eg", "tls-terminate")) == "False/UnsupportedValue False/Invalid True/ResolvedRefs");
    CHECK(listener_conditions(listener_status(t, "eg", "tls-no-mode")) == "False/UnsupportedValue False/Invalid True/ResolvedRefs");
    CHECK(listener_conditions(listener_status(t, "eg", "tls-http-kinds")) == "True/Accepted True/Programmed False/InvalidRouteKinds");
    CHECK(listener_status(t, "eg", "tls-http-kinds").supported_kinds.empty());
    CHECK(listener_conditions(listener_status(t, "eg", "tls-mixed-kinds")) == "True/Accepted True/Programmed False/InvalidRouteKinds");
    REQUIRE(listener_status(t, "eg", "tls-mixed-kinds").supported_kinds.size() == 1);
    CHECK(listener_status(t, "eg", "tls-mixed-kinds").supported_kinds[0].kind == "TLSRoute");
    CHECK(listener_status(t, "eg", "tls-mixed-kinds").attached_routes == 1);

    CHECK(listener_names(t) == Strings{"default/eg/tls-http-kinds", "default/eg/tls-mixed-kinds"});
    CHECK(parent_conditions(t, "to-http") == "False/NotAllowedByListeners True/ResolvedRefs");
    CHECK(parent_conditions(t, "to-terminate") == "False/NotAllowedByListeners True/ResolvedRefs");
    CHECK(parent_conditions(t, "to-http-kinds") == "False/NotAllowedByListeners True/ResolvedRefs");
    CHECK(parent_conditions(t, "to-mixed") == "True/Accepted True/ResolvedRefs");
    CHECK(parent_conditions(t, "to-nothing") == "False/NoMatchingParent True/ResolvedRefs");
    CHECK(parent_conditions(t, "wrong-port") == "False/NoMatchingParent True/ResolvedRefs");
    CHECK(route_names(t) == Strings{"default/to-mixed"});

    const gw::GatewayStatus* g = gateway_status(t, "eg");
    CHECK(condition(g->conditions, "Accepted") == "True/ListenersNotValid");
    CHECK(condition(g->conditions, "Programmed") == "True/Programmed");

    SECTION("a Gateway with no listener served is not accepted nor programmed") {
        gw::ObjectSet only_http;
        only_http.gateways = {gateway("web", {other_listener("http", 80, "HTTP")})};
        const gw::Translation u = gw::translate(base_config(), only_http);
        CHECK(u.errors.empty());
        CHECK(u.listeners.empty());
        CHECK(condition(gateway_status(u, "web")->conditions, "Accepted") == "False/ListenersNotValid");
        CHECK(condition(gateway_status(u, "web")->conditions, "Programmed") == "False/Invalid");
    }
}

TEST_CASE("weights 1/3 across two Services split connections 1:3", "[translate][backends]") {
    gw::ObjectSet objects;
    objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
    objects.tls_routes = {tls_route("split", {parent("eg")}, {"split.example.com"}, {backend("one", 443, 1), backend("three", 8443, 3)})};
    const Config base = base_config();
    const gw::Translation t = gw::translate(base, objects);
    REQUIRE(t.errors.empty());
    const auto* route = find_route(t, "default/split");
    REQUIRE(route != nullptr);
    CHECK(backends_of(*route) == Strings{"default/one:443:1", "default/three:8443:3"});
    REQUIRE(t.services.size() == 2);
    CHECK(t.services[0].name == "default/one:443");
    CHECK(t.services[1].name == "default/three:8443");

    const Config merged = gw::merge_gateway_config(base, t);
    const auto* merged_route = merged.find_route("default/split");
    REQUIRE(merged_route != nullptr);
    std::vector<std::uint32_t> weights;
    for (const auto& b : merged_route->backends) weights.push_back(b.weight);
    passgate::SmoothWeightedRoundRobin balancer(weights);
    std::vector<int> picks(2, 0);
    for (int i = 0; i < 400; ++i) ++picks.at(*balancer.pick());
    CHECK(picks == std::vector<int>{100, 300});
}

TEST_CASE("route conflicts: the oldest route wins a hostname, then namespace/name", "[translate][order]") {
    const auto make = [](bool reversed) {
        gw::ObjectSet objects;
        objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
        std::vector<gw::Sourced<gw::TLSRoute>> routes = {
            // "a-newer" sorts first by name but was created later.
            tls_route("a-newer", {parent("eg")}, {"app.example.com"}, {backend("new")}, "", "2024-05-02T10:00:00Z"),
            tls_route("z-older", {parent("eg")}, {"app.example.com"}, {backend("old")}, "", "2024-05-01T10:00:00Z"),
            // Same creation time: namespace/name decides.
            tls_route("tie-b", {parent("eg")}, {"tie.example.com"}, {backend("b")}, "", "2024-05-03T00:00:00Z"),
            tls_route("tie-a", {parent("eg")}, {"tie.example.com"}, {backend("a")}, "", "2024-05-03T00:00:00Z"),
        };
        if (reversed) std::reverse(routes.begin(), routes.end());
        objects.tls_routes = routes;
        return objects;
    };
    for (const bool reversed : {false, true}) {
        DYNAMIC_SECTION("input reversed: " << reversed) {
            const Config base = base_config();
            const gw::Translation t = gw::translate(base, make(reversed));
            REQUIRE(t.errors.empty());
            CHECK(route_names(t) == Strings{"default/z-older", "default/a-newer", "default/tie-a", "default/tie-b"});
            // Both are Accepted: conflicts are resolved per hostname by the data path.
            CHECK(parent_conditions(t, "a-newer") == "True/Accepted True/ResolvedRefs");
            CHECK(listener_status(t, "eg", "tls").attached_routes == 4);
            const Config merged = gw::merge_gateway_config(base, t);
            CHECK(match(merged, "default/eg/tls", "app.example.com") == "default/z-older");
            CHECK(match(merged, "default/eg/tls", "tie.example.com") == "default/tie-a");
        }
    }
}

TEST_CASE("a route moved between listeners follows its sectionName", "[translate][order]") {
    const auto translate_with = [](const std::string& section) {
        gw::ObjectSet objects;
        objects.gateways = {gateway("eg", {tls_listener("a", 6443), tls_listener("b", 6444)})};
        objects.tls_routes = {tls_route("mover", {parent("eg", section)}, {"move.example.com"}, {backend("svc")})};
        return gw::translate(base_config(), objects);
    };
    const gw::Translation before = translate_with("a");
    const gw::Translation after = translate_with("b");
    REQUIRE(before.errors.empty());
    REQUIRE(after.errors.empty());
    CHECK(find_route(before, "default/mover")->listeners == Strings{"default/eg/a"});
    CHECK(find_route(after, "default/mover")->listeners == Strings{"default/eg/b"});
    CHECK(listener_status(before, "eg", "a").attached_routes == 1);
    CHECK(listener_status(before, "eg", "b").attached_routes == 0);
    CHECK(listener_status(after, "eg", "a").attached_routes == 0);
    CHECK(listener_status(after, "eg", "b").attached_routes == 1);
    const Config merged_before = gw::merge_gateway_config(base_config(), before);
    const Config merged_after = gw::merge_gateway_config(base_config(), after);
    CHECK(match(merged_before, "default/eg/a", "move.example.com") == "default/mover");
    CHECK(match(merged_before, "default/eg/b", "move.example.com") == "<none>");
    CHECK(match(merged_after, "default/eg/a", "move.example.com") == "<none>");
    CHECK(match(merged_after, "default/eg/b", "move.example.com") == "default/mover");
    // The route's name and backends stay: a reload sees the same route on another listener.
    CHECK(backends_of(*find_route(before, "default/mover")) == backends_of(*find_route(after, "default/mover")));

    SECTION("no sectionName: every listener of the Gateway") {
        const gw::Translation both = translate_with("");
        // sectionName "" names no listener.
        CHECK(parent_conditions(both, "mover") == "False/NoMatchingParent True/ResolvedRefs");
        gw::ObjectSet objects;
        objects.gateways = {gateway("eg", {tls_listener("a", 6443), tls_listener("b", 6444)})};
        objects.tls_routes = {tls_route("mover", {parent("eg")}, {"move.example.com"}, {backend("svc")})};
        const gw::Translation t = gw::translate(base_config(), objects);
        CHECK(find_route(t, "default/mover")->listeners == Strings{"default/eg/a", "default/eg/b"});
        CHECK(listener_status(t, "eg", "a").attached_routes == 1);
        CHECK(listener_status(t, "eg", "b").attached_routes == 1);
    }
}

TEST_CASE("allowedRoutes namespaces: Same, All, Selector", "[translate][listeners]") {
    gw::GatewayListener same = tls_listener("same", 6443);
    gw::GatewayListener all = tls_listener("all", 6444);
    all.allowed_routes.from = gw::AllowedRoutes::From::all;
    gw::GatewayListener labelled = tls_listener("labelled", 6445);
    labelled.allowed_routes.from = gw::AllowedRoutes::From::selector;
    labelled.allowed_routes.selector.match_labels = {{"team", "edge"}};
    gw::GatewayListener by_name = tls_listener("by-name", 6446);
    by_name.allowed_routes.from = gw::AllowedRoutes::From::selector;
    by_name.allowed_routes.selector.match_expressions = {{"kubernetes.io/metadata.name", "In", {"other"}}};

    gw::ObjectSet objects;
    objects.gateways = {gateway("eg", {same, all, labelled, by_name}, "infra")};
    objects.namespaces = {namespace_object("edge-apps", {{"team", "edge"}})};
    const auto route_to = [](const std::string& section, const std::string& ns) {
        return tls_route("r-" + section, {parent("eg", section, std::nullopt, "infra")}, {}, {backend("svc")}, ns);
    };
    objects.tls_routes = {route_to("same", "infra"),     route_to("same", "other"),     route_to("all", "other"),
                          route_to("labelled", "edge-apps"), route_to("labelled", "other"), route_to("by-name", "other"),
                          route_to("by-name", "edge-apps")};
    const gw::Translation t = gw::translate(base_config(), objects);
    REQUIRE(t.errors.empty());
    CHECK(parent_conditions(t, "r-same", 0, "infra") == "True/Accepted True/ResolvedRefs");
    CHECK(parent_conditions(t, "r-same", 0, "other") == "False/NotAllowedByListeners True/ResolvedRefs");
    CHECK(parent_conditions(t, "r-all", 0, "other") == "True/Accepted True/ResolvedRefs");
    CHECK(parent_conditions(t, "r-labelled", 0, "edge-apps") == "True/Accepted True/ResolvedRefs");
    // "other" is not among the namespaces: it has no labels.
    CHECK(parent_conditions(t, "r-labelled", 0, "other") == "False/NotAllowedByListeners True/ResolvedRefs");
    // ...but every namespace has kubernetes.io/metadata.name.
    CHECK(parent_conditions(t, "r-by-name", 0, "other") == "True/Accepted True/ResolvedRefs");
    CHECK(parent_conditions(t, "r-by-name", 0, "edge-apps") == "False/NotAllowedByListeners True/ResolvedRefs");
    CHECK(route_names(t) == Strings{"edge-apps/r-labelled", "infra/r-same", "other/r-all", "other/r-by-name"});
}

TEST_CASE("parentRefs to Gateways that are not ours get no status", "[translate]") {
    gw::ObjectSet objects;
    objects.gateways = {gateway("theirs", {tls_listener("tls", 6443)}, "", "", "other-class"),
                        gateway("eg", {tls_listener("tls", 6444)})};
    gw::ParentReference service_parent = parent("mesh");
    service_parent.group = "";
    service_parent.kind = "Service";
    objects.tls_routes = {
        tls_route("theirs-only", {parent("theirs")}, {}, {backend("svc")}),
        tls_route("both", {parent("theirs"), service_parent, parent("eg"), parent("missing")}, {}, {backend("svc")}),
    };
    const gw::Translation t = gw::translate(base_config(), objects);
    REQUIRE(t.errors.empty());
    CHECK(route_status(t, "default", "theirs-only") == nullptr);
    CHECK(gateway_status(t, "theirs") == nullptr);
    const gw::TLSRouteStatus* both = route_status(t, "default", "both");
    REQUIRE(both != nullptr);
    REQUIRE(both->parents.size() == 1);
    CHECK(both->parents[0].parent_ref.name == "eg");
    CHECK(route_names(t) == Strings{"default/both"});
    CHECK(listener_names(t) == Strings{"default/eg/tls"});
    // Manifests: a parentRef to a Gateway that is nowhere is likely a typo.
    REQUIRE(t.warnings.size() == 1);
    CHECK(t.warnings[0].find("TLSRoute default/both: parentRef 3 (Gateway default/missing): no such Gateway") !=
          std::string::npos);
    objects.complete = true;
    objects.services = {service("svc", {443})};
    const gw::Translation watched = gw::translate(base_config(), objects);
    INFO(joined(watched.warnings));
    CHECK(watched.warnings.empty());
}

TEST_CASE("port conflicts: between Gateway listeners, and with a TOML listener", "[translate][listeners]") {
    SECTION("the older Gateway keeps the port") {
        gw::ObjectSet objects;
        objects.gateways = {gateway("young", {tls_listener("tls", 6443, "a.example.com")}, "", "2024-02-01T00:00:00Z"),
                            gateway("old", {tls_listener("tls", 6443, "b.example.com"), tls_listener("dup", 6443, "b.example.com")},
                                    "", "2024-01-01T00:00:00Z")};
        const gw::Translation t = gw::translate(base_config(), objects);
        REQUIRE(t.errors.empty());
        CHECK(listener_names(t) == Strings{"default/old/tls"});
        CHECK(listener_conditions(listener_status(t, "old", "tls")) == "True/Accepted True/Programmed True/ResolvedRefs");
        CHECK(listener_conditions(listener_status(t, "old", "dup")) ==
              "False/PortUnavailable False/Invalid True/ResolvedRefs True/HostnameConflict");
        CHECK(listener_conditions(listener_status(t, "young", "tls")) ==
              "False/PortUnavailable False/Invalid True/ResolvedRefs True/PortUnavailable");
        CHECK(condition(gateway_status(t, "young")->conditions, "Programmed") == "False/Invalid");
    }
    SECTION("a TOML [[listener]] on an overlapping address: an error naming both places") {
        struct Case {
            std::string listen_address;
            std::string toml_address;
            bool conflict;
        };
        const std::vector<Case> cases = {
            {"0.0.0.0", "127.0.0.1:6443", true},  {"127.0.0.1", "127.0.0.1:6443", true},
            {"127.0.0.2", "127.0.0.1:6443", false}, {"127.0.0.2", "0.0.0.0:6443", true},
            {"::", "127.0.0.1:6443", true},       {"::1", "127.0.0.1:6443", false},
            {"::1", "[::]:6443", true},           {"0.0.0.0", "127.0.0.1:6444", false},
        };
        for (const Case& c : cases) {
            INFO(c.listen_address << " vs " << c.toml_address);
            gw::ObjectSet objects;
            objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
            const int line = objects.gateways[0].origin.line;
            BaseOptions options;
            options.listen_address = c.listen_address;
            options.extra_toml = "[[listener]]\nname = \"edge\"\naddress = \"" + c.toml_address + "\"\n";
            const gw::Translation t = gw::translate(base_config(options), objects);
            if (!c.conflict) {
                CHECK(t.errors.empty());
                CHECK(listener_names(t) == Strings{"default/eg/tls"});
                continue;
            }
            REQUIRE(t.errors.size() == 1);
            CHECK(t.errors[0].find("gw.yaml:" + std::to_string(line) + ": Gateway default/eg: spec.listeners[0].port: address ") == 0);
            CHECK(t.errors[0].find("of [[listener]] \"edge\" at passgate.toml:") != std::string::npos);
            CHECK(t.listeners.empty());
            CHECK(listener_conditions(listener_status(t, "eg", "tls")) ==
                  "False/PortUnavailable False/Invalid True/ResolvedRefs True/PortUnavailable");
        }
    }
    SECTION("\"::\" gives [::]:port") {
        gw::ObjectSet objects;
        objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
        BaseOptions options;
        options.listen_address = "::";
        const gw::Translation t = gw::translate(base_config(options), objects);
        REQUIRE(t.listeners.size() == 1);
        CHECK(t.listeners[0].address.to_string() == "[::]:6443");
    }
}

TEST_CASE("Gateway status addresses: status_address, else listen_address unless a wildcard", "[translate]") {
    gw::ObjectSet objects;
    objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
    Config base = base_config();
    CHECK(gateway_status(gw::translate(base, objects), "eg")->addresses.empty());
    base.gateway_api.listen_address = "127.0.0.5";
    CHECK(gateway_status(gw::translate(base, objects), "eg")->addresses == Strings{"127.0.0.5"});
    base.gateway_api.status_address = "192.0.2.10";
    CHECK(gateway_status(gw::translate(base, objects), "eg")->addresses == Strings{"192.0.2.10"});
}

TEST_CASE("objects invalid on their own are errors in FILE:LINE: kind ns/name: field: message form", "[translate][errors]") {
    gw::ObjectSet objects;
    objects.gateways = {gateway("bad-host", {tls_listener("tls", 6443, "10.0.0.1")}),
                        gateway("dup", {tls_listener("tls", 6444), tls_listener("tls", 6445)}),
                        gateway("good", {tls_listener("tls", 6446, "Foo.Example.COM")})};
    const int bad_host_line = objects.gateways[0].origin.line;
    objects.tls_routes = {tls_route("bad-route", {parent("good")}, {"ok.example.com", "bad..example.com"}, {backend("svc")}),
                          tls_route("no-port", {parent("good")}, {}, {backend("svc", std::nullopt)}),
                          tls_route("no-backends", {parent("good")}, {}, {})};
    const int bad_route_line = objects.tls_routes[0].origin.line;
    const gw::Translation t = gw::translate(base_config(), objects);
    INFO(joined(t.errors));
    REQUIRE(t.errors.size() == 5);
    CHECK(t.errors[0].find("gw.yaml:" + std::to_string(bad_host_line) +
                           ": Gateway default/bad-host: spec.listeners[0].hostname: invalid hostname \"10.0.0.1\": ") == 0);
    CHECK(t.errors[1].find("Gateway default/dup: spec.listeners[1].name: \"tls\" is used by another listener") != std::string::npos);
    CHECK(t.errors[2].find("gw.yaml:" + std::to_string(bad_route_line) +
                           ": TLSRoute default/bad-route: spec.hostnames[1]: invalid hostname \"bad..example.com\": ") == 0);
    CHECK(t.errors[3].find("TLSRoute default/no-backends: spec.rules: at least one backendRef is required") != std::string::npos);
    CHECK(t.errors[4].find("TLSRoute default/no-port: spec.rules[0].backendRefs[0].port: required for a Service") != std::string::npos);

    // Left out, and status says why (watch mode keeps serving the rest).
    CHECK(listener_names(t) == Strings{"default/good/tls"});
    CHECK(t.listeners[0].hostname == std::optional<std::string>("foo.example.com"));  // lowercased
    CHECK(condition(gateway_status(t, "bad-host")->conditions, "Accepted") == "False/Invalid");
    CHECK(condition(gateway_status(t, "dup")->conditions, "Programmed") == "False/Invalid");
    CHECK(route_names(t).empty());
    CHECK(parent_conditions(t, "bad-route").rfind("False/UnsupportedValue", 0) == 0);
    CHECK(parent_conditions(t, "no-port") == "False/UnsupportedValue False/BackendNotFound");
    CHECK(listener_status(t, "good", "tls").attached_routes == 0);

    try {
        (void)gw::merge_gateway_config(base_config(), t);
        FAIL("merge accepted a translation with errors");
    } catch (const passgate::config::ConfigError& e) {
        CHECK(std::string(e.what()) == joined(t.errors).substr(0, joined(t.errors).size() - 1));
    }
}

TEST_CASE("merge: names used twice are errors naming both places", "[translate][merge]") {
    gw::ObjectSet objects;
    objects.gateways = {gateway("eg", {tls_listener("tls", 6443)})};
    objects.tls_routes = {tls_route("tlsroute", {parent("eg")}, {}, {backend("svc")})};
    const int gateway_line = objects.gateways[0].origin.line;
    const int route_line = objects.tls_routes[0].origin.line;

    SECTION("a route name") {
        Config base = base_config(
            {true, "[[route]]\nname = \"taken\"\nlisteners = [\"toml\"]\nbackends = [{ service = \"s\" }]\n"});
        base.routes.back().name = "default/tlsroute";  // as the lead's parsing may admit
        const gw::Translation t = gw::translate(base, objects);
        REQUIRE(t.errors.empty());
        const int toml_line = base.find_route("default/tlsroute")->line;
        try {
            (void)gw::merge_gateway_config(base, t);
            FAIL("no error");
        } catch (const passgate::config::ConfigError& e) {
            CHECK(std::string(e.what()) == "gw.yaml:" + std::to_string(route_line) +
                                               ": TLSRoute default/tlsroute: route name \"default/tlsroute\" is also "
                                               "the [[route]] at passgate.toml:" +
                                               std::to_string(toml_line));
        }
    }
    SECTION("a listener name") {
        Config base = base_config({true, "[[listener]]\nname = \"taken\"\naddress = \"127.0.0.1:7001\"\n"});
        base.listeners.back().name = "default/eg/tls";
        const gw::Translation t = gw::translate(base, objects);
        REQUIRE(t.errors.empty());
        const int toml_line = base.find_listener("default/eg/tls")->line;
        try {
            (void)gw::merge_gateway_config(base, t);
            FAIL("no error");
        } catch (const passgate::config::ConfigError& e) {
            CHECK(std::string(e.what()) == "gw.yaml:" + std::to_string(gateway_line) +
                                               ": Gateway default/eg listener tls: listener name \"default/eg/tls\" is "
                                               "also the [[listener]] at passgate.toml:" +
                                               std::to_string(toml_line));
        }
    }
    SECTION("a service name (translation made against another base)") {
        const gw::Translation t = gw::translate(base_config(), objects);
        REQUIRE(t.services.size() == 1);
        Config other = base_config();
        add_toml_service(other, "default/svc:443", 30);
        const int toml_line = other.find_service("default/svc:443")->line;
        try {
            (void)gw::merge_gateway_config(other, t);
            FAIL("no error");
        } catch (const passgate::config::ConfigError& e) {
            CHECK(std::string(e.what()) == "gw.yaml:" + std::to_string(route_line) +
                                               ": TLSRoute default/tlsroute backendRef default/svc:443: service name "
                                               "\"default/svc:443\" is also the [[service]] at passgate.toml:" +
                                               std::to_string(toml_line));
        }
    }
    SECTION("no collision: the TOML's first, then the translation's; warnings appended") {
        objects.gateways[0].object.listeners.push_back(other_listener("http", 80, "HTTP"));
        const Config base = base_config();
        const gw::Translation t = gw::translate(base, objects);
        const Config merged = gw::merge_gateway_config(base, t);
        CHECK(merged.listeners.size() == 2);
        CHECK(merged.listeners[0].name == "toml");
        CHECK(merged.listeners[1].name == "default/eg/tls");
        CHECK(merged.routes.back().name == "default/tlsroute");
        CHECK(merged.services.back().name == "default/svc:443");
        REQUIRE_FALSE(t.warnings.empty());
        CHECK(merged.warnings.size() == base.warnings.size() + t.warnings.size());
        CHECK(merged.warnings.back() == t.warnings.back());
    }
}

namespace {

// Everything a translation says, as text, for comparing two of them.
std::string render(const gw::Translation& t) {
    std::string out;
    for (const auto& l : t.listeners) out += "L " + l.name + " " + l.address.to_string() + " " + l.hostname.value_or("-") + " " + l.origin + "\n";
    for (const auto& r : t.routes) {
        out += "R " + r.name + " " + r.origin;
        for (const auto& l : r.listeners) out += " " + l;
        for (const auto& h : r.hostnames) out += " " + h;
        for (const auto& b : backends_of(r)) out += " " + b;
        out += "\n";
    }
    for (const auto& s : t.services) out += "S " + s.name + " " + s.origin + "\n";
    for (const auto& e : t.errors) out += "E " + e + "\n";
    for (const auto& w : t.warnings) out += "W " + w + "\n";
    return out;
}

}  // namespace

TEST_CASE("the output does not depend on the order of the objects", "[translate][order]") {
    gw::ObjectSet objects;
    objects.gateway_classes = {gateway_class("other"), gateway_class("eg")};
    objects.gateways = {guide_gateway(), gateway("second", {tls_listener("tls", 7443, "*.example.com")}, "infra"),
                        gateway("clash", {tls_listener("tls", 7443)}, "infra")};
    objects.gateways[1].object.listeners[0].allowed_routes.from = gw::AllowedRoutes::From::all;
    objects.tls_routes = {guide_route(),
                          tls_route("wide", {parent("second", std::nullopt, std::nullopt, "infra"), parent("eg")},
                                    {"*.example.com"}, {backend("b", 443, 2), backend("a", 443, 1)}),
                          tls_route("other-ns", {parent("second", std::nullopt, std::nullopt, "infra")}, {"x.example.com"},
                                    {backend("c")}, "apps"),
                          tls_route("bad", {parent("eg")}, {"-bad-.example.com"}, {backend("a")})};
    objects.services = {service("passthrough-echoserver", {443}), service("a", {443})};
    const std::string expected_text = render(gw::translate(base_config(), objects));
    const auto expected_statuses = gw::translate(base_config(), objects).statuses;
    std::mt19937 random(16);
    for (int round = 0; round < 20; ++round) {
        std::shuffle(objects.gateway_classes.begin(), objects.gateway_classes.end(), random);
        std::shuffle(objects.gateways.begin(), objects.gateways.end(), random);
        std::shuffle(objects.tls_routes.begin(), objects.tls_routes.end(), random);
        std::shuffle(objects.services.begin(), objects.services.end(), random);
        const gw::Translation t = gw::translate(base_config(), objects);
        CHECK(render(t) == expected_text);
        CHECK(t.statuses.gateway_classes == expected_statuses.gateway_classes);
        CHECK(t.statuses.gateways == expected_statuses.gateways);
        CHECK(t.statuses.tls_routes == expected_statuses.tls_routes);
    }
}
