#pragma once
// The Gateway API objects into passgate's own configuration: a pure function, no I/O, so the
// conformance cases are data (tests/gateway/translate_test.cpp) and the watch and the manifests
// share it. The result is merged into the TOML's Config by merge_gateway_config().
//
// Mapping (config/README.md, "[gateway_api]", says it for operators):
// - A Gateway whose spec.gatewayClassName is one of [gateway_api] gateway_class: each listener with
//   protocol TLS and tls.mode Passthrough becomes a config::Listener named "ns/gateway/listener",
//   bound to listen_address:port, with its hostname. Other listeners are not programmed
//   (status: Accepted=False, UnsupportedProtocol), which is not an error. Two programmed listeners
//   on one port: the first (Gateways oldest first, then by ns/name; listeners in order) is
//   programmed, the others get Conflicted=True / Programmed=False (passgate binds one socket per
//   listener).
// - A TLSRoute becomes one config::Route named "ns/name" attached to every listener it may
//   attach to (parentRefs by name, namespace, sectionName and port; allowedRoutes namespaces and
//   kinds; hostnames intersecting), with the hostnames as written (the data path intersects them
//   with each listener's hostname, config::attached_hostnames). Routes are ordered oldest first
//   (creationTimestamp), then by ns/name: the Gateway API's tie-break, which passgate's
//   "defined first" rule then follows. Its backends: the backendRefs of all its rules.
// - A backendRef to core Service ns/name port P refers to the service named "ns/name:P": a TOML
//   [[service]] of exactly that name when there is one; else, with [kubernetes] set, one made
//   here (Discovery::kubernetes, defaults for every other setting); else it is invalid. Invalid
//   backendRefs (another kind: InvalidKind; another namespace without a ReferenceGrant:
//   RefNotPermitted; a Service that does not exist or lacks the port: BackendNotFound) keep
//   their weight and reject their share (config::BackendRef::invalid).
//
// Errors vs status: an object that cannot be read or is invalid on its own (a bad hostname, a
// port out of range, a listener name twice) is an error: the manifests fail (--check, start,
// reload rejected); in watch mode that object is left out and its status says why. Everything
// the spec reports through conditions (unresolved refs, no matching listener) is status only,
// and a warning in `warnings`.

#include "config/config.h"
#include "src/gateway/gateway_objects_set.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace passgate::gateway_api {

// One metav1.Condition as passgate writes it (lastTransitionTime is the writer's business).
struct Condition {
    std::string type;    // "Accepted", "Programmed", "ResolvedRefs", "Conflicted"
    bool status = true;  // "True" / "False"
    std::string reason;  // "Accepted", "NoMatchingListenerHostname", ...
    std::string message;
    std::int64_t observed_generation = 0;
    friend bool operator==(const Condition&, const Condition&) = default;
};

struct GatewayClassStatus {
    std::string name;
    std::vector<Condition> conditions;  // Accepted
    friend bool operator==(const GatewayClassStatus&, const GatewayClassStatus&) = default;
};

struct ListenerStatus {
    std::string name;
    std::uint32_t attached_routes = 0;
    std::vector<RouteGroupKind> supported_kinds;  // TLSRoute for a programmed listener
    std::vector<Condition> conditions;            // Accepted, Programmed, ResolvedRefs, Conflicted
    friend bool operator==(const ListenerStatus&, const ListenerStatus&) = default;
};

struct GatewayStatus {
    std::string namespace_name;
    std::string name;
    std::vector<std::string> addresses;  // IP addresses (status.addresses, type IPAddress)
    std::vector<Condition> conditions;   // Accepted, Programmed
    std::vector<ListenerStatus> listeners;
    friend bool operator==(const GatewayStatus&, const GatewayStatus&) = default;
};

struct RouteParentStatus {
    ParentReference parent_ref;          // as the route wrote it (namespace filled in)
    std::vector<Condition> conditions;   // Accepted, ResolvedRefs
    friend bool operator==(const RouteParentStatus&, const RouteParentStatus&) = default;
};

struct TLSRouteStatus {
    std::string namespace_name;
    std::string name;
    std::vector<RouteParentStatus> parents;  // one per parentRef that names a Gateway of ours
    friend bool operator==(const TLSRouteStatus&, const TLSRouteStatus&) = default;
};

struct Statuses {
    std::vector<GatewayClassStatus> gateway_classes;  // the classes of gateway_class that exist
    std::vector<GatewayStatus> gateways;              // the Gateways of those classes
    std::vector<TLSRouteStatus> tls_routes;           // routes with a parentRef to one of them
};

struct Translation {
    std::vector<config::Listener> listeners;
    std::vector<config::Route> routes;
    std::vector<config::Service> services;  // made for backendRefs (Discovery::kubernetes)
    Statuses statuses;
    // Objects that are invalid on their own: "FILE:LINE: kind ns/name: field: message" (FILE:LINE
    // from the origin; without it for API objects). Manifests: any error fails the load.
    std::vector<std::string> errors;
    // What status reports as a problem, for the log and --check: "FILE:LINE: TLSRoute ns/name:
    // parentRef 0 (Gateway default/eg): NoMatchingListenerHostname: ...".
    std::vector<std::string> warnings;
};

// `base`: the TOML config (its [gateway_api], [kubernetes] and [[service]]s are read).
Translation translate(const config::Config& base, const ObjectSet& objects);

// `base` with the translation's listeners, routes and services appended (the TOML's first). A
// name or an address used twice is a ConfigError that names both places (a TOML line, an
// object's origin); so is a translation with errors. Warnings are appended to Config::warnings.
config::Config merge_gateway_config(config::Config base, const Translation& translation);

}  // namespace passgate::gateway_api
