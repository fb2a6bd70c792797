// The key tables of config.cpp: each section's keys are one table of (name, reader), and the
// section's TableReader notes every key a reader asks for. read_keys asserts, after a section is
// read, that every key of its table was asked for (none is accepted and then ignored), and find()
// asserts that a key asked for is in the table (none is read without being known). Every config
// this suite parses runs under those asserts; this file tests the bookkeeping they rely on.

#include "config/toml_reader.h"

#include <catch2/catch.hpp>

#include <string_view>

using passgate::config::ConfigError;
using passgate::config::detail::Source;
using passgate::config::detail::TableReader;

TEST_CASE("key table: every key must be asked for, present or not", "[config][keys]") {
    const toml::table table = toml::parse("a = 1\nc = \"x\"\n");
    const Source source("t.toml");
    constexpr std::string_view keys[] = {"a", "b", "c"};
    const TableReader reader(source, table, "section", keys);
    CHECK_FALSE(reader.every_key_consulted());
    CHECK(reader.integer("a", 0, 10) == 1);
    CHECK_FALSE(reader.every_key_consulted());
    CHECK(reader.find("b") == nullptr);  // absent, but asked for: it was considered
    CHECK_FALSE(reader.every_key_consulted());
    CHECK(reader.string("c", true) == "x");
    CHECK(reader.every_key_consulted());
}

TEST_CASE("key table: a key outside the table is refused as unknown; the table order is the message order",
          "[config][keys]") {
    const toml::table table = toml::parse("a = 1\nd = 2\n");
    const Source source("t.toml");
    constexpr std::string_view keys[] = {"c", "a", "b"};
    try {
        const TableReader reader(source, table, "section", keys);
        FAIL("unknown key accepted");
    } catch (const ConfigError& error) {
        CHECK(std::string_view(error.what()) ==
              "t.toml:2: section.d: unknown key (did you mean \"c\"?); allowed keys: c, a, b");
    }
}
