#pragma once
#include "config/config.h"
#include "src/routing/routing.h"

#include <ostream>
#include <string>

namespace passgate {
// The `--check` summary: listeners, routes with their effective hostnames per listener, services.
// `files`: the routes' hostnames files as read (nullptr: none read; a file route then shows no
// names).
std::string describe_config(const config::Config& config, const HostnameFiles* files = nullptr);
// The `--check` of [kubernetes]: the credentials load as at start-up (kubeconfig, context,
// cluster and user found, files read, certificates and keys parsed) without contacting the API
// server. Start-up reads them only when a service uses Kubernetes discovery or [gateway_api]
// watches, and so fails only then: an unused [kubernetes] with credentials that do not load is a
// warning, not an error. Writes a line saying what was found to `out`, or the error (or warning)
// to `errors`; returns false on an error.
bool check_kubernetes(const config::Config& config, std::ostream& out, std::ostream& errors);

// The `--check` of the access log file: start-up opens it for append (creating it), as the
// service user. Checked without creating it: the file is writable, or it does not exist and its
// folder is, for this process's effective uid (said in the text: under systemd's ExecStartPre
// that is the service user). `text`: the line to print, or the error ("FILE:LINE:
// access_log.path: ..."). Nothing to check (ok, empty text) when disabled or "-" (stderr).
struct AccessLogCheck {
    bool ok = true;
    std::string text;
};
AccessLogCheck check_access_log(const config::Config& config);

// What --check cannot know without the network or binding, as the last line of its output:
// "not checked: DNS names (resolved at start), ..." (the ports part always).
std::string not_checked_line(const config::Config& config);

// `passgate --check` once the config loaded (config errors are reported before): every start-up
// validation that needs neither the network nor the ports (endpoints files, the access log
// file, [kubernetes] credentials, the PASSGATE_IO_URING environment variable). All pass: the
// summary ("FILE: OK", ...) to `out`, ending with not_checked_line, and 0. Else each problem to
// `errors` and 1. Warnings go to `errors` either way. `gateway_summary`: what loading the Gateway
// API manifests said ("" without them).
int run_check(const config::Config& config, const std::string& gateway_summary, std::ostream& out,
              std::ostream& errors);
}  // namespace passgate
