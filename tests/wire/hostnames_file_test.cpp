#include "src/wire/hostnames_file.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using passgate::HostnamesFileParse;
using passgate::parse_hostnames_file;

namespace {

std::vector<std::string> good(std::string_view text) {
    HostnamesFileParse result = parse_hostnames_file(text, "tenants.txt");
    INFO(result.error);
    REQUIRE(result.ok());
    std::vector<std::string> names;
    for (std::size_t i = 0; i < result.names.size(); ++i) names.emplace_back(result.names[i]);
    return names;
}

std::string bad(std::string_view text) {
    HostnamesFileParse result = parse_hostnames_file(text, "tenants.txt");
    REQUIRE_FALSE(result.ok());
    CHECK(result.names.empty());
    return result.error;
}

}  // namespace

TEST_CASE("hostnames file: names, wildcards, comments, blanks and CRLF", "[hostnames_file]") {
    CHECK(good("# tenants\n"
               "shop.example.com\n"
               "  *.customers.example.net   # every customer\r\n"
               "\n"
               "\tWWW.Example.ORG\t\n"
               "last.example.com") ==
          std::vector<std::string>{"shop.example.com", "*.customers.example.net", "www.example.org",
                                   "last.example.com"});
}

TEST_CASE("hostnames file: empty and comment-only files are an empty list", "[hostnames_file]") {
    CHECK(good("").empty());
    CHECK(good("# nothing yet\n\n   \n").empty());
}

TEST_CASE("hostnames file: a repeated name is kept as listed (the table keeps it once)", "[hostnames_file]") {
    CHECK(good("a.example.com\na.example.com\n").size() == 2);
}

TEST_CASE("hostnames file: errors name FILE:LINE and the offending text", "[hostnames_file]") {
    CHECK(bad("ok.example.com\nbad..example.com\n") ==
          "tenants.txt:2: invalid hostname \"bad..example.com\": empty label");
    CHECK(bad("a.example.com b.example.com\n") ==
          "tenants.txt:1: expected one hostname per line, found \"a.example.com b.example.com\"");
    CHECK(bad("\n\nexample.com.\n") == "tenants.txt:3: invalid hostname \"example.com.\": trailing dot is not allowed");
    CHECK(bad("10.0.0.1\n") == "tenants.txt:1: invalid hostname \"10.0.0.1\": IP literals are not hostnames");
    CHECK(bad("*\n").rfind("tenants.txt:1: invalid hostname \"*\": ", 0) == 0);
    CHECK(bad("a.*.example.com\n").rfind("tenants.txt:1: invalid hostname", 0) == 0);
    CHECK(bad("caf\xc3\xa9.example.com\n").rfind("tenants.txt:1: invalid hostname", 0) == 0);
    CHECK(bad(std::string(5000, 'a') + "\n") == "tenants.txt:1: line is longer than 4096 bytes");
}

TEST_CASE("hostnames file: a line of exactly the bound is read; one byte more is not", "[hostnames_file]") {
    // A valid name padded with blanks and a comment to exactly 4096 bytes.
    std::string line = "a.example.com #";
    line.resize(passgate::kHostnamesFileMaxLineBytes, 'x');
    CHECK(good(line + "\r\n") == std::vector<std::string>{"a.example.com"});
    CHECK(bad(line + "x\n") == "tenants.txt:1: line is longer than 4096 bytes");
}

TEST_CASE("hostnames file: storage is the names back to back", "[hostnames_file]") {
    std::string text;
    for (int i = 0; i < 1000; ++i) text += "host" + std::to_string(i) + ".example.com\n";
    HostnamesFileParse result = parse_hostnames_file(text, "t");
    REQUIRE(result.ok());
    REQUIRE(result.names.size() == 1000);
    CHECK(result.names[999] == "host999.example.com");
    // The text without newlines, plus 4 bytes of offset per name.
    CHECK(result.names.bytes() == text.size() - 1000 + 4 * 1000);
}
