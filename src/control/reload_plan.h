#pragma once
// What a reload from one configuration to another would do, computed from the two configs alone
// (no files, no sockets): the settings it cannot apply (they keep their running value until a
// restart), and which listeners, routes and services it adds, removes or changes. Used by
// ControlPlane::install (the warnings and passgate_config_reload_restart_required_total) and by
// `passgate --check --config NEW --against OLD`. config/README.md, "Reloading", lists the keys.

#include "config/config.h"

#include <string>
#include <string_view>
#include <vector>

namespace passgate {

// A setting that differs but is only read at start-up. Values are written as in TOML
// ("\"logfmt\"", "2", "\"2s\""; "unset" for an optional key that is not set).
struct RestartRequired {
    std::string key;      // "access_log.format"
    std::string running;  // the value in use
    std::string next;     // the value of the new config
    friend bool operator==(const RestartRequired&, const RestartRequired&) = default;
};

// Items of one kind, by name, in the order of the config they come from.
struct NameChanges {
    std::vector<std::string> added;    // in `next` only
    std::vector<std::string> removed;  // in `running` only
    std::vector<std::string> changed;  // in both, with different settings (where written aside)
    bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

struct ReloadPlan {
    bool unchanged = false;  // the same hash: the reload is a no-op
    // Not empty: the reload would be rejected as a whole (watch mode, below).
    std::string refused;
    std::vector<RestartRequired> restart_required;  // in the order of restart_only_keys()
    NameChanges listeners;
    NameChanges routes;
    NameChanges services;
};

// Every key a reload does not apply, as "table.key".
std::vector<std::string_view> restart_only_keys();

// The restart-only settings that differ between the values in use (`in_use`: the config the
// process started with) and `next`. Access log format and path count only when `next` has the
// access log enabled (nothing reads them otherwise).
std::vector<RestartRequired> restart_required(const config::Config& in_use, const config::Config& next);

// Why a reload from `running` to `next` is rejected as a whole, or "": with [gateway_api]
// watch = true the watch is set up once, so turning it on or off, or changing [gateway_api] or
// [kubernetes] under it, needs a restart (the same rule as ControlPlane::reload).
std::string reload_refusal(const config::Config& running, const config::Config& next);

// The whole plan. `running` stands for both the config in use and the one the process started
// with (for `--against`, one file is all there is).
ReloadPlan plan_reload(const config::Config& running, const config::Config& next);

// "access_log.format changed ("logfmt" -> "json") but needs a restart; still using "logfmt""
std::string describe_restart_warning(const RestartRequired& change);

// The `--check --against` text: one "restart needed: KEY (OLD -> NEW)" line per key, then the
// listeners, routes and services added, removed and changed.
std::string describe_reload_plan(const ReloadPlan& plan);

}  // namespace passgate
