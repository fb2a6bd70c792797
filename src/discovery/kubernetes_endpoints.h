#pragma once
// From a Kubernetes Service and its EndpointSlices to the endpoints passgate balances over: the
// pure decision, kept apart from the watch that feeds it (kubernetes_watch.h) so that it is
// tested exhaustively.
//
// The rules (the API's documented consumer rules, and kube-proxy's):
// - `service_port` names a port of the Service as a Gateway API backendRef does: its number
//   (spec.ports[].port) or its name. That port's name (possibly "") is then looked up in each
//   slice's ports (slices may map the same name to different target port numbers). A slice
//   without a port of that name (or whose port has no number, or is not TCP) contributes nothing.
// - Only slices labelled kubernetes.io/service-name=<the Service> count (the caller lists by that
//   label; this is checked again). addressType IPv4 and IPv6 are used; FQDN slices are ignored
//   and reported in `ignored_fqdn_slices` (the caller warns once); other addressTypes are ignored.
// - `service_port` matches TCP ports of the Service only (a UDP port of the same number is not it).
// - An address that is not an IP literal of the slice's addressType (or is 0.0.0.0 / ::) is
//   skipped and counted in `invalid_addresses` (not in `not_ready`: it is the data that is wrong).
// - Conditions: ready (unset = true) endpoints get new connections. serving (unset = ready) and
//   terminating ones get none while any endpoint is ready; when none is ready, the serving and
//   terminating ones are used (kube-proxy's fallback, so a rolling update of a Service with one
//   pod does not refuse connections while the old pod drains). Not ready and not serving:
//   excluded. Established connections are never touched by any of this.
// - An address and port present in several slices (or twice in one) counts once; the result is
//   sorted by address then port, so equal inputs give equal outputs whatever the slice order.
//   Listed with different conditions (an endpoint moving between slices), it takes its best
//   state: ready, then serving + terminating, then not ready.

#include "src/wire/discovered_endpoint.h"
#include "src/wire/kubernetes_objects.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace passgate {

using KubernetesServicePort = std::variant<std::uint16_t, std::string>;  // number or name

struct KubernetesEndpointSelection {
    DiscoveredEndpoints endpoints;  // what gets new connections (weight 1 each)
    std::size_t ready = 0;                // distinct ready endpoints seen
    std::size_t serving_terminating = 0;  // distinct serving + terminating endpoints seen
    std::size_t not_ready = 0;            // distinct excluded endpoints seen
    bool using_terminating = false;       // none ready: the serving + terminating ones are used
    std::size_t invalid_addresses = 0;    // addresses skipped: not an IP literal of the slice's type
    std::vector<std::string> ignored_fqdn_slices;  // names of FQDN slices
    // Non-empty when the Service cannot be used: not found (nullopt), or no such port
    // ("Service default/echo has no port 444; its ports: 443 (https)"). endpoints is then empty.
    std::string error;
};

// `slices`: the Service's current slices by name. `max_connections` goes on every endpoint.
KubernetesEndpointSelection select_kubernetes_endpoints(
    const std::optional<kubernetes::Service>& service, const KubernetesServicePort& service_port,
    const std::map<std::string, kubernetes::EndpointSlice>& slices,
    std::optional<std::uint32_t> max_connections);

}  // namespace passgate
