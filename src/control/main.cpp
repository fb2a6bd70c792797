// passgate: TLS passthrough load balancer. See README.md.
//
//   passgate --config FILE            run in the foreground, logs to stderr (not as root, unless
//                                     --allow-root: see README.md, "Least privilege")
//   passgate --check --config FILE    validate; exit 0, or 1 with "FILE:LINE: message"
//   passgate --version
//   passgate route --config FILE --sni NAME [--alpn P]...   explain the routing decision
//   passgate upgrade --config FILE [--timeout D]  upgrade the running binary (README.md)
//   passgate status [--admin ADDRESS | --config FILE]  the running process's live view as tables

#include "config/config.h"
#include "reactor/ring.h"
#include "src/control/app.h"
#include "config/config_json.h"
#include "src/control/check.h"
#include "src/control/status_command.h"
#include "src/control/upgrade.h"
#include "src/control/upgrade_command.h"
#include "src/gateway/configuration.h"
#include "src/wire/endpoints_file.h"
#include "src/discovery/endpoints_file_reader.h"
#include "src/observe/log.h"
#include "src/routing/route_explain.h"
#include "src/observe/version.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

void usage(std::FILE* out) {
    std::fputs(
        "usage: passgate --config FILE [--workers N] [--log-level error|warning|info|debug] [--allow-root]\n"
        "       passgate --check [--verbose] --config FILE\n"
        "       passgate route --config FILE --sni NAME [--alpn PROTOCOL]...\n"
        "       passgate upgrade --config FILE | --admin ADDRESS [--timeout DURATION]\n"
        "       passgate status [--admin ADDRESS | --config FILE]\n"
        "       passgate --version\n",
        out);
}

struct Options {
    std::string config_path;
    bool check = false;
    bool route = false;  // the `route` subcommand
    bool upgrade = false;  // the `upgrade` subcommand
    bool status = false;   // the `status` subcommand
    bool verbose = false;  // --check --verbose: the effective configuration too
    std::optional<std::string> admin;    // upgrade, status --admin
    std::optional<std::string> timeout;  // upgrade --timeout
    std::optional<std::string> sni;
    std::vector<std::string> alpn;
    bool version = false;
    bool allow_root = false;
    std::optional<unsigned> workers;
    passgate::LogLevel log_level = passgate::LogLevel::info;
};

std::optional<Options> parse_options(int argc, char** argv) {
    Options options;
    int first = 1;
    if (argc > 1 && std::string(argv[1]) == "route") {
        options.route = true;
        first = 2;
    } else if (argc > 1 && std::string(argv[1]) == "upgrade") {
        options.upgrade = true;
        first = 2;
    } else if (argc > 1 && std::string(argv[1]) == "status") {
        options.status = true;
        first = 2;
    }
    for (int i = first; i < argc; ++i) {
        const std::string argument = argv[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "passgate: %s needs a value\n", argument.c_str());
                return std::nullopt;
            }
            return std::string(argv[++i]);
        };
        if (argument == "--config" || argument == "-c") {
            auto path = value();
            if (!path) return std::nullopt;
            options.config_path = *path;
        } else if (options.route && argument == "--sni") {
            auto sni = value();
            if (!sni) return std::nullopt;
            options.sni = *sni;
        } else if (options.route && argument == "--alpn") {
            auto protocol = value();
            if (!protocol) return std::nullopt;
            options.alpn.push_back(*protocol);
        } else if (options.upgrade && (argument == "--admin" || argument == "--timeout")) {
            auto text = value();
            if (!text) return std::nullopt;
            (argument == "--admin" ? options.admin : options.timeout) = *text;
        } else if (options.status && argument == "--admin") {
            auto text = value();
            if (!text) return std::nullopt;
            options.admin = *text;
        } else if (argument == "--check") {
            options.check = true;
        } else if (argument == "--verbose") {
            options.verbose = true;
        } else if (argument == "--version") {
            options.version = true;
        } else if (argument == "--allow-root") {
            options.allow_root = true;
        } else if (argument == "--workers") {
            auto text = value();
            if (!text) return std::nullopt;
            char* end = nullptr;
            const unsigned long workers = std::strtoul(text->c_str(), &end, 10);
            if (text->empty() || *end != '\0' || workers == 0 || workers > 1024) {
                std::fprintf(stderr, "passgate: --workers must be 1..1024, got '%s'\n", text->c_str());
                return std::nullopt;
            }
            options.workers = static_cast<unsigned>(workers);
        } else if (argument == "--log-level") {
            auto level = value();
            if (!level) return std::nullopt;
            if (*level == "error") options.log_level = passgate::LogLevel::error;
            else if (*level == "warning") options.log_level = passgate::LogLevel::warning;
            else if (*level == "info") options.log_level = passgate::LogLevel::info;
            else if (*level == "debug") options.log_level = passgate::LogLevel::debug;
            else {
                std::fprintf(stderr, "passgate: unknown --log-level '%s'\n", level->c_str());
                return std::nullopt;
            }
        } else if (argument == "--help" || argument == "-h") {
            usage(stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "passgate: unknown argument '%s'\n", argument.c_str());
            return std::nullopt;
        }
    }
    return options;
}

