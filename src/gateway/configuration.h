#pragma once
// The whole configuration passgate runs: the TOML file and, with [gateway_api] manifests, the
// Gateway API objects of those files translated (translate.h) and merged in. Start-up, reload,
// --check and `passgate route` all load it here, so they agree. In watch mode the objects come
// from the API server later (the control plane merges them as they change); this returns the
// TOML's part.

#include "config/config.h"

#include <string>

namespace passgate::gateway_api {

// Throws config::ConfigError: the TOML's errors, a manifest's ("FILE:LINE: kind ns/name: field:
// message"), the translation's, or a collision between the two. Config::source_hash covers the
// TOML and every manifest file, so a reload sees a change to either. `summary`, when given,
// gets one line on what the manifests held, for --check.
config::Config load_configuration(const std::string& path, std::string* summary = nullptr);

}  // namespace passgate::gateway_api
