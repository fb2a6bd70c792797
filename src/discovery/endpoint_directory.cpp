#include "src/discovery/endpoint_directory.h"

#include "reactor/file_watch.h"
#include "src/discovery/dns_resolver.h"
#include "src/wire/endpoints_file.h"
#include "src/discovery/endpoints_file_reader.h"
#include "src/discovery/health_check.h"
#include "src/discovery/http_client.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/discovery/kubernetes_endpoints.h"
#include "src/discovery/kubernetes_watch.h"
#include "src/observe/log.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
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
           a.endpoint_max_connections == b.endpoint_max_connections && a.kubernetes == b.kubernetes;
}

HealthCheckOptions health_options(const config::HealthCheck& check) {
    HealthCheckOptions options;
    options.interval = check.interval;
    options.timeout = check.timeout;
    options.healthy_threshold = check.healthy_threshold;
    options.unhealthy_threshold = check.unhealthy_threshold;
    options.kind = check.kind == config::HealthCheck::Kind::tls ? HealthCheckKind::tls : HealthCheckKind::tcp;
    options.sni = check.sni;
    return options;
}

DnsResolverOptions resolver_options(const config::Dns& dns) {
    DnsResolverOptions options;
    for (const config::Address& server : dns.servers) options.servers.push_back(server.to_string());
    options.timeout = dns.timeout;
    options.tries = static_cast<int>(dns.tries);
    return options;
}

bool same_dns(const config::Dns& a, const config::Dns& b) {
    return a.servers == b.servers && a.timeout == b.timeout && a.tries == b.tries;
}

// The watch a Kubernetes service uses: one per namespace and Service.
std::string kubernetes_key(const config::Service& service) {
    return service.kubernetes ? service.kubernetes->namespace_name + "/" + service.kubernetes->service : std::string();
}

