// libFuzzer target for the Kubernetes API object decoders (src/wire/kubernetes_objects.cpp) and
// the endpoint selection over what they decode (src/discovery/kubernetes_endpoints.cpp).
// Every decoder reads the whole input. When the input has a newline, the part before it is also
// read as a Service and the rest as an EndpointSlice list and as an EndpointSlice watch event,
// and the endpoints of that Service are selected from those slices.
// A crash, a hang, an exception, an error that is empty, long or holds a raw control character,
// a decoded value beyond the header's bounds, or a selection that breaks its promises (sorted,
// unique, the counts and the fallback as documented) is a bug.

#include "src/discovery/kubernetes_endpoints.h"
#include "src/wire/kubernetes_objects.h"

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>

namespace k8s = passgate::kubernetes;

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

template <typename T>
void check_shape(const k8s::Decoded<T>& decoded) {
    check(decoded.ok() == decoded.error.empty());
    if (decoded.ok()) return;
    // An error names a field and quotes at most 64 bytes, escaped.
    check(decoded.error.size() <= 400);
    for (const char c : decoded.error) check(static_cast<unsigned char>(c) >= 0x20);
}

void check_metadata(const k8s::ObjectMeta& metadata) {
    check(metadata.name.size() <= k8s::kMaxNameBytes);
    check(metadata.namespace_name.size() <= k8s::kMaxNameBytes);
    check(metadata.uid.size() <= k8s::kMaxNameBytes);
    check(metadata.resource_version.size() <= k8s::kMaxResourceVersionBytes);
    check(!metadata.service_name_label || metadata.service_name_label->size() <= k8s::kMaxNameBytes);
}

void check_service(const k8s::Service& service) {
    check_metadata(service.metadata);
    check(!service.metadata.name.empty());
    check(service.ports.size() <= k8s::kMaxPortsPerObject);
    for (const auto& port : service.ports) {
        check(port.port != 0);
        check(!port.protocol.empty() && port.name.size() <= k8s::kMaxNameBytes);
        if (const auto* number = std::get_if<std::uint16_t>(&port.target_port)) check(*number != 0);
    }
}

void check_slice(const k8s::EndpointSlice& slice) {
    check_metadata(slice.metadata);
    check(!slice.metadata.name.empty());
    check(slice.ports.size() <= k8s::kMaxPortsPerObject);
    check(slice.endpoints.size() <= k8s::kMaxEndpointsPerSlice);
    for (const auto& port : slice.ports) check(!port.port || *port.port != 0);
    for (const auto& endpoint : slice.endpoints) {
        check(endpoint.addresses.size() <= k8s::kMaxAddressesPerEndpoint);
        for (const auto& address : endpoint.addresses) check(address.size() <= k8s::kMaxNameBytes);
    }
}

template <typename Object>
void check_list(const k8s::List<Object>& list) {
    check(list.items.size() <= k8s::kMaxItems);
    check(list.resource_version.size() <= k8s::kMaxResourceVersionBytes);
    check(list.continue_token.size() <= k8s::kMaxContinueTokenBytes);
}

template <typename Object, typename CheckObject>
void check_event(const k8s::WatchEvent<Object>& event, CheckObject check_object) {
    check((event.type == k8s::EventType::error) == std::holds_alternative<k8s::Status>(event.object));
    if (event.type == k8s::EventType::bookmark) check(!event.resource_version.empty());
    if (event.type == k8s::EventType::error) {
        const auto& status = std::get<k8s::Status>(event.object);
        check(status.code >= 0 && status.code <= 999);
        check(status.message.size() <= k8s::kMaxStatusTextBytes + 3);
    } else if (event.type != k8s::EventType::bookmark) {
        check_object(std::get<Object>(event.object));
    }
}

std::tuple<int, std::string, std::uint16_t> sort_key(const passgate::config::Address& address) {
    std::string bytes;
    if (address.family() == AF_INET) {
        const auto& sin = reinterpret_cast<const sockaddr_in&>(address.storage);
        bytes.assign(reinterpret_cast<const char*>(&sin.sin_addr), sizeof(sin.sin_addr));
    } else {
        const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(address.storage);
        bytes.assign(reinterpret_cast<const char*>(&sin6.sin6_addr), sizeof(sin6.sin6_addr));
    }
    return {address.family(), bytes, address.port()};
}

