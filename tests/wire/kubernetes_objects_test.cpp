#include "src/wire/kubernetes_objects.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using namespace passgate::kubernetes;

namespace {

// The Envoy Gateway TLS passthrough guide's Service as the API server returns it (GET
// /api/v1/namespaces/default/services/passthrough-echoserver), server-set fields included.
constexpr std::string_view kGuideService = R"json({
  "kind": "Service",
  "apiVersion": "v1",
  "metadata": {
    "name": "passthrough-echoserver",
    "namespace": "default",
    "uid": "5f1d2c3e-8b7a-4c6d-9e0f-1a2b3c4d5e6f",
    "resourceVersion": "1042",
    "creationTimestamp": "2026-12-01T10:00:00Z",
    "labels": {"run": "passthrough-echoserver"},
    "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                       "apiVersion": "v1", "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:spec": {"f:ports": {".": {}, "k:{\"port\":443,\"protocol\":\"TCP\"}": {}}}}}]
  },
  "spec": {
    "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}],
    "selector": {"app": "passthrough-echoserver"},
    "clusterIP": "10.96.120.7",
    "clusterIPs": ["10.96.120.7"],
    "type": "ClusterIP",
    "sessionAffinity": "None",
    "ipFamilies": ["IPv4"],
    "ipFamilyPolicy": "SingleStack",
    "internalTrafficPolicy": "Cluster"
  },
  "status": {"loadBalancer": {}}
})json";

// Two endpoints of the guide's Service, one of them terminating (a rolling update), as the
// EndpointSlice controller writes them.
constexpr std::string_view kGuideSlice = R"json({
  "kind": "EndpointSlice",
  "apiVersion": "discovery.k8s.io/v1",
  "metadata": {
    "name": "passthrough-echoserver-7x2kq",
    "generateName": "passthrough-echoserver-",
    "namespace": "default",
    "uid": "0b6c3f0e-1111-4a4a-9c9c-222233334444",
    "resourceVersion": "1077",
    "generation": 4,
    "labels": {
      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      "kubernetes.io/service-name": "passthrough-echoserver"
    },
    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "passthrough-echoserver",
                         "uid": "5f1d2c3e-8b7a-4c6d-9e0f-1a2b3c4d5e6f", "controller": true,
                         "blockOwnerDeletion": true}]
  },
  "addressType": "IPv4",
  "endpoints": [
    {
      "addresses": ["10.244.1.5"],
      "conditions": {"ready": true, "serving": true, "terminating": false},
      "targetRef": {"kind": "Pod", "namespace": "default", "name": "passthrough-echoserver-6d9f-abcde",
                    "uid": "aaaa0000-1111-2222-3333-444455556666"},
      "nodeName": "node-1",
      "zone": "us-west2-a",
      "hints": {"forZones": [{"name": "us-west2-a"}]}
    },
    {
      "addresses": ["10.244.2.9"],
      "conditions": {"ready": false, "serving": true, "terminating": true},
      "targetRef": {"kind": "Pod", "namespace": "default", "name": "passthrough-echoserver-6d9f-fghij"},
      "nodeName": "node-2"
    }
  ],
  "ports": [{"name": "https", "protocol": "TCP", "port": 8443}]
})json";

template <typename T>
T good(const Decoded<T>& decoded) {
    INFO(decoded.error);
    REQUIRE(decoded.ok());
    CHECK(decoded.error.empty());
    return *decoded.value;
}

template <typename T>
std::string bad(const Decoded<T>& decoded) {
    REQUIRE_FALSE(decoded.ok());
    REQUIRE_FALSE(decoded.error.empty());
    CHECK(decoded.error.size() <= 200);  // never the document, at most a short excerpt of it
    return decoded.error;
}

// A slice document with the given endpoints and ports arrays (JSON text).
std::string slice_json(const std::string& endpoints, const std::string& ports = "[]",
                       const std::string& name = "s", const std::string& address_type = "IPv4") {
    return R"({"metadata":{"name":")" + name +
           R"(","labels":{"kubernetes.io/service-name":"svc"}},"addressType":")" + address_type +
           R"(","endpoints":)" + endpoints + R"(,"ports":)" + ports + "}";
}

std::string service_json(const std::string& ports) {
    return R"({"metadata":{"name":"svc","namespace":"default"},"spec":{"ports":)" + ports + "}}";
}

