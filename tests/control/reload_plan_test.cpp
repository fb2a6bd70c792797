#include "src/control/reload_plan.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using passgate::RestartRequired;
using passgate::config::Config;
using test_config::listener;
using test_config::route;

namespace {

// A listener, a route and the service "s", after `tables` (TOML tables such as [runtime]).
Config config_with(const std::string& tables, const std::string& source = "reload_plan_test.toml") {
    return test_config::make_config(tables + listener("l", 6443) + route("r", {"l"}, {"app.example.com"}), source);
}

std::vector<std::string> keys_of(const std::vector<RestartRequired>& changes) {
    std::vector<std::string> keys;
    for (const RestartRequired& change : changes) keys.push_back(change.key);
    return keys;
}

}  // namespace

TEST_CASE("reload plan: every restart-only key is detected, with both values as written in TOML",
          "[reload_plan]") {
    struct Case {
        std::string running;
        std::string next;
        RestartRequired expected;
    };
    const std::vector<Case> cases = {
        {"", "[runtime]\nworkers = 4\n", {"runtime.workers", "0", "4"}},
        {"[runtime]\nworkers = 2\n", "[runtime]\nworkers = 4\n", {"runtime.workers", "2", "4"}},
        {"", "[runtime]\nmax_connections_per_worker = 4000\n",
         {"runtime.max_connections_per_worker", "unset", "4000"}},
        {"", "[runtime]\npause_accepting_at = 2048\n", {"runtime.pause_accepting_at", "unset", "2048"}},
        {"", "[runtime]\nmax_hello_memory = 1048576\n", {"runtime.max_hello_memory", "67108864", "1048576"}},
        {"", "[runtime]\nreuseport_cpu_steering = true\n", {"runtime.reuseport_cpu_steering", "false", "true"}},
        {"", "[runtime]\nmax_quic_flows_per_worker = 100\n", {"runtime.max_quic_flows_per_worker", "16384", "100"}},
        {"", "[access_log]\nenabled = false\n", {"access_log.enabled", "true", "false"}},
        {"", "[access_log]\nformat = \"json\"\n", {"access_log.format", "\"logfmt\"", "\"json\""}},
        {"", "[access_log]\npath = \"/var/log/passgate/access.log\"\n",
         {"access_log.path", "\"-\"", "\"/var/log/passgate/access.log\""}},
        {"", "[admin]\naddress = \"127.0.0.1:9902\"\n", {"admin.address", "\"127.0.0.1:9901\"", "\"127.0.0.1:9902\""}},
        {"", "[admin]\nrequest_timeout = \"500ms\"\n", {"admin.request_timeout", "\"2s\"", "\"500ms\""}},
        {"", "[admin]\nmax_connections = 64\n", {"admin.max_connections", "256", "64"}},
        {"", "[admin]\nmax_connections_per_source = 4\n", {"admin.max_connections_per_source", "16", "4"}},
    };
    // Every key of the list is covered by a case above.
    std::vector<std::string> covered;
    for (const Case& c : cases) covered.push_back(c.expected.key);
    for (std::string_view key : passgate::restart_only_keys())
        CHECK(std::find(covered.begin(), covered.end(), std::string(key)) != covered.end());

    for (const Case& c : cases) {
        INFO(c.expected.key << ": " << c.next);
        const Config running = config_with(c.running);
        const Config next = config_with(c.next);
        const std::vector<RestartRequired> changes = passgate::restart_required(running, next);
        REQUIRE(changes.size() == 1);
        CHECK(changes[0] == c.expected);
        // The other way round: the values swap.
        const std::vector<RestartRequired> back = passgate::restart_required(next, running);
        REQUIRE(back.size() == 1);
        CHECK(back[0].running == c.expected.next);
        CHECK(back[0].next == c.expected.running);
    }
}

TEST_CASE("reload plan: several keys at once, in the order of the key list", "[reload_plan]") {
    const Config running = config_with("[runtime]\nworkers = 1\n");
    const Config next = config_with("[runtime]\nworkers = 2\n[access_log]\nformat = \"json\"\npath = \"/tmp/x.log\"\n");
    CHECK(keys_of(passgate::restart_required(running, next)) ==
          std::vector<std::string>{"runtime.workers", "access_log.format", "access_log.path"});
}

TEST_CASE("reload plan: the access log's format and path do not count while the log is off", "[reload_plan]") {
    const Config running = config_with("[access_log]\nenabled = false\n");
    const Config next = config_with("[access_log]\nenabled = false\nformat = \"json\"\npath = \"/tmp/x.log\"\n");
    CHECK(passgate::restart_required(running, next).empty());
    // Turned on with a new format: both need the restart.
    const Config on = config_with("[access_log]\nformat = \"json\"\n");
    CHECK(keys_of(passgate::restart_required(running, on)) ==
          std::vector<std::string>{"access_log.enabled", "access_log.format"});
}

