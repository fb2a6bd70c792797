#include "config/toml_reader.h"

#include <algorithm>
#include <cassert>
#include <vector>

namespace passgate::config::detail {

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                               diagonal + (a[i - 1] == b[j - 1] ? 0u : 1u)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string join(std::span<const std::string_view> words) {
    std::string out;
    for (auto word : words) {
        if (!out.empty()) out += ", ";
        out += word;
    }
    return out;
}

}  // namespace

int line_of(const toml::node& node) {
    const auto line = node.source().begin.line;
    return line == 0 ? 1 : static_cast<int>(line);
}

std::string_view type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::string key_text(std::string_view key) {
    const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
    return bare ? std::string(key) : quote(key);
}

void Source::fail(int line, std::string_view key, std::string_view message) const {
    std::string text = name_;
    text += ':';
    text += std::to_string(line);
    text += ": ";
    text += key;
    text += ": ";
    text += message;
    throw ConfigError(text);
}

void fail_type(const Source& source, const toml::node& node, std::string_view path,
               std::string_view expected) {
    source.fail(line_of(node), path,
                "expected " + std::string(expected) + ", got " +
                    std::string(type_name(node.type())));
}

std::string did_you_mean(std::string_view name, std::span<const std::string_view> candidates) {
    if (name.empty()) return {};
    std::string_view suggestion;
    std::size_t best = 3;  // suggest only close misspellings
    for (const std::string_view candidate : candidates) {
        const std::size_t distance = edit_distance(name, candidate);
        if (distance < best) {
            best = distance;
            suggestion = candidate;
        }
    }
    if (suggestion.empty()) return {};
    return " (did you mean \"" + std::string(suggestion) + "\"?)";
}

std::string first_at_line(int line) {
    return line > 0 ? " (first at line " + std::to_string(line) + ")" : std::string();
}

TableReader::TableReader(const Source& source, const toml::table& table, std::string path,
                         std::span<const std::string_view> allowed)
    : source_(source), table_(table), path_(std::move(path)), allowed_(allowed.begin(), allowed.end()) {
    assert(allowed_.size() <= 64);
    const toml::key* first_unknown = nullptr;
    for (auto&& [key, value] : table_) {
        (void)value;
        if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
        if (first_unknown == nullptr ||
            key.source().begin.line < first_unknown->source().begin.line) {
            first_unknown = &key;
        }
    }
    if (first_unknown == nullptr) return;

    const std::string_view name = first_unknown->str();
    std::string message = "unknown key" + did_you_mean(name, allowed) + "; allowed keys: " + join(allowed);
    const auto line = first_unknown->source().begin.line;
    source_.fail(line == 0 ? line_of(table_) : static_cast<int>(line), path_of(name), message);
}

const toml::node* TableReader::find(std::string_view key) const {
    const auto known = std::find(allowed_.begin(), allowed_.end(), key);
    assert(known != allowed_.end());  // a key read must be in its section's key table
    if (known != allowed_.end()) consulted_ |= std::uint64_t{1} << (known - allowed_.begin());
    return table_.get(key);
}

bool TableReader::every_key_consulted() const {
    return consulted_ == (allowed_.size() == 64 ? ~std::uint64_t{0}
                                                : (std::uint64_t{1} << allowed_.size()) - 1);
}

std::string TableReader::path_of(std::string_view key) const {
    if (path_.empty()) return key_text(key);
    return path_ + "." + key_text(key);
}

void TableReader::fail(std::string_view key, std::string_view message) const {
    const toml::node* node = find(key);
    source_.fail(node != nullptr ? line_of(*node) : line(), path_of(key), message);
}

void TableReader::fail_missing(std::string_view key) const {
    source_.fail(line(), path_of(key), "required key is missing");
}

const toml::node* TableReader::typed(std::string_view key, toml::node_type type,
                                     bool required) const {
    const toml::node* node = find(key);
    if (node == nullptr) {
        if (required) fail_missing(key);
        return nullptr;
    }
    if (node->type() != type) fail_type(source_, *node, path_of(key), type_name(type));
    return node;
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) const {
    const toml::node* node = typed(key, toml::node_type::string, required);
    if (node == nullptr) return std::nullopt;
    return node->as_string()->get();
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max) const {
    const toml::node* node = typed(key, toml::node_type::integer, false);
    if (node == nullptr) return std::nullopt;
    const std::int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
        fail(key, "must be from " + std::to_string(min) + " to " + std::to_string(max) +
                      ", got " + std::to_string(value));
    }
    return value;
}

std::optional<bool> TableReader::boolean(std::string_view key) const {
    const toml::node* node = typed(key, toml::node_type::boolean, false);
    if (node == nullptr) return std::nullopt;
    return node->as_boolean()->get();
}

std::optional<Duration> TableReader::duration(std::string_view key, bool allow_zero) const {
    const toml::node* node = find(key);
    if (node == nullptr) return std::nullopt;
    if (node->type() != toml::node_type::string) {
        fail_type(source_, *node, path_of(key), "a duration string like \"10s\"");
    }
    const std::string& text = node->as_string()->get();
    const auto value = parse_duration(text, allow_zero);
    if (!value) {
        fail(key, "invalid duration " + quote(text) +
                      ": expected a whole number followed by ms, s, m or h (\"250ms\", \"10s\", "
                      "\"5m\", \"1h\"), " + (allow_zero ? "0 or more" : "greater than 0") + " and at most 8760h");
    }
    return value;
}

const toml::array* TableReader::array(std::string_view key, bool required) const {
    const toml::node* node = typed(key, toml::node_type::array, required);
    return node == nullptr ? nullptr : node->as_array();
}

}  // namespace passgate::config::detail
