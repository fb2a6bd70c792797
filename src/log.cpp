#include "src/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace passgate {

namespace {
std::atomic<int> current_level{static_cast<int>(LogLevel::info)};

std::string_view level_name(LogLevel level) {
    switch (level) {
        case LogLevel::error: return "error";
        case LogLevel::warning: return "warning";
        case LogLevel::info: return "info";
        case LogLevel::debug: return "debug";
    }
    return "?";
}
}  // namespace

void set_log_level(LogLevel level) { current_level.store(static_cast<int>(level)); }

bool log_enabled(LogLevel level) {
    return static_cast<int>(level) <= current_level.load(std::memory_order_relaxed);
}

void log_line(LogLevel level, std::string_view message) {
    if (!log_enabled(level)) return;
    std::string line;
    line.reserve(message.size() + 24);
    line += "passgate[";
    line += level_name(level);
    line += "] ";
    line += message;
    line += '\n';
    // A short write to stderr loses the rest of the line; nothing better to do with it.
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace passgate