TEST_CASE("reload plan: what a reload applies is not a restart", "[reload_plan]") {
    const Config running = config_with("");
    const Config next = config_with(
        "[runtime]\nshutdown_timeout = \"5s\"\nupgrade_timeout = \"90s\"\n"
        "[admin]\ndeparted_series_retention = \"10m\"\n"
        "[dns]\ntimeout = \"1s\"\ntries = 3\n");
    const passgate::ReloadPlan plan = passgate::plan_reload(running, next);
    CHECK_FALSE(plan.unchanged);
    CHECK(plan.restart_required.empty());
    CHECK(plan.refused.empty());
}

TEST_CASE("reload plan: the same settings written elsewhere, or spelt otherwise, are no change",
          "[reload_plan]") {
    const std::string service = "[[service]]\nname = \"t\"\nendpoints = [\"127.0.0.1:9443\"]\n";
    const Config running = test_config::make_config(
        "[runtime]\nworkers = 2\n[admin]\naddress = \"127.0.0.1:9901\"\nrequest_timeout = \"2s\"\n" +
            listener("l", 6443) + listener("m", 6444) + route("r", {"l"}, {"app.example.com"}) + service,
        "a.toml");
    // Tables moved (the services first, [admin] after [runtime] with comments, listeners swapped),
    // a duration spelt in milliseconds, the address with a different spelling.
    const Config next = test_config::make_config(
        "# moved\n[admin]\nrequest_timeout = \"2000ms\"\naddress = \"127.0.0.1:9901\"\n\n[runtime]\n# two\nworkers = 2\n" +
            service + listener("m", 6444) + "\n\n" + listener("l", 6443) + route("r", {"l"}, {"app.example.com"}),
        "b.toml");
    REQUIRE(running.source_hash != next.source_hash);
    const passgate::ReloadPlan plan = passgate::plan_reload(running, next);
    CHECK_FALSE(plan.unchanged);
    CHECK(plan.restart_required.empty());
    CHECK(plan.listeners.empty());
    CHECK(plan.routes.empty());
    CHECK(plan.services.empty());
    CHECK(passgate::describe_reload_plan(plan) ==
          "restart needed: nothing\n"
          "listeners added: none; removed: none; changed: none\n"
          "routes added: none; removed: none; changed: none\n"
          "services added: none; removed: none; changed: none\n");
}

TEST_CASE("reload plan: listeners, routes and services added, removed and changed", "[reload_plan]") {
    const std::string services =
        "[[service]]\nname = \"t\"\nendpoints = [\"127.0.0.1:9443\"]\n"
        "[[service]]\nname = \"gone\"\nendpoints = [\"127.0.0.1:9444\"]\n";
    const Config running = test_config::make_config(
        listener("l", 6443) + listener("old", 6444) + route("r", {"l"}, {"app.example.com"}) +
            route("dropped", {"l"}, {"b.example.com"}) + route("same", {"l"}, {"c.example.com"}) + services,
        "a.toml");
    const Config next = test_config::make_config(
        listener("l", 6443, "*.example.com") + listener("new", 6445) +
            route("r", {"l"}, {"app.example.com", "www.example.com"}) + route("same", {"l"}, {"c.example.com"}) +
            route("added", {"new"}, {"d.example.com"}) +
            "[[service]]\nname = \"t\"\nendpoints = [\"127.0.0.1:9443\"]\nbalance = \"least_connections\"\n"
            "[[service]]\nname = \"fresh\"\nendpoints = [\"127.0.0.1:9445\"]\n",
        "b.toml");
    const passgate::ReloadPlan plan = passgate::plan_reload(running, next);
    CHECK(plan.listeners.added == std::vector<std::string>{"new"});
    CHECK(plan.listeners.removed == std::vector<std::string>{"old"});
    CHECK(plan.listeners.changed == std::vector<std::string>{"l"});
    CHECK(plan.routes.added == std::vector<std::string>{"added"});
    CHECK(plan.routes.removed == std::vector<std::string>{"dropped"});
    CHECK(plan.routes.changed == std::vector<std::string>{"r"});
    CHECK(plan.services.added == std::vector<std::string>{"fresh"});
    CHECK(plan.services.removed == std::vector<std::string>{"gone"});
    CHECK(plan.services.changed == std::vector<std::string>{"t"});
    CHECK(passgate::describe_reload_plan(plan) ==
          "restart needed: nothing\n"
          "listeners added: new; removed: old; changed: l\n"
          "routes added: added; removed: dropped; changed: r\n"
          "services added: fresh; removed: gone; changed: t\n");
}

