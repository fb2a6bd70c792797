#pragma once
// Decoding of the Kubernetes API objects passgate reads (Service, EndpointSlice
// discovery.k8s.io/v1), their lists and their watch events, from the API server's JSON. The API
// server's answers are untrusted input: every decoder is a pure function with bounds (sizes,
// counts, lengths) that returns an error value, never throws, and has a fuzz target
// (fuzz/fuzz_kubernetes_objects.cpp).
//
// Only the fields passgate uses are kept; unknown fields are ignored (the API adds fields over
// time). A field of the wrong JSON type is an error that names it ("items[3].endpoints[0].addresses:
// not an array").
//
// JSON library: nlohmann-json (Debian's nlohmann-json3-dev), chosen over simdjson because the
// documents are small (one watch event is one slice of at most 1,000 endpoints, tens of KiB; a
// full list of 10,000 endpoints a few MiB, read once per re-list), so parse speed is not what
// limits a control thread that handles a few events a second, while a DOM with checked typed
// access keeps every decoder short and its errors precise. simdjson's On Demand API reads each
// value once, in order, which the optional and unordered fields of these objects fight against.
// perf/kubernetes_bench measures the CPU per event.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace passgate::kubernetes {

// Bounds on what one decoded document may hold (beyond them: an error, the document is rejected).
inline constexpr std::size_t kMaxDocumentBytes = 64u << 20;  // one list or one watch event line
inline constexpr std::size_t kMaxItems = 100000;             // items of a list
inline constexpr std::size_t kMaxEndpointsPerSlice = 1000;   // the API's own limit
inline constexpr std::size_t kMaxPortsPerObject = 100;       // the API's own limit
inline constexpr std::size_t kMaxAddressesPerEndpoint = 100; // the API allows 1..100
inline constexpr std::size_t kMaxNameBytes = 253;            // names, namespaces, port names
inline constexpr std::size_t kMaxResourceVersionBytes = 256;
inline constexpr std::size_t kMaxContinueTokenBytes = 4096;  // metadata.continue of a list
// Status.reason and .message longer than this are cut (on a character boundary) and end in "...".
inline constexpr std::size_t kMaxStatusTextBytes = 1024;

struct ObjectMeta {
    std::string name;
    std::string namespace_name;
    std::string resource_version;
    std::string uid;
    std::optional<std::string> service_name_label;  // labels["kubernetes.io/service-name"]
};

// core/v1 ServicePort. target_port is the number or name of targetPort (nullopt when absent).
struct ServicePort {
    std::string name;         // "" when the Service has one unnamed port
    std::string protocol;     // "TCP" when absent (the API's default)
    std::uint16_t port = 0;   // 1..65535
    std::variant<std::monostate, std::uint16_t, std::string> target_port;
};

struct Service {
    ObjectMeta metadata;
    std::vector<ServicePort> ports;  // spec.ports
};

// discovery.k8s.io/v1 EndpointPort: every field is optional in the API.
struct EndpointPort {
    std::string name;                    // "" when absent
    std::string protocol;                // "TCP" when absent
    std::optional<std::uint16_t> port;   // absent: "all ports" (passgate cannot use it)
};

// discovery.k8s.io/v1 EndpointConditions: each is unset, true or false; the API documents how
// consumers read an unset value (ready: unset = ready; serving: unset = same as ready;
// terminating: unset = false).
struct EndpointConditions {
    std::optional<bool> ready;
    std::optional<bool> serving;
    std::optional<bool> terminating;
};

struct Endpoint {
    std::vector<std::string> addresses;  // as written: IPv4/IPv6 text, or FQDNs in FQDN slices
    EndpointConditions conditions;
    std::string target_ref_name;         // targetRef.name (a Pod's name) when present
    std::string node_name;               // nodeName when present
};

struct EndpointSlice {
    ObjectMeta metadata;
    std::string address_type;  // "IPv4", "IPv6" or "FQDN" (required by the API)
    std::vector<EndpointPort> ports;
    std::vector<Endpoint> endpoints;
};

template <typename Object>
struct List {
    std::string resource_version;  // metadata.resourceVersion: where a watch starts
    std::string continue_token;    // metadata.continue: non-empty when the list was chunked
    std::vector<Object> items;
};

// metav1.Status, as the server sends it with errors (4xx/5xx bodies, and ERROR watch events).
struct Status {
    int code = 0;            // HTTP status code (410 for an expired resourceVersion)
    std::string reason;      // "Expired", "Gone", "Unauthorized", ...
    std::string message;     // the server's words (never holds our credentials)
};

enum class EventType { added, modified, deleted, bookmark, error };

// One line of a watch stream: {"type": "...", "object": {...}}. For `bookmark`, only
// object.metadata.resourceVersion is meaningful (the object is otherwise empty); for `error`,
// the object is a Status.
template <typename Object>
struct WatchEvent {
    EventType type = EventType::added;
    std::variant<Object, Status> object;  // Status only for EventType::error
    std::string resource_version;         // object.metadata.resourceVersion (bookmark too)
};

template <typename T>
struct Decoded {
    std::optional<T> value;  // set on success
    std::string error;       // set on failure: what and where, never the whole document
    bool ok() const { return value.has_value(); }
};

Decoded<Service> decode_service(std::string_view json);
// A Service already parsed into JSON (a manifest document, for gateway_objects.h): the checks of
// decode_service, with the failing field's path and the message apart.
struct ServiceValue {
    std::optional<Service> value;  // set on success
    std::string field;             // on failure: the field's path ("document" for the root)
    std::string message;           // on failure: what is wrong with it
    bool ok() const { return value.has_value(); }
};
ServiceValue decode_service_value(const nlohmann::json& document);
Decoded<List<EndpointSlice>> decode_endpoint_slice_list(std::string_view json);
Decoded<List<Service>> decode_service_list(std::string_view json);
Decoded<WatchEvent<EndpointSlice>> decode_endpoint_slice_event(std::string_view line);
Decoded<WatchEvent<Service>> decode_service_event(std::string_view line);
// Any kind of object kept as JSON, for a collection that decodes its items itself
// (src/discovery/kubernetes_collection.h): its metadata read, the object as the server sent it.
struct JsonObject {
    ObjectMeta metadata;
    nlohmann::json json;
};
// A list or a watch event of such objects: the same checks and bounds as the typed decoders
// (every item an object with a metadata.name, resourceVersions, event types, ERROR Status).
Decoded<JsonObject> decode_json_object(std::string_view json);  // one object (a GET's answer)
Decoded<List<JsonObject>> decode_json_object_list(std::string_view json);
Decoded<WatchEvent<JsonObject>> decode_json_object_event(std::string_view line);
// One object already parsed (an item of the above): errors name fields from the object's root.
Decoded<Service> decode_service_object(const nlohmann::json& object);
Decoded<EndpointSlice> decode_endpoint_slice_object(const nlohmann::json& object);

// API discovery: an APIGroup's versions (/apis/GROUP: versions[].version, "v1", "v1beta1") and
// an APIResourceList's resource names (/apis/GROUP/VERSION: resources[].name, "tlsroutes",
// "tlsroutes/status").
Decoded<std::vector<std::string>> decode_api_group_versions(std::string_view json);
Decoded<std::vector<std::string>> decode_api_resource_names(std::string_view json);

// A Status body (error responses). Fails on anything else (the caller then shows the HTTP code).
Decoded<Status> decode_status(std::string_view json);

}  // namespace passgate::kubernetes
