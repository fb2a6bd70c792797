#include "src/observe/log.h"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

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

using Clock = std::chrono::steady_clock;

// The queue between every thread that logs and the one writer thread. The mutex is held only to
// push a line or to take the whole queue: never across a write.
struct LogQueue {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::string> lines;
    std::size_t bytes = 0;
    bool running = false;
    bool stopping = false;
    Clock::time_point flush_deadline{};
    std::thread writer;
};

LogQueue& queue() {
    static LogQueue instance;  // lives until exit: a detached late logger never sees it freed
    return instance;
}

std::atomic<std::uint64_t> dropped{0};

// The stop's flush deadline once stop_log_writer has been called, else nullopt.
std::optional<Clock::time_point> stop_deadline() {
    std::lock_guard<std::mutex> lock(queue().mutex);
    if (!queue().stopping) return std::nullopt;
    return queue().flush_deadline;
}

// Waits until stderr takes bytes without blocking; false once the stop's deadline has passed.
// Only the writer thread ever waits here; it looks for a stop every 100 ms.
bool wait_writable() {
    for (;;) {
        int timeout_ms = 100;
        if (const std::optional<Clock::time_point> deadline = stop_deadline()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
            if (left.count() <= 0) return false;
            timeout_ms = static_cast<int>(std::min<long long>(left.count(), 100));
        }
        pollfd item{STDERR_FILENO, POLLOUT, 0};
        const int ready = ::poll(&item, 1, timeout_ms);
        if (ready > 0) return true;  // writable, or an error the write will report
        if (ready < 0 && errno != EINTR) return true;
    }
}

// Writes one line in pieces of at most PIPE_BUF bytes, each after poll() says stderr has room:
// for a pipe, room means a free buffer, so the write does not block. False when the stop's
// deadline passed first (the line is lost).
bool write_line(const std::string& line) {
    std::size_t done = 0;
    while (done < line.size()) {
        if (!wait_writable()) return false;
        const std::size_t piece = std::min<std::size_t>(line.size() - done, PIPE_BUF);
        const ssize_t written = ::write(STDERR_FILENO, line.data() + done, piece);
        if (written > 0) {
            done += static_cast<std::size_t>(written);
            continue;
        }
        if (written < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        return false;  // stderr closed or failing: nothing better to do with the line
    }
    return true;
}

void writer_main() {
    LogQueue& state = queue();
    std::deque<std::string> batch;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(state.mutex);
            state.wake.wait(lock, [&] { return !state.lines.empty() || state.stopping; });
            if (state.lines.empty() && state.stopping) return;
            batch.swap(state.lines);
            state.bytes = 0;
        }
        while (!batch.empty()) {
            if (!write_line(batch.front())) dropped.fetch_add(1, std::memory_order_relaxed);
            batch.pop_front();
        }
    }
}

std::string format_line(LogLevel level, std::string_view message) {
    std::string line;
    line.reserve(message.size() + 24);
    line += "passgate[";
    line += level_name(level);
    line += "] ";
    line += message;
    line += '\n';
    return line;
}
}  // namespace

void set_log_level(LogLevel level) { current_level.store(static_cast<int>(level)); }

bool log_enabled(LogLevel level) {
    return static_cast<int>(level) <= current_level.load(std::memory_order_relaxed);
}

void log_line(LogLevel level, std::string_view message) {
    if (!log_enabled(level)) return;
    std::string line = format_line(level, message);
    LogQueue& state = queue();
    {
        std::lock_guard<std::mutex> lock(state.mutex);
        if (state.running && !state.stopping) {
            if (state.lines.size() >= log_queue_max_lines ||
                state.bytes + line.size() > log_queue_max_bytes) {
                dropped.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            state.bytes += line.size();
            state.lines.push_back(std::move(line));
            state.wake.notify_one();
            return;
        }
    }
    // No writer: one write on this thread. A short write loses the rest of the line; nothing
    // better to do with it.
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

void start_log_writer() {
    LogQueue& state = queue();
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.running) return;
    state.running = true;
    state.stopping = false;
    state.writer = std::thread(writer_main);
}

void stop_log_writer(std::chrono::milliseconds flush_timeout) {
    LogQueue& state = queue();
    {
        std::lock_guard<std::mutex> lock(state.mutex);
        if (!state.running) return;
        state.stopping = true;
        state.flush_deadline = Clock::now() + flush_timeout;
        state.wake.notify_one();
    }
    state.writer.join();
    std::lock_guard<std::mutex> lock(state.mutex);
    state.running = false;
    state.stopping = false;
}

std::uint64_t log_lines_dropped() { return dropped.load(std::memory_order_relaxed); }

}  // namespace passgate
