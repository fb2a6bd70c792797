#pragma once
// One Kubernetes Service followed on the API server: its Service object and its EndpointSlices,
// two collections each listed and then watched as a reflector does (kubernetes_collection.h), so
// that the copy here is the server's state and no update is lost or applied twice.
//
// The Service is followed through its collection with fieldSelector=metadata.name=<name> (so a
// deleted and re-created Service is seen like any other change), the slices with
// labelSelector=kubernetes.io/service-name=<name>.
//
// Shared: every passgate service naming the same namespace and Service uses one watch (the
// EndpointDirectory keys them); each applies its own port (kubernetes_endpoints.h).
//
// Threading: the control thread's loop; `changed` is called from it, coalesced (a burst of events
// handled in one loop turn gives one call), never from inside the HTTP client.

#include "config/config.h"
#include "reactor/loop.h"
#include "src/discovery/http_client.h"
#include "src/discovery/kubernetes_collection.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/observe/app_metrics.h"
#include "src/wire/kubernetes_objects.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

namespace passgate {

class KubernetesWatch {
public:
    using Changed = std::function<void()>;
    // A request failed (the watch has logged it, once per distinct error): for the users' counts.
    using Failed = std::function<void()>;
    // `client`, `credentials` and `metrics` outlive the watch. Starts listing at once.
    KubernetesWatch(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                    const config::Kubernetes& settings, AppMetrics& metrics, std::string namespace_name,
                    std::string service_name, Changed changed, Failed failed);
    ~KubernetesWatch();
    KubernetesWatch(const KubernetesWatch&) = delete;
    KubernetesWatch& operator=(const KubernetesWatch&) = delete;

    // The Service (nullopt: it does not exist) and its slices by name, as of the last event.
    const std::optional<kubernetes::Service>& service() const;
    const std::map<std::string, kubernetes::EndpointSlice>& slices() const;
    // Both the Service and the slices have been listed completely once.
    bool synced() const;
    // The last failure ("" once both collections have succeeded since): what the API server said.
    const std::string& last_error() const { return last_error_; }
    std::string describe() const { return namespace_name_ + "/" + service_name_; }
    // When the first event behind the last `changed` call was applied (the start of its burst).
    std::chrono::steady_clock::time_point changed_at() const { return changed_at_; }

private:
    void collection_changed();
    void notify();
    void collection_failed(const std::string& error);
    void collection_recovered();

    reactor::Loop& loop_;
    std::string namespace_name_;
    std::string service_name_;
    Changed changed_;
    Failed failed_;
    std::string last_error_;
    std::unique_ptr<KubernetesCollection<kubernetes::Service>> services_;
    std::unique_ptr<KubernetesCollection<kubernetes::EndpointSlice>> slices_;
    std::optional<kubernetes::Service> service_;  // services_' object of that name, if any
    // The first event applied since the last `changed` call (nullopt: none pending), and that of
    // the last call.
    std::optional<std::chrono::steady_clock::time_point> pending_since_;
    std::chrono::steady_clock::time_point changed_at_{};
    reactor::MemberTimer<KubernetesWatch, &KubernetesWatch::notify> notify_timer_{*this};
};

}  // namespace passgate