std::string describe_port(const config::KubernetesBackend& backend) {
    if (const auto* number = std::get_if<std::uint16_t>(&backend.port)) return std::to_string(*number);
    return std::get<std::string>(backend.port);
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
    ~Service() { *alive = false; }

    EndpointDirectory& directory;
    config::Service spec;
    DiscoveredEndpoints discovered;  // the last good set its source gave
    bool settled = true;             // false until a DNS service's first answer or failure
    std::shared_ptr<const EndpointSet> set;
    std::set<std::string> shown;  // endpoint names whose series are shown now
    std::optional<double> last_update;  // unix seconds: when `set` last differed from the one before

    // Maglev table of the last set, reused while the names and weights stay the same (health
    // changes do not rebuild it).
    std::shared_ptr<const MaglevTable> maglev;
    std::vector<std::string> maglev_names;
    std::vector<std::uint32_t> maglev_weights;

    std::unique_ptr<HealthChecker> health;
    reactor::Millis last_local_error_log_ = -1'000'000;
    std::unique_ptr<reactor::FileWatch> file_watch;
    // DNS: one lookup at a time; the next one when the answer's TTL runs out.
    bool lookup_in_flight = false;
    std::string last_error;  // the failure logged last (repeats are not logged again)
    // DNS callbacks may outlive the service (a reload removed it): they check this first.
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
    // Kubernetes: what was logged last, so that a state is logged once.
    std::set<std::string> warned_fqdn_slices;
    bool using_terminating = false;
    // The "N endpoints (was M)" line: at most one a second (a Service that churns changes many
    // times a second); changes in between are summed up in the next line, at most a second later.
    reactor::Millis last_count_log = -1'000'000;
    std::size_t counts_not_logged = 0;
    std::size_t count_before_unlogged = 0;

    void log_endpoint_count(std::size_t now_count) {
        if (counts_not_logged == 0) count_before_unlogged = discovered.size();
        ++counts_not_logged;
        const reactor::Millis next = last_count_log + 1000;
        if (directory.loop_.now() < next) {
            directory.loop_.arm_timer(count_log_timer, next);
            return;
        }
        write_count_log(now_count);
    }

    void flush_count_log() { write_count_log(discovered.size()); }

    void write_count_log(std::size_t now_count) {
        if (counts_not_logged == 0) return;
        std::string line = "service " + spec.name + ": " + std::to_string(now_count) + " endpoints (was " +
                           std::to_string(count_before_unlogged) + ")";
        if (counts_not_logged > 1) line += " after " + std::to_string(counts_not_logged) + " changes";
        log_line(LogLevel::info, line);
        last_count_log = directory.loop_.now();
        counts_not_logged = 0;
        directory.loop_.cancel_timer(count_log_timer);
    }
    std::string unusable;  // why the Service cannot be used ("" when it can)
    // When the watch first saw the change the next set carries (EndpointSet::changed_at); unset,
    // build_set stamps its own time.
    std::optional<std::chrono::steady_clock::time_point> change_seen_at;

    bool healthy(const config::Address& address) const {
        return !health || health->healthy(address).value_or(true);
    }

    // Start following: a static list and a file are known now (a file that cannot be read
    // throws); DNS reports later.
    void start() {
        switch (spec.discovery) {
            case config::Discovery::static_list:
                discovered = static_endpoints(spec);
                count_success();
                break;
            case config::Discovery::file: {
                EndpointsFileParse parsed = read_endpoints_file(spec.endpoints_file);
                if (!parsed.ok())
                    throw std::runtime_error("service \"" + spec.name + "\": " + parsed.error);
                discovered = std::move(parsed.endpoints);
                count_success();
                try {
                    file_watch = std::make_unique<reactor::FileWatch>(
                        directory.loop_, spec.endpoints_file, [this] { reread_file(); });
                } catch (const std::exception& error) {
                    throw std::runtime_error("service \"" + spec.name + "\": endpoints_file " +
                                             spec.endpoints_file + ": " + error.what());
                }
                break;
            }
            case config::Discovery::dns:
            case config::Discovery::dns_srv:
                settled = false;
                resolve();
                break;
            case config::Discovery::kubernetes:
                // The watch is made (or shared) by follow(); its state arrives in kubernetes_update().
                settled = false;
                break;
        }
        start_health();
    }

    // Kubernetes: the watch's Service and slices changed (or a service started on a watch that
    // has its state already). `publish`: false while follow() builds the sets itself.
    void kubernetes_update(const KubernetesWatch& watch, bool publish) {
        if (!watch.synced()) return;
        const config::KubernetesBackend& backend = *spec.kubernetes;
        KubernetesEndpointSelection selection = select_kubernetes_endpoints(
            watch.service(), KubernetesServicePort(backend.port), watch.slices(), spec.endpoint_max_connections);
        for (const std::string& slice : selection.ignored_fqdn_slices) {
            if (!warned_fqdn_slices.insert(slice).second) continue;
            log_line(LogLevel::warning, "service " + spec.name + ": EndpointSlice " + backend.namespace_name + "/" +
                                            slice + " has addressType FQDN: ignored (IPv4 and IPv6 only)");
        }
        if (selection.using_terminating != using_terminating) {
            using_terminating = selection.using_terminating;
            if (using_terminating)
                log_line(LogLevel::warning, "service " + spec.name + ": no ready endpoint in kubernetes " +
                                                watch.describe() + "; using its " +
                                                std::to_string(selection.endpoints.size()) +
                                                " serving, terminating endpoints until one is ready");
        }
        if (selection.error != unusable) {
            unusable = selection.error;
            if (!unusable.empty())
                log_line(LogLevel::error, "service " + spec.name + ": kubernetes " + watch.describe() + " port " +
                                              describe_port(backend) + ": " + unusable + "; no endpoints");
        }
        const bool first = !settled;
        if (first) {
            settled = true;
            log_line(LogLevel::info, "service " + spec.name + ": first list of kubernetes " + watch.describe() +
                                         " done, " + std::to_string(selection.endpoints.size()) + " endpoints");
        }
        count_success();
        if (selection.endpoints == discovered && !first) return;
        if (!first) log_endpoint_count(selection.endpoints.size());
        discovered = std::move(selection.endpoints);
        change_seen_at = watch.changed_at();
        set_health_targets();
        if (publish) directory.changed(*this);
    }

    // A request of the watch failed (the watch logged it): counted, the last set kept.
    void kubernetes_failure() {
        directory.metrics_.discovery_updates.with({spec.name, "failure"}).inc(directory.metrics_.control_shard());
    }

    void start_health() {
        health.reset();
        if (!spec.health_check) return;
        HealthCheckOptions options = health_options(*spec.health_check);
        options.local_error = [this](const config::Address& address, int error) {
            directory.metrics_.health_check_local_errors.with({spec.name}).inc(directory.metrics_.control_shard());
            // At most one line a second per service: the shortage is the process's, not news per probe.
            const reactor::Millis now = directory.loop_.now();
            if (now - last_local_error_log_ < 1000) return;
            last_local_error_log_ = now;
            log_line(LogLevel::warning, "service " + spec.name + ": health probe of " + address.to_string() +
                                            " not run: " + std::strerror(error) +
                                            " (a local shortage, not held against the endpoint)");
        };
        health = std::make_unique<HealthChecker>(
            directory.loop_, std::move(options),
            [this](const config::Address& address, bool healthy, const std::string& reason) {
                log_line(healthy ? LogLevel::info : LogLevel::warning,
                         "service " + spec.name + ": endpoint " + address.to_string() + " is now " +
                             (healthy ? "healthy" : "unhealthy") + " (" + reason + ")");
                directory.changed(*this);
            });
        set_health_targets();
    }

    void set_health_targets() {
        if (!health) return;
        std::vector<config::Address> targets;
        for (const DiscoveredEndpoint& endpoint : discovered) targets.push_back(endpoint.address);
        health->set_targets(targets);
    }

    void count_success() {
        const std::size_t control = directory.metrics_.control_shard();
        if (spec.discovery != config::Discovery::static_list)
            directory.metrics_.discovery_updates.with({spec.name, "success"}).inc(control);
        directory.metrics_.discovery_last_success.with({spec.name}).set(control, unix_time_seconds());
    }

    void count_failure(const std::string& error) {
        directory.metrics_.discovery_updates.with({spec.name, "failure"}).inc(directory.metrics_.control_shard());
        if (error != last_error)
            log_line(LogLevel::error, "service " + spec.name + ": " + error + "; keeping the last " +
                                          std::to_string(discovered.size()) + " endpoints");
        last_error = error;
    }

    // A new good set from the source: published when it differs.
    void found(DiscoveredEndpoints endpoints) {
        count_success();
        if (!last_error.empty())
            log_line(LogLevel::info, "service " + spec.name + ": endpoint discovery recovered");
        last_error.clear();
        if (endpoints == discovered) return;
        log_line(LogLevel::info, "service " + spec.name + ": " + std::to_string(endpoints.size()) +
                                     " endpoints (was " + std::to_string(discovered.size()) + ")");
        discovered = std::move(endpoints);
        set_health_targets();
        directory.changed(*this);
    }

    void reread_file() {
        EndpointsFileParse parsed = read_endpoints_file(spec.endpoints_file);
        if (!parsed.ok()) return count_failure(parsed.error);
        found(std::move(parsed.endpoints));
    }

    void resolve() {
        if (lookup_in_flight) return;
        if (!directory.resolver_) {
            count_failure("no DNS resolver: " + directory.resolver_error_);
            settle();
            directory.loop_.arm_timer_after(refresh, spec.dns_min_ttl.count());
            return;
        }
        lookup_in_flight = true;
        std::weak_ptr<bool> still = alive;
        auto done = [this, still](DnsResult result) {
            const auto alive_now = still.lock();
            if (!alive_now || !*alive_now) return;
            on_answer(std::move(result));
        };
        if (spec.discovery == config::Discovery::dns)
            directory.resolver_->resolve_addresses(spec.dns_name, spec.port, std::move(done));
        else
            directory.resolver_->resolve_srv(spec.dns_name, std::move(done));
    }

    void on_answer(DnsResult result) {
        lookup_in_flight = false;
        reactor::Millis next = spec.dns_min_ttl.count();
        if (!result.ok()) {
            count_failure("resolving " + spec.dns_name + ": " + result.error);
        } else {
            DiscoveredEndpoints endpoints;
            for (const DnsRecord& record : result.records)
                endpoints.push_back(DiscoveredEndpoint{record.address, record.weight,
                                                       spec.endpoint_max_connections});
            found(std::move(endpoints));
            const reactor::Millis ttl = static_cast<reactor::Millis>(result.ttl_seconds) * 1000;
            next = std::clamp<reactor::Millis>(ttl, spec.dns_min_ttl.count(), spec.dns_max_ttl.count());
        }
        settle();
        directory.loop_.arm_timer_after(refresh, next);
    }

    void settle() {
        if (settled) return;
        settled = true;
        log_line(LogLevel::info, "service " + spec.name + ": first resolution of " + spec.dns_name +
                                     " done, " + std::to_string(discovered.size()) + " endpoints");
    }

    // The resolver was replaced ([dns] changed on reload): its lookups were cancelled.
    void resolver_replaced() {
        if (spec.discovery != config::Discovery::dns && spec.discovery != config::Discovery::dns_srv) return;
        lookup_in_flight = false;
        directory.loop_.cancel_timer(refresh);
        resolve();
    }

    reactor::MemberTimer<Service, &Service::resolve> refresh{*this};  // next DNS lookup
    reactor::MemberTimer<Service, &Service::flush_count_log> count_log_timer{*this};
};

