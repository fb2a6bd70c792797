#pragma once
#include "config/config.h"

#include <ostream>
#include <string>

namespace passgate {
// The `--check` summary: listeners, routes with their effective hostnames per listener, services.
std::string describe_config(const config::Config& config);
// The `--check` of [kubernetes], when configured: the credentials load as at start-up (kubeconfig,
// context, cluster and user found, files read, certificates and keys parsed) without contacting
// the API server. Writes a line saying so to `out`, or the error to `errors` and returns false.
bool check_kubernetes(const config::Config& config, std::ostream& out, std::ostream& errors);
}  // namespace passgate
