#pragma once
// Helpers for integration tests that run real processes: a child process with its output in
// files, a temporary directory, bounded waiting, free ports, a tiny HTTP GET and /proc fd counts.
// Nothing here links passgate: the tests talk to the real binary over sockets and files only.
//
// Every wait is bounded in time and every loop in count.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace integration {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction unless
// PASSGATE_KEEP_TMP is set in the environment (then its path is printed to stderr).
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

struct SpawnOptions {
    std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
    std::string stdout_path;        // empty: /dev/null
    std::string stderr_path;        // empty: /dev/null
    std::string cwd;                // empty: inherit
};

// A child started with posix_spawn; stdin is /dev/null, stdout and stderr go to files, and the
// child inherits no descriptor beyond 0, 1 and 2. The destructor kills (SIGKILL) and reaps it.
class Process {
public:
    explicit Process(const SpawnOptions& options);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    bool running();  // reaps the child if it has exited
    // The exit status (code, or 128 + signal), or nullopt if still running after `timeout`.
    std::optional<int> wait_exit(Millis timeout);
    // SIGTERM, then SIGKILL if it has not exited after `grace`. Returns the exit status.
    int terminate(Millis grace = Millis(5000));
    void send_signal(int signal);

    std::string stdout_text() const;
    std::string stderr_text() const;
    const SpawnOptions& options() const { return options_; }

private:
    SpawnOptions options_;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

// Runs argv to completion (bounded by `timeout`; killed after it) with output in dir/<name>.out
// and dir/<name>.err. `status` is nullopt when it had to be killed.
struct RunResult {
    std::optional<int> status;
    std::string out;
    std::string err;
};
RunResult run(const std::vector<std::string>& argv, const TempDir& dir, const std::string& name,
              Millis timeout = Millis(30000));

// Polls `predicate` every `step` until it is true or `timeout` has passed. Returns its last value.
bool wait_until(const std::function<bool()>& predicate, Millis timeout, Millis step = Millis(10));

// A TCP port, below the kernel's ephemeral range, that nothing was bound to on any address a
// moment ago (process.cpp says why not from the ephemeral range).
std::uint16_t free_port();
// A port below 1024 on 127.0.0.1 that was free a moment ago, the first from `from` up that is not
// `except` (other programs on the machine may hold some). Fails the test when there is none.
std::uint16_t free_privileged_port(std::uint16_t from, std::uint16_t except = 0);

// True when a TCP connect to 127.0.0.1:port succeeds within `timeout`.
bool port_accepts(std::uint16_t port, Millis timeout = Millis(500));

struct HttpResponse {
    int status = 0;
    std::string body;
};
// GET http://127.0.0.1:port/path with "Connection: close"; nullopt on any failure or timeout.
std::optional<HttpResponse> http_get(std::uint16_t port, const std::string& path,
                                     Millis timeout = Millis(2000));

std::string read_file(const std::string& path);
// The value of a "Name:\t..." line of /proc/PID/status ("" when there is none).
std::string status_field(pid_t pid, const std::string& name);
std::vector<std::uint8_t> read_binary_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// The descriptors open in process `pid`, by kind: "socket", "pipe", "anon_inode:[io_uring]",
// "anon_inode:[eventfd]", "file" ...; empty when /proc/pid/fd cannot be read.
std::map<std::string, int> open_fds(pid_t pid);
int total_fds(const std::map<std::string, int>& fds);
std::string describe_fds(const std::map<std::string, int>& fds);

// The environment variable, or a test failure naming it when it is not set.
std::string required_env(const char* name);

}  // namespace integration
