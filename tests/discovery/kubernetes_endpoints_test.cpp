#include "src/discovery/kubernetes_endpoints.h"

#include <catch2/catch.hpp>

#include <netinet/in.h>

#include <algorithm>
#include <tuple>
#include <random>
#include <string>
#include <vector>

using passgate::KubernetesEndpointSelection;
using passgate::KubernetesServicePort;
using passgate::select_kubernetes_endpoints;
using namespace passgate::kubernetes;

namespace {

using Slices = std::map<std::string, EndpointSlice>;

// The Envoy Gateway TLS passthrough guide's Service: port 443 "https" -> targetPort 8443.
constexpr std::string_view kGuideService = R"json({
  "kind": "Service", "apiVersion": "v1",
  "metadata": {"name": "passthrough-echoserver", "namespace": "default", "resourceVersion": "1042",
               "labels": {"run": "passthrough-echoserver"}},
  "spec": {"ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}],
           "selector": {"app": "passthrough-echoserver"}, "clusterIP": "10.96.120.7", "type": "ClusterIP"}
})json";

// Its slice during a rolling update: one ready pod, one terminating (still serving).
constexpr std::string_view kGuideSlice = R"json({
  "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
  "metadata": {"name": "passthrough-echoserver-7x2kq", "namespace": "default", "resourceVersion": "1077",
               "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                          "kubernetes.io/service-name": "passthrough-echoserver"}},
  "addressType": "IPv4",
  "endpoints": [
    {"addresses": ["10.244.1.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
     "targetRef": {"kind": "Pod", "namespace": "default", "name": "passthrough-echoserver-6d9f-abcde"},
     "nodeName": "node-1", "zone": "us-west2-a"},
    {"addresses": ["10.244.2.9"], "conditions": {"ready": false, "serving": true, "terminating": true},
     "targetRef": {"kind": "Pod", "namespace": "default", "name": "passthrough-echoserver-6d9f-fghij"},
     "nodeName": "node-2"}
  ],
  "ports": [{"name": "https", "protocol": "TCP", "port": 8443}]
})json";

Service decode_service_text(std::string_view text) {
    const auto decoded = decode_service(text);
    INFO(decoded.error);
    REQUIRE(decoded.ok());
    return *decoded.value;
}

EndpointSlice decode_slice_text(std::string_view text) {
    const auto decoded =
        decode_endpoint_slice_event(R"({"type":"ADDED","object":)" + std::string(text) + "}");
    INFO(decoded.error);
    REQUIRE(decoded.ok());
    return std::get<EndpointSlice>(decoded.value->object);
}

Service make_service(const std::string& name, std::vector<ServicePort> ports) {
    Service service;
    service.metadata.name = name;
    service.metadata.namespace_name = "default";
    service.ports = std::move(ports);
    return service;
}

ServicePort service_port(const std::string& name, std::uint16_t number,
                         const std::string& protocol = "TCP") {
    ServicePort port;
    port.name = name;
    port.port = number;
    port.protocol = protocol;
    return port;
}

Endpoint endpoint(std::vector<std::string> addresses, std::optional<bool> ready = std::nullopt,
                  std::optional<bool> serving = std::nullopt,
                  std::optional<bool> terminating = std::nullopt) {
    Endpoint result;
    result.addresses = std::move(addresses);
    result.conditions = {ready, serving, terminating};
    return result;
}

EndpointSlice make_slice(const std::string& name, const std::string& service, std::vector<Endpoint> endpoints,
                         std::vector<EndpointPort> ports, const std::string& address_type = "IPv4") {
    EndpointSlice slice;
    slice.metadata.name = name;
    slice.metadata.service_name_label = service;
    slice.address_type = address_type;
    slice.endpoints = std::move(endpoints);
    slice.ports = std::move(ports);
    return slice;
}

EndpointPort endpoint_port(const std::string& name, std::optional<std::uint16_t> number,
                           const std::string& protocol = "TCP") {
    return EndpointPort{name, protocol, number};
}

Slices by_name(std::vector<EndpointSlice> slices) {
    Slices map;
    for (auto& slice : slices) {
        const std::string name = slice.metadata.name;
        map.emplace(name, std::move(slice));
    }
    return map;
}

std::vector<std::string> addresses_of(const KubernetesEndpointSelection& selection) {
    std::vector<std::string> text;
    for (const auto& discovered : selection.endpoints) text.push_back(discovered.address.to_string());
    return text;
}

