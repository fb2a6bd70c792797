#include "src/observe/log.h"

#include "metrics/owned_counter.h"
#include "src/observe/log_queue.h"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

// A line waiting for the writer, with its place in the process-wide order (the writer merges the
// threads' queues by it, so lines reach stderr in the order they were logged).
struct QueuedLine {
    std::uint64_t sequence = 0;
    std::string text;
};
std::size_t queued_line_bytes(const QueuedLine& line) { return line.text.size(); }

// One logging thread's queue. Registered on the thread's first line while the writer runs;
// `abandoned` once the thread has exited (the writer frees it when it is empty).
struct ThreadQueue {
    LogQueue<QueuedLine, queued_line_bytes> lines{log_queue_max_lines, log_queue_max_bytes};
    std::atomic<bool> abandoned{false};
};

struct LogState {
    // Guards `queues` and `retired_dropped` (registration, the writer's snapshot, removal):
    // never held across a push or a write.
    std::mutex queues_mutex;
    std::vector<std::unique_ptr<ThreadQueue>> queues;
    std::uint64_t retired_dropped = 0;  // drops counted by queues since freed
    // Raised (under queues_mutex) when a queue is registered: the writer's list is then stale,
    // and a line in the new queue may be older than the lines it is about to write.
    std::atomic<std::uint64_t> registrations{0};

    std::mutex start_stop_mutex;  // serialises start_log_writer and stop_log_writer
    std::thread writer;

    // Producers: pushers is raised before running is read and lowered after the push, so that
    // stop_log_writer, which clears running and then waits for pushers to reach 0, knows that
    // every line that saw running is queued before the writer's last drain (seq_cst on both
    // sides: one of them sees the other's store).
    std::atomic<bool> running{false};
    std::atomic<std::uint64_t> pushers{0};
    std::atomic<std::uint64_t> next_sequence{0};

    // Writer sleep protocol (as in access_log.h): the writer reads the doorbell, sets
    // writer_asleep, checks the queues, then waits for the doorbell to change; a producer, after
    // its push, rings only if it sees writer_asleep.
    std::atomic<bool> writer_asleep{false};
    std::atomic<std::uint32_t> doorbell{0};
    std::atomic<bool> stopping{false};
    std::atomic<Clock::rep> flush_deadline{0};  // set before stopping

    metrics::OwnedCounter writer_dropped;  // lines stderr did not take before the stop's deadline
};

LogState& state() {
    // Never freed: a thread that logs late in exit (or its thread_local handle) never sees it gone.
    static LogState* instance = new LogState;
    return *instance;
}

// The calling thread's queue, registered on first use; marked abandoned when the thread exits.
struct ThreadQueueHandle {
    ThreadQueue* queue = nullptr;
    ~ThreadQueueHandle() {
        if (queue != nullptr) queue->abandoned.store(true, std::memory_order_release);
    }
};
thread_local ThreadQueueHandle this_thread_queue;

ThreadQueue& queue_of_this_thread() {
    if (this_thread_queue.queue == nullptr) {
        LogState& log = state();
        auto queue = std::make_unique<ThreadQueue>();
        std::lock_guard<std::mutex> lock(log.queues_mutex);
        this_thread_queue.queue = queue.get();
        log.queues.push_back(std::move(queue));
        log.registrations.fetch_add(1, std::memory_order_release);
    }
    return *this_thread_queue.queue;
}

void ring_doorbell(LogState& log) {
    log.doorbell.fetch_add(1, std::memory_order_release);
    log.doorbell.notify_one();
}

// Queues `line` for the writer: false when the writer does not run (the caller writes it). A
// line that finds the thread's queue full is dropped and counted, and true returned.
bool queue_line(std::string& line) {
    LogState& log = state();
    log.pushers.fetch_add(1, std::memory_order_seq_cst);
    if (!log.running.load(std::memory_order_seq_cst)) {
        log.pushers.fetch_sub(1, std::memory_order_seq_cst);
        return false;
    }
    ThreadQueue& queue = queue_of_this_thread();
    QueuedLine queued{log.next_sequence.fetch_add(1, std::memory_order_relaxed), std::move(line)};
    if (!queue.lines.try_push(std::move(queued))) queue.lines.count_drop();
    log.pushers.fetch_sub(1, std::memory_order_seq_cst);
    if (log.writer_asleep.load(std::memory_order_seq_cst) &&
        log.writer_asleep.exchange(false, std::memory_order_relaxed))
        ring_doorbell(log);
    return true;
}

