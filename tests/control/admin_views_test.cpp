#include "src/control/admin_views.h"
#include "src/control/status_command.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

using namespace passgate;
using Json = nlohmann::ordered_json;

namespace {

const std::string kConfig = R"([[listener]]
name = "tls"
address = "127.0.0.1:6443"
max_connections = 50
[[listener]]
name = "other"
address = "127.0.0.1:6444"
hostname = "*.example.com"
[[route]]
name = "web"
listeners = ["tls", "other"]
hostnames = ["web.example.com"]
backends = [ { service = "web" } ]
[[route]]
name = "api"
listeners = ["tls"]
hostnames = ["api.example.com"]
backends = [ { service = "web" } ]
[[service]]
name = "web"
endpoints = ["127.0.0.1:8443", "127.0.0.2:8443"]
health_check = { interval = "1s" }
[[service]]
name = "files"
endpoints_file = "/etc/passgate/files.endpoints"
)";

std::shared_ptr<const config::Config> parsed() {
    return std::make_shared<const config::Config>(config::parse_config(kConfig, "/etc/passgate/passgate.toml"));
}

LiveEndpoint live_endpoint(const std::string& address, bool healthy, unsigned workers, double last_change) {
    LiveEndpoint endpoint;
    endpoint.address = *config::parse_address(address);
    endpoint.name = address;
    endpoint.healthy = healthy;
    endpoint.live = std::make_shared<const metrics::ShardedCells>(workers, EndpointLiveCell::count);
    endpoint.last_change = last_change;
    return endpoint;
}

}  // namespace

TEST_CASE("GET /config: source, hash, load time and the effective config", "[admin_views]") {
    const auto config = parsed();
    const Json view = config_view(*config, 1700000000.5);
    CHECK(view["source"] == "/etc/passgate/passgate.toml");
    CHECK(view["hash"] == config->source_hash);
    CHECK(view["loaded_at"] == 1700000000.5);
    CHECK(view["config"]["listener"][0]["client_hello_timeout"] == "10s");
    CHECK(view["config"]["service"][1]["endpoints_file"] == "/etc/passgate/files.endpoints");
}

TEST_CASE("GET /listeners: open connections from the admission counts, limits, attached routes", "[admin_views]") {
    AppMetrics metrics(2);
    const Snapshot snapshot(parsed(), metrics);
    snapshot.listener_counters(0).open.store(7);
    snapshot.listener_counters(1).open.store(1);
    const Json view = listeners_view(snapshot, 2, 4000);
    CHECK(view["workers"] == 2);
    CHECK(view["max_connections_per_worker"] == 4000);
    REQUIRE(view["listeners"].size() == 2);
    CHECK(view["listeners"][0] == Json::parse(R"({"name":"tls","address":"127.0.0.1:6443","hostname":null,
        "open_connections":7,"max_connections":50,"max_connection_rate":null,"max_client_hello_size":65536,
        "client_hello_timeout":"10s","idle_timeout":"1h","routes":["web","api"]})"));
    CHECK(view["listeners"][1]["hostname"] == "*.example.com");
    CHECK(view["listeners"][1]["open_connections"] == 1);
    CHECK(view["listeners"][1]["routes"] == Json::parse(R"(["web"])"));
}

