#pragma once
// One endpoint of a service as a discovery source reports it (static list, DNS answer, endpoints
// file). Sources produce whole sets of these; the control plane turns a set into the immutable
// endpoint snapshot that workers balance over.

#include "config/address.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace passgate {

struct DiscoveredEndpoint {
    config::Address address;
    std::uint32_t weight = 1;                      // 0: never picked
    std::optional<std::uint32_t> max_connections;  // open connections to it at once (all workers)

    friend bool operator==(const DiscoveredEndpoint&, const DiscoveredEndpoint&) = default;
};

using DiscoveredEndpoints = std::vector<DiscoveredEndpoint>;

}  // namespace passgate