// "[E,E,...]" of `count` copies of `element`.
std::string array_of(std::size_t count, const std::string& element) {
    std::string text = "[";
    for (std::size_t i = 0; i < count; ++i) text += (i ? "," : "") + element;
    return text + "]";
}

std::string numbered_array(std::size_t count, const std::string& prefix, const std::string& suffix) {
    std::string text = "[";
    for (std::size_t i = 0; i < count; ++i) {
        text += (i ? "," : "") + prefix + std::to_string(i) + suffix;
    }
    return text + "]";
}

}  // namespace

TEST_CASE("kubernetes objects: the guide's Service", "[kubernetes_objects]") {
    const Service service = good(decode_service(kGuideService));
    CHECK(service.metadata.name == "passthrough-echoserver");
    CHECK(service.metadata.namespace_name == "default");
    CHECK(service.metadata.resource_version == "1042");
    CHECK(service.metadata.uid == "5f1d2c3e-8b7a-4c6d-9e0f-1a2b3c4d5e6f");
    CHECK_FALSE(service.metadata.service_name_label);  // other labels are ignored
    REQUIRE(service.ports.size() == 1);
    CHECK(service.ports[0].name == "https");
    CHECK(service.ports[0].protocol == "TCP");
    CHECK(service.ports[0].port == 443);
    CHECK(service.ports[0].target_port == decltype(service.ports[0].target_port)(std::uint16_t{8443}));
}

TEST_CASE("kubernetes objects: Service ports: defaults, named targetPort, none", "[kubernetes_objects]") {
    const Service service = good(decode_service(service_json(
        R"([{"port": 80}, {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": "dns-udp"}])")));
    REQUIRE(service.ports.size() == 2);
    CHECK(service.ports[0].name.empty());
    CHECK(service.ports[0].protocol == "TCP");
    CHECK(std::holds_alternative<std::monostate>(service.ports[0].target_port));
    CHECK(service.ports[1].protocol == "UDP");
    CHECK(std::get<std::string>(service.ports[1].target_port) == "dns-udp");
    // An ExternalName Service has no ports; a spec without them decodes to none.
    CHECK(good(decode_service(R"({"metadata":{"name":"x"},"spec":{"type":"ExternalName"}})")).ports.empty());
    CHECK(good(decode_service(R"({"metadata":{"name":"x"},"spec":{"ports":null}})")).ports.empty());
}

TEST_CASE("kubernetes objects: an EndpointSlice with a terminating endpoint", "[kubernetes_objects]") {
    const auto event = good(decode_endpoint_slice_event(std::string(R"({"type":"ADDED","object":)") +
                                                        std::string(kGuideSlice) + "}"));
    const EndpointSlice slice = std::get<EndpointSlice>(event.object);
    CHECK(slice.metadata.name == "passthrough-echoserver-7x2kq");
    CHECK(slice.metadata.service_name_label == std::optional<std::string>("passthrough-echoserver"));
    CHECK(slice.address_type == "IPv4");
    REQUIRE(slice.ports.size() == 1);
    CHECK(slice.ports[0].name == "https");
    CHECK(slice.ports[0].port == std::optional<std::uint16_t>(8443));
    REQUIRE(slice.endpoints.size() == 2);
    CHECK(slice.endpoints[0].addresses == std::vector<std::string>{"10.244.1.5"});
    CHECK(slice.endpoints[0].conditions.ready == std::optional<bool>(true));
    CHECK(slice.endpoints[0].target_ref_name == "passthrough-echoserver-6d9f-abcde");
    CHECK(slice.endpoints[0].node_name == "node-1");
    CHECK(slice.endpoints[1].conditions.ready == std::optional<bool>(false));
    CHECK(slice.endpoints[1].conditions.serving == std::optional<bool>(true));
    CHECK(slice.endpoints[1].conditions.terminating == std::optional<bool>(true));
}

