#include "src/discovery/kubernetes_watch.h"

#include "src/observe/log.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

namespace passgate {

namespace {

constexpr std::size_t kListPageLimit = 500;  // client-go's default page size
constexpr std::size_t kMaxServerMessage = 300;  // of a Status message quoted in a log line

// Query escaping (RFC 3986 unreserved kept).
std::string escape_query(const std::string& text) {
    std::string out;
    for (const unsigned char c : text) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char escaped[4];
            std::snprintf(escaped, sizeof escaped, "%%%02X", c);
            out += escaped;
        }
    }
    return out;
}

// "401 Unauthorized: the server's message" (the message from its Status body, cut short).
std::string describe_failure(const HttpResponse& response) {
    if (!response.error.empty()) {
        if (response.status != 0) return "HTTP " + std::to_string(response.status) + ": " + response.error;
        return response.error;
    }
    std::string text = "HTTP " + std::to_string(response.status);
    const kubernetes::Decoded<kubernetes::Status> status = kubernetes::decode_status(response.body);
    if (status.ok()) {
        if (!status.value->reason.empty()) text += " " + status.value->reason;
        if (!status.value->message.empty()) text += ": " + status.value->message.substr(0, kMaxServerMessage);
    }
    return text;
}

// Which of passgate's credentials a failure points at, by file name (never content).
std::string credential_hint(const KubernetesCredentials& credentials, const std::string& reason) {
    if (reason == "tls") {
        if (!credentials.tls.ca_file.empty()) return " (CA " + credentials.tls.ca_file + ")";
        if (!credentials.tls.ca_pem.empty()) return " (CA: certificate-authority-data of " + credentials.description + ")";
        return " (CA: the system's certificate store)";
    }
    if (reason == "unauthorized" || reason == "forbidden") {
        if (!credentials.token_file.empty()) return " (token_file " + credentials.token_file + ")";
        if (!credentials.token.empty()) return " (token of " + credentials.description + ")";
        if (!credentials.tls.client_cert_file.empty())
            return " (client certificate " + credentials.tls.client_cert_file + ")";
        if (!credentials.tls.client_cert_pem.empty())
            return " (client-certificate-data of " + credentials.description + ")";
        return " (no credentials configured)";
    }
    return "";
}

}  // namespace

std::string kubernetes_list_path(const std::string& collection_path, const std::string& selector,
                                 const std::string& continue_token, std::size_t limit) {
    std::string path = collection_path + "?" + selector + "&limit=" + std::to_string(limit);
    if (!continue_token.empty()) path += "&continue=" + escape_query(continue_token);
    return path;
}

std::string kubernetes_watch_path(const std::string& collection_path, const std::string& selector,
                                  const std::string& resource_version, unsigned timeout_seconds) {
    return collection_path + "?" + selector + "&watch=1&allowWatchBookmarks=true&resourceVersion=" +
           escape_query(resource_version) + "&timeoutSeconds=" + std::to_string(timeout_seconds);
}

reactor::Millis kubernetes_retry_delay(reactor::Millis initial, reactor::Millis max, unsigned attempt, double unit) {
    reactor::Millis delay = std::max<reactor::Millis>(initial, 1);
    for (unsigned i = 0; i < attempt && delay < max; ++i) delay *= 2;
    delay = std::min(delay, max);
    const double drawn = static_cast<double>(delay) * (0.5 + 0.5 * std::clamp(unit, 0.0, 1.0));
    return std::max<reactor::Millis>(1, static_cast<reactor::Millis>(drawn));
}

std::string kubernetes_failure_reason(const HttpResponse& response) {
    if (!response.error.empty()) {
        const std::string& error = response.error;
        if (error.find("timeout") != std::string::npos) return "timeout";
        if (error.find("TLS") != std::string::npos || error.find("SSL") != std::string::npos ||
            error.find("certificate") != std::string::npos)
            return "tls";
        if (response.status == 0) return "connect";
        return "http_error";
    }
    if (response.status == 401) return "unauthorized";
    if (response.status == 403) return "forbidden";
    if (response.status == 404) return "not_found";
    if (response.status >= 500) return "server_error";
    if (response.status >= 200 && response.status < 300) return "bad_response";
    return "http_error";
}

// ---- One collection: list, then watch -----------------------------------------------------------

struct KubernetesWatch::Collection {
    enum class Kind { services, endpoint_slices };

