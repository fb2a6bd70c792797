#pragma once
// The control thread's view of every service's endpoints: it follows each service's discovery
// source (static list, DNS, endpoints file, Kubernetes) and its active health check, and publishes a new
// immutable EndpointSet to the workers whenever what a service resolves to changes. Health checks
// and DNS queries run here, once, on the control loop, never once per worker.
//
// Across reloads a service keeps its source and health state while its discovery settings stay
// the same (same name, same source and its parameters), so a reload neither re-resolves nor
// resets health.

#include "config/config.h"
#include "reactor/loop.h"
#include "src/observe/app_metrics.h"
#include "src/wire/discovered_endpoint.h"
#include "src/routing/endpoint_set.h"

#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace passgate {

class DnsResolver;

class EndpointDirectory {
public:
    using Publish = std::function<void(std::vector<std::shared_ptr<const EndpointSet>>)>;
    // `publish` is called on the control thread with the sets that changed.
    EndpointDirectory(reactor::Loop& loop, AppMetrics& metrics, Publish publish);
    ~EndpointDirectory();
    EndpointDirectory(const EndpointDirectory&) = delete;
    EndpointDirectory& operator=(const EndpointDirectory&) = delete;

    // Follow the services of `config` (start-up, and each reload before the new snapshot goes
    // out). Returns the current set of each of its services, in config order. Throws
    // std::runtime_error, changing nothing, when a new source cannot start (an endpoints file that
    // is missing or malformed: there is no last good set to keep).
    std::vector<std::shared_ptr<const EndpointSet>> follow(const config::Config& config);

    // Every DNS service has had its first answer or failure, and every Kubernetes service its
    // first complete list: readiness waits for this.
    bool settled() const;

    // What the admin views show of a service: its current set (null before the first, or when
    // the service is not followed) and when that last changed (unix seconds).
    struct View {
        std::shared_ptr<const EndpointSet> set;
        std::optional<double> last_update;
    };
    View view(const std::string& service) const;

    struct Service;           // one followed service (endpoint_directory.cpp)
    struct KubernetesSource;  // the API server's client and the watches (endpoint_directory.cpp)

private:
    friend struct Service;
    void changed(Service& service);                 // its endpoints or health changed: publish
    // Kubernetes: make the watches the services need (one per namespace/Service), drop the rest.
    void follow_kubernetes_watches();
    void kubernetes_changed(const std::string& key);  // a watch's state changed
    void kubernetes_failed(const std::string& key);   // a watch's request failed
    std::shared_ptr<const EndpointSet> build_set(Service& service);
    // Gives `set`'s endpoints their metric handles (reused from the service's last set) and
    // shows or hides endpoint series to match it.
    void update_endpoint_metrics(Service& service, EndpointSet& set);
    void hide_endpoint_series(Service& service, const std::string& name);
    std::size_t worker_count() const;  // the shards of each endpoint's live cells

    reactor::Loop& loop_;
    AppMetrics& metrics_;
    Publish publish_;
    std::map<std::string, std::unique_ptr<Service>> services_;  // by service name
    std::uint64_t next_version_ = 0;  // EndpointSet::version, increasing over all services
    std::unique_ptr<DnsResolver> resolver_;  // made for the first config with DNS services
    config::Dns dns_;                        // the [dns] settings resolver_ was made with
    std::string resolver_error_ = "none configured";  // why resolver_ is null
    std::unique_ptr<KubernetesSource> kubernetes_;     // made for a config with Kubernetes services
};

}  // namespace passgate