TEST_CASE("kubernetes objects: IPv6 and FQDN slices, unset optional fields", "[kubernetes_objects]") {
    const std::string list = R"json({
      "kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
      "metadata": {"resourceVersion": "2001", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MjAwMSwic3RhcnQiOiJ4In0"},
      "items": [
        {"metadata": {"name": "echo-v6", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "echo"}},
         "addressType": "IPv6",
         "endpoints": [{"addresses": ["2001:db8::5"], "conditions": {}},
                       {"addresses": ["2001:db8::6"]}],
         "ports": [{"name": "", "port": 8443}, {"name": "all"}]},
        {"metadata": {"name": "echo-fqdn", "labels": {"kubernetes.io/service-name": "echo"}},
         "addressType": "FQDN",
         "endpoints": [{"addresses": ["backend.example.com"], "conditions": {"ready": true}}],
         "ports": [{"name": "https", "protocol": "TCP", "port": 443}]},
        {"metadata": {"name": "echo-empty", "labels": {"kubernetes.io/service-name": "echo"}},
         "addressType": "IPv4", "endpoints": null, "ports": null}
      ]})json";
    const List<EndpointSlice> decoded = good(decode_endpoint_slice_list(list));
    CHECK(decoded.resource_version == "2001");
    CHECK(decoded.continue_token == "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MjAwMSwic3RhcnQiOiJ4In0");
    REQUIRE(decoded.items.size() == 3);
    const EndpointSlice& v6 = decoded.items[0];
    CHECK(v6.address_type == "IPv6");
    REQUIRE(v6.endpoints.size() == 2);
    CHECK(v6.endpoints[0].addresses[0] == "2001:db8::5");
    CHECK_FALSE(v6.endpoints[0].conditions.ready);
    CHECK_FALSE(v6.endpoints[1].conditions.serving);
    CHECK_FALSE(v6.endpoints[1].conditions.terminating);
    CHECK(v6.endpoints[1].target_ref_name.empty());
    REQUIRE(v6.ports.size() == 2);
    CHECK(v6.ports[0].protocol == "TCP");
    CHECK_FALSE(v6.ports[1].port);  // "all ports"
    CHECK(decoded.items[1].address_type == "FQDN");
    CHECK(decoded.items[1].endpoints[0].addresses[0] == "backend.example.com");
    CHECK(decoded.items[2].endpoints.empty());
    CHECK(decoded.items[2].ports.empty());
}

TEST_CASE("kubernetes objects: lists", "[kubernetes_objects]") {
    const List<Service> services = good(decode_service_list(
        std::string(R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1100"},"items":[)") +
        std::string(kGuideService) + "]}"));
    CHECK(services.resource_version == "1100");
    CHECK(services.continue_token.empty());
    REQUIRE(services.items.size() == 1);
    CHECK(services.items[0].ports[0].port == 443);
    // An empty list: [] or (Go's nil slice) null.
    CHECK(good(decode_endpoint_slice_list(R"({"metadata":{"resourceVersion":"5"},"items":[]})")).items.empty());
    CHECK(good(decode_endpoint_slice_list(R"({"metadata":{"resourceVersion":"5"},"items":null})")).items.empty());
    CHECK(bad(decode_endpoint_slice_list(R"({"metadata":{"resourceVersion":"5"}})")) == "items: missing");
    CHECK(bad(decode_endpoint_slice_list(R"({"items":{}})")) == "items: not an array (an object)");
    CHECK(bad(decode_service_list(R"({"metadata":[],"items":[]})")) == "metadata: not an object (an array)");
}