struct EndpointDirectory::KubernetesSource {
    config::Kubernetes settings;
    KubernetesCredentials credentials;
    std::unique_ptr<HttpClient> client;
    // After the client: destroyed first (a watch cancels its requests on the client).
    std::map<std::string, std::unique_ptr<KubernetesWatch>> watches;  // by "namespace/service"
};

EndpointDirectory::EndpointDirectory(reactor::Loop& loop, AppMetrics& metrics, Publish publish)
    : loop_(loop), metrics_(metrics), publish_(std::move(publish)) {}

EndpointDirectory::~EndpointDirectory() = default;

std::vector<std::shared_ptr<const EndpointSet>> EndpointDirectory::follow(const config::Config& config) {
    // The resolver is made when the first config with DNS services comes, and again when [dns]
    // changes. It is replaced before the services start, since new services resolve at once.
    const bool uses_dns = std::any_of(config.services.begin(), config.services.end(), [](const auto& s) {
        return s.discovery == config::Discovery::dns || s.discovery == config::Discovery::dns_srv;
    });
    bool resolver_replaced = false;
    if (uses_dns && (!resolver_ || !same_dns(dns_, config.dns))) {
        DnsResolverCreate created = DnsResolver::create(loop_, resolver_options(config.dns));
        if (!created.resolver) throw std::runtime_error("[dns]: " + created.error);
        resolver_ = std::move(created.resolver);
        resolver_error_.clear();
        dns_ = config.dns;
        resolver_replaced = true;
    }
    // Kubernetes: the credentials are read and checked on every follow (a reload re-reads the
    // kubeconfig); a new client and new watches only when they changed.
    const bool uses_kubernetes = std::any_of(config.services.begin(), config.services.end(), [](const auto& s) {
        return s.discovery == config::Discovery::kubernetes;
    });
    std::unique_ptr<KubernetesSource> next_kubernetes;
    if (uses_kubernetes) {
        KubernetesCredentials credentials;
        try {
            credentials = load_kubernetes_credentials(config.kubernetes);
        } catch (const std::exception& error) {
            throw std::runtime_error(std::string("[kubernetes]: ") + error.what());
        }
        if (!kubernetes_ || !config::same_settings(kubernetes_->settings, config.kubernetes) || !(kubernetes_->credentials == credentials)) {
            next_kubernetes = std::make_unique<KubernetesSource>();
            next_kubernetes->settings = config.kubernetes;
            next_kubernetes->credentials = std::move(credentials);
            next_kubernetes->client = std::make_unique<HttpClient>(loop_);
            log_line(next_kubernetes->credentials.tls.insecure_skip_verify ? LogLevel::warning : LogLevel::info,
                     "kubernetes: API server of " + next_kubernetes->credentials.description);
        }
    }
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
    for (const config::Service& spec : config.services) {
        std::unique_ptr<Service>& slot = next[spec.name];
        if (slot) continue;
        slot = std::move(services_[spec.name]);
        const bool health_changed = slot->spec.health_check != spec.health_check;
        slot->spec = spec;  // balance and health settings may have changed
        if (health_changed) slot->start_health();
        if (resolver_replaced) slot->resolver_replaced();
    }
    // Nothing can fail from here on.
    if (next_kubernetes) kubernetes_ = std::move(next_kubernetes);  // the old watches end here
    if (!uses_kubernetes) kubernetes_.reset();
    // Services that are gone: hide their endpoint series.
    for (auto& [name, service] : services_) {
        if (!service || next.count(name) != 0) continue;
        for (const std::string& endpoint : service->shown) metrics_.endpoint_healthy.remove({name, endpoint});
        metrics_.service_endpoints.remove({name});
        metrics_.discovery_last_success.remove({name});
        metrics_.discovery_updates.remove({name, "success"});
        metrics_.discovery_updates.remove({name, "failure"});
        metrics_.health_check_local_errors.remove({name});
    }
    services_ = std::move(next);
    follow_kubernetes_watches();
    std::vector<std::shared_ptr<const EndpointSet>> sets;
    for (const config::Service& spec : config.services) {
        Service& service = *services_[spec.name];
        if (spec.discovery == config::Discovery::kubernetes && kubernetes_) {
            // A watch shared with another service may have its state already.
            const auto watch = kubernetes_->watches.find(kubernetes_key(spec));
            if (watch != kubernetes_->watches.end()) service.kubernetes_update(*watch->second, false);
        }
        service.set = build_set(service);
        sets.push_back(service.set);
    }
    return sets;
}