// The binary's path now, before a package manager replaces the file: an upgrade executes the
// file at this path (the new binary), not this process's (deleted) one.
std::string own_binary_path(const char* argv0) {
    char path[4096];
    const ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0) return argv0;
    return std::string(path, static_cast<std::size_t>(length));
}

// `passgate upgrade`: the admin address from --admin, else from the config file.
int upgrade_command(const Options& options) {
    std::optional<passgate::config::Address> admin;
    std::chrono::milliseconds timeout(65000);
    if (options.admin) {
        admin = passgate::config::parse_address(*options.admin);
        if (!admin) {
            std::fprintf(stderr, "passgate upgrade: --admin: not an address: '%s' (e.g. 127.0.0.1:9901)\n",
                         options.admin->c_str());
            return 2;
        }
    } else if (!options.config_path.empty()) {
        try {
            const passgate::config::Config config = passgate::gateway_api::load_configuration(options.config_path);
            admin = config.admin.address;
            timeout = config.runtime.upgrade_timeout + std::chrono::seconds(5);
        } catch (const passgate::config::ConfigError& error) {
            std::fprintf(stderr, "%s\npassgate upgrade: not started: the new process would read this configuration "
                                 "and fail\n", error.what());
            return 1;
        }
    } else {
        std::fprintf(stderr, "passgate upgrade: --config FILE or --admin ADDRESS is required\n");
        return 2;
    }
    if (options.timeout) {
        const auto parsed = passgate::config::parse_duration(*options.timeout);
        if (!parsed || parsed->count() <= 0) {
            std::fprintf(stderr, "passgate upgrade: --timeout: not a duration: '%s' (e.g. 90s)\n", options.timeout->c_str());
            return 2;
        }
        timeout = *parsed;
    }
    return passgate::run_upgrade_command(*admin, timeout);
}

// `passgate status`: the admin address from --admin, else from the config file, else the default.
int status_command(const Options& options) {
    passgate::config::Address admin = *passgate::config::parse_address("127.0.0.1:9901");  // [admin]'s default
    if (options.admin) {
        const auto parsed = passgate::config::parse_address(*options.admin);
        if (!parsed) {
            std::fprintf(stderr, "passgate status: --admin: not an address: '%s' (e.g. 127.0.0.1:9901)\n",
                         options.admin->c_str());
            return 2;
        }
        admin = *parsed;
    } else if (!options.config_path.empty()) {
        try {
            admin = passgate::gateway_api::load_configuration(options.config_path).admin.address;
        } catch (const passgate::config::ConfigError& error) {
            std::fprintf(stderr, "%s\npassgate status: the admin address is in this configuration\n", error.what());
            return 1;
        }
    }
    return passgate::run_status_command(admin, std::chrono::seconds(5));
}

}  // namespace

