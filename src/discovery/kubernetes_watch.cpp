#include "src/discovery/kubernetes_watch.h"

#include "src/observe/log.h"

#include <utility>

namespace passgate {

// ---- The watch ----------------------------------------------------------------------------------

KubernetesWatch::KubernetesWatch(reactor::Loop& loop, HttpClient& client, const KubernetesCredentials& credentials,
                                 const config::Kubernetes& settings, AppMetrics& metrics, std::string namespace_name,
                                 std::string service_name, Changed changed, Failed failed)
    : loop_(loop),
      namespace_name_(std::move(namespace_name)),
      service_name_(std::move(service_name)),
      changed_(std::move(changed)),
      failed_(std::move(failed)) {
    const KubernetesCollectionBase::Hooks hooks{[this] { collection_changed(); },
                                                [this](const std::string& error) { collection_failed(error); },
                                                [this] { collection_recovered(); }};
    KubernetesCollectionTarget target;
    target.metric_namespace = namespace_name_;
    target.metric_service = service_name_;
    target.log_name = "kubernetes " + describe();
    target.key_by_name = true;

    target.resource = "services";
    target.path = "/api/v1/namespaces/" + namespace_name_ + "/services";
    target.selector = "fieldSelector=" + kubernetes_escape_query("metadata.name=" + service_name_);
    services_ = std::make_unique<KubernetesCollection<kubernetes::Service>>(
        loop, client, credentials, settings, metrics, target, kubernetes::decode_service_object, hooks);

    target.resource = "endpointslices";
    target.path = "/apis/discovery.k8s.io/v1/namespaces/" + namespace_name_ + "/endpointslices";
    target.selector = "labelSelector=" + kubernetes_escape_query("kubernetes.io/service-name=" + service_name_);
    slices_ = std::make_unique<KubernetesCollection<kubernetes::EndpointSlice>>(
        loop, client, credentials, settings, metrics, target, kubernetes::decode_endpoint_slice_object, hooks);

    services_->start();
    slices_->start();
}

KubernetesWatch::~KubernetesWatch() {
    services_.reset();
    slices_.reset();
    loop_.cancel_timer(notify_timer_);
}

const std::optional<kubernetes::Service>& KubernetesWatch::service() const { return service_; }
const std::map<std::string, kubernetes::EndpointSlice>& KubernetesWatch::slices() const { return slices_->objects(); }
bool KubernetesWatch::synced() const { return services_->listed() && slices_->listed(); }

void KubernetesWatch::collection_changed() {
    // The Service of that name (the field selector asks for it alone).
    const auto found = services_->objects().find(service_name_);
    if (found == services_->objects().end()) service_.reset();
    else service_ = found->second;
    if (!synced()) return;  // the first complete view goes out when both lists are in
    if (!pending_since_) pending_since_ = std::chrono::steady_clock::now();
    loop_.arm_timer_after(notify_timer_, 0);
}

void KubernetesWatch::notify() {
    changed_at_ = pending_since_.value_or(std::chrono::steady_clock::now());
    pending_since_.reset();
    changed_();
}

void KubernetesWatch::collection_failed(const std::string& error) {
    last_error_ = error;
    failed_();
}

void KubernetesWatch::collection_recovered() {
    if (services_->error().empty() && slices_->error().empty()) last_error_.clear();
}

}  // namespace passgate