TEST_CASE("reload plan: an endpoint's weight, a backend's weight and a listener's address are changes",
          "[reload_plan]") {
    const Config running = test_config::make_config(listener("l", 6443) + route("r", {"l"}, {"a.example.com"}), "a");
    const Config moved = test_config::make_config(listener("l", 6446) + route("r", {"l"}, {"a.example.com"}), "b");
    CHECK(passgate::plan_reload(running, moved).listeners.changed == std::vector<std::string>{"l"});
    const Config weighted = test_config::make_config(
        listener("l", 6443) + route("r", {"l"}, {"a.example.com"}, {}, "[{ service = \"s\", weight = 3 }]"), "c");
    CHECK(passgate::plan_reload(running, weighted).routes.changed == std::vector<std::string>{"r"});
    const Config endpoint_weight = passgate::config::parse_config(
        listener("l", 6443) + route("r", {"l"}, {"a.example.com"}) +
            "[[service]]\nname = \"s\"\nendpoints = [{ address = \"127.0.0.1:8443\", weight = 2 }]\n",
        "d");
    CHECK(passgate::plan_reload(running, endpoint_weight).services.changed == std::vector<std::string>{"s"});
}

TEST_CASE("reload plan: an unchanged file is a no-op", "[reload_plan]") {
    const Config running = config_with("[access_log]\nformat = \"json\"\n");
    const Config same = config_with("[access_log]\nformat = \"json\"\n");
    const passgate::ReloadPlan plan = passgate::plan_reload(running, same);
    CHECK(plan.unchanged);
    CHECK(passgate::describe_reload_plan(plan) == "unchanged (the same hash): a reload changes nothing\n");
}

TEST_CASE("reload plan: the warning and --against texts", "[reload_plan]") {
    const Config running = config_with("");
    const Config next = config_with("[access_log]\nformat = \"json\"\n");
    const passgate::ReloadPlan plan = passgate::plan_reload(running, next);
    REQUIRE(plan.restart_required.size() == 1);
    CHECK(passgate::describe_restart_warning(plan.restart_required[0]) ==
          "access_log.format changed (\"logfmt\" -> \"json\") but needs a restart; still using \"logfmt\"");
    CHECK(passgate::describe_reload_plan(plan) ==
          "restart needed: access_log.format (\"logfmt\" -> \"json\")\n"
          "listeners added: none; removed: none; changed: none\n"
          "routes added: none; removed: none; changed: none\n"
          "services added: none; removed: none; changed: none\n");
}

TEST_CASE("reload plan: watch mode refuses a change of [gateway_api] or [kubernetes], as a reload does",
          "[reload_plan]") {
    const std::string kubernetes = "[kubernetes]\nkubeconfig = \"/etc/passgate/kubeconfig\"\n";
    const std::string watch = "[gateway_api]\ngateway_class = \"eg\"\nwatch = true\n";
    const Config watching = passgate::config::parse_config(kubernetes + watch, "/etc/passgate/a.toml");
    // A comment moves the tables: the same settings, not refused.
    const Config moved = passgate::config::parse_config("# moved\n" + kubernetes + watch, "/etc/passgate/a.toml");
    CHECK(passgate::plan_reload(watching, moved).refused.empty());
    const Config other_context =
        passgate::config::parse_config(kubernetes + "context = \"edge\"\n" + watch, "/etc/passgate/a.toml");
    CHECK(passgate::plan_reload(watching, other_context).refused ==
          "/etc/passgate/a.toml:4: gateway_api: changes to [gateway_api] or to [kubernetes] with watch = true "
          "need a restart");
    // Turning watch on, from a plain config.
    CHECK_FALSE(passgate::plan_reload(config_with(""), watching).refused.empty());
    // Without watch, [kubernetes] is reloadable.
    const Config plain = passgate::config::parse_config(kubernetes + listener("l", 6443) +
                                                            route("r", {"l"}, {"a.example.com"}) +
                                                            "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:1\"]\n",
                                                        "/etc/passgate/a.toml");
    const Config plain_context = passgate::config::parse_config(
        kubernetes + "context = \"edge\"\n" + listener("l", 6443) + route("r", {"l"}, {"a.example.com"}) +
            "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:1\"]\n",
        "/etc/passgate/a.toml");
    CHECK(passgate::plan_reload(plain, plain_context).refused.empty());
}