void EndpointDirectory::follow_kubernetes_watches() {
    if (!kubernetes_) return;
    std::set<std::string> used;
    for (const auto& [name, service] : services_) {
        if (service->spec.discovery != config::Discovery::kubernetes) continue;
        const std::string key = kubernetes_key(service->spec);
        used.insert(key);
        if (kubernetes_->watches.count(key) != 0) continue;
        kubernetes_->watches.emplace(
            key, std::make_unique<KubernetesWatch>(
                     loop_, *kubernetes_->client, kubernetes_->credentials, kubernetes_->settings, metrics_,
                     service->spec.kubernetes->namespace_name, service->spec.kubernetes->service,
                     [this, key] { kubernetes_changed(key); }, [this, key] { kubernetes_failed(key); }));
    }
    for (auto it = kubernetes_->watches.begin(); it != kubernetes_->watches.end();) {
        if (used.count(it->first) == 0) it = kubernetes_->watches.erase(it);
        else ++it;
    }
}

void EndpointDirectory::kubernetes_changed(const std::string& key) {
    const auto watch = kubernetes_->watches.find(key);
    if (watch == kubernetes_->watches.end()) return;
    for (auto& [name, service] : services_)
        if (service->spec.discovery == config::Discovery::kubernetes && kubernetes_key(service->spec) == key)
            service->kubernetes_update(*watch->second, true);
}

