#pragma once
// One Kubernetes Service followed on the API server: its Service object and its EndpointSlices,
// each listed and then watched the way client-go's reflector does, so that the copy here is the
// server's state and no update is lost or applied twice:
//
//   list (GET, paged with limit/continue)  -> the complete set and its resourceVersion (RV)
//   watch from that RV (allowWatchBookmarks, timeoutSeconds) -> events applied in order; each
//       event, bookmarks too, moves the RV on
//   the server ends the watch (its timeout)  -> watch again from the last RV at once
//   410 Gone (HTTP, or an ERROR event)       -> the RV is too old: list again, replace the set
//   an event that does not decode            -> list again (the stream cannot be trusted)
//   connection error, 401/403, 5xx, timeout  -> keep the set, retry the same step after a
//       jittered exponential back-off (retry_initial_delay doubling to retry_max_delay)
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

    struct Collection;  // one listed and watched collection (kubernetes_watch.cpp)

private:
    friend struct Collection;
    void collection_changed();
    void notify();
    void report_failure(Collection& collection, const std::string& reason, const std::string& error);
    void report_success(Collection& collection);

    reactor::Loop& loop_;
    HttpClient& client_;
    const KubernetesCredentials& credentials_;
    config::Kubernetes settings_;
    AppMetrics& metrics_;
    std::string namespace_name_;
    std::string service_name_;
    Changed changed_;
    Failed failed_;
    std::string last_error_;
    std::mt19937_64 random_;
    std::unique_ptr<Collection> services_;
    std::unique_ptr<Collection> slices_;
    std::optional<kubernetes::Service> service_;  // services_' one object, if any
    std::map<std::string, kubernetes::EndpointSlice> slice_map_;
    // The first event applied since the last `changed` call (nullopt: none pending), and that of
    // the last call.
    std::optional<std::chrono::steady_clock::time_point> pending_since_;
    std::chrono::steady_clock::time_point changed_at_{};
    reactor::MemberTimer<KubernetesWatch, &KubernetesWatch::notify> notify_timer_{*this};
};

// ---- Pure helpers (exposed for tests) -----------------------------------------------------------

// The request paths, with the query escaped: list (`continue_token` may be empty) and watch.
std::string kubernetes_list_path(const std::string& collection_path, const std::string& selector,
                                 const std::string& continue_token, std::size_t limit);
std::string kubernetes_watch_path(const std::string& collection_path, const std::string& selector,
                                  const std::string& resource_version, unsigned timeout_seconds);

// The back-off before retry number `attempt` (0 = the first retry): initial * 2^attempt capped at
// `max`, then a uniform draw in [half of it, all of it] (jitter, so a fleet does not retry in
// step). `unit` is a draw in [0, 1).
reactor::Millis kubernetes_retry_delay(reactor::Millis initial, reactor::Millis max, unsigned attempt, double unit);

// The failure reason label of a response: "connect", "timeout", "tls", "unauthorized" (401),
// "forbidden" (403), "not_found" (404), "server_error" (5xx), "http_error" (other statuses),
// "bad_response" (a body that does not decode), "token_file".
std::string kubernetes_failure_reason(const HttpResponse& response);

}  // namespace passgate
