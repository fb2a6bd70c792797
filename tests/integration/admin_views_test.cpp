// The admin address's live views (GET /config, /listeners, /endpoints) and `passgate status`
// against a real passgate: two services (a static one whose second endpoint is a closed port its
// health check finds unhealthy, and an endpoints_file one whose closed endpoint outlier detection
// ejects), connections held open through the proxy, exact numbers in every view and in the
// status tables, and a reload seen in /config's hash and load time.

#include "tests/support/backends.h"
#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <ctime>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace integration;
using Json = nlohmann::json;

namespace {

const std::string kWebSni = "web.views.test";

std::string address_of(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// FNV-1a 64 of the file's bytes as 16 hex digits: the config hash passgate reports.
std::string fnv1a64(const std::string& bytes) {
    std::uint64_t hash = 14695981039346656037ull;
    for (const unsigned char byte : bytes) {
        hash ^= byte;
        hash *= 1099511628211ull;
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
    return text;
}

Json view(const Passgate& passgate, const std::string& path) {
    const std::optional<HttpResponse> response = http_get(passgate.admin_port(), path);
    REQUIRE(response);
    REQUIRE(response->status == 200);
    return Json::parse(response->body);
}

const Json& find_named(const Json& list, const std::string& key, const std::string& value) {
    for (const Json& item : list)
        if (item.at(key) == value) return item;
    FAIL("no item with " << key << " = " << value << " in " << list.dump());
    return list;
}

// One request with any method; the response's head and status.
std::string raw_request(std::uint16_t port, const std::string& request) {
    Socket socket = connect_to(port);
    REQUIRE(socket);
    REQUIRE(send_all(socket.get(), request.data(), request.size(), deadline_in(Millis(2000))));
    std::string response;
    char buffer[4096];
    const Deadline deadline = deadline_in(Millis(2000));
    for (int reads = 0; reads < 1000; ++reads) {
        const std::optional<std::size_t> got = recv_some(socket.get(), buffer, sizeof buffer, deadline);
        if (!got || *got == 0) break;
        response.append(buffer, *got);
    }
    return response;
}

// The whitespace-separated words of the first line of `text` that starts with `start`.
std::vector<std::string> row_starting(const std::string& text, const std::string& start) {
    std::istringstream lines(text);
    std::string line;
    for (int count = 0; count < 1000 && std::getline(lines, line); ++count) {
        if (line.rfind(start, 0) != 0) continue;
        std::istringstream words(line);
        std::vector<std::string> out;
        std::string word;
        while (words >> word) out.push_back(word);
        return out;
    }
    return {};
}

// Distinct worker indexes that logged ejecting `endpoint` of `service`.
std::set<std::string> ejecting_workers(const Passgate& passgate, const std::string& endpoint, const std::string& service) {
    std::set<std::string> workers;
    for (const std::string& line :
         passgate.log_lines_with({"endpoint " + endpoint + " of service " + service + " ejected"})) {
        const std::size_t at = line.find("worker ");
        if (at != std::string::npos) workers.insert(line.substr(at + 7, line.find(':', at) - at - 7));
    }
    return workers;
}

std::string views_config(std::uint16_t web_port, std::uint16_t files_port, const IdentBackend& a,
                         std::uint16_t closed, const std::string& idle_timeout) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"web\"\naddress = \"" + address_of(web_port) + "\"\nmax_connections = 100\n"
           "idle_timeout = \"" + idle_timeout + "\"\n\n"
           "[[listener]]\nname = \"files\"\naddress = \"" + address_of(files_port) + "\"\n"
           "default_route = \"to-files\"\n\n"
           "[[route]]\nname = \"to-web\"\nlisteners = [\"web\"]\nhostnames = [\"" + kWebSni + "\"]\n"
           "backends = [ { service = \"web\" } ]\n\n"
           "[[route]]\nname = \"to-files\"\nlisteners = [\"files\"]\nbackends = [ { service = \"files\" } ]\n\n"
           "[[service]]\nname = \"web\"\nendpoints = [\"" + address_of(a.port()) + "\", \"" + address_of(closed) +
           "\"]\n"
           "health_check = { interval = \"100ms\", timeout = \"200ms\", unhealthy_threshold = 1 }\n\n"
           "[[service]]\nname = \"files\"\nendpoints_file = \"files.endpoints\"\nbalance = \"round_robin\"\n"
           "outlier_detection = { consecutive_failures = 1, base_ejection_time = \"60s\" }\n";
}

}  // namespace

TEST_CASE("admin views: /config, /listeners, /endpoints and passgate status show the live process",
          "[integration][admin_views]") {
    TempDir dir;
    IdentBackend a("a"), b("b");
    const std::uint16_t closed_web = free_port();    // nothing listens: the health check fails
    const std::uint16_t closed_files = free_port();  // nothing listens: connects fail, ejected
    const std::uint16_t web_port = free_port();
    const std::uint16_t files_port = free_port();
    write_file(dir.file("files.endpoints"), address_of(b.port()) + "\n" + address_of(closed_files) + "\n");
    const double started = static_cast<double>(std::time(nullptr));
    Passgate passgate(dir, {views_config(web_port, files_port, a, closed_web, "1h"), {}, 2});
    REQUIRE(passgate.wait_ready());

    // The health check finds the closed port (threshold 1, every 100 ms).
    REQUIRE(wait_until([&] {
        const Json endpoints = view(passgate, "/endpoints");
        const Json& web = find_named(endpoints["services"], "name", "web");
        return find_named(web["endpoints"], "address", address_of(closed_web))["health"] == "unhealthy";
    }, Millis(5000), Millis(50)));

    // Held connections: 3 through "web" (all to a: the other endpoint is unhealthy), 4 through
    // "files" (to b; a worker that tries the closed endpoint ejects it and retries b).
    std::vector<Socket> held;
    for (int i = 0; i < 3; ++i) {
        Socket client = connect_to(web_port);
        REQUIRE(client);
        REQUIRE(read_backend_id(client.get(), minimal_client_hello(kWebSni)) == "a");
        held.push_back(std::move(client));
    }
    for (int i = 0; i < 4; ++i) {
        Socket client = connect_to(files_port);
        REQUIRE(client);
        REQUIRE(read_backend_id(client.get(), minimal_client_hello("files.views.test")) == "b");
        held.push_back(std::move(client));
    }
    // Round robin on each worker: a worker that took two "files" connections has tried the
    // closed endpoint. Make sure at least one did (more connections until one logged it).
    for (int i = 0; i < 20 && ejecting_workers(passgate, address_of(closed_files), "files").empty(); ++i) {
        Socket client = connect_to(files_port);
        REQUIRE(client);
        REQUIRE(read_backend_id(client.get(), minimal_client_hello("files.views.test")) == "b");
        held.push_back(std::move(client));
    }
    const std::size_t files_open = held.size() - 3;
    const std::set<std::string> ejecting = ejecting_workers(passgate, address_of(closed_files), "files");
    REQUIRE(!ejecting.empty());

    SECTION("GET /listeners") {
        const Json listeners = view(passgate, "/listeners");
        CHECK(listeners["workers"] == 2);
        CHECK(listeners["max_connections_per_worker"].is_number());
        const Json& web = find_named(listeners["listeners"], "name", "web");
        CHECK(web == Json::parse(R"({"name":"web","address":")" + address_of(web_port) + R"(","hostname":null,
            "open_connections":3,"max_connections":100,"max_connection_rate":null,"max_client_hello_size":65536,
            "client_hello_timeout":"10s","idle_timeout":"1h","routes":["to-web"]})"));
        const Json& files = find_named(listeners["listeners"], "name", "files");
        CHECK(files["open_connections"] == files_open);
        CHECK(files["max_connections"].is_null());
        CHECK(files["routes"] == Json::parse(R"(["to-files"])"));
    }

    SECTION("GET /endpoints") {
        const Json endpoints = view(passgate, "/endpoints");
        const Json& web = find_named(endpoints["services"], "name", "web");
        CHECK(web["source"] == "static");
        CHECK(web["balance"] == "round_robin");
        CHECK(web["health_check"] == true);
        CHECK(web["last_update"].get<double>() >= started);
        const Json& to_a = find_named(web["endpoints"], "address", address_of(a.port()));
        CHECK(to_a["health"] == "healthy");
        CHECK(to_a["open_connections"] == 3);
        CHECK(to_a["ejected_workers"] == 0);
        CHECK(to_a["workers"] == 2);
        CHECK(to_a["weight"] == 1);
        CHECK(to_a["max_connections"].is_null());
        CHECK(to_a["last_change"].get<double>() >= started);
        const Json& down = find_named(web["endpoints"], "address", address_of(closed_web));
        CHECK(down["health"] == "unhealthy");
        CHECK(down["open_connections"] == 0);
        CHECK(down["last_change"].get<double>() >= to_a["last_change"].get<double>());

        const Json& files = find_named(endpoints["services"], "name", "files");
        CHECK(files["source"] == "endpoints_file " + dir.file("files.endpoints"));
        CHECK(files["health_check"] == false);
        const Json& to_b = find_named(files["endpoints"], "address", address_of(b.port()));
        CHECK(to_b["health"] == "unchecked");
        CHECK(to_b["open_connections"] == files_open);
        CHECK(to_b["ejected_workers"] == 0);
        const Json& ejected = find_named(files["endpoints"], "address", address_of(closed_files));
        CHECK(ejected["ejected_workers"] == ejecting.size());
        CHECK(ejected["open_connections"] == 0);
    }

    SECTION("passgate status prints the same numbers") {
        const RunResult status = run({passgate_binary(), "status", "--admin", address_of(passgate.admin_port())}, dir,
                                     "status");
        INFO(status.out << status.err);
        REQUIRE(status.status == 0);
        CHECK(status.out.rfind("config " + passgate.config_path() + " hash " +
                                   fnv1a64(read_file(passgate.config_path())) + " loaded ", 0) == 0);
        CHECK(row_starting(status.out, "web ") ==
              std::vector<std::string>{"web", address_of(web_port), "-", "3", "100", "-", "10s", "1h", "to-web"});
        CHECK(row_starting(status.out, "files  " + address_of(files_port)) ==
              std::vector<std::string>{"files", address_of(files_port), "-", std::to_string(files_open), "-", "-",
                                       "10s", "1h", "to-files"});
        const std::vector<std::string> to_a = row_starting(status.out, "web      " + address_of(a.port()));
        REQUIRE(to_a.size() >= 7);
        CHECK(std::vector<std::string>(to_a.begin(), to_a.begin() + 7) ==
              std::vector<std::string>{"web", address_of(a.port()), "healthy", "0/2", "3", "1", "-"});
        const std::vector<std::string> down = row_starting(status.out, "web      " + address_of(closed_web));
        REQUIRE(down.size() >= 5);
        CHECK(down[2] == "unhealthy");
        const std::vector<std::string> ejected = row_starting(status.out, "files    " + address_of(closed_files));
        REQUIRE(ejected.size() >= 5);
        CHECK(ejected[2] == "unchecked");
        CHECK(ejected[3] == std::to_string(ejecting.size()) + "/2");
        CHECK(ejected[4] == "0");

        // Nobody listens on closed_web: exit 1, and the address in the message.
        const RunResult unreachable = run({passgate_binary(), "status", "--admin", address_of(closed_web)}, dir,
                                          "status-unreachable");
        CHECK(unreachable.status == 1);
        CHECK(unreachable.err.rfind("passgate status: cannot reach " + address_of(closed_web) + ": ", 0) == 0);
        // The admin address from the config file.
        const RunResult from_config = run({passgate_binary(), "status", "--config", passgate.config_path()}, dir,
                                          "status-config");
        CHECK(from_config.status == 0);
        CHECK(from_config.out.find("ENDPOINTS") != std::string::npos);
    }

    SECTION("the views are JSON, GET only") {
        for (const std::string path : {"/config", "/listeners", "/endpoints"}) {
            const std::string get = raw_request(passgate.admin_port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(get.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
            CHECK(get.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
            for (const std::string method : {"POST", "PUT", "DELETE", "HEAD"}) {
                const std::string refused =
                    raw_request(passgate.admin_port(), method + " " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
                INFO(method << " " << path << ": " << refused);
                CHECK(refused.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
                CHECK(refused.find("\r\nAllow: GET\r\n") != std::string::npos);
            }
        }
    }

    SECTION("GET /config, and a reload seen in its hash and load time") {
        const Json before = view(passgate, "/config");
        CHECK(before["source"] == passgate.config_path());
        CHECK(before["hash"] == fnv1a64(read_file(passgate.config_path())));
        CHECK(before["loaded_at"].get<double>() >= started);
        CHECK(before["config"]["listener"][0]["idle_timeout"] == "1h");
        CHECK(before["config"]["service"][1]["endpoints_file"] == dir.file("files.endpoints"));
        CHECK(before["config"]["runtime"]["workers"] == 0);  // the file's; --workers 2 is /listeners' count

        // passgate --check --verbose prints the same effective configuration after its summary.
        const RunResult check = run({passgate_binary(), "--check", "--verbose", "--config", passgate.config_path()},
                                    dir, "check-verbose");
        INFO(check.out << check.err);
        REQUIRE(check.status == 0);
        const std::string marker = "effective configuration (GET /config shows the same):\n";
        const std::size_t at = check.out.find(marker);
        REQUIRE(at != std::string::npos);
        CHECK(check.out.find(": OK\n") < at);  // after the usual summary
        CHECK(Json::parse(check.out.substr(at + marker.size())) == before["config"]);

        reload_with(passgate, views_config(web_port, files_port, a, closed_web, "90s"));
        REQUIRE(wait_for_reloads(passgate, 1));
        const Json after = view(passgate, "/config");
        CHECK(after["hash"] == fnv1a64(read_file(passgate.config_path())));
        CHECK(after["hash"] != before["hash"]);
        CHECK(after["loaded_at"].get<double>() > before["loaded_at"].get<double>());
        CHECK(after["config"]["listener"][0]["idle_timeout"] == "90s");
        CHECK(find_named(view(passgate, "/listeners")["listeners"], "name", "web")["idle_timeout"] == "90s");
        // The held connections are still counted on the listener that kept its name.
        CHECK(find_named(view(passgate, "/listeners")["listeners"], "name", "web")["open_connections"] == 3);
    }

    held.clear();
    stop_and_check(passgate);
}
