#pragma once
// A real passgate process for a test: writes the config, starts the binary named by
// $PASSGATE_BINARY with `--workers 2` (and `--allow-root`: the tests run as root), waits for
// /readyz, and at the end stops it with SIGTERM and checks its exit status and that its stderr
// holds no sanitizer report.

#include "tests/support/process.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace integration {

std::string passgate_binary();

struct PassgateOptions {
    std::string config;  // the TOML text; "@ADMIN@" is replaced by the admin port's address
    std::vector<std::string> extra_args;
    unsigned workers = 2;
};

// How the binary is started: `prefix` goes before it (e.g. setpriv ... or prlimit ...), and
// `allow_root` adds --allow-root (passgate refuses to run as uid 0 without it).
struct PassgateLaunch {
    std::vector<std::string> prefix;
    bool allow_root = true;
};

class Passgate {
public:
    // `binary`: the file to start; empty: passgate_binary(). (The upgrade tests start a copy from
    // a path of their own, and replace that file as a package manager would.)
    Passgate(const TempDir& dir, const PassgateOptions& options, const std::string& name = "passgate",
             const PassgateLaunch& launch = {}, const std::string& binary = {});
    ~Passgate() = default;

    // /readyz answered 200 within the timeout (and the process is still running).
    bool wait_ready(Millis timeout = Millis(15000));
    pid_t pid() const { return process_->pid(); }
    Process& process() { return *process_; }
    std::uint16_t admin_port() const { return admin_port_; }
    const std::string& config_path() const { return config_path_; }
    std::string stderr_text() const { return process_->stderr_text(); }
    // The stderr file contains `needle` within the timeout.
    bool wait_for_log(const std::string& needle, Millis timeout = Millis(3000)) const;
    // A "connection closed" line for exactly this client ("127.0.0.1:PORT") that contains `needle`
    // appears within the timeout.
    bool wait_for_client_log(const std::string& client, const std::string& needle,
                             Millis timeout = Millis(3000)) const;
    // Lines of stderr that contain every one of `needles`.
    // Access-log lines (one per connection) whose reason is not `completed`.
    std::vector<std::string> failed_connection_lines() const;
    std::vector<std::string> log_lines_with(const std::vector<std::string>& needles) const;

    // The sum of every sample (any labels) of the first metric family in `names` that /metrics
    // shows; nullopt when none is there or the scrape fails. Several names: the metric set is
    // still growing, and older builds used shorter names.
    std::optional<double> metric(const std::vector<std::string>& names) const;

    // SIGTERM; returns the exit status (or -1 if it had to be killed).
    int stop(Millis grace = Millis(5000)) { return process_->terminate(grace); }

private:
    std::string config_path_;
    std::uint16_t admin_port_ = 0;
    std::unique_ptr<Process> process_;
};

// ---- Reloads -------------------------------------------------------------------------------------

// `config` with "@ADMIN@" replaced by this passgate's admin address (as at start-up).
std::string with_admin_address(const Passgate& passgate, const std::string& config);
// Replaces the config file (a temporary file renamed over it, so passgate never reads half a
// file) with `config` ("@ADMIN@" replaced), then sends SIGHUP. Returns at once: the reload runs
// on passgate's control thread (see wait_for_reloads).
void reload_with(Passgate& passgate, const std::string& config);
// One sample of /metrics named exactly as exposed, labels included, e.g.
// `passgate_config_reloads_total{result="success"}`; nullopt when absent or the scrape fails.
std::optional<double> metric_sample(const Passgate& passgate, const std::string& series);
// The sum of the samples of `family` whose labels contain every one of `labels` (for example
// `reason="timeout"`); 0 when there are none. A failed scrape fails the test.
double labelled_sum(const Passgate& passgate, const std::string& family, const std::vector<std::string>& labels);
// Reloads handled so far: passgate_config_reloads_total, success plus failure.
std::optional<double> reloads_handled(const Passgate& passgate);
// passgate has handled `count` reloads within the timeout. Two SIGHUPs sent before the first is
// handled make one reload: wait for each before sending the next.
bool wait_for_reloads(const Passgate& passgate, int count, Millis timeout = Millis(5000));

// A sanitizer report in a process's stderr, or empty.
std::string sanitizer_report(const std::string& stderr_text);

// Stops passgate and checks (Catch2 CHECKs) that it exited 0 within 5 s and printed no ASan/UBSan
// report. Call at the end of every test that started one.
void stop_and_check(Passgate& passgate);

// After a first SIGTERM: sends the second one and checks that passgate exits 0 within 1 s, says
// it closes every connection, closes the connection of `client_fd`, and printed no sanitizer report.
void check_second_sigterm_stops_at_once(Passgate& passgate, int client_fd);

// The captured ClientHellos ($PASSGATE_CLIENTHELLOS, index.json).
struct CapturedHello {
    std::string file;
    std::optional<std::string> sni;
    std::vector<std::uint8_t> bytes;
};
const std::vector<CapturedHello>& captured_hellos();
const CapturedHello& captured_hello(const std::string& file);

}  // namespace integration