int main(int argc, char** argv) {
    const std::optional<Options> options = parse_options(argc, argv);
    if (!options) {
        usage(stderr);
        return 2;
    }
    if (options->version) {
        std::cout << passgate::version_text() << '\n';
        return 0;
    }
    if (options->upgrade) return upgrade_command(*options);
    if (options->status) return status_command(*options);
    // Started by an upgrade: every failure to start is told to the old process (which keeps
    // serving), as well as logged.
    std::optional<passgate::UpgradeParent> upgrade_parent;
    const bool serving = !options->route && !options->check;
    if (serving) {
        try {
            upgrade_parent = passgate::UpgradeParent::from_environment();
        } catch (const std::runtime_error& error) {
            std::fprintf(stderr, "passgate: %s\n", error.what());
            return 1;
        }
    }
    const auto fail = [&](const std::string& reason) {
        if (!upgrade_parent) return;
        // The old process learns of the exit from its pidfd anyway; this adds the reason.
        [[maybe_unused]] const bool told = upgrade_parent->send_failed(reason);
    };
    if (options->config_path.empty()) {
        std::fprintf(stderr, "passgate: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    passgate::set_log_level(options->log_level);

    passgate::config::Config config;
    std::string gateway_summary;
    try {
        config = passgate::gateway_api::load_configuration(options->config_path, &gateway_summary);
    } catch (const passgate::config::ConfigError& error) {
        std::fprintf(stderr, "%s\n", error.what());
        fail(error.what());
        return 1;
    }
    if (options->route) {
        if (!options->sni) {
            std::fprintf(stderr, "passgate route: --sni NAME is required (use --sni '' for a hello without SNI)\n");
            return 2;
        }
        std::cout << passgate::explain_route(config, *options->sni, options->alpn);
        return 0;
    }
    if (options->check) {
        std::cout << passgate::describe_config(config);
        if (!gateway_summary.empty()) std::cout << gateway_summary << '\n';
        if (config.gateway_api.watch)
            std::cout << "gateway_api: watch = true: the Gateway API objects are read from the API server "
                         "at start; not checked here\n";
        for (const std::string& warning : config.warnings) std::cerr << "warning: " << warning << '\n';
        // Start-up fails on an endpoints file it cannot read, so --check reads them too (with
        // the same non-blocking reader: a FIFO is reported, not waited on).
        bool files_ok = true;
        for (const passgate::config::Service& service : config.services) {
            if (service.discovery != passgate::config::Discovery::file) continue;
            const passgate::EndpointsFileParse parsed = passgate::read_endpoints_file(service.endpoints_file);
            if (parsed.ok()) continue;
            std::cerr << "service \"" << service.name << "\": " << parsed.error << '\n';
            files_ok = false;
        }
        // Start-up and reload load the Kubernetes credentials; so does --check, without the network.
        const bool kubernetes_ok = passgate::check_kubernetes(config, std::cout, std::cerr);
        if (options->verbose)
            std::cout << "effective configuration (GET /config shows the same):\n"
                      << passgate::config::effective_config_json(config).dump(
                             2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                      << '\n';
        return files_ok && kubernetes_ok ? 0 : 1;
    }
    // Serving as root would hand every parser bug the whole machine. --check and `route` only
    // read the config, so they may run as anyone.
    if ((::getuid() == 0 || ::geteuid() == 0) && !options->allow_root) {
        std::fprintf(stderr,
                     "passgate: refusing to run as root (uid 0). Run it as an unprivileged user with only "
                     "CAP_NET_BIND_SERVICE (the systemd unit does; see README.md, \"Least privilege\"), "
                     "or pass --allow-root to run as root anyway.\n");
        fail("refusing to run as root (uid 0)");
        return 1;
    }
    for (const std::string& warning : config.warnings)
        passgate::log_line(passgate::LogLevel::warning, warning);
    try {
        // Refuses a PASSGATE_IO_URING value it does not know here, before any thread starts.
        if (passgate::reactor::RingOptions::baseline_from_environment())
            passgate::log_line(passgate::LogLevel::warning,
                               "PASSGATE_IO_URING=baseline: io_uring without set-up flags and with one-shot "
                               "accepts (the paths of kernels before 6.1; meant for tests)");
        passgate::AppOptions app_options;
        app_options.config_path = options->config_path;
        app_options.workers_override = options->workers;
        app_options.binary_path = own_binary_path(argv[0]);
        app_options.arguments.assign(argv, argv + argc);
        app_options.upgrade_parent = upgrade_parent ? &*upgrade_parent : nullptr;
        return passgate::run_app(std::move(config), app_options);
    } catch (const std::exception& error) {
        passgate::log_line(passgate::LogLevel::error, std::string("fatal: ") + error.what());
        fail(std::string("fatal: ") + error.what());
        return 1;
    }
}
