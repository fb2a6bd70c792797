#include "src/control/check.h"

#include "config/hostname.h"
#include "reactor/ring.h"
#include "src/discovery/endpoints_file_reader.h"
#include "src/discovery/hostnames_files.h"
#include "src/discovery/kubernetes_credentials.h"
#include "src/routing/routing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <stdexcept>

namespace passgate {

namespace {
std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
        if (!out.empty()) out += ", ";
        out += item;
    }
    return out;
}
}  // namespace

std::string describe_config(const config::Config& config, const HostnameFiles* files) {
    std::string out = config.source + ": OK\n";
    out += "listeners: " + std::to_string(config.listeners.size()) + "\n";
    for (const config::Listener& listener : config.listeners) {
        out += "  " + listener.name + " " + listener.address.to_string();
        if (listener.protocol == config::ListenerProtocol::quic)
            out += " protocol=quic quic_flow_idle_timeout=" + std::to_string(listener.quic_flow_idle_timeout.count()) + "ms";
        if (listener.hostname) out += " hostname=" + *listener.hostname;
        if (listener.default_route) out += " default_route=" + *listener.default_route;
        if (!listener.origin.empty()) out += " (from " + listener.origin + ")";
        out += "\n";
        const ListenerRoutes routes(config, listener, files);
        for (const ListenerRoutes::Attached& attached : routes.attached()) {
            out += "    route " + attached.route->name + ": ";
            const std::string& file = attached.route->hostnames_file;
            if (attached.effective_hostnames.empty() && file.empty()) out += "(default route only)";
            else if (!attached.effective_hostnames.empty() &&
                     attached.effective_hostnames.front() == config::match_all_hostnames)
                out += "* (every hostname, lowest precedence)";
            else out += join(attached.effective_hostnames);
            // A file's names are counted, not listed (there may be a million).
            if (!file.empty())
                out += std::string(attached.effective_hostnames.empty() ? "" : ", ") + "hostnames_file " + file +
                       " (" + std::to_string(attached.file_hostnames) + " names here)";
            if (!attached.route->alpn.empty()) out += " alpn=" + join(attached.route->alpn);
            if (!attached.route->origin.empty()) out += " (from " + attached.route->origin + ")";
            out += "\n";
        }
    }
    out += "routes: " + std::to_string(config.routes.size()) + "\n";
    out += "services: " + std::to_string(config.services.size()) + "\n";
    for (const config::Service& service : config.services) {
        std::vector<std::string> endpoints;
        for (const config::Endpoint& endpoint : service.endpoints)
            endpoints.push_back(endpoint.address.to_string() +
                                (endpoint.weight != 1 ? " weight=" + std::to_string(endpoint.weight) : ""));
        out += "  " + service.name + ": " +
               (service.discovery == config::Discovery::static_list ? join(endpoints)
                                                                    : config::describe_discovery(service)) +
               "\n";
    }
    return out;
}

namespace {

bool uses_discovery(const config::Config& config, std::initializer_list<config::Discovery> kinds) {
    return std::any_of(config.services.begin(), config.services.end(), [&](const config::Service& service) {
        return std::find(kinds.begin(), kinds.end(), service.discovery) != kinds.end();
    });
}

// Start-up reads the credentials for Kubernetes discovery and for the Gateway API watch only.
bool kubernetes_used(const config::Config& config) {
    return uses_discovery(config, {config::Discovery::kubernetes}) || config.gateway_api.watch;
}

std::string place(const config::Config& config, int line) {
    return config.source + ":" + std::to_string(line);
}

std::string service_place(const config::Config& config, const config::Service& service) {
    return service.origin.empty() ? place(config, service.line) : service.origin;
}

// Start-up fails on an endpoints file it cannot read or parse; the same non-blocking reader
// here (a FIFO is reported, not waited on).
bool check_endpoints_files(const config::Config& config, std::ostream& errors) {
    bool ok = true;
    for (const config::Service& service : config.services) {
        if (service.discovery != config::Discovery::file) continue;
        const EndpointsFileParse parsed = read_endpoints_file(service.endpoints_file);
        if (parsed.ok()) continue;
        errors << service_place(config, service) << ": service \"" << service.name << "\": " << parsed.error << '\n';
        ok = false;
    }
    return ok;
}

// Start-up refuses a PASSGATE_IO_URING value it does not know; the unit's ExecStartPre shares
// the service's environment.
bool check_environment(std::ostream& errors) {
    try {
        [[maybe_unused]] const bool baseline = reactor::RingOptions::baseline_from_environment();
        return true;
    } catch (const std::invalid_argument& error) {
        errors << error.what() << '\n';
        return false;
    }
}

std::string folder_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// Can this process's effective uid (and groups) write `path`? As open(2) decides, without
// opening it.
int write_access_error(const std::string& path) {
    return ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) == 0 ? 0 : errno;
}

}  // namespace

