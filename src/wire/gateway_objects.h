#pragma once
// Decoding of the Gateway API objects passgate serves (gateway.networking.k8s.io GatewayClass,
// Gateway, TLSRoute, ReferenceGrant) and of the core objects they refer to (Service, Namespace),
// from one document already parsed into JSON: an API server's answer, or a YAML manifest
// document converted by yaml_document.h. Untrusted input: pure functions, bounded, errors are
// values, a fuzz target (fuzz/fuzz_gateway_objects.cpp).
//
// Versions accepted: GatewayClass and Gateway v1beta1 and v1; TLSRoute v1alpha2, v1alpha3 and v1;
// ReferenceGrant v1alpha2, v1beta1 and v1. Another version of one of these kinds is an error
// (it may mean something else); a document of any other kind (Deployment, Secret, HTTPRoute...)
// decodes to Ignored. Only the fields passgate uses are kept; unknown fields are ignored.
//
// Errors name the field as a path from the document's root, "spec.listeners[1].port", so that
// a manifest loader can turn it into a line (YamlDocument::line_of) and the watch can show it.

#include "src/wire/kubernetes_objects.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace passgate::gateway_api {

inline constexpr std::size_t kMaxListenersPerGateway = 64;    // the API's own limit
inline constexpr std::size_t kMaxParentRefs = 32;             // the API's own limit
inline constexpr std::size_t kMaxHostnames = 16;              // the API's own limit
inline constexpr std::size_t kMaxRules = 16;                  // the API's own limit
inline constexpr std::size_t kMaxBackendRefs = 16;            // per rule, the API's own limit
inline constexpr std::size_t kMaxGrantEntries = 16;           // from/to, the API's own limit
inline constexpr std::size_t kMaxLabels = 256;
inline constexpr std::size_t kMaxRouteKinds = 8;              // allowedRoutes.kinds
inline constexpr std::size_t kMaxSelectorTerms = 64;          // matchLabels + matchExpressions

// The kinds' group.
inline constexpr const char* kGroup = "gateway.networking.k8s.io";

struct ObjectMeta {
    std::string name;
    std::string namespace_name;      // "" for cluster-scoped kinds, and when a manifest omits it
    std::string uid;
    std::string resource_version;
    std::int64_t generation = 0;     // metadata.generation (0 when absent, as in manifests)
    std::string creation_timestamp;  // RFC 3339 as written ("" when absent); compared as text
    std::map<std::string, std::string> labels;
};

struct GatewayClass {
    ObjectMeta metadata;
    std::string controller_name;  // spec.controllerName
};

// A label selector (metav1.LabelSelector): every term must hold.
struct LabelSelector {
    struct Expression {
        std::string key;
        std::string op;  // In, NotIn, Exists, DoesNotExist
        std::vector<std::string> values;
    };
    std::map<std::string, std::string> match_labels;
    std::vector<Expression> match_expressions;
};

struct RouteGroupKind {
    std::string group = kGroup;  // absent: the Gateway API group
    std::string kind;
    friend bool operator==(const RouteGroupKind&, const RouteGroupKind&) = default;
};

struct AllowedRoutes {
    enum class From { same, all, selector };
    From from = From::same;       // the API's default
    LabelSelector selector;       // From::selector only
    std::vector<RouteGroupKind> kinds;  // empty: the kinds the listener's protocol supports
};

struct GatewayListener {
    std::string name;
    std::optional<std::string> hostname;  // as written (the translation validates and lowercases)
    std::uint16_t port = 0;
    std::string protocol;                 // "TLS", "HTTP", "HTTPS", "TCP", "UDP", ...
    std::optional<std::string> tls_mode;  // tls.mode: "Passthrough" or "Terminate" (absent: Terminate)
    AllowedRoutes allowed_routes;
};

struct Gateway {
    ObjectMeta metadata;
    std::string gateway_class_name;  // spec.gatewayClassName
    std::vector<GatewayListener> listeners;
};

struct ParentReference {
    std::string group = kGroup;
    std::string kind = "Gateway";
    std::optional<std::string> namespace_name;  // absent: the route's namespace
    std::string name;
    std::optional<std::string> section_name;    // a listener name
    std::optional<std::uint16_t> port;
    friend bool operator==(const ParentReference&, const ParentReference&) = default;
};

struct BackendReference {
    std::string group;                          // "" (core) when absent
    std::string kind = "Service";
    std::string name;
    std::optional<std::string> namespace_name;  // absent: the route's namespace
    std::optional<std::uint16_t> port;          // required for a Service (checked by the translation)
    std::uint32_t weight = 1;                   // 0..1000000
};

struct TLSRoute {
    ObjectMeta metadata;
    std::string api_version;  // as written, for messages
    std::vector<ParentReference> parent_refs;
    std::vector<std::string> hostnames;  // as written
    // spec.rules[].backendRefs, in order, with the index of their rule.
    struct Rule {
        std::vector<BackendReference> backend_refs;
    };
    std::vector<Rule> rules;
};

struct ReferenceGrant {
    ObjectMeta metadata;
    struct From {
        std::string group;
        std::string kind;
        std::string namespace_name;
    };
    struct To {
        std::string group;
        std::string kind;
        std::optional<std::string> name;  // absent: every object of the kind
    };
    std::vector<From> from;
    std::vector<To> to;
};

struct Namespace {
    ObjectMeta metadata;  // name and labels
};

// A document of a kind passgate does not use.
struct Ignored {
    std::string api_version;
    std::string kind;
    std::string name;
};

using Object = std::variant<GatewayClass, Gateway, TLSRoute, ReferenceGrant, kubernetes::Service,
                            Namespace, Ignored>;

struct DecodedObject {
    std::optional<Object> value;  // set on success
    std::string kind;             // the document's kind, when it has one ("" otherwise)
    std::string name;             // "ns/name" or "name" when readable, for messages
    std::string field;            // on failure: the field path ("" = the document itself)
    std::string error;            // on failure: what is wrong with it
    bool ok() const { return value.has_value(); }
};

// One object (a manifest document, an item of a list, a watch event's object). Never throws.
DecodedObject decode_object(const nlohmann::json& document);

// The kind of an Object, "TLSRoute", ..., and its "ns/name" (or "name").
std::string kind_of(const Object& object);
std::string name_of(const Object& object);

}  // namespace passgate::gateway_api