TEST_CASE("GET /endpoints: per-worker cells summed, ejections counted while they last", "[admin_views]") {
    const auto config = parsed();
    auto set = std::make_shared<EndpointSet>();
    set->service = "web";
    set->endpoints.push_back(live_endpoint("127.0.0.1:8443", true, 3, 1700000001));
    set->endpoints.push_back(live_endpoint("127.0.0.2:8443", false, 3, 1700000002));
    const metrics::ShardedCells& first = *set->endpoints[0].live;
    first.store(0, EndpointLiveCell::open, 2);
    first.store(2, EndpointLiveCell::open, 3);
    first.store(0, EndpointLiveCell::ejected_until_ms, 5000);   // ends after now (4000)
    first.store(1, EndpointLiveCell::ejected_until_ms, 3000);   // over
    first.store(2, EndpointLiveCell::ejected_until_ms, 9000);
    std::vector<ServiceEndpoints> services{
        {.service = &config->services[0], .set = set, .last_update = 1700000002.25},
        {.service = &config->services[1], .set = nullptr, .last_update = std::nullopt}};
    const Json view = endpoints_view(services, 3, 4000);
    const Json& web = view["services"][0];
    CHECK(web["name"] == "web");
    CHECK(web["source"] == "static");
    CHECK(web["balance"] == "round_robin");
    CHECK(web["health_check"] == true);
    CHECK(web["last_update"] == 1700000002.25);
    CHECK(web["endpoints"][0] == Json::parse(R"({"address":"127.0.0.1:8443","weight":1,"max_connections":null,
        "health":"healthy","ejected_workers":2,"workers":3,"open_connections":5,"last_change":1700000001.0})"));
    CHECK(web["endpoints"][1]["health"] == "unhealthy");
    CHECK(web["endpoints"][1]["open_connections"] == 0);
    CHECK(web["endpoints"][1]["ejected_workers"] == 0);
    const Json& files = view["services"][1];
    CHECK(files["source"] == "endpoints_file /etc/passgate/files.endpoints");
    CHECK(files["health_check"] == false);
    CHECK(files["last_update"].is_null());
    CHECK(files["endpoints"] == Json::array());
}

TEST_CASE("passgate status: the three views as tables", "[admin_views][status]") {
    AppMetrics metrics(2);
    const auto config = parsed();
    const Snapshot snapshot(config, metrics);
    snapshot.listener_counters(0).open.store(3);
    auto set = std::make_shared<EndpointSet>();
    set->service = "web";
    set->endpoints.push_back(live_endpoint("127.0.0.1:8443", false, 2, 1700000000));
    set->endpoints[0].live->store(1, EndpointLiveCell::open, 3);
    set->endpoints[0].live->store(1, EndpointLiveCell::ejected_until_ms, 9000);
    std::vector<ServiceEndpoints> services{{.service = &config->services[0], .set = set, .last_update = 1700000000},
                                           {.service = &config->services[1], .set = nullptr, .last_update = std::nullopt}};
    const std::string text = format_status(config_view(*config, 1700000000).dump(),
                                           listeners_view(snapshot, 2, 4000).dump(),
                                           endpoints_view(services, 2, 4000).dump(), 1700000030);
    CHECK(text.rfind("config /etc/passgate/passgate.toml hash " + config->source_hash +
                         " loaded 2023-11-14 22:13:20 UTC (30s ago)\n"
                         "workers 2, at most 4000 connections per worker\n\nLISTENERS\n",
                     0) == 0);
    CHECK_THAT(text, Catch::Contains(
        "NAME   ADDRESS         HOSTNAME       OPEN  MAX_CONNECTIONS  MAX_RATE  HELLO_TIMEOUT  IDLE_TIMEOUT  ROUTES\n"
        "tls    127.0.0.1:6443  -              3     50               -         10s            1h            web,api\n"
        "other  127.0.0.1:6444  *.example.com  0     -                -         10s            1h            web\n"));
    CHECK_THAT(text, Catch::Contains(
        "NAME   SOURCE                                        BALANCE      HEALTH_CHECK  ENDPOINTS  LAST_UPDATE\n"
        "web    static                                        round_robin  yes           1          30s ago\n"
        "files  endpoints_file /etc/passgate/files.endpoints  round_robin  no            0          -\n"));
    CHECK_THAT(text, Catch::Contains(
        "SERVICE  ENDPOINT        HEALTH     EJECTED  OPEN  WEIGHT  MAX_CONNECTIONS  LAST_CHANGE\n"
        "web      127.0.0.1:8443  unhealthy  1/2      3     1       -                30s ago\n"));
}

TEST_CASE("passgate status: an admin address nobody listens on is reported, exit 1", "[admin_views][status]") {
    // Port 1 on loopback: nothing listens there in the test environment (connect is refused).
    CHECK(run_status_command(*config::parse_address("127.0.0.1:1"), std::chrono::seconds(2)) == 1);
}
