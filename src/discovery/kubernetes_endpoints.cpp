#include "src/discovery/kubernetes_endpoints.h"

#include "config/address.h"

#include <netinet/in.h>

#include <array>
#include <cstring>
#include <tuple>
#include <utility>

namespace passgate {
namespace {

// Worst to best: an address seen in several slices takes its best state.
enum class EndpointState { not_ready, serving_terminating, ready };

EndpointState endpoint_state(const kubernetes::EndpointConditions& conditions) {
    const bool ready = conditions.ready.value_or(true);
    const bool serving = conditions.serving.value_or(ready);
    const bool terminating = conditions.terminating.value_or(false);
    if (ready) return EndpointState::ready;
    if (serving && terminating) return EndpointState::serving_terminating;
    return EndpointState::not_ready;
}

// Orders endpoints by family, address bytes, then port: the result's order and the dedupe key.
using EndpointKey = std::tuple<int, std::array<unsigned char, 16>, std::uint16_t>;

EndpointKey endpoint_key(const config::Address& address) {
    std::array<unsigned char, 16> bytes{};
    if (address.family() == AF_INET) {
        const auto& sin = reinterpret_cast<const sockaddr_in&>(address.storage);
        std::memcpy(bytes.data(), &sin.sin_addr, sizeof(sin.sin_addr));
    } else {
        const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(address.storage);
        std::memcpy(bytes.data(), &sin6.sin6_addr, sizeof(sin6.sin6_addr));
    }
    return {address.family(), bytes, address.port()};
}

// An IP literal of the slice's family with the port; nullopt for anything else (a hostname, the
// other family, an unspecified address).
std::optional<config::Address> endpoint_address(const std::string& text, bool ipv6,
                                                std::uint16_t port) {
    if (text.empty() || text.find_first_of("[]") != std::string::npos) return std::nullopt;
    const std::string with_port = ipv6 ? "[" + text + "]:" + std::to_string(port)
                                       : text + ":" + std::to_string(port);
    auto address = config::parse_address(with_port);
    if (!address || address->is_unspecified()) return std::nullopt;
    if (address->family() != (ipv6 ? AF_INET6 : AF_INET)) return std::nullopt;
    return address;
}

std::string describe_port(const kubernetes::ServicePort& port) {
    std::string text = std::to_string(port.port);
    if (port.protocol != "TCP") text += "/" + port.protocol;
    if (!port.name.empty()) text += " (" + port.name + ")";
    return text;
}

std::string describe_wanted(const KubernetesServicePort& wanted) {
    if (const auto* number = std::get_if<std::uint16_t>(&wanted)) return std::to_string(*number);
    return "\"" + std::get<std::string>(wanted) + "\"";
}

// The Service's TCP port that `wanted` names, by number or by name.
const kubernetes::ServicePort* find_service_port(const kubernetes::Service& service,
                                                 const KubernetesServicePort& wanted) {
    for (const auto& port : service.ports) {
        if (port.protocol != "TCP") continue;
        const auto* number = std::get_if<std::uint16_t>(&wanted);
        if (number ? port.port == *number : port.name == std::get<std::string>(wanted)) return &port;
    }
    return nullptr;
}

// The target port number of the slice's TCP port named `name`, if it has one.
std::optional<std::uint16_t> slice_port(const kubernetes::EndpointSlice& slice,
                                        const std::string& name) {
    for (const auto& port : slice.ports) {
        if (port.name == name && port.protocol == "TCP" && port.port) return port.port;
    }
    return std::nullopt;
}

}  // namespace

KubernetesEndpointSelection select_kubernetes_endpoints(
    const std::optional<kubernetes::Service>& service, const KubernetesServicePort& service_port,
    const std::map<std::string, kubernetes::EndpointSlice>& slices,
    std::optional<std::uint32_t> max_connections) {
    KubernetesEndpointSelection selection;
    if (!service) {
        selection.error = "Service not found";
        return selection;
    }
    const std::string service_label =
        service->metadata.namespace_name + "/" + service->metadata.name;
    const kubernetes::ServicePort* port = find_service_port(*service, service_port);
    if (!port) {
        selection.error = "Service " + service_label + " has no port " +
                          describe_wanted(service_port) + "; its ports: ";
        if (service->ports.empty()) selection.error += "none";
        for (std::size_t i = 0; i < service->ports.size(); ++i) {
            if (i > 0) selection.error += ", ";
            selection.error += describe_port(service->ports[i]);
        }
        return selection;
    }

    std::map<EndpointKey, std::pair<config::Address, EndpointState>> seen;
    for (const auto& [slice_name, slice] : slices) {
        if (slice.metadata.service_name_label != service->metadata.name) continue;
        if (slice.address_type == "FQDN") {
            selection.ignored_fqdn_slices.push_back(slice_name);
            continue;
        }
        if (slice.address_type != "IPv4" && slice.address_type != "IPv6") continue;
        const auto target_port = slice_port(slice, port->name);
        if (!target_port) continue;
        for (const auto& endpoint : slice.endpoints) {
            const EndpointState state = endpoint_state(endpoint.conditions);
            for (const auto& text : endpoint.addresses) {
                const auto address =
                    endpoint_address(text, slice.address_type == "IPv6", *target_port);
                if (!address) {
                    ++selection.invalid_addresses;
                    continue;
                }
                auto [entry, inserted] = seen.try_emplace(endpoint_key(*address), *address, state);
                if (!inserted && state > entry->second.second) entry->second.second = state;
            }
        }
    }

    for (const auto& [key, entry] : seen) {
        switch (entry.second) {
            case EndpointState::ready: ++selection.ready; break;
            case EndpointState::serving_terminating: ++selection.serving_terminating; break;
            case EndpointState::not_ready: ++selection.not_ready; break;
        }
    }
    const EndpointState used =
        selection.ready > 0 ? EndpointState::ready : EndpointState::serving_terminating;
    selection.using_terminating = selection.ready == 0 && selection.serving_terminating > 0;
    for (const auto& [key, entry] : seen) {
        if (entry.second == used) {
            selection.endpoints.push_back(DiscoveredEndpoint{entry.first, 1, max_connections});
        }
    }
    return selection;
}

}  // namespace passgate