TEST_CASE("kubernetes objects: watch events of every type", "[kubernetes_objects]") {
    const auto added = good(decode_endpoint_slice_event(std::string(R"({"type":"ADDED","object":)") +
                                                        std::string(kGuideSlice) + "}\n"));
    CHECK(added.type == EventType::added);
    CHECK(added.resource_version == "1077");
    CHECK(std::get<EndpointSlice>(added.object).endpoints.size() == 2);

    const auto modified = good(decode_service_event(std::string(R"({"type":"MODIFIED","object":)") +
                                                    std::string(kGuideService) + "}"));
    CHECK(modified.type == EventType::modified);
    CHECK(modified.resource_version == "1042");
    CHECK(std::get<Service>(modified.object).metadata.name == "passthrough-echoserver");

    const auto deleted = good(decode_endpoint_slice_event(
        R"({"type":"DELETED","object":{"metadata":{"name":"gone","resourceVersion":"1200"},"addressType":"IPv4","endpoints":[]}})"));
    CHECK(deleted.type == EventType::deleted);
    CHECK(std::get<EndpointSlice>(deleted.object).metadata.name == "gone");

    // A bookmark as kube-apiserver sends it: an otherwise empty object of the watched kind.
    const auto bookmark = good(decode_endpoint_slice_event(
        R"({"type":"BOOKMARK","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"12746","creationTimestamp":null,"annotations":{"k8s.io/initial-events-end":"true"}},"addressType":"","endpoints":null,"ports":null}})"));
    CHECK(bookmark.type == EventType::bookmark);
    CHECK(bookmark.resource_version == "12746");
    CHECK(std::get<EndpointSlice>(bookmark.object).metadata.resource_version == "12746");
    const auto service_bookmark = good(decode_service_event(
        R"({"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"99"},"spec":{},"status":{"loadBalancer":{}}}})"));
    CHECK(service_bookmark.resource_version == "99");
    CHECK(bad(decode_service_event(R"({"type":"BOOKMARK","object":{"metadata":{}}})")) ==
          "object.metadata.resourceVersion: missing or empty in a BOOKMARK");

    // 410 Gone for an expired resourceVersion, as a watch event.
    const auto gone = good(decode_endpoint_slice_event(
        R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1000 (1077)","reason":"Expired","code":410}})json"));
    CHECK(gone.type == EventType::error);
    const Status& status = std::get<Status>(gone.object);
    CHECK(status.code == 410);
    CHECK(status.reason == "Expired");
    CHECK(status.message == "too old resource version: 1000 (1077)");
    CHECK(gone.resource_version.empty());

    CHECK(bad(decode_service_event(R"({"type":"SYNC","object":{}})")) == R"(type: unknown event type "SYNC")");
    CHECK(bad(decode_service_event(R"({"object":{}})")) == "type: missing");
    CHECK(bad(decode_service_event(R"({"type":"ADDED"})")) == "object: missing");
    CHECK(bad(decode_service_event(R"({"type":"ADDED","object":{"spec":{}}})")) ==
          "object.metadata.name: missing or empty");
    CHECK(bad(decode_service_event(R"({"type":7,"object":{}})")) == "type: not a string (an integer)");
    CHECK(bad(decode_service_event(R"({"type":"ERROR","object":[]})")) == "object: not an object (an array)");
}

TEST_CASE("kubernetes objects: Status bodies", "[kubernetes_objects]") {
    const Status status = good(decode_status(
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})"));
    CHECK(status.code == 401);
    CHECK(status.reason == "Unauthorized");
    CHECK(status.message == "Unauthorized");
    CHECK(bad(decode_status(kGuideService)) == "kind: not \"Status\"");
    CHECK(bad(decode_status("<html>502 Bad Gateway</html>")).rfind("not JSON: syntax error at byte ", 0) == 0);
    CHECK(bad(decode_status(R"({"kind":"Status","code":"401"})")) == "code: not an integer (a string)");
    CHECK(bad(decode_status(R"({"kind":"Status","code":1000})")) == "code: 1000 is not in 0..999");
    // A long message is cut, on a character boundary.
    std::string long_message(kMaxStatusTextBytes - 1, 'm');
    long_message += "\xc3\xa9tail";  // U+00E9 straddles the cut
    const Status cut = good(decode_status(R"({"kind":"Status","message":")" + long_message + "\"}"));
    CHECK(cut.message == std::string(kMaxStatusTextBytes - 1, 'm') + "...");
    const Status at_limit = good(decode_status(
        R"({"kind":"Status","message":")" + std::string(kMaxStatusTextBytes, 'm') + "\"}"));
    CHECK(at_limit.message == std::string(kMaxStatusTextBytes, 'm'));
}

