#include "metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <system_error>

namespace passgate::metrics {

std::string_view content_type(Format format) {
    switch (format) {
    case Format::text:
        return "text/plain; version=0.0.4; charset=utf-8";
    case Format::openmetrics:
        return "application/openmetrics-text; version=1.0.0; charset=utf-8";
    }
    return "text/plain; version=0.0.4; charset=utf-8";
}

namespace {

void append_escaped(std::string& out, std::string_view text, bool escape_double_quote) {
    for (const char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && escape_double_quote)
            out += "\\\"";
        else
            out += c;
    }
}

bool is_letter_or_underscore(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

void append_escaped_help(std::string& out, std::string_view help, Format format) {
    append_escaped(out, help, format == Format::openmetrics);
}

void append_escaped_label_value(std::string& out, std::string_view value) {
    append_escaped(out, value, true);
}

void append_integer(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
}

void append_double(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
        return;
    }
    if (std::isinf(value)) {
        out += value > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (value == 0) value = 0;  // turns -0 into 0
    // to_chars without a format or precision: the shortest round-trip form, fixed or scientific
    // whichever is shorter, so integral values below 1e16 or so print without an exponent.
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
}

void append_bucket_bound(std::string& out, double bound, Format format) {
    const std::size_t start = out.size();
    append_double(out, bound);
    if (format != Format::openmetrics || !std::isfinite(bound)) return;
    if (out.find_first_of(".e", start) == std::string::npos) out += ".0";
}

bool valid_metric_name(std::string_view name) {
    if (name.empty() || !(is_letter_or_underscore(name[0]) || name[0] == ':')) return false;
    for (const char c : name)
        if (!(is_letter_or_underscore(c) || is_digit(c) || c == ':')) return false;
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || !is_letter_or_underscore(name[0]) || name.starts_with("__")) return false;
    for (const char c : name)
        if (!(is_letter_or_underscore(c) || is_digit(c))) return false;
    return true;
}

}  // namespace passgate::metrics
