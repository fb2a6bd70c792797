#pragma once
// The process entry: signal mask and log writer, then the ControlPlane (control_plane.h), which
// binds listeners, starts one worker per core, and runs the control loop (signals,
// admin HTTP) on the main thread until SIGTERM/SIGINT.

#include "config/config.h"

#include <optional>
#include <string>
#include <vector>

namespace passgate {

class UpgradeParent;

struct AppOptions {
    std::string config_path;
    std::optional<unsigned> workers_override;
    // For a binary upgrade: the binary's path as resolved at start (the file a package manager
    // replaces is what the upgrade runs) and this process's arguments (argv[0] included).
    std::string binary_path;
    std::vector<std::string> arguments;
    // Set when this process was started by an upgrade (owned by main).
    UpgradeParent* upgrade_parent = nullptr;
};

// Returns the process exit status.
int run_app(config::Config config, const AppOptions& options);

}  // namespace passgate
