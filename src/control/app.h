#pragma once
// The process entry: signal mask and log writer, then the ControlPlane (control_plane.h), which
// binds listeners, starts one worker per core, and runs the control loop (signals,
// admin HTTP) on the main thread until SIGTERM/SIGINT.

#include "config/config.h"

#include <optional>
#include <string>

namespace passgate {

struct AppOptions {
    std::string config_path;
    std::optional<unsigned> workers_override;
};

// Returns the process exit status.
int run_app(config::Config config, const AppOptions& options);

}  // namespace passgate
