// passgate: TLS passthrough load balancer. See README.md.
//
//   passgate --config FILE            run in the foreground, logs to stderr (not as root, unless
//                                     --allow-root: see README.md, "Least privilege")
//   passgate --check --config FILE    validate; exit 0, or 1 with "FILE:LINE: message"
//   passgate --check --config NEW --against OLD   also: what a reload from OLD to NEW would do
//   passgate --version
//   passgate route --config FILE --sni NAME [--alpn P]... [--listener NAME]   explain the routing
//                                     decision; the exit status says it (RouteOutcome)
//   passgate upgrade --config FILE [--timeout D]  upgrade the running binary (README.md)
//   passgate status [--admin ADDRESS | --config FILE]  the running process's live view as tables

#include "config/config.h"
#include "reactor/ring.h"
#include "reactor/threads.h"
#include "src/control/app.h"
#include "config/config_json.h"
#include "src/control/check.h"
#include "src/control/reload_plan.h"
#include "src/control/status_command.h"
#include "src/control/upgrade.h"
#include "src/control/upgrade_command.h"
#include "src/discovery/hostnames_files.h"
#include "src/gateway/configuration.h"
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
        "       passgate --check [--verbose] --config FILE [--against RUNNING_FILE]\n"
        "       passgate route --config FILE --sni NAME [--alpn PROTOCOL]... [--listener NAME]\n"
        "       passgate upgrade --config FILE | --admin ADDRESS [--timeout DURATION]\n"
        "       passgate status [--admin ADDRESS | --config FILE]\n"
        "       passgate --version\n",
        out);
}

// --help: the usage, the defaults and the exit codes (README.md, "Usage" and "Exit codes").
void help(std::FILE* out) {
    usage(out);
    std::fputs(
        "\n"
        "  --workers N        worker threads, 0 to 1024; 0: one per usable CPU (default: [runtime] workers)\n"
        "  --log-level LEVEL  error, warning, info or debug (default: info)\n"
        "  --allow-root       serve even as root (refused without it)\n"
        "  --listener NAME    route: judge this listener only (default: every listener)\n"
        "\n"
        "exit codes: 0 OK; 1 config error, or start-up failed (--check: start-up would fail); 2 usage error\n"
        "passgate route: 0 every listener judged routes the hello (a default_route counts); 3 no_route on a\n"
        "  listener; 4 no_sni (no SNI and no default_route); 5 rejected before routing (bad_sni: an IP\n"
        "  literal or a bad label; bad_alpn); 1 config error; 2 usage error. Several: the highest.\n",
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
    std::optional<std::string> against;  // --check --against: the file the running process loaded
    std::vector<std::string> alpn;
    std::optional<std::string> listener;  // route --listener
    bool version = false;
    bool allow_root = false;
    std::optional<unsigned> workers;  // 0: one per usable CPU, as [runtime] workers = 0
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
        } else if (options.route && argument == "--listener") {
            auto name = value();
            if (!name) return std::nullopt;
            options.listener = *name;
        } else if (options.route && argument == "--alpn") {
            auto protocol = value();
            if (!protocol) return std::nullopt;
            options.alpn.push_back(*protocol);
        } else if (options.upgrade && (argument == "--admin" || argument == "--timeout")) {
            auto text = value();
            if (!text) return std::nullopt;
            (argument == "--admin" ? options.admin : options.timeout) = *text;
        } else if (argument == "--against") {
            auto path = value();
            if (!path) return std::nullopt;
            options.against = *path;
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
            if (text->empty() || *end != '\0' || workers > 1024 || (*text)[0] == '-') {
                std::fprintf(stderr, "passgate: --workers must be 0..1024 (0: one per CPU), got '%s'\n",
                             text->c_str());
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
            help(stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "passgate: unknown argument '%s'\n", argument.c_str());
            return std::nullopt;
        }
    }
    if (options.against && !options.check) {
        std::fprintf(stderr, "passgate: --against is for --check\n");
        return std::nullopt;
    }
    return options;
}

// `--check --against OLD`, once NEW (`next`) is valid: what a reload from OLD to NEW would do.
// Exit 0 (restarts needed are information), or 2 when OLD cannot be loaded (not the file the
// process runs with, then).
int check_against(const passgate::config::Config& next, const std::string& old_path) {
    passgate::config::Config running;
    try {
        running = passgate::gateway_api::load_configuration(old_path);
    } catch (const passgate::config::ConfigError& error) {
        std::fprintf(stderr, "passgate: --against %s: %s\n", old_path.c_str(), error.what());
        return 2;
    }
    std::cout << "reload from " << running.source << " (hash " << running.source_hash << ") to " << next.source
              << " (hash " << next.source_hash << "):\n"
              << passgate::describe_reload_plan(passgate::plan_reload(running, next));
    return 0;
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
        if (options->listener && config.find_listener(*options->listener) == nullptr) {
            std::string names;
            for (const passgate::config::Listener& listener : config.listeners)
                names += (names.empty() ? "" : ", ") + listener.name;
            std::fprintf(stderr, "passgate route: --listener: no listener \"%s\" in %s; listeners: %s\n",
                         options->listener->c_str(), config.source.c_str(), names.empty() ? "(none)" : names.c_str());
            return 2;
        }
        // The routes' hostnames files, read as start-up reads them; one that cannot be read is an
        // error (start-up would fail on it).
        std::vector<std::string> file_errors;
        const passgate::HostnameFiles files = passgate::read_hostnames_files(config, file_errors);
        for (const std::string& error : file_errors) std::fprintf(stderr, "passgate route: %s\n", error.c_str());
        if (!file_errors.empty()) return 1;
        const passgate::RouteExplanation explained = passgate::judge_route(
            config, *options->sni, options->alpn, options->listener ? &*options->listener : nullptr, &files);
        std::cout << explained.text;
        return static_cast<int>(explained.outcome);
    }
    // Every start-up validation that needs neither the network nor the ports (check.h).
    if (options->check) {
        const int verdict = passgate::run_check(config, gateway_summary, std::cout, std::cerr);
        if (verdict == 0 && options->verbose)
            std::cout << "effective configuration (GET /config shows the same):\n"
                      << passgate::config::effective_config_json(config).dump(
                             2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                      << '\n';
        if (verdict == 0 && options->against) return check_against(config, *options->against);
        return verdict;
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
        if (options->workers)
            app_options.workers_override = *options->workers != 0 ? *options->workers : passgate::reactor::usable_cpus();
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