TEST_CASE("kubernetes objects: wrong types name the field", "[kubernetes_objects]") {
    // The fourth item's first endpoint.
    std::string items = array_of(3, slice_json("[]"));
    items.pop_back();
    items += "," + slice_json(R"([{"addresses":"10.0.0.1"}])") + "]";
    CHECK(bad(decode_endpoint_slice_list(R"({"items":)" + items + "}")) ==
          "items[3].endpoints[0].addresses: not an array (a string)");
    CHECK(bad(decode_endpoint_slice_event(R"({"type":"ADDED","object":)" +
                                          slice_json(R"([{"addresses":["10.0.0.1"],"conditions":{"ready":"true"}}])") + "}")) ==
          "object.endpoints[0].conditions.ready: not a boolean (a string)");
    CHECK(bad(decode_endpoint_slice_event(R"({"type":"ADDED","object":)" +
                                          slice_json(R"([{"addresses":[10]}])") + "}")) ==
          "object.endpoints[0].addresses[0]: not a string (an integer)");
    CHECK(bad(decode_endpoint_slice_event(R"({"type":"ADDED","object":)" +
                                          slice_json(R"([{"addresses":[],"targetRef":"pod"}])") + "}")) ==
          "object.endpoints[0].targetRef: not an object (a string)");
    CHECK(bad(decode_endpoint_slice_event(R"({"type":"ADDED","object":)" +
                                          slice_json("[]", R"([{"port":"8443"}])") + "}")) ==
          "object.ports[0].port: not an integer (a string)");
    CHECK(bad(decode_service(service_json(R"([{"port":443.0}])"))) == "spec.ports[0].port: not an integer (a fraction)");
    CHECK(bad(decode_service(service_json(R"([{"port":443,"targetPort":true}])"))) ==
          "spec.ports[0].targetPort: not an integer or a string (a boolean)");
    CHECK(bad(decode_service(service_json(R"({"port":443})"))) == "spec.ports: not an array (an object)");
    CHECK(bad(decode_service(R"({"metadata":{"name":"x","labels":[]}})")) == "metadata.labels: not an object (an array)");
    CHECK(bad(decode_service(R"({"metadata":{"name":"x","labels":{"kubernetes.io/service-name":1}}})")) ==
          R"(metadata.labels["kubernetes.io/service-name"]: not a string (an integer))");
    CHECK(bad(decode_service(R"({"metadata":{"name":"x","namespace":false}})")) ==
          "metadata.namespace: not a string (a boolean)");
    CHECK(bad(decode_service(R"({"metadata":{"name":"x"},"spec":"none"})")) == "spec: not an object (a string)");
    CHECK(bad(decode_service("[]")) == "document: not an object (an array)");
    CHECK(bad(decode_endpoint_slice_list("null")) == "document: not an object (null)");
}

TEST_CASE("kubernetes objects: missing required fields", "[kubernetes_objects]") {
    CHECK(bad(decode_service(service_json(R"([{"name":"https"}])"))) == "spec.ports[0].port: missing");
    CHECK(bad(decode_service(R"({"spec":{}})")) == "metadata.name: missing or empty");
    CHECK(bad(decode_endpoint_slice_event(
              R"({"type":"ADDED","object":{"metadata":{"name":"s"},"endpoints":[]}})")) ==
          "object.addressType: missing");
    CHECK(bad(decode_endpoint_slice_event(
              R"({"type":"ADDED","object":{"metadata":{"name":"s"},"addressType":"IPv4","endpoints":[{"conditions":{}}]}})")) ==
          "object.endpoints[0].addresses: missing");
}

TEST_CASE("kubernetes objects: port numbers 1..65535", "[kubernetes_objects]") {
    CHECK(good(decode_service(service_json(R"([{"port":1,"targetPort":65535}])"))).ports[0].port == 1);
    CHECK(good(decode_service(service_json(R"([{"port":65535}])"))).ports[0].port == 65535);
    CHECK(bad(decode_service(service_json(R"([{"port":0}])"))) == "spec.ports[0].port: 0 is not in 1..65535");
    CHECK(bad(decode_service(service_json(R"([{"port":65536}])"))) == "spec.ports[0].port: 65536 is not in 1..65535");
    CHECK(bad(decode_service(service_json(R"([{"port":-443}])"))) == "spec.ports[0].port: -443 is not in 1..65535");
    CHECK(bad(decode_service(service_json(R"([{"port":18446744073709551615}])"))) ==
          "spec.ports[0].port: integer out of range");
    CHECK(bad(decode_service(service_json(R"([{"port":443,"targetPort":0}])"))) ==
          "spec.ports[0].targetPort: 0 is not in 1..65535");
    CHECK(bad(decode_endpoint_slice_event(R"({"type":"ADDED","object":)" +
                                          slice_json("[]", R"([{"port":70000}])") + "}")) ==
          "object.ports[0].port: 70000 is not in 1..65535");
    const auto all_ports = good(decode_endpoint_slice_event(
        R"({"type":"ADDED","object":)" + slice_json("[]", R"([{"name":"x","port":null}])") + "}"));
    CHECK_FALSE(std::get<EndpointSlice>(all_ports.object).ports[0].port);
}