    Collection(KubernetesWatch& watch_, Kind kind_) : watch(watch_), kind(kind_) {
        const std::string ns = watch.namespace_name_;
        if (kind == Kind::services) {
            resource = "services";
            path = "/api/v1/namespaces/" + ns + "/services";
            selector = "fieldSelector=" + escape_query("metadata.name=" + watch.service_name_);
        } else {
            resource = "endpointslices";
            path = "/apis/discovery.k8s.io/v1/namespaces/" + ns + "/endpointslices";
            selector = "labelSelector=" + escape_query("kubernetes.io/service-name=" + watch.service_name_);
        }
    }
    ~Collection() { cancel(); }

    KubernetesWatch& watch;
    const Kind kind;
    std::string resource;  // metric label and log word
    std::string path;
    std::string selector;

    std::string resource_version;  // of the last list or event applied
    bool listed = false;           // one complete list arrived
    unsigned failures = 0;         // in a row, for the back-off
    HttpClient::RequestId request = 0;
    // A list in pages: what the pages so far held, applied only when the last one arrives.
    std::string continue_token;
    std::vector<kubernetes::Service> pending_services;
    std::vector<kubernetes::EndpointSlice> pending_slices;
    // Set by a watch line that ends the stream: why the next step is a list.
    std::string relist_reason;
    std::string stream_error;  // an ERROR event's Status, for the failure report
    std::string logged_error;  // the failure logged last for this collection ("" after a success)
    bool stream_saw_line = false;
    enum class Step { list, watch } retry_step = Step::list;
    struct RetryTimer final : reactor::Timer {
        explicit RetryTimer(Collection& owner_) : owner(owner_) {}
        void on_timer() override { owner.retry(); }
        Collection& owner;
    };
    RetryTimer retry_timer{*this};

    void cancel() {
        if (request != 0) watch.client_.cancel(request);
        request = 0;
        watch.loop_.cancel_timer(retry_timer);
    }

    HttpRequest base_request(const std::string& target) {
        HttpRequest http;
        http.url = watch.credentials_.server + target;
        http.tls = watch.credentials_.tls;
        http.bearer_token = current_bearer_token(watch.credentials_);  // may throw: the caller catches
        http.headers.push_back("Accept: application/json");
        http.timeout = watch.settings_.request_timeout;
        http.max_body_bytes = kubernetes::kMaxDocumentBytes;
        http.max_line_bytes = kubernetes::kMaxDocumentBytes;
        return http;
    }

    void start_list(const std::string& reason) {
        watch.metrics_.kubernetes_relists.with({watch.namespace_name_, watch.service_name_, resource, reason})
            .inc(watch.metrics_.control_shard());
        continue_token.clear();
        pending_services.clear();
        pending_slices.clear();
        list_page();
    }

    void list_page() {
        HttpRequest http;
        try {
            http = base_request(kubernetes_list_path(path, selector, continue_token, kListPageLimit));
        } catch (const std::exception& error) {
            return fail(Step::list, "token_file", error.what());
        }
        request = watch.client_.get(std::move(http), [this](HttpResponse response) { on_list(std::move(response)); });
    }

    void on_list(HttpResponse response) {
        request = 0;
        if (response.status == 410 && !continue_token.empty()) return start_list("expired");  // the paging expired
        if (!response.ok()) return fail(Step::list, kubernetes_failure_reason(response), "list: " + describe_failure(response));
        std::string error;
        std::string next_continue;
        std::string version;
        if (kind == Kind::services) {
            kubernetes::Decoded<kubernetes::List<kubernetes::Service>> list = kubernetes::decode_service_list(response.body);
            if (!list.ok()) error = list.error;
            else {
                for (kubernetes::Service& item : list.value->items) pending_services.push_back(std::move(item));
                next_continue = list.value->continue_token;
                version = list.value->resource_version;
            }
        } else {
            kubernetes::Decoded<kubernetes::List<kubernetes::EndpointSlice>> list =
                kubernetes::decode_endpoint_slice_list(response.body);
            if (!list.ok()) error = list.error;
            else {
                for (kubernetes::EndpointSlice& item : list.value->items) pending_slices.push_back(std::move(item));
                next_continue = list.value->continue_token;
                version = list.value->resource_version;
            }
        }
        if (!error.empty()) {
            pending_services.clear();
            pending_slices.clear();
            continue_token.clear();
            return fail(Step::list, "bad_response", "list: " + error);
        }
        if (!next_continue.empty()) {
            continue_token = std::move(next_continue);
            return list_page();
        }
        // The last page: the whole set is the server's state at `version`.
        continue_token.clear();
        if (kind == Kind::services) {
            watch.service_.reset();
            for (kubernetes::Service& item : pending_services)
                if (item.metadata.name == watch.service_name_) watch.service_ = std::move(item);
            pending_services.clear();
        } else {
            watch.slice_map_.clear();
            for (kubernetes::EndpointSlice& item : pending_slices) {
                std::string name = item.metadata.name;
                watch.slice_map_.insert_or_assign(std::move(name), std::move(item));
            }
            pending_slices.clear();
        }
        resource_version = std::move(version);
        listed = true;
        succeeded();
        watch.collection_changed();
        start_watch();
    }

