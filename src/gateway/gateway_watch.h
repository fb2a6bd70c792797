#pragma once
// [gateway_api] watch = true: the Gateway API objects of the cluster, listed and watched on the
// [kubernetes] API server, as an ObjectSet for translate(): GatewayClasses, Gateways, TLSRoutes
// and ReferenceGrants (gateway.networking.k8s.io), Services and Namespaces (v1), cluster-wide.
// Each kind is one reflector collection (src/discovery/kubernetes_collection.h): the same client,
// back-off, 410 relists and failure metrics as the EndpointSlice watch (their labels:
// namespace "", kubernetes_service "", resource "tlsroutes", ...).
//
// Versions: at start GET /apis/gateway.networking.k8s.io and its versions' resource lists (retried
// with back-off until they answer), then per kind the first version the server serves of:
//   GatewayClass, Gateway: v1, v1beta1     TLSRoute: v1, v1alpha3, v1alpha2
//   ReferenceGrant: v1, v1beta1
// A kind the server does not serve (or a group it does not have) is logged once, counted in
// passgate_kubernetes_request_failures_total{reason="not_served"} and treated as empty.
//
// An object that does not decode (gateway_objects.h) is remembered with its error
// (invalid_objects()); the rest of the configuration keeps serving, and so does the object's last
// version that decoded, if it had one (a change that breaks an object is like a bad reload: the
// running version stays until the object is fixed or deleted); one that never decoded is left out.
//
// Threading: the control thread's loop. `changed` is called from it, coalesced (a burst of events
// handled in one loop turn gives one call), once every collection is synced, never from inside
// the HTTP client.

#include "config/config.h"
#include "reactor/loop.h"
#include "src/discovery/http_client.h"
#include "src/discovery/kubernetes_collection.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/gateway/gateway_objects_set.h"
#include "src/observe/app_metrics.h"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace passgate::gateway_api {

class GatewayWatch {
public:
    using Changed = std::function<void()>;
    // `client`, `credentials` and `metrics` outlive the watch. Starts (version discovery, then the
    // lists) at once.
    GatewayWatch(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                 const config::Kubernetes& settings, AppMetrics& metrics, Changed changed);
    ~GatewayWatch();
    GatewayWatch(const GatewayWatch&) = delete;
    GatewayWatch& operator=(const GatewayWatch&) = delete;

    // The versions are known and every served kind has been listed completely once.
    bool synced() const;
    // The last failure ("" once every collection has succeeded since): what the API server said.
    const std::string& last_error() const { return last_error_; }
    // Every valid object held now (complete = true: services and namespaces are all of them;
    // origins empty: they come from the API server).
    ObjectSet objects() const;
    // Objects that did not decode: "TLSRoute ns/name: field: message", by kind, then ns/name.
    std::vector<std::string> invalid_objects() const;
    // An object's JSON as the server last sent it (with apiVersion and kind), for the status
    // writer; nullptr when not held. GatewayClass, Gateway and TLSRoute only. `namespace_name`
    // is "" for a GatewayClass.
    const nlohmann::json* raw_object(const std::string& kind, const std::string& namespace_name,
                                     const std::string& name) const;
    // The API path of an object of a Gateway API kind in the version served
    // ("/apis/gateway.networking.k8s.io/v1/namespaces/ns/tlsroutes/name"); "" before the versions
    // are known or when the kind is not served.
    std::string object_path(const std::string& kind, const std::string& namespace_name, const std::string& name) const;
    // The version served of a Gateway API kind ("v1alpha2"), "" while unknown or not served.
    std::string served_version(const std::string& kind) const;
    // When the first event behind the last `changed` call was applied (the start of its burst).
    std::chrono::steady_clock::time_point changed_at() const { return changed_at_; }

    struct Kind;  // one followed kind (gateway_watch.cpp)

private:
    void discover();
    void get_discovery(const std::string& path, HttpClient::Done done);
    void on_group(HttpResponse response);
    void on_version(const std::string& version, HttpResponse response);
    void discovery_failed(const std::string& reason, const std::string& error);
    void start_collections();
    void collection_changed();
    void collection_failed(const std::string& error);
    void collection_recovered();
    void notify();
    void update_metrics();
    Kind* find_kind(const std::string& kind) const;

    reactor::Loop& loop_;
    HttpClient& client_;
    const KubernetesCredentials& credentials_;
    config::Kubernetes settings_;
    AppMetrics& metrics_;
    Changed changed_;
    std::string last_error_;
    std::vector<std::unique_ptr<Kind>> kinds_;
    // Version discovery: the group's versions still to read, and what each serves.
    HttpClient::RequestId discovery_request_ = 0;
    std::vector<std::string> versions_to_read_;
    unsigned discovery_failures_ = 0;
    std::string discovery_logged_error_;
    bool discovered_ = false;
    std::mt19937_64 random_;
    std::optional<std::chrono::steady_clock::time_point> pending_since_;
    std::chrono::steady_clock::time_point changed_at_{};
    reactor::MemberTimer<GatewayWatch, &GatewayWatch::discover> discovery_timer_{*this};
    reactor::MemberTimer<GatewayWatch, &GatewayWatch::notify> notify_timer_{*this};
};

// ---- Pure helpers (exposed for tests) -----------------------------------------------------------

// The version of the first of `preferred` that `served` holds ("" when none).
std::string pick_version(const std::vector<std::string>& preferred, const std::vector<std::string>& served);

}  // namespace passgate::gateway_api
