#pragma once
// Internal to config/ (not installed, not part of the public API): typed access to a toml++
// table that turns every problem into a ConfigError whose what() is "FILE:LINE: KEY: MESSAGE".
// KEY is the TOML path of the offending value, with array indices: `listener[0].address`,
// `route[1].backends[0].service`. LINE is the line of the offending value, or of the table that
// lacks a required key.

#include "config/config.h"
#include "config/quote.h"

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate::config::detail {

// 1-based line where `node` starts (its key's line for a value, the header for a [table]).
int line_of(const toml::node& node);
// "an integer", "a string", ... for messages.
std::string_view type_name(toml::node_type type);
using config::quote;
// How a key appears in a path: bare when it is a bare TOML key, else quoted.
std::string key_text(std::string_view key);

class Source {
public:
    explicit Source(std::string_view name) : name_(name) {}
    const std::string& name() const { return name_; }
    [[noreturn]] void fail(int line, std::string_view key, std::string_view message) const;

private:
    std::string name_;
};

class TableReader {
public:
    // Fails right away on a key not in `allowed` (the first such key by line). `allowed` is the
    // section's key table (config.cpp): at most 64 keys.
    TableReader(const Source& source, const toml::table& table, std::string path,
                std::span<const std::string_view> allowed);

    const Source& source() const { return source_; }
    const toml::table& table() const { return table_; }
    const std::string& path() const { return path_; }
    int line() const { return line_of(table_); }
    // Path of a key of this table ("listener[0]" + "address" -> "listener[0].address").
    std::string path_of(std::string_view key) const;

    // The key's value, nullptr when absent. Every accessor goes through here: asking for a key
    // that is not in `allowed` is a bug (asserted), and each key asked for is noted.
    const toml::node* find(std::string_view key) const;
    // Was every allowed key asked for? A section reader that leaves one out has a key that is
    // accepted and then ignored.
    bool every_key_consulted() const;

    [[noreturn]] void fail(std::string_view key, std::string_view message) const;  // at the key
    [[noreturn]] void fail_missing(std::string_view key) const;  // at the table

    // Each returns nullopt / nullptr when the key is absent and not required; fails on a missing
    // required key or a wrong type.
    std::optional<std::string> string(std::string_view key, bool required) const;
    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min,
                                        std::int64_t max) const;
    // allow_zero: "0s" (any unit) is accepted, for keys where 0 means "off".
    std::optional<Duration> duration(std::string_view key, bool allow_zero = false) const;
    std::optional<bool> boolean(std::string_view key) const;
    const toml::array* array(std::string_view key, bool required) const;

private:
    const toml::node* typed(std::string_view key, toml::node_type type, bool required) const;

    const Source& source_;
    const toml::table& table_;
    std::string path_;
    std::vector<std::string_view> allowed_;
    mutable std::uint64_t consulted_ = 0;  // bit i: allowed_[i] was asked for
};

// " (did you mean \"CANDIDATE\"?)" for the closest candidate within edit distance 2 of `name`
// (the rule of the unknown-key error), or "" when none is that close.
std::string did_you_mean(std::string_view name, std::span<const std::string_view> candidates);

// " (first at line N)" for a repeat whose first occurrence is at `line`; "" when that has no
// line (0).
std::string first_at_line(int line);

// Fails at `node` with "expected EXPECTED, got TYPE".
[[noreturn]] void fail_type(const Source& source, const toml::node& node, std::string_view path,
                            std::string_view expected);

}  // namespace passgate::config::detail
