// Diagnostic log lines (src/observe/log.h): with the writer running, log_line never blocks on stderr,
// even when nobody reads it; what does not fit is dropped and counted.

#include "src/observe/log.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace passgate;
using Clock = std::chrono::steady_clock;

namespace {

// Points the process's stderr at a pipe for the scope, and puts it back after.
class StderrToPipe {
public:
    StderrToPipe() {
        REQUIRE(::pipe2(ends_, O_CLOEXEC) == 0);
        saved_ = ::dup(STDERR_FILENO);
        REQUIRE(saved_ >= 0);
        REQUIRE(::dup2(ends_[1], STDERR_FILENO) == STDERR_FILENO);
    }
    ~StderrToPipe() {
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(ends_[0]);
        ::close(ends_[1]);
    }
    // Fills the pipe until a write would block (nobody reads it).
    void fill() {
        const int flags = ::fcntl(ends_[1], F_GETFL);
        REQUIRE(::fcntl(ends_[1], F_SETFL, flags | O_NONBLOCK) == 0);
        const std::string junk(4096, '#');
        for (int i = 0; i < 10000 && ::write(ends_[1], junk.data(), junk.size()) > 0; ++i) {
        }
        REQUIRE(errno == EAGAIN);
        REQUIRE(::fcntl(ends_[1], F_SETFL, flags) == 0);
    }
    int read_end() const { return ends_[0]; }

private:
    int ends_[2] = {-1, -1};
    int saved_ = -1;
};

}  // namespace

TEST_CASE("log: with stderr a full pipe nobody reads, log_line returns at once and drops, counted", "[log]") {
    StderrToPipe stderr_pipe;
    stderr_pipe.fill();
    start_log_writer();
    const std::uint64_t dropped_before = log_lines_dropped();
    // Three times what the queue holds, from two threads. Before the writer, the first one
    // would block this thread for good.
    const Clock::time_point start = Clock::now();
    std::thread other([] {
        for (std::size_t i = 0; i < log_queue_max_lines; ++i) log_line(LogLevel::warning, "from another thread");
    });
    for (std::size_t i = 0; i < 2 * log_queue_max_lines; ++i) log_line(LogLevel::warning, "endpoint ejected");
    other.join();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    CHECK(took < std::chrono::milliseconds(5000));  // a correctness bound: "returned", not "fast"
    // 3 queues' worth: at most one queue waits, at most one was taken by the stalled writer.
    CHECK(log_lines_dropped() - dropped_before >= log_queue_max_lines);

    // Stopping gives up on the stalled pipe after the flush timeout, counting what it drops.
    const std::uint64_t before_stop = log_lines_dropped();
    const Clock::time_point stop_start = Clock::now();
    stop_log_writer(std::chrono::milliseconds(200));
    CHECK(Clock::now() - stop_start < std::chrono::milliseconds(3000));
    CHECK(log_lines_dropped() > before_stop);
}

TEST_CASE("log: lines reach stderr through the writer, whole and in order", "[log]") {
    StderrToPipe stderr_pipe;
    start_log_writer();
    for (int i = 0; i < 100; ++i) log_line(LogLevel::info, "line " + std::to_string(i));
    stop_log_writer(std::chrono::milliseconds(2000));
    std::string text;
    char buffer[4096];
    const int flags = ::fcntl(stderr_pipe.read_end(), F_GETFL);
    REQUIRE(::fcntl(stderr_pipe.read_end(), F_SETFL, flags | O_NONBLOCK) == 0);
    for (int i = 0; i < 1000; ++i) {
        const ssize_t got = ::read(stderr_pipe.read_end(), buffer, sizeof buffer);
        if (got <= 0) break;
        text.append(buffer, static_cast<std::size_t>(got));
    }
    std::string expected;
    for (int i = 0; i < 100; ++i) expected += "passgate[info] line " + std::to_string(i) + "\n";
    CHECK(text == expected);
}

namespace {

// Reads the pipe until `wanted` appears in what was read, or 10 s pass.
std::string read_until(int fd, const std::string& wanted) {
    const int flags = ::fcntl(fd, F_GETFL);
    REQUIRE(::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
    std::string text;
    char buffer[65536];
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
    while (text.find(wanted) == std::string::npos && Clock::now() < deadline) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got > 0)
            text.append(buffer, static_cast<std::size_t>(got));
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return text;
}

}  // namespace

TEST_CASE("log: lines from different threads reach stderr in the order they were logged", "[log]") {
    StderrToPipe stderr_pipe;
    stderr_pipe.fill();  // the writer stalls on the first line: the next ones wait in the queues
    start_log_writer();
    // The other thread logs first, so that its queue is the older one; then a third thread logs
    // "first", and only after that the other thread logs "second".
    std::atomic<int> step{0};
    std::thread other([&step] {
        log_line(LogLevel::info, "other thread's first line");
        step.store(1);
        while (step.load() != 2) std::this_thread::yield();
        log_line(LogLevel::info, "second");
    });
    while (step.load() != 1) std::this_thread::yield();
    // A thread of its own (this one's queue may be older than the other's, from earlier tests).
    std::thread([] { log_line(LogLevel::info, "first"); }).join();
    step.store(2);
    other.join();
    const std::string text = read_until(stderr_pipe.read_end(), "passgate[info] second\n");
    stop_log_writer(std::chrono::milliseconds(2000));
    const std::size_t first = text.find("passgate[info] first\n");
    const std::size_t then = text.find("passgate[info] second\n");
    REQUIRE(first != std::string::npos);
    REQUIRE(then != std::string::npos);
    CHECK(first < then);
}

TEST_CASE("log: 4 threads x 3000 lines: each thread's lines in order, every line written or "
          "counted as dropped", "[log]") {
    StderrToPipe stderr_pipe;
    start_log_writer();
    const std::uint64_t dropped_before = log_lines_dropped();
    constexpr int threads = 4;
    constexpr int lines = 3000;
    std::vector<std::thread> loggers;
    for (int t = 0; t < threads; ++t)
        loggers.emplace_back([t] {
            for (int i = 0; i < lines; ++i)
                log_line(LogLevel::info, "t" + std::to_string(t) + " " + std::to_string(i));
        });
    // Read while they log (the pipe holds 64 KiB), until the writer is stopped and all is read.
    std::string text;
    std::thread reader([&] { text = read_until(stderr_pipe.read_end(), "passgate[info] end\n"); });
    for (std::thread& logger : loggers) logger.join();
    stop_log_writer(std::chrono::milliseconds(5000));
    log_line(LogLevel::info, "end");  // written directly, after everything the writer wrote
    reader.join();
    const std::uint64_t dropped = log_lines_dropped() - dropped_before;
    std::vector<int> next(threads, 0);
    std::uint64_t written = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        REQUIRE(end != std::string::npos);
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        if (line == "passgate[info] end") break;
        REQUIRE(line.rfind("passgate[info] t", 0) == 0);
        const int thread = std::stoi(line.substr(16, 1));
        const int index = std::stoi(line.substr(18));
        CHECK(index >= next[static_cast<std::size_t>(thread)]);  // in order (drops leave gaps)
        next[static_cast<std::size_t>(thread)] = index + 1;
        ++written;
    }
    CHECK(written + dropped == static_cast<std::uint64_t>(threads * lines));
}