KubernetesEndpointSelection select(const Service& service, const KubernetesServicePort& port,
                                   const Slices& slices) {
    return select_kubernetes_endpoints(service, port, slices, std::nullopt);
}

// By family, then address bytes, then port.
bool address_less(const passgate::DiscoveredEndpoint& a, const passgate::DiscoveredEndpoint& b) {
    auto bytes = [](const passgate::config::Address& address) {
        std::string raw;
        if (address.family() == AF_INET) {
            const auto& sin = reinterpret_cast<const sockaddr_in&>(address.storage);
            raw.assign(reinterpret_cast<const char*>(&sin.sin_addr), sizeof(sin.sin_addr));
        } else {
            const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(address.storage);
            raw.assign(reinterpret_cast<const char*>(&sin6.sin6_addr), sizeof(sin6.sin6_addr));
        }
        return raw;
    };
    return std::make_tuple(a.address.family(), bytes(a.address), a.address.port()) <
           std::make_tuple(b.address.family(), bytes(b.address), b.address.port());
}

}  // namespace

TEST_CASE("kubernetes endpoints: the guide's Service by port number and by port name",
          "[kubernetes_endpoints]") {
    const Service service = decode_service_text(kGuideService);
    const EndpointSlice slice = decode_slice_text(kGuideSlice);
    const Slices slices{{slice.metadata.name, slice}};
    for (const KubernetesServicePort& port : {KubernetesServicePort(std::uint16_t{443}),
                                              KubernetesServicePort(std::string("https"))}) {
        const KubernetesEndpointSelection selection =
            select_kubernetes_endpoints(service, port, slices, 100u);
        INFO(selection.error);
        CHECK(selection.error.empty());
        // The terminating pod gets no new connections while one is ready.
        CHECK(addresses_of(selection) == std::vector<std::string>{"10.244.1.5:8443"});
        CHECK(selection.ready == 1);
        CHECK(selection.serving_terminating == 1);
        CHECK(selection.not_ready == 0);
        CHECK_FALSE(selection.using_terminating);
        REQUIRE(selection.endpoints.size() == 1);
        CHECK(selection.endpoints[0].weight == 1);
        CHECK(selection.endpoints[0].max_connections == std::optional<std::uint32_t>(100));
    }
}

TEST_CASE("kubernetes endpoints: none ready: the serving terminating ones are used",
          "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443)});
    const Slices slices = by_name({make_slice(
        "echo-a", "echo",
        {endpoint({"10.0.0.1"}, false, true, true),    // serving + terminating: the fallback
         endpoint({"10.0.0.2"}, false, false, true),   // terminating, no longer serving
         endpoint({"10.0.0.3"}, false, std::nullopt, true),  // serving unset = ready = false
         endpoint({"10.0.0.4"}, false)},               // starting
        {endpoint_port("https", 8443)})});
    const auto selection = select(service, std::uint16_t{443}, slices);
    CHECK(addresses_of(selection) == std::vector<std::string>{"10.0.0.1:8443"});
    CHECK(selection.using_terminating);
    CHECK(selection.ready == 0);
    CHECK(selection.serving_terminating == 1);
    CHECK(selection.not_ready == 3);

    // Serving but not terminating (not ready for another reason) is no fallback.
    const auto not_terminating = select(
        service, std::uint16_t{443},
        by_name({make_slice("echo-a", "echo", {endpoint({"10.0.0.1"}, false, true, false)},
                            {endpoint_port("https", 8443)})}));
    CHECK(not_terminating.endpoints.empty());
    CHECK_FALSE(not_terminating.using_terminating);
    CHECK(not_terminating.not_ready == 1);
}

TEST_CASE("kubernetes endpoints: unset conditions mean ready", "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443)});
    const auto selection = select(
        service, std::string("https"),
        by_name({make_slice("echo-a", "echo", {endpoint({"10.0.0.1"}), endpoint({"10.0.0.2"}, true, std::nullopt, true)},
                            {endpoint_port("https", 8443)})}));
    // ready wins over terminating (publishNotReadyAddresses), as kube-proxy reads it.
    CHECK(addresses_of(selection) == std::vector<std::string>{"10.0.0.1:8443", "10.0.0.2:8443"});
    CHECK(selection.ready == 2);
}