TEST_CASE("kubernetes objects: counts at and beyond their bounds", "[kubernetes_objects]") {
    const std::string endpoint = R"({"addresses":["10.0.0.1"]})";
    auto slice_event = [](const std::string& slice) { return R"({"type":"ADDED","object":)" + slice + "}"; };
    CHECK(std::get<EndpointSlice>(good(decode_endpoint_slice_event(slice_event(
                                           slice_json(array_of(kMaxEndpointsPerSlice, endpoint)))))
                                      .object)
              .endpoints.size() == kMaxEndpointsPerSlice);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json(array_of(kMaxEndpointsPerSlice + 1, endpoint))))) ==
          "object.endpoints: 1001 elements, more than 1000");

    const std::string slice_ports_at = numbered_array(kMaxPortsPerObject, R"({"name":"p)", R"(","port":80})");
    const std::string slice_ports_over = numbered_array(kMaxPortsPerObject + 1, R"({"name":"p)", R"(","port":80})");
    CHECK(std::get<EndpointSlice>(good(decode_endpoint_slice_event(slice_event(slice_json("[]", slice_ports_at)))).object)
              .ports.size() == kMaxPortsPerObject);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json("[]", slice_ports_over)))) ==
          "object.ports: 101 elements, more than 100");
    CHECK(good(decode_service(service_json(slice_ports_at))).ports.size() == kMaxPortsPerObject);
    CHECK(bad(decode_service(service_json(slice_ports_over))) == "spec.ports: 101 elements, more than 100");

    const std::string addresses_at = numbered_array(kMaxAddressesPerEndpoint, "\"10.0.1.", "\"");
    const std::string addresses_over = numbered_array(kMaxAddressesPerEndpoint + 1, "\"10.0.1.", "\"");
    CHECK(std::get<EndpointSlice>(good(decode_endpoint_slice_event(slice_event(
                                           slice_json(R"([{"addresses":)" + addresses_at + "}]"))))
                                      .object)
              .endpoints[0]
              .addresses.size() == kMaxAddressesPerEndpoint);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json(R"([{"addresses":)" + addresses_over + "}]")))) ==
          "object.endpoints[0].addresses: 101 elements, more than 100");

    const std::string item = R"({"metadata":{"name":"s"}})";
    CHECK(good(decode_service_list(R"({"items":)" + array_of(kMaxItems, item) + "}")).items.size() == kMaxItems);
    CHECK(bad(decode_service_list(R"({"items":)" + array_of(kMaxItems + 1, item) + "}")) ==
          "items: 100001 elements, more than 100000");
}