    void start_watch() {
        // timeoutSeconds drawn in [watch_timeout, 2 x watch_timeout), as client-go spreads its
        // watches, so that a fleet's watches do not all end together.
        const auto base = static_cast<unsigned>(std::max<long long>(1, watch.settings_.watch_timeout.count() / 1000));
        const unsigned timeout_seconds = base + static_cast<unsigned>(watch.random_() % base);
        HttpRequest http;
        try {
            http = base_request(kubernetes_watch_path(path, selector, resource_version, timeout_seconds));
        } catch (const std::exception& error) {
            return fail(Step::watch, "token_file", error.what());
        }
        // The server ends the stream at timeoutSeconds; a peer that vanished without a reset is
        // caught 30 s after that.
        http.timeout = std::chrono::milliseconds((timeout_seconds + 30) * 1000LL);
        relist_reason.clear();
        stream_error.clear();
        stream_saw_line = false;
        request = watch.client_.stream(
            std::move(http), [this](std::string_view line) { return on_line(line); },
            [this](HttpResponse response) { on_watch_end(std::move(response)); });
    }

    // Inside the HTTP client: only apply and remember; decisions happen in on_watch_end.
    bool on_line(std::string_view line) {
        if (line.empty()) return true;
        if (!stream_saw_line) {
            stream_saw_line = true;
            succeeded();
        }
        if (kind == Kind::services) {
            kubernetes::Decoded<kubernetes::WatchEvent<kubernetes::Service>> event = kubernetes::decode_service_event(line);
            if (!event.ok()) return bad_event(event.error);
            return apply(std::move(*event.value));
        }
        kubernetes::Decoded<kubernetes::WatchEvent<kubernetes::EndpointSlice>> event =
            kubernetes::decode_endpoint_slice_event(line);
        if (!event.ok()) return bad_event(event.error);
        return apply(std::move(*event.value));
    }

    bool bad_event(const std::string& error) {
        relist_reason = "bad_event";
        stream_error = "watch event: " + error;
        return false;
    }

    template <typename Object>
    bool apply(kubernetes::WatchEvent<Object> event) {
        using kubernetes::EventType;
        if (event.type == EventType::error) {
            const kubernetes::Status& status = std::get<kubernetes::Status>(event.object);
            if (status.code == 410) relist_reason = "expired";
            stream_error = "watch: ERROR event " + std::to_string(status.code) + " " + status.reason + ": " +
                           status.message.substr(0, kMaxServerMessage);
            return false;
        }
        if (!event.resource_version.empty()) resource_version = event.resource_version;
        if (event.type == EventType::bookmark) return true;
        Object& object = std::get<Object>(event.object);
        const bool deleted = event.type == EventType::deleted;
        if constexpr (std::is_same_v<Object, kubernetes::Service>) {
            if (object.metadata.name != watch.service_name_) return true;
            if (deleted) watch.service_.reset();
            else watch.service_ = std::move(object);
        } else {
            if (deleted) watch.slice_map_.erase(object.metadata.name);
            else {
                std::string name = object.metadata.name;
                watch.slice_map_.insert_or_assign(std::move(name), std::move(object));
            }
        }
        watch.collection_changed();
        return true;
    }

