#pragma once
#include "config/config.h"

#include <string>

namespace passgate {
// The `--check` summary: listeners, routes with their effective hostnames per listener, services.
std::string describe_config(const config::Config& config);
}  // namespace passgate
