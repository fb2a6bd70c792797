#include "src/control/status_command.h"

#include "src/control/admin_client.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <vector>

namespace passgate {

namespace {

using Json = nlohmann::json;

// Rows of cells printed in columns two spaces apart, each as wide as its widest cell.
class Table {
public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    std::string text() const {
        std::vector<std::size_t> widths;
        for (const auto& row : rows_) {
            widths.resize(std::max(widths.size(), row.size()));
            for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
        }
        std::string out;
        for (const auto& row : rows_) {
            std::string line;
            for (std::size_t i = 0; i < row.size(); ++i) {
                line += row[i];
                if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
            }
            out += line + "\n";
        }
        return out;
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

// A number, a string, or "-" for null.
std::string cell(const Json& value) {
    if (value.is_null()) return "-";
    if (value.is_string()) return value.get<std::string>();
    if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
    return value.dump();
}

std::string utc_time(double unix_seconds) {
    const std::time_t seconds = static_cast<std::time_t>(unix_seconds);
    std::tm parts{};
    if (::gmtime_r(&seconds, &parts) == nullptr) return "-";
    char text[32];
    const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
    return std::string(text, length);
}

// "45s ago", "12m ago", "3h ago", "2d ago".
std::string age(const Json& unix_seconds, double now) {
    if (!unix_seconds.is_number()) return "-";
    const long long seconds = std::max(0LL, static_cast<long long>(now - unix_seconds.get<double>()));
    if (seconds < 120) return std::to_string(seconds) + "s ago";
    if (seconds < 2 * 3600) return std::to_string(seconds / 60) + "m ago";
    if (seconds < 2 * 86400) return std::to_string(seconds / 3600) + "h ago";
    return std::to_string(seconds / 86400) + "d ago";
}

std::string joined(const Json& names) {
    std::string out;
    for (const Json& name : names) {
        // Appended in two steps: GCC 12 -O3 reports a false -Wrestrict on `const char* + std::string&&`.
        if (!out.empty()) out += ',';
        out += cell(name);
    }
    return out.empty() ? "-" : out;
}

}  // namespace

std::string format_status(const std::string& config_text, const std::string& listeners_text,
                          const std::string& endpoints_text, double now) {
    const Json config = Json::parse(config_text);
    const Json listeners = Json::parse(listeners_text);
    const Json endpoints = Json::parse(endpoints_text);
    std::string out = "config " + cell(config.at("source")) + " hash " + cell(config.at("hash")) + " loaded " +
                      utc_time(config.at("loaded_at").get<double>()) + " (" + age(config.at("loaded_at"), now) + ")\n";
    out += "workers " + cell(listeners.at("workers")) + ", at most " + cell(listeners.at("max_connections_per_worker")) +
           " connections per worker\n\nLISTENERS\n";
    Table listener_table({"NAME", "ADDRESS", "HOSTNAME", "OPEN", "MAX_CONNECTIONS", "MAX_RATE", "HELLO_TIMEOUT",
                          "IDLE_TIMEOUT", "ROUTES"});
    for (const Json& listener : listeners.at("listeners"))
        listener_table.add({cell(listener.at("name")), cell(listener.at("address")), cell(listener.at("hostname")),
                            cell(listener.at("open_connections")), cell(listener.at("max_connections")),
                            cell(listener.at("max_connection_rate")), cell(listener.at("client_hello_timeout")),
                            cell(listener.at("idle_timeout")), joined(listener.at("routes"))});
    out += listener_table.text() + "\nSERVICES\n";
    Table service_table({"NAME", "SOURCE", "BALANCE", "HEALTH_CHECK", "ENDPOINTS", "LAST_UPDATE"});
    Table endpoint_table({"SERVICE", "ENDPOINT", "HEALTH", "EJECTED", "OPEN", "WEIGHT", "MAX_CONNECTIONS",
                          "LAST_CHANGE"});
    for (const Json& service : endpoints.at("services")) {
        service_table.add({cell(service.at("name")), cell(service.at("source")), cell(service.at("balance")),
                           cell(service.at("health_check")), std::to_string(service.at("endpoints").size()),
                           age(service.at("last_update"), now)});
        for (const Json& endpoint : service.at("endpoints"))
            endpoint_table.add({cell(service.at("name")), cell(endpoint.at("address")), cell(endpoint.at("health")),
                                cell(endpoint.at("ejected_workers")) + "/" + cell(endpoint.at("workers")),
                                cell(endpoint.at("open_connections")), cell(endpoint.at("weight")),
                                cell(endpoint.at("max_connections")), age(endpoint.at("last_change"), now)});
    }
    out += service_table.text() + "\nENDPOINTS\n" + endpoint_table.text();
    return out;
}

int run_status_command(const config::Address& configured, std::chrono::milliseconds timeout) {
    const config::Address admin = connectable(configured);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string bodies[3];
    const char* paths[3] = {"/config", "/listeners", "/endpoints"};
    for (int i = 0; i < 3; ++i) {
        std::string error;
        const std::optional<HttpAnswer> answer = exchange(admin, "GET", paths[i], deadline, error);
        if (answer && answer->status != 200) error = "GET " + std::string(paths[i]) + ": status " + std::to_string(answer->status);
        if (!answer || answer->status != 200) {
            std::fprintf(stderr, "passgate status: cannot reach %s: %s\n", admin.to_string().c_str(), error.c_str());
            return 1;
        }
        bodies[i] = answer->body;
    }
    try {
        const double now = static_cast<double>(std::time(nullptr));
        std::fputs(format_status(bodies[0], bodies[1], bodies[2], now).c_str(), stdout);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "passgate status: %s answered something else than the views: %s\n",
                     admin.to_string().c_str(), error.what());
        return 1;
    }
    return 0;
}

}  // namespace passgate
