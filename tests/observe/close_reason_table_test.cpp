// The close-reason and hello-error tables (src/observe/connection_summary.h,
// src/wire/client_hello.h) against the documentation and the metric labels.

#include "src/observe/app_metrics.h"
#include "src/observe/connection_summary.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

using namespace passgate;

namespace {

std::string read_config_readme() {
    const char* root = std::getenv("PASSGATE_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    std::ifstream in(std::string(root) + "/config/README.md");
    REQUIRE(in);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The backticked names in the first column of the Markdown table whose header row starts with
// `| header |`, in document order.
std::vector<std::string> first_column_of_table(const std::string& markdown, const std::string& header) {
    const std::size_t table = markdown.find("\n| " + header + " |");
    REQUIRE(table != std::string::npos);
    std::vector<std::string> names;
    std::size_t line = markdown.find('\n', table + 1);  // past the header
    line = markdown.find('\n', line + 1);                // past the |---| row
    while (line != std::string::npos && markdown.compare(line + 1, 3, "| `") == 0) {
        const std::size_t start = line + 4;
        const std::size_t end = markdown.find('`', start);
        names.push_back(markdown.substr(start, end - start));
        line = markdown.find('\n', line + 1);
    }
    return names;
}

}  // namespace

TEST_CASE("config/README.md lists exactly the close reasons of the table, in its order",
          "[close_reasons]") {
    std::vector<std::string> table;
    for (const CloseReasonInfo& row : close_reasons) table.emplace_back(row.name);
    CHECK(first_column_of_table(read_config_readme(), "Reason") == table);
}

TEST_CASE("config/README.md lists exactly the hello errors of the table, in its order",
          "[close_reasons]") {
    std::vector<std::string> table;
    for (const HelloErrorInfo& row : hello_errors)
        if (row.error != HelloError::none) table.emplace_back(row.name);
    CHECK(first_column_of_table(read_config_readme(), "Hello error") == table);
}

TEST_CASE("close reasons count in the hello, refusal and PROXY counters as the table says",
          "[close_reasons]") {
    // Closes before routing: their own label, and hello_rejected by the hello error's class.
    CHECK(hello_reject_of(CloseReason::hello_timeout, HelloError::none) == HelloReject::timeout);
    CHECK(hello_reject_of(CloseReason::client_closed, HelloError::none) == HelloReject::client_closed);
    CHECK(hello_reject_of(CloseReason::no_sni, HelloError::none) == HelloReject::no_sni);
    CHECK(hello_reject_of(CloseReason::no_route, HelloError::none) == HelloReject::no_route);
    CHECK(hello_reject_of(CloseReason::hello_rejected, HelloError::sslv2) == HelloReject::not_tls);
    CHECK(hello_reject_of(CloseReason::hello_rejected, HelloError::too_many_records) ==
          HelloReject::too_large);
    CHECK(hello_reject_of(CloseReason::hello_rejected, HelloError::bad_sni) == HelloReject::malformed);
    CHECK(hello_reject_of(CloseReason::completed, HelloError::none) == std::nullopt);
    CHECK(hello_reject_of(CloseReason::proxy_timeout, HelloError::none) == std::nullopt);

    // Each label of a hello class is spelled as the class's metric reason.
    for (const HelloErrorInfo& row : hello_errors) {
        if (row.error == HelloError::none) continue;
        const std::optional<HelloReject> label = hello_reject_of(CloseReason::hello_rejected, row.error);
        REQUIRE(label);
        CHECK(hello_reject_name(*label) == hello_error_metric_reason(row.error));
    }

    // Refusals and PROXY rejections: exactly these reasons, under the documented labels.
    std::vector<std::string> refused;
    std::vector<std::string> proxy;
    for (const CloseReasonInfo& row : close_reasons) {
        if (const std::optional<Refusal> refusal = refusal_of(row.reason))
            refused.push_back(std::string(row.name) + "=" + std::string(refusal_name(*refusal)));
        if (const std::optional<ProxyReject> reject = proxy_reject_of(row.reason))
            proxy.push_back(std::string(row.name) + "=" + std::string(proxy_reject_name(*reject)));
    }
    CHECK(refused == std::vector<std::string>{"denied=denied", "listener_limit=listener_limit",
                                              "rate_limit=rate_limit", "route_limit=route_limit",
                                              "worker_limit=worker_limit",
                                              "hello_memory_limit=hello_memory_limit"});
    CHECK(proxy == std::vector<std::string>{"proxy_untrusted=untrusted", "proxy_missing=missing",
                                            "proxy_malformed=malformed", "proxy_timeout=timeout"});
}