TEST_CASE("kubernetes objects: lengths at and beyond their bounds", "[kubernetes_objects]") {
    const std::string name_at(kMaxNameBytes, 'n');
    const std::string name_over(kMaxNameBytes + 1, 'n');
    const std::string over_error = " is 254 bytes, more than 253";
    const std::string excerpt = "\"" + std::string(64, 'n') + "\"...";

    CHECK(good(decode_service(R"({"metadata":{"name":")" + name_at + "\"}}")).metadata.name == name_at);
    CHECK(bad(decode_service(R"({"metadata":{"name":")" + name_over + "\"}}")) == "metadata.name: " + excerpt + over_error);
    CHECK(bad(decode_service(R"({"metadata":{"name":"x","namespace":")" + name_over + "\"}}")) ==
          "metadata.namespace: " + excerpt + over_error);
    CHECK(bad(decode_service(R"({"metadata":{"name":"x","uid":")" + name_over + "\"}}")) ==
          "metadata.uid: " + excerpt + over_error);
    CHECK(bad(decode_service(R"({"metadata":{"name":"x","labels":{"kubernetes.io/service-name":")" + name_over + "\"}}}")) ==
          R"(metadata.labels["kubernetes.io/service-name"]: )" + excerpt + over_error);
    CHECK(good(decode_service(service_json(R"([{"port":1,"name":")" + name_at + "\"}]"))).ports[0].name == name_at);
    CHECK(bad(decode_service(service_json(R"([{"port":1,"name":")" + name_over + "\"}]"))) ==
          "spec.ports[0].name: " + excerpt + over_error);
    CHECK(bad(decode_service(service_json(R"([{"port":1,"targetPort":")" + name_over + "\"}]"))) ==
          "spec.ports[0].targetPort: " + excerpt + over_error);
    CHECK(bad(decode_service(service_json(R"([{"port":1,"protocol":")" + name_over + "\"}]"))) ==
          "spec.ports[0].protocol: " + excerpt + over_error);
    auto slice_event = [](const std::string& slice) { return R"({"type":"ADDED","object":)" + slice + "}"; };
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json("[]", R"([{"name":")" + name_over + "\"}]")))) ==
          "object.ports[0].name: " + excerpt + over_error);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json(R"([{"addresses":[")" + name_over + "\"]}]")))) ==
          "object.endpoints[0].addresses[0]: " + excerpt + over_error);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json(R"([{"addresses":[],"nodeName":")" + name_over + "\"}]")))) ==
          "object.endpoints[0].nodeName: " + excerpt + over_error);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json(R"([{"addresses":[],"targetRef":{"name":")" + name_over + "\"}}]")))) ==
          "object.endpoints[0].targetRef.name: " + excerpt + over_error);
    CHECK(bad(decode_endpoint_slice_event(slice_event(slice_json("[]", "[]", "s", name_over)))) ==
          "object.addressType: " + excerpt + over_error);

    const std::string rv_at(kMaxResourceVersionBytes, '7');
    const std::string rv_over(kMaxResourceVersionBytes + 1, '7');
    CHECK(good(decode_service_list(R"({"metadata":{"resourceVersion":")" + rv_at + R"("},"items":[]})")).resource_version == rv_at);
    CHECK(bad(decode_service_list(R"({"metadata":{"resourceVersion":")" + rv_over + R"("},"items":[]})")) ==
          "metadata.resourceVersion: \"" + std::string(64, '7') + "\"... is 257 bytes, more than 256");
    CHECK(bad(decode_service_event(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":")" + rv_over + "\"}}}"))
              .rfind("object.metadata.resourceVersion: ", 0) == 0);
    const std::string token_at(kMaxContinueTokenBytes, 'c');
    CHECK(good(decode_service_list(R"({"metadata":{"continue":")" + token_at + R"("},"items":[]})")).continue_token == token_at);
    CHECK(bad(decode_service_list(R"({"metadata":{"continue":")" + token_at + R"(c"},"items":[]})"))
              .rfind("metadata.continue: \"ccc", 0) == 0);
}

TEST_CASE("kubernetes objects: document size and nesting depth", "[kubernetes_objects]") {
    // At the size limit: a valid document padded with whitespace.
    std::string document = R"({"kind":"Status","code":500})";
    document.resize(kMaxDocumentBytes, ' ');
    CHECK(good(decode_status(document)).code == 500);
    document += ' ';
    CHECK(bad(decode_status(document)) == "document of 67108865 bytes, more than 67108864");

    // 64 levels (unknown fields may nest that deep); 65 is a depth bomb, refused before parsing.
    auto nested = [](int depth) {
        std::string text = R"({"kind":"Status","details":)";
        for (int i = 1; i < depth; ++i) text += i % 2 ? "[" : "{\"a\":";
        text += "0";
        for (int i = depth - 1; i >= 1; --i) text += i % 2 ? "]" : "}";
        return text + "}";
    };
    CHECK(good(decode_status(nested(64))).code == 0);
    CHECK(bad(decode_status(nested(65))) == "nested deeper than 64 levels");
    CHECK(bad(decode_status(std::string(1000000, '['))) == "nested deeper than 64 levels");
    // Brackets inside strings (escaped quotes included) do not count.
    CHECK(good(decode_status(R"({"kind":"Status","message":"\"[[[[)" + std::string(100, '[') + "\"}")).message.size() == 105);
}

