#pragma once
// Diagnostic log lines to stderr (the journal under systemd): one write(2) per line, so lines from
// different threads never interleave. Format: "passgate[LEVEL] message".

#include <string_view>

namespace passgate {

enum class LogLevel { error, warning, info, debug };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view message);

}  // namespace passgate
