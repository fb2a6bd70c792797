#pragma once
// Text pieces of the exposition formats: escaping and number spelling. Used by Registry::render;
// public so the tests can pin them down.
//
// Prometheus text format 0.0.4:
//   https://prometheus.io/docs/instrumenting/exposition_formats/
// OpenMetrics 1.0.0 (differences we emit: counter TYPE/HELP without "_total", `"` escaped in
// HELP, integral `le` values spelled "1.0", and a final "# EOF"):
//   https://github.com/OpenObservability/OpenMetrics/blob/main/specification/OpenMetrics.md

#include <cstdint>
#include <string>
#include <string_view>

namespace passgate::metrics {

enum class Format {
    text,         // Prometheus text format 0.0.4 (what Prometheus scrapes by default)
    openmetrics,  // OpenMetrics 1.0.0
};

// The Content-Type header the admin server should send with render(format).
std::string_view content_type(Format format);

// HELP text: backslash -> "\\", newline -> "\n"; OpenMetrics also escapes '"' -> "\"".
void append_escaped_help(std::string& out, std::string_view help, Format format);
// Label value: backslash, double quote and newline escaped (same in both formats).
void append_escaped_label_value(std::string& out, std::string_view value);

// Integers print as integers.
void append_integer(std::string& out, std::uint64_t value);
// Shortest text that reads back to the same double ("0.25", "7", "1e+21"); the specials are
// spelled "+Inf", "-Inf", "NaN"; negative zero prints as "0".
void append_double(std::string& out, double value);
// A histogram bucket bound for the `le` label: as append_double, except that OpenMetrics wants
// integral bounds to look like floats ("1.0", not "1").
void append_bucket_bound(std::string& out, double bound, Format format);

// Name rules of the data model: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*
// and not starting with "__" (reserved for Prometheus itself).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

}  // namespace passgate::metrics