void EndpointDirectory::kubernetes_failed(const std::string& key) {
    for (auto& [name, service] : services_)
        if (service->spec.discovery == config::Discovery::kubernetes && kubernetes_key(service->spec) == key)
            service->kubernetes_failure();
}

bool EndpointDirectory::settled() const {
    return std::all_of(services_.begin(), services_.end(),
                       [](const auto& entry) { return entry.second->settled; });
}

void EndpointDirectory::changed(Service& service) {
    service.set = build_set(service);
    publish_({service.set});
}

// The endpoints' metric handles and series for a new set. Endpoints the last set had keep their
// handles and series as they are; only the ones that came, went or changed health touch the
// registry (a lookup by labels each): with thousands of endpoints, resolving every endpoint's
// handles on every change cost the control thread milliseconds per event (perf/KUBERNETES.md).
void EndpointDirectory::update_endpoint_metrics(Service& service, EndpointSet& set) {
    const std::size_t control = metrics_.control_shard();
    static const std::vector<LiveEndpoint> none;
    const std::vector<LiveEndpoint>& previous = service.set ? service.set->endpoints : none;
    const double now = unix_time_seconds();
    bool changed = !service.set || previous.size() != set.endpoints.size();
    // Both are sorted by name: walk them together.
    auto old = previous.begin();
    for (LiveEndpoint& endpoint : set.endpoints) {
        while (old != previous.end() && old->name < endpoint.name) ++old;
        const bool kept = old != previous.end() && old->name == endpoint.name;
        if (kept) endpoint.metrics = old->metrics;
        else endpoint.metrics = EndpointMetrics(metrics_, service.spec.name, endpoint.name);
        // The workers' live state of it (GET /endpoints): one object while it stays.
        endpoint.live = kept ? old->live : std::make_shared<const metrics::ShardedCells>(worker_count(), EndpointLiveCell::count);
        const bool same = kept && old->healthy == endpoint.healthy && old->weight == endpoint.weight &&
                          old->max_connections == endpoint.max_connections;
        endpoint.last_change = same ? old->last_change : now;
        changed = changed || !same;
        if (!kept || old->healthy != endpoint.healthy)
            metrics_.endpoint_healthy.with({service.spec.name, endpoint.name}).set(control, endpoint.healthy ? 1 : 0);
        if (!kept) service.shown.insert(endpoint.name);
    }
    if (changed) service.last_update = now;
    // Endpoints that went: hide their series.
    auto next = set.endpoints.begin();
    for (const LiveEndpoint& gone : previous) {
        while (next != set.endpoints.end() && next->name < gone.name) ++next;
        if (next != set.endpoints.end() && next->name == gone.name) continue;
        hide_endpoint_series(service, gone.name);
    }
    // Shown names no set of this service has (none after the walks above; kept for safety when
    // sets were built without the previous one).
    if (service.shown.size() != set.endpoints.size()) {
        std::set<std::string> now;
        for (const LiveEndpoint& endpoint : set.endpoints) now.insert(endpoint.name);
        for (auto it = service.shown.begin(); it != service.shown.end();) {
            if (now.count(*it) != 0) {
                ++it;
                continue;
            }
            const std::string gone = *it;
            ++it;
            hide_endpoint_series(service, gone);
        }
    }
}

