#include "src/control/admin_views.h"

#include "config/config_json.h"

#include <algorithm>

namespace passgate {

namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json or_null(const std::optional<T>& value) {
    return value ? Json(*value) : Json(nullptr);
}

const char* balance_name(config::Balance balance) {
    switch (balance) {
        case config::Balance::round_robin: return "round_robin";
        case config::Balance::least_connections: return "least_connections";
        case config::Balance::random_two: return "random_two";
        case config::Balance::maglev: return "maglev";
    }
    return "round_robin";
}

// The workers' shards of one endpoint's live cells: open connections summed, and how many
// workers eject it now.
struct LiveTotals {
    std::uint64_t open = 0;
    unsigned ejected_workers = 0;
};

LiveTotals live_totals(const LiveEndpoint& endpoint, unsigned workers, std::int64_t now_ms) {
    LiveTotals totals;
    const metrics::ShardedCells* live = endpoint.live.get();
    if (live == nullptr) return totals;
    const std::size_t shards = std::min<std::size_t>(live->shards(), workers);
    for (std::size_t shard = 0; shard < shards; ++shard) {
        totals.open += live->load(shard, EndpointLiveCell::open);
        const std::uint64_t until = live->load(shard, EndpointLiveCell::ejected_until_ms);
        if (until != 0 && static_cast<std::int64_t>(until) > now_ms) ++totals.ejected_workers;
    }
    return totals;
}

Json endpoint_json(const LiveEndpoint& endpoint, bool health_checked, unsigned workers, std::int64_t now_ms) {
    const LiveTotals totals = live_totals(endpoint, workers, now_ms);
    Json out;
    out["address"] = endpoint.name;
    out["weight"] = endpoint.weight;
    out["max_connections"] = or_null(endpoint.max_connections);
    out["health"] = !health_checked ? "unchecked" : endpoint.healthy ? "healthy" : "unhealthy";
    out["ejected_workers"] = totals.ejected_workers;
    out["workers"] = workers;
    out["open_connections"] = totals.open;
    out["last_change"] = endpoint.last_change;
    return out;
}

}  // namespace

Json config_view(const config::Config& config, double loaded_at) {
    Json out;
    out["source"] = config.source;
    out["hash"] = config.source_hash;
    out["loaded_at"] = loaded_at;
    out["config"] = config::effective_config_json(config);
    return out;
}

Json listeners_view(const Snapshot& snapshot, unsigned workers, std::uint32_t max_connections_per_worker) {
    const config::Config& config = snapshot.config();
    Json listeners = Json::array();
    for (std::size_t index = 0; index < config.listeners.size(); ++index) {
        const config::Listener& listener = config.listeners[index];
        Json routes = Json::array();
        for (const config::Route& route : config.routes)
            if (std::find(route.listeners.begin(), route.listeners.end(), listener.name) != route.listeners.end())
                routes.push_back(route.name);
        Json item;
        item["name"] = listener.name;
        item["address"] = listener.address.to_string();
        item["hostname"] = or_null(listener.hostname);
        // Exact: every admitted connection is counted here until it closes (src/proxy/admission.h).
        item["open_connections"] = snapshot.listener_counters(index).open.load(std::memory_order_relaxed);
        item["max_connections"] = or_null(listener.max_connections);
        item["max_connection_rate"] = or_null(listener.max_connection_rate);
        item["max_client_hello_size"] = listener.max_client_hello_size;
        item["client_hello_timeout"] = config::duration_text(listener.client_hello_timeout);
        item["idle_timeout"] = config::duration_text(listener.idle_timeout);
        item["routes"] = std::move(routes);
        listeners.push_back(std::move(item));
    }
    Json out;
    out["listeners"] = std::move(listeners);
    out["workers"] = workers;
    out["max_connections_per_worker"] = max_connections_per_worker;
    return out;
}

Json endpoints_view(const std::vector<ServiceEndpoints>& services, unsigned workers, std::int64_t now_ms) {
    Json list = Json::array();
    for (const ServiceEndpoints& entry : services) {
        const config::Service& service = *entry.service;
        const std::string source = config::describe_discovery(service);
        Json endpoints = Json::array();
        if (entry.set)
            for (const LiveEndpoint& endpoint : entry.set->endpoints)
                endpoints.push_back(endpoint_json(endpoint, service.health_check.has_value(), workers, now_ms));
        Json item;
        item["name"] = service.name;
        item["source"] = source.empty() ? "static" : source;
        item["balance"] = balance_name(service.balance);
        item["health_check"] = service.health_check.has_value();
        item["last_update"] = or_null(entry.last_update);
        item["endpoints"] = std::move(endpoints);
        list.push_back(std::move(item));
    }
    Json out;
    out["services"] = std::move(list);
    return out;
}

}  // namespace passgate
