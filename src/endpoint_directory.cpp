#include "src/endpoint_directory.h"

#include "src/log.h"

#include <algorithm>
#include <ctime>
#include <set>
#include <stdexcept>

namespace passgate {

namespace {

bool same_endpoints(const std::vector<config::Endpoint>& a, const std::vector<config::Endpoint>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const config::Endpoint& x, const config::Endpoint& y) {
                          return x.address == y.address && x.weight == y.weight &&
                                 x.max_connections == y.max_connections;
                      });
}

// Same source with the same parameters: the followed service (and what it found) carries over.
bool same_discovery(const config::Service& a, const config::Service& b) {
    return a.discovery == b.discovery && same_endpoints(a.endpoints, b.endpoints) &&
           a.dns_name == b.dns_name && a.port == b.port && a.dns_min_ttl == b.dns_min_ttl &&
           a.dns_max_ttl == b.dns_max_ttl && a.endpoints_file == b.endpoints_file &&
           a.endpoint_max_connections == b.endpoint_max_connections;
}

DiscoveredEndpoints static_endpoints(const config::Service& service) {
    DiscoveredEndpoints out;
    for (const config::Endpoint& endpoint : service.endpoints)
        out.push_back(DiscoveredEndpoint{endpoint.address, endpoint.weight, endpoint.max_connections});
    return out;
}

}  // namespace

struct EndpointDirectory::Service {
    Service(EndpointDirectory& directory_, config::Service spec_)
        : directory(directory_), spec(std::move(spec_)) {}

    EndpointDirectory& directory;
    config::Service spec;
    DiscoveredEndpoints discovered;  // the last good set its source gave
    bool settled = true;             // false until a DNS service's first answer or failure
    std::shared_ptr<const EndpointSet> set;
    std::set<std::string> shown;  // endpoint names whose series are shown now

    // Maglev table of the last set, reused while the names and weights stay the same (health
    // changes do not rebuild it).
    std::shared_ptr<const MaglevTable> maglev;
    std::vector<std::string> maglev_names;
    std::vector<std::uint32_t> maglev_weights;

    bool healthy(const config::Address&) const { return true; }

    // Start following: a static list is known now; other sources report later.
    void start() {
        if (spec.discovery == config::Discovery::static_list) discovered = static_endpoints(spec);
    }
};

EndpointDirectory::EndpointDirectory(reactor::Loop& loop, AppMetrics& metrics, Publish publish)
    : loop_(loop), metrics_(metrics), publish_(std::move(publish)) {}

EndpointDirectory::~EndpointDirectory() = default;

std::vector<std::shared_ptr<const EndpointSet>> EndpointDirectory::follow(const config::Config& config) {
    // Prepare everything first (this is what can fail), then swap in: a failure changes nothing.
    std::map<std::string, std::unique_ptr<Service>> next;
    for (const config::Service& spec : config.services) {
        auto kept = services_.find(spec.name);
        if (kept != services_.end() && same_discovery(kept->second->spec, spec)) {
            next.emplace(spec.name, nullptr);  // moved over below, once nothing can fail
            continue;
        }
        auto service = std::make_unique<Service>(*this, spec);
        service->start();
        next.emplace(spec.name, std::move(service));
    }
    std::vector<std::shared_ptr<const EndpointSet>> sets;
    for (const config::Service& spec : config.services) {
        std::unique_ptr<Service>& slot = next[spec.name];
        if (!slot) {
            slot = std::move(services_[spec.name]);
            slot->spec = spec;  // balance and health settings may have changed
        }
        slot->set = build_set(*slot);
        sets.push_back(slot->set);
    }
    // Services that are gone: hide their endpoint series.
    for (auto& [name, service] : services_) {
        if (!service || next.count(name) != 0) continue;
        for (const std::string& endpoint : service->shown) metrics_.endpoint_healthy.remove({name, endpoint});
        metrics_.service_endpoints.remove({name});
    }
    services_ = std::move(next);
    return sets;
}

bool EndpointDirectory::settled() const {
    return std::all_of(services_.begin(), services_.end(),
                       [](const auto& entry) { return entry.second->settled; });
}

void EndpointDirectory::changed(Service& service) {
    service.set = build_set(service);
    publish_({service.set});
}

std::shared_ptr<const EndpointSet> EndpointDirectory::build_set(Service& service) {
    const std::size_t control = metrics_.control_shard();
    auto set = std::make_shared<EndpointSet>();
    set->service = service.spec.name;
    set->version = ++next_version_;
    for (const DiscoveredEndpoint& found : service.discovered) {
        LiveEndpoint endpoint;
        endpoint.address = found.address;
        endpoint.name = found.address.to_string();
        endpoint.weight = found.weight;
        endpoint.max_connections = found.max_connections;
        endpoint.healthy = service.healthy(found.address);
        endpoint.metrics = EndpointMetrics(metrics_, service.spec.name, endpoint.name);
        set->endpoints.push_back(std::move(endpoint));
    }
    std::sort(set->endpoints.begin(), set->endpoints.end(),
              [](const LiveEndpoint& a, const LiveEndpoint& b) { return a.name < b.name; });

    std::set<std::string> shown;
    for (const LiveEndpoint& endpoint : set->endpoints) {
        metrics_.endpoint_healthy.with({service.spec.name, endpoint.name})
            .set(control, endpoint.healthy ? 1 : 0);
        shown.insert(endpoint.name);
    }
    for (const std::string& gone : service.shown) {
        if (shown.count(gone) != 0) continue;
        metrics_.endpoint_healthy.remove({service.spec.name, gone});
        metrics_.upstream_connections.remove({service.spec.name, gone});
        metrics_.endpoint_ejections.remove({service.spec.name, gone});
        for (std::size_t reason = 0; reason < static_cast<std::size_t>(ConnectFailure::count); ++reason)
            metrics_.upstream_connect_failures.remove(
                {service.spec.name, gone, std::string(connect_failure_name(static_cast<ConnectFailure>(reason)))});
    }
    service.shown = std::move(shown);
    metrics_.service_endpoints.with({service.spec.name}).set(control, static_cast<double>(set->endpoints.size()));

    if (service.spec.balance == config::Balance::maglev && !set->endpoints.empty()) {
        std::vector<std::string> names;
        std::vector<std::uint32_t> weights;
        for (const LiveEndpoint& endpoint : set->endpoints) {
            names.push_back(endpoint.name);
            weights.push_back(endpoint.weight);
        }
        if (!service.maglev || names != service.maglev_names || weights != service.maglev_weights) {
            service.maglev = std::make_shared<const MaglevTable>(names, weights);
            service.maglev_names = std::move(names);
            service.maglev_weights = std::move(weights);
        }
        set->maglev = service.maglev;
    }
    return set;
}

}  // namespace passgate