TEST_CASE("kubernetes objects: malformed JSON, and errors quote little", "[kubernetes_objects]") {
    CHECK(bad(decode_service("")) == "not JSON: syntax error at byte 1");
    CHECK(bad(decode_service(R"({"metadata":{"name":"x"}} trailing)")).rfind("not JSON: syntax error at byte ", 0) == 0);
    CHECK(bad(decode_service("{\"metadata\":{\"name\":\"\xff\"}}")).rfind("not JSON", 0) == 0);  // not UTF-8
    // An unterminated 100 KiB string: the error names a byte, not the text.
    const std::string secret_like(100000, 's');
    const std::string error = bad(decode_service(R"({"metadata":{"name":")" + secret_like));
    CHECK(error.find("sss") == std::string::npos);
    // Control characters are not copied into an error.
    CHECK(bad(decode_service_event(R"({"type":"A\u0000\n","object":{}})")) ==
          R"(type: unknown event type "A\x00\x0a")");
}

TEST_CASE("kubernetes objects: lists and events kept as JSON, each object decoded on its own", "[kubernetes_objects]") {
    const List<JsonObject> list = good(decode_json_object_list(
        std::string(R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"1100","continue":"c1"},"items":[)") +
        std::string(kGuideService) + "]}"));
    CHECK(list.resource_version == "1100");
    CHECK(list.continue_token == "c1");
    REQUIRE(list.items.size() == 1);
    CHECK(list.items[0].metadata.name == "passthrough-echoserver");
    CHECK(list.items[0].metadata.namespace_name == "default");
    const Service service = good(decode_service_object(list.items[0].json));
    CHECK(service.ports.at(0).port == 443);
    // The object's own errors name fields from its root; the list still needs names.
    CHECK(bad(decode_endpoint_slice_object(list.items[0].json)) == "addressType: missing");
    CHECK(bad(decode_json_object_list(R"({"items":[{"metadata":{}}]})")) == "items[0].metadata.name: missing or empty");
    CHECK(bad(decode_json_object_list(R"({"items":[5]})")) == "items[0]: not an object (an integer)");

    const JsonObject lease = good(decode_json_object(
        R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l","namespace":"default","resourceVersion":"9"},"spec":{"holderIdentity":"a"}})"));
    CHECK(lease.metadata.resource_version == "9");
    CHECK(lease.json["spec"]["holderIdentity"] == "a");
    CHECK(bad(decode_json_object("[1]")) == "document: not an object (an array)");

    const auto event = good(decode_json_object_event(std::string(R"({"type":"MODIFIED","object":)") +
                                                     std::string(kGuideSlice) + "}"));
    CHECK(event.type == EventType::modified);
    CHECK(event.resource_version == "1077");
    const JsonObject& object = std::get<JsonObject>(event.object);
    CHECK(object.json["kind"] == "EndpointSlice");
    CHECK(good(decode_endpoint_slice_object(object.json)).endpoints.size() == 2);
    const auto bookmark = good(decode_json_object_event(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}})"));
    CHECK(bookmark.resource_version == "7");
    const auto error = good(decode_json_object_event(R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"));
    CHECK(std::get<Status>(error.object).code == 410);
}

TEST_CASE("kubernetes objects: API discovery: a group's versions, a version's resources", "[kubernetes_objects]") {
    const auto versions = good(decode_api_group_versions(R"({"kind":"APIGroup","apiVersion":"v1","name":"gateway.networking.k8s.io",
        "versions":[{"groupVersion":"gateway.networking.k8s.io/v1","version":"v1"},
                    {"groupVersion":"gateway.networking.k8s.io/v1alpha2","version":"v1alpha2"}],
        "preferredVersion":{"groupVersion":"gateway.networking.k8s.io/v1","version":"v1"}})"));
    CHECK(versions == std::vector<std::string>{"v1", "v1alpha2"});
    const auto resources = good(decode_api_resource_names(R"({"kind":"APIResourceList","groupVersion":"gateway.networking.k8s.io/v1alpha2",
        "resources":[{"name":"tlsroutes","namespaced":true,"kind":"TLSRoute"},{"name":"tlsroutes/status","kind":"TLSRoute"}]})"));
    CHECK(resources == std::vector<std::string>{"tlsroutes", "tlsroutes/status"});
    CHECK(good(decode_api_resource_names(R"({"kind":"APIResourceList"})")).empty());
    CHECK(bad(decode_api_group_versions(R"({"versions":[{"groupVersion":"x"}]})")) == "versions[0].version: missing");
}
