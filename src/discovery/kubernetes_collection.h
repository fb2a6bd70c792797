#pragma once
// One Kubernetes collection (a path, optionally a selector) listed and then watched the way
// client-go's reflector does, so that the copy here is the server's state and no update is lost
// or applied twice:
//
//   list (GET, paged with limit/continue)  -> the complete set and its resourceVersion (RV)
//   watch from that RV (allowWatchBookmarks, timeoutSeconds) -> events applied in order; each
//       event, bookmarks too, moves the RV on
//   the server ends the watch (its timeout)  -> watch again from the last RV at once
//   410 Gone (HTTP, or an ERROR event)       -> the RV is too old: list again, replace the set
//   an event or item that does not decode    -> list again (the stream cannot be trusted)
//   connection error, 401/403, 5xx, timeout  -> keep the set, retry the same step after a
//       jittered exponential back-off (retry_initial_delay doubling to retry_max_delay)
//
// Generic over the object type: the owner gives a decode function from one object's JSON to its
// type T (a decode error is a bad list or event, as above). The objects are kept by key
// ("ns/name", "name" for cluster-scoped ones, or just the name when the owner asks), each with
// its last JSON as the server sent it when `keep_raw` (status writers merge into it).
//
// Failures are counted in passgate_kubernetes_request_failures_total (and relists and watch
// restarts in their families) with the target's {namespace, kubernetes_service} labels, and
// logged once per distinct error.
//
// Threading: the control thread's loop. `changed` and `failed` are called from inside the HTTP
// client's callbacks: they must only record or arm a timer (not destroy the collection).

#include "config/config.h"
#include "reactor/loop.h"
#include "src/discovery/http_client.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/observe/app_metrics.h"
#include "src/wire/kubernetes_objects.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>

namespace passgate {

struct KubernetesCollectionTarget {
    std::string resource;  // "endpointslices", "tlsroutes": metric label and log word
    std::string path;      // "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    std::string selector;  // "labelSelector=..." (escaped by the caller), or ""
    // Labels of its passgate_kubernetes_* series.
    std::string metric_namespace;
    std::string metric_service;
    // The start of its log lines: "kubernetes default/echo".
    std::string log_name;
    bool key_by_name = false;  // objects keyed by metadata.name alone (one namespace)
    bool keep_raw = false;     // keep each object's JSON
    // Written into a list's items that lack them (the API server leaves them out there; watch
    // events carry them), so that every object's JSON says what it is: "v1", "Service".
    std::string api_version;
    std::string kind;
};

class KubernetesCollectionBase {
public:
    struct Hooks {
        std::function<void()> changed;  // a complete list or an event was applied
        // A request failed (counted and logged already): `error` without the retry delay.
        std::function<void(const std::string& error)> failed;
        std::function<void()> recovered;  // the first success after failures
    };
    // `loop`, `client`, `credentials` and `metrics` outlive the collection. start() begins.
    KubernetesCollectionBase(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                             const config::Kubernetes& settings, AppMetrics& metrics,
                             KubernetesCollectionTarget target, Hooks hooks);
    virtual ~KubernetesCollectionBase();
    KubernetesCollectionBase(const KubernetesCollectionBase&) = delete;
    KubernetesCollectionBase& operator=(const KubernetesCollectionBase&) = delete;

    void start();  // the first list
    // One complete list has arrived (the set is the server's, as of some RV).
    bool listed() const { return listed_; }
    // The failure logged last ("" after a success since).
    const std::string& error() const { return logged_error_; }
    const KubernetesCollectionTarget& target() const { return target_; }
    const std::string& resource_version() const { return resource_version_; }