    void on_watch_end(HttpResponse response) {
        request = 0;
        if (!relist_reason.empty()) {
            if (relist_reason == "bad_event") {
                // A stream that cannot be trusted: count it as a failure (back-off), then list.
                return fail(Step::list, "bad_response", stream_error);
            }
            return start_list(relist_reason);  // 410 in the stream: the RV is gone, list now
        }
        if (!stream_error.empty()) return fail(Step::watch, "http_error", stream_error);
        if (response.status == 410) return start_list("expired");
        if (response.ok()) {
            // The server's timeout ended the watch (or it closed it): on from the last RV.
            watch.metrics_.kubernetes_watch_restarts
                .with({watch.namespace_name_, watch.service_name_, resource, "server_closed"})
                .inc(watch.metrics_.control_shard());
            return start_watch();
        }
        watch.metrics_.kubernetes_watch_restarts.with({watch.namespace_name_, watch.service_name_, resource, "error"})
            .inc(watch.metrics_.control_shard());
        fail(Step::watch, kubernetes_failure_reason(response), "watch: " + describe_failure(response));
    }

    void succeeded() {
        failures = 0;
        watch.report_success(*this);
    }

    // Keep what we have; try `step` again after the back-off.
    void fail(Step step, const std::string& reason, const std::string& error) {
        const reactor::Millis delay = kubernetes_retry_delay(
            watch.settings_.retry_initial_delay.count(), watch.settings_.retry_max_delay.count(), failures,
            std::uniform_real_distribution<double>(0.0, 1.0)(watch.random_));
        ++failures;
        // Without a list there is no RV to watch from.
        retry_step = listed ? step : Step::list;
        watch.report_failure(*this, reason,
                             resource + " " + error + credential_hint(watch.credentials_, reason) + "; retrying in " +
                                 std::to_string(delay) + " ms");
        watch.loop_.arm_timer_after(retry_timer, delay);
    }

    void retry() {
        if (retry_step == Step::list) start_list("error");
        else start_watch();
    }
};

// ---- The watch ----------------------------------------------------------------------------------

KubernetesWatch::KubernetesWatch(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                                 const config::Kubernetes& settings, AppMetrics& metrics, std::string namespace_name,
                                 std::string service_name, Changed changed, Failed failed)
    : loop_(loop),
      client_(client),
      credentials_(credentials),
      settings_(settings),
      metrics_(metrics),
      namespace_name_(std::move(namespace_name)),
      service_name_(std::move(service_name)),
      changed_(std::move(changed)),
      failed_(std::move(failed)),
      random_(std::random_device{}()) {
    services_ = std::make_unique<Collection>(*this, Collection::Kind::services);
    slices_ = std::make_unique<Collection>(*this, Collection::Kind::endpoint_slices);
    services_->start_list("initial");
    slices_->start_list("initial");
}

KubernetesWatch::~KubernetesWatch() {
    services_.reset();
    slices_.reset();
    loop_.cancel_timer(notify_timer_);
}

const std::optional<kubernetes::Service>& KubernetesWatch::service() const { return service_; }
const std::map<std::string, kubernetes::EndpointSlice>& KubernetesWatch::slices() const { return slice_map_; }
bool KubernetesWatch::synced() const { return services_->listed && slices_->listed; }

void KubernetesWatch::collection_changed() {
    if (!synced()) return;  // the first complete view goes out when both lists are in
    if (!pending_since_) pending_since_ = std::chrono::steady_clock::now();
    loop_.arm_timer_after(notify_timer_, 0);
}

void KubernetesWatch::notify() {
    changed_at_ = pending_since_.value_or(std::chrono::steady_clock::now());
    pending_since_.reset();
    changed_();
}

void KubernetesWatch::report_failure(Collection& collection, const std::string& reason, const std::string& error) {
    metrics_.kubernetes_request_failures.with({namespace_name_, service_name_, collection.resource, reason})
        .inc(metrics_.control_shard());
    failed_();
    // Once per distinct error of each collection (the retry delay changes each time: compare
    // without it).
    const std::string key = error.substr(0, error.rfind("; retrying in "));
    last_error_ = key;
    if (key == collection.logged_error) return;
    collection.logged_error = key;
    log_line(LogLevel::error, "kubernetes " + describe() + ": " + error + " (keeping the last state)");
}

void KubernetesWatch::report_success(Collection& collection) {
    if (collection.logged_error.empty()) return;
    collection.logged_error.clear();
    if (services_->logged_error.empty() && slices_->logged_error.empty()) last_error_.clear();
    log_line(LogLevel::info, "kubernetes " + describe() + ": " + collection.resource + ": the API server answers again");
}

}  // namespace passgate