TEST_CASE("kubernetes endpoints: an address in several slices counts once, at its best state",
          "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443)});
    const auto selection = select(
        service, std::uint16_t{443},
        by_name({make_slice("echo-a", "echo", {endpoint({"10.0.0.1", "10.0.0.1"}), endpoint({"10.0.0.2"}, false)},
                            {endpoint_port("https", 8443)}),
                 make_slice("echo-b", "echo", {endpoint({"10.0.0.1"}), endpoint({"10.0.0.2"}, true)},
                            {endpoint_port("https", 8443)})}));
    CHECK(addresses_of(selection) == std::vector<std::string>{"10.0.0.1:8443", "10.0.0.2:8443"});
    CHECK(selection.ready == 2);
    CHECK(selection.not_ready == 0);
}

TEST_CASE("kubernetes endpoints: slices map the same port name to different target ports",
          "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443), service_port("metrics", 9090)});
    const auto selection = select(
        service, std::string("https"),
        by_name({make_slice("echo-old", "echo", {endpoint({"10.0.0.1"})},
                            {endpoint_port("metrics", 9100), endpoint_port("https", 8443)}),
                 make_slice("echo-new", "echo", {endpoint({"10.0.0.1"}), endpoint({"10.0.0.2"})},
                            {endpoint_port("https", 9443)})}));
    // Same address, two target ports: two endpoints.
    CHECK(addresses_of(selection) ==
          std::vector<std::string>{"10.0.0.1:8443", "10.0.0.1:9443", "10.0.0.2:9443"});
}

TEST_CASE("kubernetes endpoints: a Service with one unnamed port", "[kubernetes_endpoints]") {
    const Service service = decode_service_text(
        R"({"metadata":{"name":"echo","namespace":"default"},"spec":{"ports":[{"port":80,"targetPort":8080}]}})");
    const EndpointSlice slice = decode_slice_text(
        R"({"metadata":{"name":"echo-abc","labels":{"kubernetes.io/service-name":"echo"}},"addressType":"IPv4",
            "endpoints":[{"addresses":["10.1.2.3"],"conditions":{"ready":true}}],"ports":[{"name":"","protocol":"TCP","port":8080}]})");
    const Slices slices{{slice.metadata.name, slice}};
    CHECK(addresses_of(select(service, std::uint16_t{80}, slices)) == std::vector<std::string>{"10.1.2.3:8080"});
    CHECK(addresses_of(select(service, std::string(""), slices)) == std::vector<std::string>{"10.1.2.3:8080"});
}

TEST_CASE("kubernetes endpoints: slice ports that do not fit contribute nothing", "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443)});
    const auto selection = select(
        service, std::uint16_t{443},
        by_name({make_slice("no-such-name", "echo", {endpoint({"10.0.0.1"})}, {endpoint_port("http", 8080)}),
                 make_slice("no-number", "echo", {endpoint({"10.0.0.2"})}, {endpoint_port("https", std::nullopt)}),
                 make_slice("udp", "echo", {endpoint({"10.0.0.3"})}, {endpoint_port("https", 8443, "UDP")}),
                 make_slice("no-ports", "echo", {endpoint({"10.0.0.4"})}, {}),
                 make_slice("good", "echo", {endpoint({"10.0.0.5"})}, {endpoint_port("https", 8443)})}));
    CHECK(addresses_of(selection) == std::vector<std::string>{"10.0.0.5:8443"});
    CHECK(selection.ready == 1);
}

TEST_CASE("kubernetes endpoints: slices of other Services are ignored", "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443)});
    EndpointSlice unlabelled = make_slice("unlabelled", "echo", {endpoint({"10.0.0.3"})}, {endpoint_port("https", 8443)});
    unlabelled.metadata.service_name_label.reset();
    const auto selection = select(
        service, std::uint16_t{443},
        by_name({make_slice("other", "echo-canary", {endpoint({"10.0.0.1"})}, {endpoint_port("https", 8443)}),
                 make_slice("mine", "echo", {endpoint({"10.0.0.2"})}, {endpoint_port("https", 8443)}),
                 unlabelled}));
    CHECK(addresses_of(selection) == std::vector<std::string>{"10.0.0.2:8443"});
    CHECK(selection.ready == 1);
}

