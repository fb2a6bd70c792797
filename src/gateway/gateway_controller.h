#pragma once
// [gateway_api] watch = true, for the control plane: the Kubernetes credentials and HTTP client
// of the watch, the GatewayWatch (gateway_watch.h) and the StatusWriter (status_writer.h), and
// the one step the control plane calls on every change: the TOML's config merged with the
// objects held now (translate.h), and the statuses of that translation published once it is
// installed.
//
// In watch mode an object that is invalid on its own, or a Gateway listener whose address a
// [[listener]] of the TOML holds, does not stop the others: it is left out of the translation,
// logged once (until the set of such problems changes) and, where it has a status, its status
// says why.
//
// Threading: the control thread's loop.

#include "config/config.h"
#include "reactor/loop.h"
#include "src/observe/app_metrics.h"

#include <functional>
#include <memory>
#include <string>

namespace passgate::gateway_api {

class GatewayController {
public:
    using Changed = std::function<void()>;
    // Loads the credentials of `config.kubernetes` (throws std::runtime_error naming the file
    // when they do not load) and starts the watch; `changed` runs on the loop after each burst
    // of changes, once every kind is listed.
    GatewayController(reactor::Loop& loop, const config::Config& config, AppMetrics& metrics, Changed changed);
    ~GatewayController();
    GatewayController(const GatewayController&) = delete;
    GatewayController& operator=(const GatewayController&) = delete;

    // Every kind has been listed once: the objects are the cluster's.
    bool synced() const;
    const std::string& last_error() const;

    // `base` (the TOML's config) with the objects held now. Throws config::ConfigError when the
    // merge fails (a collision with the TOML). The result's source_hash covers the TOML and the
    // objects' resourceVersions, so an unchanged set installs nothing.
    config::Config merged(const config::Config& base);
    // After the control plane installed the last merged() result: its statuses go to the
    // writer (written while this node holds the Lease).
    void installed();
    // installed() has been called once: the cluster's objects are being served (readiness).
    bool applied() const { return applied_; }

private:
    // The credentials, the HTTP client, the watch and the writer (gateway_controller.cpp): kept
    // out of this header, which the control plane includes beside its admin server's HTTP types.
    struct Parts;
    std::unique_ptr<Parts> parts_;
    bool applied_ = false;
};

}  // namespace passgate::gateway_api
