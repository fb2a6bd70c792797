#include "src/control/app.h"

#include "reactor/signals.h"
#include "src/control/control_plane.h"
#include "src/observe/log.h"

#include <signal.h>

#include <chrono>

namespace passgate {

int run_app(config::Config config, const AppOptions& options) {
    // splice(2) has no MSG_NOSIGNAL: a write to a reset peer must be an EPIPE, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    // Before any thread starts, so that every thread inherits the mask and only the signalfd
    // sees these.
    reactor::block_signals({SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2});
    // From here on no thread blocks on stderr: lines go through the log writer's bounded queue
    // (a stalled journal drops lines, counted, instead of freezing a worker). It outlives the
    // control plane, so that the workers' last lines are written.
    LogWriterScope log_writer(std::chrono::milliseconds(1000));
    ControlPlane control_plane(options, std::move(config));
    return control_plane.run();
}

}  // namespace passgate
