#pragma once
// Diagnostic log lines to stderr (the journal under systemd). Format: "passgate[LEVEL] message".
//
// Before start_log_writer() (and after stop_log_writer()) a line is one write(2) on the calling
// thread: start-up and --check have no other thread to wait on. While the writer runs, log_line
// never blocks on stderr and takes no lock: the line goes into the calling thread's own bounded
// queue (a reactor::SpscRing via log_queue.h, registered on the thread's first line; at most
// log_queue_max_lines lines and log_queue_max_bytes bytes each) and one writer thread empties the
// queues, oldest line first across threads. A line that does not fit is dropped and counted
// (log_lines_dropped(), the metric passgate_log_lines_dropped_total). A stalled reader of stderr
// (journald, a full pipe) then costs lines, never a worker.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace passgate {

enum class LogLevel { error, warning, info, debug };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view message);

inline constexpr std::size_t log_queue_max_lines = 4096;
inline constexpr std::size_t log_queue_max_bytes = 1024 * 1024;

// Starts the writer thread (call with the process's signals blocked: it must not take them).
void start_log_writer();
// Writes what is queued, waiting at most `flush_timeout` for stderr to take it (the rest is
// dropped and counted), then stops the writer thread. Lines after this are written directly.
void stop_log_writer(std::chrono::milliseconds flush_timeout);
// Lines dropped because the queue was full or stderr did not take them before the stop.
std::uint64_t log_lines_dropped();

// Runs the writer for the scope (run_app): started at construction, stopped (flushing for up to
// `flush_timeout`) at destruction.
class LogWriterScope {
public:
    explicit LogWriterScope(std::chrono::milliseconds flush_timeout) : flush_timeout_(flush_timeout) {
        start_log_writer();
    }
    ~LogWriterScope() { stop_log_writer(flush_timeout_); }
    LogWriterScope(const LogWriterScope&) = delete;
    LogWriterScope& operator=(const LogWriterScope&) = delete;

private:
    std::chrono::milliseconds flush_timeout_;
};

}  // namespace passgate