void check_selection(const passgate::KubernetesEndpointSelection& selection) {
    if (!selection.error.empty()) {
        check(selection.endpoints.empty());
        return;
    }
    check(selection.using_terminating == (selection.ready == 0 && selection.serving_terminating > 0));
    check(selection.endpoints.size() ==
          (selection.ready > 0 ? selection.ready : selection.serving_terminating));
    for (std::size_t i = 0; i < selection.endpoints.size(); ++i) {
        const auto& endpoint = selection.endpoints[i];
        check(endpoint.address.family() == AF_INET || endpoint.address.family() == AF_INET6);
        check(endpoint.address.port() != 0 && !endpoint.address.is_unspecified());
        check(endpoint.weight == 1 && endpoint.max_connections == std::optional<std::uint32_t>(7));
        if (i > 0) check(sort_key(selection.endpoints[i - 1].address) < sort_key(endpoint.address));
    }
}

void select_from(const k8s::Service& service, const std::map<std::string, k8s::EndpointSlice>& slices) {
    std::vector<passgate::KubernetesServicePort> ports = {std::uint16_t{443}, std::string("https")};
    for (const auto& port : service.ports) {
        ports.emplace_back(port.port);
        ports.emplace_back(port.name);
    }
    for (const auto& port : ports) {
        check_selection(passgate::select_kubernetes_endpoints(service, port, slices, 7u));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const auto service = k8s::decode_service(text);
    check_shape(service);
    if (service.ok()) check_service(*service.value);
    const auto service_list = k8s::decode_service_list(text);
    check_shape(service_list);
    if (service_list.ok()) {
        check_list(*service_list.value);
        for (const auto& item : service_list.value->items) check_service(item);
    }
    const auto slice_list = k8s::decode_endpoint_slice_list(text);
    check_shape(slice_list);
    if (slice_list.ok()) {
        check_list(*slice_list.value);
        for (const auto& item : slice_list.value->items) check_slice(item);
    }
    const auto slice_event = k8s::decode_endpoint_slice_event(text);
    check_shape(slice_event);
    if (slice_event.ok()) check_event(*slice_event.value, check_slice);
    const auto service_event = k8s::decode_service_event(text);
    check_shape(service_event);
    if (service_event.ok()) check_event(*service_event.value, check_service);
    const auto status = k8s::decode_status(text);
    check_shape(status);
    // The generic collection's decoders: items and event objects kept as JSON, each then decoded
    // as a Service and as an EndpointSlice; API discovery answers.
    auto check_json_object = [](const k8s::JsonObject& object) {
        check_metadata(object.metadata);
        check(!object.metadata.name.empty() && object.json.is_object());
        const auto as_service = k8s::decode_service_object(object.json);
        check_shape(as_service);
        if (as_service.ok()) check_service(*as_service.value);
        const auto as_slice = k8s::decode_endpoint_slice_object(object.json);
        check_shape(as_slice);
        if (as_slice.ok()) check_slice(*as_slice.value);
    };
    const auto json_object = k8s::decode_json_object(text);
    check_shape(json_object);
    if (json_object.ok()) check_json_object(*json_object.value);
    const auto json_list = k8s::decode_json_object_list(text);
    check_shape(json_list);
    if (json_list.ok()) {
        check_list(*json_list.value);
        for (const auto& item : json_list.value->items) check_json_object(item);
    }
    const auto json_event = k8s::decode_json_object_event(text);
    check_shape(json_event);
    if (json_event.ok()) check_event(*json_event.value, check_json_object);
    for (const auto& names : {k8s::decode_api_group_versions(text), k8s::decode_api_resource_names(text)}) {
        check_shape(names);
        if (names.ok()) {
            check(names.value->size() <= 1000);
            for (const auto& name : *names.value) check(name.size() <= k8s::kMaxNameBytes);
        }
    }

    const std::size_t newline = text.find('\n');
    if (newline == std::string_view::npos) return 0;
    const auto head = k8s::decode_service(text.substr(0, newline));
    check_shape(head);
    if (!head.ok()) return 0;
    std::map<std::string, k8s::EndpointSlice> slices;
    const std::string_view rest = text.substr(newline + 1);
    const auto rest_list = k8s::decode_endpoint_slice_list(rest);
    check_shape(rest_list);
    if (rest_list.ok()) {
        for (const auto& item : rest_list.value->items) slices.emplace(item.metadata.name, item);
    }
    const auto rest_event = k8s::decode_endpoint_slice_event(rest);
    check_shape(rest_event);
    if (rest_event.ok() && std::holds_alternative<k8s::EndpointSlice>(rest_event.value->object)) {
        const auto& slice = std::get<k8s::EndpointSlice>(rest_event.value->object);
        slices.emplace(slice.metadata.name, slice);
    }
    select_from(*head.value, slices);
    check_selection(passgate::select_kubernetes_endpoints(std::nullopt, std::uint16_t{443}, slices, 7u));
    return 0;
}