TEST_CASE("kubernetes endpoints: IPv6 slices, FQDN slices, addresses that are no IP of the type",
          "[kubernetes_endpoints]") {
    const Service service = make_service("echo", {service_port("https", 443)});
    const auto selection = select(
        service, std::uint16_t{443},
        by_name({make_slice("echo-v6", "echo", {endpoint({"2001:db8::5", "10.0.0.9", "[::1]"}), endpoint({"::1"})},
                            {endpoint_port("https", 8443)}, "IPv6"),
                 make_slice("echo-v4", "echo",
                            {endpoint({"10.0.0.1", "::2", "0.0.0.0", "host.example", "10.0.0.1:80", "010.0.0.1", ""})},
                            {endpoint_port("https", 8443)}),
                 make_slice("echo-fqdn", "echo", {endpoint({"backend.example.com"})}, {endpoint_port("https", 443)}, "FQDN"),
                 make_slice("echo-future", "echo", {endpoint({"10.0.0.7"})}, {endpoint_port("https", 443)}, "IPv7")}));
    CHECK(addresses_of(selection) ==
          std::vector<std::string>{"10.0.0.1:8443", "[::1]:8443", "[2001:db8::5]:8443"});
    CHECK(selection.ignored_fqdn_slices == std::vector<std::string>{"echo-fqdn"});
    CHECK(selection.invalid_addresses == 8);
    CHECK(selection.ready == 3);
}

TEST_CASE("kubernetes endpoints: Service not found, port not found", "[kubernetes_endpoints]") {
    const Slices slices = by_name({make_slice("echo-a", "echo", {endpoint({"10.0.0.1"})}, {endpoint_port("https", 8443)})});
    const auto missing = select_kubernetes_endpoints(std::nullopt, std::uint16_t{443}, slices, std::nullopt);
    CHECK(missing.error == "Service not found");
    CHECK(missing.endpoints.empty());

    const Service service = decode_service_text(kGuideService);
    const auto no_number = select(service, std::uint16_t{444}, slices);
    CHECK(no_number.error == "Service default/passthrough-echoserver has no port 444; its ports: 443 (https)");
    CHECK(no_number.endpoints.empty());
    const auto no_name = select(service, std::string("http"), slices);
    CHECK(no_name.error == "Service default/passthrough-echoserver has no port \"http\"; its ports: 443 (https)");

    // A UDP port of that number is not it.
    const Service dns = make_service("dns", {service_port("dns", 53, "UDP"), service_port("", 8053)});
    CHECK(select(dns, std::uint16_t{53}, {}).error ==
          "Service default/dns has no port 53; its ports: 53/UDP (dns), 8053");
    CHECK(select(make_service("external", {}), std::uint16_t{53}, {}).error ==
          "Service default/external has no port 53; its ports: none");
}

TEST_CASE("kubernetes endpoints: the result does not depend on how endpoints fall into slices",
          "[kubernetes_endpoints]") {
    // Property: 200 random partitions of the same endpoints over slices with random names give the
    // same result, sorted by address then port.
    const Service service = make_service("echo", {service_port("https", 443)});
    std::vector<std::pair<std::string, Endpoint>> all;  // (address family, endpoint)
    for (int i = 0; i < 30; ++i) {
        const std::optional<bool> ready = i % 3 == 0 ? std::optional<bool>(false) : std::nullopt;
        all.push_back({"IPv4", endpoint({"10.0." + std::to_string(i % 4) + "." + std::to_string(250 - i)}, ready)});
        all.push_back({"IPv6", endpoint({"2001:db8::" + std::to_string(i % 7)}, ready)});
    }
    std::mt19937 random(15);
    std::optional<KubernetesEndpointSelection> first;
    for (int round = 0; round < 200; ++round) {
        std::shuffle(all.begin(), all.end(), random);
        Slices slices;
        for (const auto& [family, one] : all) {
            const std::string name = family + "-" + std::to_string(random() % 5);
            auto [entry, inserted] = slices.try_emplace(name, make_slice(name, "echo", {}, {endpoint_port("https", 8443)}, family));
            entry->second.endpoints.push_back(one);
        }
        const auto selection = select(service, std::uint16_t{443}, slices);
        if (!first) {
            first = selection;
            std::vector<std::string> sorted = addresses_of(selection);
            REQUIRE(sorted.size() == first->ready);
            CHECK(first->ready > 10);
            CHECK(first->not_ready > 0);
            CHECK(std::is_sorted(selection.endpoints.begin(), selection.endpoints.end(), address_less));
            continue;
        }
        CHECK(selection.endpoints == first->endpoints);
        CHECK(selection.ready == first->ready);
        CHECK(selection.not_ready == first->not_ready);
    }
}
