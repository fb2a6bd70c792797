#include "src/control/admin_server.h"

#include <catch2/catch.hpp>

using passgate::HttpParse;
using passgate::parse_http_request;

TEST_CASE("admin request heads parse, stay incomplete until the blank line, reject junk") {
    HttpParse parse = parse_http_request("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text\r\n\r\n");
    REQUIRE(parse.status == HttpParse::Status::complete);
    CHECK(parse.request.method == "GET");
    CHECK(parse.request.path == "/metrics");
    CHECK(parse.request.accept == "application/openmetrics-text");
    CHECK(parse_http_request("GET /healthz HTTP/1.1\r\nHost: a\r\n").status == HttpParse::Status::incomplete);
    CHECK(parse_http_request("GET /healthz\r\n\r\n").status == HttpParse::Status::bad);
    CHECK(parse_http_request("GET healthz HTTP/1.1\r\n\r\n").status == HttpParse::Status::bad);
    CHECK(parse_http_request("GET / HTTP/2\r\n\r\n").status == HttpParse::Status::bad);
    CHECK(parse_http_request("GET / HTTP/1.0\r\nbroken header\r\n\r\n").status == HttpParse::Status::bad);
    CHECK(parse_http_request(std::string(9000, 'a')).status == HttpParse::Status::bad);
}

TEST_CASE("admin request heads: 8 KiB is the limit, blank line included, also for a complete head") {
    const std::string start = "GET /healthz HTTP/1.1\r\nX-Filler: ";
    const std::string at_limit = start + std::string(8 * 1024 - start.size() - 4, 'a') + "\r\n\r\n";
    REQUIRE(at_limit.size() == 8 * 1024);
    CHECK(parse_http_request(at_limit).status == HttpParse::Status::complete);
    const std::string over = start + std::string(8 * 1024 - start.size() - 3, 'a') + "\r\n\r\n";
    CHECK(parse_http_request(over).status == HttpParse::Status::bad);
    // What the server may have read in one go past the limit: still refused.
    const std::string complete_10k = start + std::string(10 * 1024, 'a') + "\r\n\r\n";
    CHECK(parse_http_request(complete_10k).status == HttpParse::Status::bad);
}
