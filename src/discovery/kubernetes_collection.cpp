#include "src/discovery/kubernetes_collection.h"

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


std::string kubernetes_escape_query(const std::string& text) { return escape_query(text); }

std::string kubernetes_list_path(const std::string& collection_path, const std::string& selector,
                                 const std::string& continue_token, std::size_t limit) {
    std::string path = collection_path + "?" + (selector.empty() ? "" : selector + "&") + "limit=" + std::to_string(limit);
    if (!continue_token.empty()) path += "&continue=" + escape_query(continue_token);
    return path;
}

std::string kubernetes_watch_path(const std::string& collection_path, const std::string& selector,
                                  const std::string& resource_version, unsigned timeout_seconds) {
    return collection_path + "?" + (selector.empty() ? "" : selector + "&") + "watch=1&allowWatchBookmarks=true&resourceVersion=" +
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

KubernetesCollectionBase::KubernetesCollectionBase(reactor::Loop& loop, HttpClient& client,
                                                   const KubernetesCredentials& credentials,
                                                   const config::Kubernetes& settings, AppMetrics& metrics,
                                                   KubernetesCollectionTarget target, Hooks hooks)
    : loop_(loop),
      client_(client),
      credentials_(credentials),
      settings_(settings),
      metrics_(metrics),
      target_(std::move(target)),
      hooks_(std::move(hooks)),
      random_(std::random_device{}()) {}

KubernetesCollectionBase::~KubernetesCollectionBase() { cancel(); }

void KubernetesCollectionBase::start() { start_list("initial"); }

void KubernetesCollectionBase::cancel() {
    if (request_ != 0) client_.cancel(request_);
    request_ = 0;
    loop_.cancel_timer(retry_timer_);
}

metrics::Counter KubernetesCollectionBase::counter(metrics::CounterFamily& family, const std::string& reason) {
    return family.with({target_.metric_namespace, target_.metric_service, target_.resource, reason});
}

HttpRequest KubernetesCollectionBase::base_request(const std::string& target) {
    HttpRequest http;
    http.url = credentials_.server + target;
    http.tls = credentials_.tls;
    http.bearer_token = current_bearer_token(credentials_);  // may throw: the caller catches
    http.headers.push_back("Accept: application/json");
    http.timeout = settings_.request_timeout;
    http.max_body_bytes = kubernetes::kMaxDocumentBytes;
    http.max_line_bytes = kubernetes::kMaxDocumentBytes;
    return http;
}

void KubernetesCollectionBase::start_list(const std::string& reason) {
    counter(metrics_.kubernetes_relists, reason).inc(metrics_.control_shard());
    continue_token_.clear();
    stage_clear();
    list_page();
}

void KubernetesCollectionBase::list_page() {
    HttpRequest http;
    try {
        http = base_request(kubernetes_list_path(target_.path, target_.selector, continue_token_, kListPageLimit));
    } catch (const std::exception& error) {
        return fail(Step::list, "token_file", error.what());
    }
    request_ = client_.get(std::move(http), [this](HttpResponse response) { on_list(std::move(response)); });
}

void KubernetesCollectionBase::on_list(HttpResponse response) {
    request_ = 0;
    if (response.status == 410 && !continue_token_.empty()) return start_list("expired");  // the paging expired
    if (!response.ok())
        return fail(Step::list, kubernetes_failure_reason(response), "list: " + describe_failure(response));
    kubernetes::Decoded<kubernetes::List<kubernetes::JsonObject>> list = kubernetes::decode_json_object_list(response.body);
    std::string error = list.error;
    if (list.ok()) {
        for (std::size_t i = 0; i < list.value->items.size() && error.empty(); ++i) {
            kubernetes::JsonObject& item = list.value->items[i];
            if (!target_.api_version.empty() && !item.json.contains("apiVersion")) item.json["apiVersion"] = target_.api_version;
            if (!target_.kind.empty() && !item.json.contains("kind")) item.json["kind"] = target_.kind;
            const std::string item_error = stage(std::move(item));
            if (!item_error.empty()) error = "items[" + std::to_string(i) + "]." + item_error;
        }
    }
    if (!error.empty()) {
        stage_clear();
        continue_token_.clear();
        return fail(Step::list, "bad_response", "list: " + error);
    }
    if (!list.value->continue_token.empty()) {
        continue_token_ = std::move(list.value->continue_token);
        return list_page();
    }
    // The last page: the whole set is the server's state at its resourceVersion.
    continue_token_.clear();
    stage_commit();
    resource_version_ = std::move(list.value->resource_version);
    listed_ = true;
    succeeded();
    if (hooks_.changed) hooks_.changed();
    start_watch();
}

void KubernetesCollectionBase::start_watch() {
    // timeoutSeconds drawn in [watch_timeout, 2 x watch_timeout), as client-go spreads its
    // watches, so that a fleet's watches do not all end together.
    const auto base = static_cast<unsigned>(std::max<long long>(1, settings_.watch_timeout.count() / 1000));
    const unsigned timeout_seconds = base + static_cast<unsigned>(random_() % base);
    HttpRequest http;
    try {
        http = base_request(kubernetes_watch_path(target_.path, target_.selector, resource_version_, timeout_seconds));
    } catch (const std::exception& error) {
        return fail(Step::watch, "token_file", error.what());
    }
    // The server ends the stream at timeoutSeconds; a peer that vanished without a reset is
    // caught 30 s after that.
    http.timeout = std::chrono::milliseconds((timeout_seconds + 30) * 1000LL);
    relist_reason_.clear();
    stream_error_.clear();
    stream_saw_line_ = false;
    request_ = client_.stream(
        std::move(http), [this](std::string_view line) { return on_line(line); },
        [this](HttpResponse response) { on_watch_end(std::move(response)); });
}

// Inside the HTTP client: only apply and remember; decisions happen in on_watch_end.
bool KubernetesCollectionBase::on_line(std::string_view line) {
    if (line.empty()) return true;
    if (!stream_saw_line_) {
        stream_saw_line_ = true;
        succeeded();
    }
    kubernetes::Decoded<kubernetes::WatchEvent<kubernetes::JsonObject>> decoded = kubernetes::decode_json_object_event(line);
    if (!decoded.ok()) return bad_event(decoded.error);
    kubernetes::WatchEvent<kubernetes::JsonObject>& event = *decoded.value;
    using kubernetes::EventType;
    if (event.type == EventType::error) {
        const kubernetes::Status& status = std::get<kubernetes::Status>(event.object);
        if (status.code == 410) relist_reason_ = "expired";
        stream_error_ = "watch: ERROR event " + std::to_string(status.code) + " " + status.reason + ": " +
                        status.message.substr(0, kMaxServerMessage);
        return false;
    }
    if (event.type == EventType::bookmark) {
        resource_version_ = event.resource_version;
        return true;
    }
    const std::string error =
        apply(std::move(std::get<kubernetes::JsonObject>(event.object)), event.type == EventType::deleted);
    if (!error.empty()) return bad_event("object." + error);
    if (!event.resource_version.empty()) resource_version_ = event.resource_version;
    if (hooks_.changed) hooks_.changed();
    return true;
}

bool KubernetesCollectionBase::bad_event(const std::string& error) {
    relist_reason_ = "bad_event";
    stream_error_ = "watch event: " + error;
    return false;
}

void KubernetesCollectionBase::on_watch_end(HttpResponse response) {
    request_ = 0;
    if (!relist_reason_.empty()) {
        if (relist_reason_ == "bad_event") {
            // A stream that cannot be trusted: count it as a failure (back-off), then list.
            return fail(Step::list, "bad_response", stream_error_);
        }
        return start_list(relist_reason_);  // 410 in the stream: the RV is gone, list now
    }
    if (!stream_error_.empty()) return fail(Step::watch, "http_error", stream_error_);
    if (response.status == 410) return start_list("expired");
    if (response.ok()) {
        // The server's timeout ended the watch (or it closed it): on from the last RV.
        counter(metrics_.kubernetes_watch_restarts, "server_closed").inc(metrics_.control_shard());
        return start_watch();
    }
    counter(metrics_.kubernetes_watch_restarts, "error").inc(metrics_.control_shard());
    fail(Step::watch, kubernetes_failure_reason(response), "watch: " + describe_failure(response));
}

void KubernetesCollectionBase::succeeded() {
    failures_ = 0;
    if (logged_error_.empty()) return;
    logged_error_.clear();
    log_line(LogLevel::info, target_.log_name + ": " + target_.resource + ": the API server answers again");
    if (hooks_.recovered) hooks_.recovered();
}

// Keep what we have; try `step` again after the back-off.
void KubernetesCollectionBase::fail(Step step, const std::string& reason, const std::string& error) {
    const reactor::Millis delay = kubernetes_retry_delay(settings_.retry_initial_delay.count(),
                                                         settings_.retry_max_delay.count(), failures_,
                                                         std::uniform_real_distribution<double>(0.0, 1.0)(random_));
    ++failures_;
    // Without a list there is no RV to watch from.
    retry_step_ = listed_ ? step : Step::list;
    counter(metrics_.kubernetes_request_failures, reason).inc(metrics_.control_shard());
    // Logged once per distinct error (the retry delay changes each time: compared without it).
    const std::string key = target_.resource + " " + error + credential_hint(credentials_, reason);
    const bool repeated = key == logged_error_;
    logged_error_ = key;
    if (!repeated)
        log_line(LogLevel::error, target_.log_name + ": " + key + "; retrying in " + std::to_string(delay) +
                                      " ms (keeping the last state)");
    loop_.arm_timer_after(retry_timer_, delay);
    if (hooks_.failed) hooks_.failed(key);
}

void KubernetesCollectionBase::retry() {
    if (retry_step_ == Step::list) start_list("error");
    else start_watch();
}

}  // namespace passgate