bool check_kubernetes(const config::Config& config, std::ostream& out, std::ostream& errors) {
    if (!config.kubernetes.configured) return true;
    const bool used = kubernetes_used(config);
    try {
        const KubernetesCredentials credentials = load_kubernetes_credentials(config.kubernetes);
        out << "kubernetes: " << credentials.description
            << ": credentials OK (the API server was not contacted)\n";
        return true;
    } catch (const std::runtime_error& error) {
        if (used) {
            errors << place(config, config.kubernetes.line) << ": kubernetes: " << error.what() << '\n';
            return false;
        }
        errors << "warning: " << place(config, config.kubernetes.line) << ": kubernetes: " << error.what()
               << " (no service uses [kubernetes] and [gateway_api] does not watch: start-up does not read "
                  "the credentials; a reload that starts using them would be rejected)\n";
        return true;
    }
}

AccessLogCheck check_access_log(const config::Config& config) {
    const config::AccessLog& log = config.access_log;
    if (!log.enabled || log.path == "-") return {};
    const std::string uid = "checked as uid " + std::to_string(::geteuid());
    const auto failure = [&](const std::string& why) {
        return AccessLogCheck{false, place(config, log.path_line) + ": access_log.path: " + log.path + ": " + why +
                                         " (" + uid + "); start-up opens it for append"};
    };
    struct stat file {};
    if (::stat(log.path.c_str(), &file) == 0) {
        if (S_ISDIR(file.st_mode)) return failure("is a folder, not a file");
        if (const int error = write_access_error(log.path); error != 0)
            return failure(std::string("cannot be written: ") + std::strerror(error));
        return {true, "access_log: " + log.path + ": can be opened for append (" + uid + ")"};
    }
    if (errno != ENOENT) return failure(std::strerror(errno));
    // The file is created at start: its folder must exist and be writable.
    const std::string folder = folder_of(log.path);
    struct stat folder_status {};
    if (::stat(folder.c_str(), &folder_status) != 0) {
        if (errno == ENOENT) return failure("its folder " + folder + " does not exist");
        return failure("its folder " + folder + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(folder_status.st_mode)) return failure(folder + " is not a folder");
    if (const int error = write_access_error(folder); error != 0)
        return failure("cannot be created: its folder " + folder + " cannot be written: " + std::strerror(error));
    return {true, "access_log: " + log.path + ": does not exist yet; its folder " + folder +
                      " can be written, so start-up can create it (" + uid + ")"};
}

std::string not_checked_line(const config::Config& config) {
    std::vector<std::string> parts;
    if (uses_discovery(config, {config::Discovery::dns, config::Discovery::dns_srv}))
        parts.push_back("DNS names (resolved at start)");
    if (kubernetes_used(config)) parts.push_back("the Kubernetes API server (contacted at start)");
    parts.push_back("whether the ports are free (bound at start)");
    return "not checked: " + join(parts);
}

int run_check(const config::Config& config, const std::string& gateway_summary, std::ostream& out,
              std::ostream& errors) {
    for (const std::string& warning : config.warnings) errors << "warning: " << warning << '\n';
    // Every check runs, so that one pass reports every problem.
    std::ostringstream kubernetes_line;
    const bool endpoints_ok = check_endpoints_files(config, errors);
    // Start-up fails on a hostnames file it cannot read or parse (the same reader).
    std::vector<std::string> file_errors;
    const HostnameFiles hostname_files = read_hostnames_files(config, file_errors);
    for (const std::string& error : file_errors) errors << error << '\n';
    const bool files_ok = endpoints_ok && file_errors.empty();
    // Names claimed twice where a hostnames file is involved: warnings like the config's own.
    for (const config::Listener& listener : config.listeners) {
        const ListenerRoutes routes(config, listener, &hostname_files);
        for (const std::string& warning : routes.shadowed()) errors << "warning: " << warning << '\n';
        if (routes.shadowed_count() > routes.shadowed().size())
            errors << "warning: listener \"" << listener.name << "\": "
                   << routes.shadowed_count() - routes.shadowed().size() << " more shadowed hostnames not listed\n";
    }
    const bool kubernetes_ok = check_kubernetes(config, kubernetes_line, errors);
    const AccessLogCheck access_log = check_access_log(config);
    if (!access_log.ok) errors << access_log.text << '\n';
    const bool environment_ok = check_environment(errors);
    if (!(files_ok && kubernetes_ok && access_log.ok && environment_ok)) {
        errors << config.source << ": not OK: start-up would fail (the problems above)\n";
        return 1;
    }
    out << describe_config(config, &hostname_files);
    if (!gateway_summary.empty()) out << gateway_summary << '\n';
    if (config.gateway_api.watch)
        out << "gateway_api: watch = true: the Gateway API objects are read from the API server at start; not "
               "checked here\n";
    out << kubernetes_line.str();
    if (!access_log.text.empty()) out << access_log.text << '\n';
    out << not_checked_line(config) << '\n';
    return 0;
}

}  // namespace passgate
