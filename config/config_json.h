#pragma once
// The effective configuration as JSON: what `GET /config` serves and `passgate --check --verbose`
// prints. Every key under its TOML name (config/README.md), every default filled in, optional
// keys that are unset as null, durations as the strings the TOML takes ("10s", "250ms"), and
// listeners, routes and services in config order, each with its `origin` when it was made from a
// Gateway API object. File paths are shown, never the contents of the files they name: no secret
// (a token, a private key) can appear here.

#include "config/config.h"

#include <nlohmann/json.hpp>

#include <string>

namespace passgate::config {

nlohmann::ordered_json effective_config_json(const Config& config);

// A duration as the TOML writes it, in the largest unit that is exact: "2h", "90s", "250ms".
std::string duration_text(Duration duration);

}  // namespace passgate::config