std::size_t EndpointDirectory::worker_count() const { return metrics_.control_shard(); }

EndpointDirectory::View EndpointDirectory::view(const std::string& service) const {
    const auto found = services_.find(service);
    if (found == services_.end()) return {};
    return View{.set = found->second->set, .last_update = found->second->last_update};
}

void EndpointDirectory::hide_endpoint_series(Service& service, const std::string& name) {
    metrics_.endpoint_healthy.remove({service.spec.name, name});
    metrics_.upstream_connections.remove({service.spec.name, name});
    metrics_.endpoint_ejections.remove({service.spec.name, name});
    for (std::size_t reason = 0; reason < static_cast<std::size_t>(ConnectFailure::count); ++reason)
        metrics_.upstream_connect_failures.remove(
            {service.spec.name, name, std::string(connect_failure_name(static_cast<ConnectFailure>(reason)))});
    service.shown.erase(name);
}

std::shared_ptr<const EndpointSet> EndpointDirectory::build_set(Service& service) {
    const std::size_t control = metrics_.control_shard();
    auto set = std::make_shared<EndpointSet>();
    set->service = service.spec.name;
    set->version = ++next_version_;
    set->changed_at = service.change_seen_at.value_or(std::chrono::steady_clock::now());
    service.change_seen_at.reset();
    for (const DiscoveredEndpoint& found : service.discovered) {
        LiveEndpoint endpoint;
        endpoint.address = found.address;
        endpoint.name = found.address.to_string();
        endpoint.weight = found.weight;
        endpoint.max_connections = found.max_connections;
        endpoint.healthy = service.healthy(found.address);
        set->endpoints.push_back(std::move(endpoint));
    }
    std::sort(set->endpoints.begin(), set->endpoints.end(),
              [](const LiveEndpoint& a, const LiveEndpoint& b) { return a.name < b.name; });
    update_endpoint_metrics(service, *set);
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