// The stop's flush deadline once stop_log_writer has been called, else nullopt.
std::optional<Clock::time_point> stop_deadline() {
    if (!state().stopping.load(std::memory_order_acquire)) return std::nullopt;
    return Clock::time_point(Clock::duration(state().flush_deadline.load(std::memory_order_relaxed)));
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

// Writer: the registered queues, after freeing those of exited threads that are empty, and the
// registration count they reflect.
struct LiveQueues {
    std::vector<ThreadQueue*> queues;
    std::uint64_t registrations = 0;
};
LiveQueues live_queues() {
    LogState& log = state();
    std::lock_guard<std::mutex> lock(log.queues_mutex);
    LiveQueues result;
    result.registrations = log.registrations.load(std::memory_order_relaxed);
    std::vector<ThreadQueue*>& live = result.queues;
    for (auto it = log.queues.begin(); it != log.queues.end();) {
        ThreadQueue& queue = **it;
        if (queue.abandoned.load(std::memory_order_acquire) && queue.lines.empty()) {
            log.retired_dropped += queue.lines.dropped();
            it = log.queues.erase(it);
            continue;
        }
        live.push_back(&queue);
        ++it;
    }
    return result;
}

// Lines written per drain before the writer looks for new queues (and a stop) again.
constexpr std::size_t lines_per_drain = 1024;

// Writer: writes queued lines oldest first (merging the queues by sequence); how many it took.
// Stops early when a queue was registered meanwhile (the caller takes a new list).
std::size_t drain(const LiveQueues& live) {
    std::size_t taken = 0;
    while (taken < lines_per_drain &&
           state().registrations.load(std::memory_order_acquire) == live.registrations) {
        ThreadQueue* oldest = nullptr;
        for (ThreadQueue* queue : live.queues) {
            const QueuedLine* front = queue->lines.front();
            if (front != nullptr && (oldest == nullptr || front->sequence < oldest->lines.front()->sequence))
                oldest = queue;
        }
        if (oldest == nullptr) break;
        if (!write_line(oldest->lines.front()->text)) state().writer_dropped.add();
        oldest->lines.pop();
        ++taken;
    }
    return taken;
}

bool lines_pending(const LiveQueues& live) {
    for (const ThreadQueue* queue : live.queues)
        if (!queue->lines.empty()) return true;
    return false;
}

void writer_main() {
    LogState& log = state();
    for (;;) {
        // Read before draining: every line queued before the stop is then seen below.
        const bool stopping = log.stopping.load(std::memory_order_acquire);
        const LiveQueues live = live_queues();
        if (drain(live) > 0) continue;
        if (live.registrations != log.registrations.load(std::memory_order_acquire)) continue;
        if (stopping) return;
        const std::uint32_t rung = log.doorbell.load(std::memory_order_acquire);
        log.writer_asleep.store(true, std::memory_order_seq_cst);  // then the queues: see queue_line
        if (!log.stopping.load(std::memory_order_acquire) && !lines_pending(live_queues()))
            log.doorbell.wait(rung, std::memory_order_acquire);
        log.writer_asleep.store(false, std::memory_order_relaxed);
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
    if (queue_line(line)) return;
    // No writer: one write on this thread. A short write loses the rest of the line; nothing
    // better to do with it.
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

void start_log_writer() {
    LogState& log = state();
    std::lock_guard<std::mutex> lock(log.start_stop_mutex);
    if (log.writer.joinable()) return;
    log.stopping.store(false, std::memory_order_relaxed);
    log.writer = std::thread(writer_main);
    log.running.store(true, std::memory_order_seq_cst);
}

void stop_log_writer(std::chrono::milliseconds flush_timeout) {
    LogState& log = state();
    std::lock_guard<std::mutex> lock(log.start_stop_mutex);
    if (!log.writer.joinable()) return;
    // New lines go straight to stderr from here; wait for the pushes already under way (a push
    // never blocks, so this is short).
    log.running.store(false, std::memory_order_seq_cst);
    while (log.pushers.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    log.flush_deadline.store((Clock::now() + flush_timeout).time_since_epoch().count(),
                             std::memory_order_relaxed);
    log.stopping.store(true, std::memory_order_release);
    ring_doorbell(log);
    log.writer.join();
    log.stopping.store(false, std::memory_order_relaxed);
}

std::uint64_t log_lines_dropped() {
    LogState& log = state();
    std::lock_guard<std::mutex> lock(log.queues_mutex);
    std::uint64_t dropped = log.retired_dropped + log.writer_dropped.get();
    for (const auto& queue : log.queues) dropped += queue->lines.dropped();
    return dropped;
}

}  // namespace passgate