    // The key an object is kept by.
    std::string key_of(const kubernetes::ObjectMeta& metadata) const {
        if (target_.key_by_name || metadata.namespace_name.empty()) return metadata.name;
        return metadata.namespace_name + "/" + metadata.name;
    }

protected:
    // A list in pages: stage each item, then commit the whole set (or clear on failure). An
    // error makes the list bad.
    virtual void stage_clear() = 0;
    virtual std::string stage(kubernetes::JsonObject object) = 0;
    virtual void stage_commit() = 0;
    // One event's object (added/modified: `deleted` false). An error makes the stream bad.
    virtual std::string apply(kubernetes::JsonObject object, bool deleted) = 0;

private:
    enum class Step { list, watch };
    HttpRequest base_request(const std::string& target);
    void start_list(const std::string& reason);
    void list_page();
    void on_list(HttpResponse response);
    void start_watch();
    bool on_line(std::string_view line);
    bool bad_event(const std::string& error);
    void on_watch_end(HttpResponse response);
    void succeeded();
    void fail(Step step, const std::string& reason, const std::string& error);
    void retry();
    void cancel();
    metrics::Counter counter(metrics::CounterFamily& family, const std::string& reason);

    reactor::Loop& loop_;
    HttpClient& client_;
    const KubernetesCredentials& credentials_;
    config::Kubernetes settings_;
    AppMetrics& metrics_;
    KubernetesCollectionTarget target_;
    Hooks hooks_;
    std::mt19937_64 random_;

    std::string resource_version_;  // of the last list or event applied
    bool listed_ = false;
    unsigned failures_ = 0;  // in a row, for the back-off
    HttpClient::RequestId request_ = 0;
    std::string continue_token_;
    std::string relist_reason_;  // set by a watch line that ends the stream
    std::string stream_error_;   // an ERROR event's Status or a bad event, for the failure report
    std::string logged_error_;
    bool stream_saw_line_ = false;
    Step retry_step_ = Step::list;
    reactor::MemberTimer<KubernetesCollectionBase, &KubernetesCollectionBase::retry> retry_timer_{*this};
};

// The collection of objects of type T. `decode` turns one object's JSON into T (an error makes
// its list or event bad).
template <typename T>
class KubernetesCollection final : public KubernetesCollectionBase {
public:
    using Decode = std::function<kubernetes::Decoded<T>(const nlohmann::json& object)>;

    KubernetesCollection(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                         const config::Kubernetes& settings, AppMetrics& metrics, KubernetesCollectionTarget target,
                         Decode decode, Hooks hooks)
        : KubernetesCollectionBase(loop, client, credentials, settings, metrics, std::move(target), std::move(hooks)),
          decode_(std::move(decode)) {}

    // The objects by key, as of the last event.
    const std::map<std::string, T>& objects() const { return objects_; }
    // An object's JSON as last received (keep_raw only), nullptr when it is not here.
    const nlohmann::json* raw(const std::string& key) const {
        const auto found = raw_.find(key);
        return found == raw_.end() ? nullptr : &found->second;
    }

private:
    void stage_clear() override {
        staged_.clear();
        staged_raw_.clear();
    }
    std::string stage(kubernetes::JsonObject object) override {
        kubernetes::Decoded<T> decoded = decode_(object.json);
        if (!decoded.ok()) return decoded.error;
        std::string key = key_of(object.metadata);
        if (target().keep_raw) staged_raw_.insert_or_assign(key, std::move(object.json));
        staged_.insert_or_assign(std::move(key), std::move(*decoded.value));
        return {};
    }
    void stage_commit() override {
        objects_ = std::move(staged_);
        raw_ = std::move(staged_raw_);
        stage_clear();
    }
    std::string apply(kubernetes::JsonObject object, bool deleted) override {
        std::string key = key_of(object.metadata);
        if (deleted) {
            objects_.erase(key);
            raw_.erase(key);
            return {};
        }
        kubernetes::Decoded<T> decoded = decode_(object.json);
        if (!decoded.ok()) return decoded.error;
        if (target().keep_raw) raw_.insert_or_assign(key, std::move(object.json));
        objects_.insert_or_assign(std::move(key), std::move(*decoded.value));
        return {};
    }

    Decode decode_;
    std::map<std::string, T> objects_;
    std::map<std::string, nlohmann::json> raw_;
    std::map<std::string, T> staged_;
    std::map<std::string, nlohmann::json> staged_raw_;
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

// Query escaping (RFC 3986 unreserved characters kept), for selectors and tokens.
std::string kubernetes_escape_query(const std::string& text);

}  // namespace passgate
