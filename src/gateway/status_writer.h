#pragma once
// [gateway_api] watch = true: the translation's statuses written back to the API server through
// the status subresource (PATCH .../{kind}/{name}/status, application/merge-patch+json), as a
// conformant implementation does.
//
// One writer in a fleet: every passgate node serving the class computes the same statuses, but
// only the holder of a coordination.k8s.io/v1 Lease ([gateway_api] lease_namespace/lease_name)
// writes them, so nodes never undo each other's writes (no flapping between them). The Lease is
// held by "<hostname>_<pid>": created when missing, taken over when expired (renewTime +
// leaseDurationSeconds < now), renewed every lease_duration/3, every update with a
// resourceVersion precondition (409: read it again). A holder that cannot renew within
// lease_duration stops writing.
//
// What is written (only what differs from the object the watch holds, so repeated publishes of
// the same statuses write nothing; lastTransitionTime kept while a condition's status stays):
//   GatewayClass  status.conditions               only when its spec.controllerName is ours
//   Gateway       status.addresses/conditions/listeners   only when its class's is ours
//   TLSRoute      status.parents: entries of other controllers kept, ours (controllerName =
//                 [gateway_api] controller_name) replaced
// Each PATCH carries metadata.resourceVersion: a 409 means the object changed meanwhile; the
// write waits for the watch's newer object and is computed again (at most kMaxConflicts times in
// a row for one object, then it waits for a new desired status).
//
// Metrics: passgate_gateway_api_status_writes_total{kind,result} (ok, conflict, error),
// passgate_gateway_api_status_leader (1 while this node holds the Lease).
//
// Threading: the control thread's loop.

#include "config/config.h"
#include "reactor/loop.h"
#include "src/discovery/http_client.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/gateway/gateway_watch.h"
#include "src/gateway/translate.h"
#include "src/observe/app_metrics.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>

namespace passgate::gateway_api {

inline constexpr unsigned kMaxConflicts = 5;

class StatusWriter {
public:
    // `client`, `credentials` and `metrics` outlive the writer. Starts contending for the Lease.
    // `identity`: the Lease holder's name, "<hostname>_<pid>" when empty (tests run two "nodes"
    // in one process).
    StatusWriter(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                 const config::Kubernetes& kubernetes, const config::GatewayApi& gateway_api, AppMetrics& metrics,
                 std::string identity = {});
    ~StatusWriter();
    StatusWriter(const StatusWriter&) = delete;
    StatusWriter& operator=(const StatusWriter&) = delete;

    // The statuses the objects should carry now (a translation of `watch.objects()`). Writes what
    // differs while this node holds the Lease; otherwise keeps them for when it gets it. `watch`
    // outlives the writer (or is given again before it goes).
    void publish(const Statuses& statuses, const GatewayWatch& watch);

    bool leader() const { return leader_; }
    const std::string& identity() const { return identity_; }
    std::size_t writes_in_flight() const { return in_flight_.size(); }

private:
    struct Pending;
    void read_lease();
    void on_lease_read(HttpResponse response);
    void write_lease(bool take_over, const nlohmann::json* current);
    void on_lease_written(HttpResponse response);
    void lease_timer();
    void set_leader(bool leader);
    void write_all();
    void write_object(const std::string& kind, const std::string& namespace_name, const std::string& name,
                      const nlohmann::json& patch, const std::string& resource_version);
    HttpRequest request_for(const std::string& path);

    reactor::Loop& loop_;
    HttpClient& client_;
    const KubernetesCredentials& credentials_;
    config::Kubernetes kubernetes_;
    config::GatewayApi settings_;
    AppMetrics& metrics_;
    std::string identity_;
    bool leader_ = false;
    std::chrono::steady_clock::time_point renewed_at_{};  // last successful create/renew
    HttpClient::RequestId lease_request_ = 0;
    std::string lease_logged_error_;
    unsigned lease_failures_ = 0;
    std::mt19937_64 random_;
    reactor::MemberTimer<StatusWriter, &StatusWriter::lease_timer> lease_timer_{*this};
    // What to write, from the last publish.
    std::optional<Statuses> desired_;
    const GatewayWatch* watch_ = nullptr;
    // Per object ("Kind ns/name"): a write in flight, and the resourceVersion a write was made
    // against (done or conflicted): no new write until the watch shows another version.
    struct ObjectState {
        std::string written_against;
        unsigned conflicts = 0;
        std::string failed_patch;  // the patch that hit kMaxConflicts: not tried again
    };
    std::map<std::string, ObjectState> objects_;
    std::map<std::string, HttpClient::RequestId> in_flight_;
    reactor::MemberTimer<StatusWriter, &StatusWriter::write_all> retry_timer_{*this};
};

// ---- Pure functions (exposed for tests) ---------------------------------------------------------

// The merge patch that makes `raw_object` (the object as the watch holds it, JSON) carry
// `desired`, or null when it carries it already (lastTransitionTime aside). Conditions keep the
// raw object's lastTransitionTime while their status is unchanged, else get `now`. The patch
// holds metadata.resourceVersion (the write's precondition) and the whole status parts it sets.
// GatewayClass: null unless the class's spec.controllerName is `controller_name`.
nlohmann::json status_patch(const GatewayClassStatus& desired, const nlohmann::json& raw_object,
                            std::chrono::system_clock::time_point now, const std::string& controller_name);
nlohmann::json status_patch(const GatewayStatus& desired, const nlohmann::json& raw_object,
                            std::chrono::system_clock::time_point now, const std::string& controller_name);
nlohmann::json status_patch(const TLSRouteStatus& desired, const nlohmann::json& raw_object,
                            std::chrono::system_clock::time_point now, const std::string& controller_name);

// RFC 3339 in UTC: "2026-12-03T17:00:00Z" (metav1.Time), "2026-12-03T17:00:00.123456Z"
// (metav1.MicroTime, Lease times).
std::string rfc3339(std::chrono::system_clock::time_point time);
std::string rfc3339_micro(std::chrono::system_clock::time_point time);
// Either form (and other fraction lengths); nullopt when it is not one.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text);

// Lease expiry: true when the lease has no holder, or renewTime + leaseDurationSeconds < now
// (a missing or unreadable renewTime counts as expired).
bool lease_expired(const nlohmann::json& lease, std::chrono::system_clock::time_point now);

}  // namespace passgate::gateway_api
