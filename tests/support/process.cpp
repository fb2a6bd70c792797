#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace integration {

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

int status_code(int wait_status) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    return -1;
}

class FileActions {
public:
    FileActions() {
        if (::posix_spawn_file_actions_init(&actions_) != 0) throw_errno("posix_spawn_file_actions_init");
    }
    ~FileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;

    void open(int fd, const std::string& path, int flags) {
        check(::posix_spawn_file_actions_addopen(&actions_, fd, path.c_str(), flags, 0644), "addopen");
    }
    void chdir(const std::string& path) {
        check(::posix_spawn_file_actions_addchdir_np(&actions_, path.c_str()), "addchdir_np");
    }
    void close_from(int fd) {
        check(::posix_spawn_file_actions_addclosefrom_np(&actions_, fd), "addclosefrom_np");
    }
    posix_spawn_file_actions_t* get() { return &actions_; }

private:
    static void check(int error, const char* what) {
        if (error != 0) throw std::system_error(error, std::generic_category(), what);
    }
    posix_spawn_file_actions_t actions_;
};

}  // namespace

// ---- TempDir -------------------------------------------------------------------------------------

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/passgate-it-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw_errno("mkdtemp " + pattern);
    path_ = pattern;
}

TempDir::~TempDir() {
    if (std::getenv("PASSGATE_KEEP_TMP") != nullptr) {
        std::cerr << "integration: kept " << path_.string() << '\n';
        return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

// ---- Process -------------------------------------------------------------------------------------

Process::Process(const SpawnOptions& options) : options_(options) {
    if (options_.argv.empty()) throw std::invalid_argument("Process: empty argv");
    FileActions actions;
    actions.open(STDIN_FILENO, "/dev/null", O_RDONLY);
    actions.open(STDOUT_FILENO, options_.stdout_path.empty() ? "/dev/null" : options_.stdout_path,
                 O_WRONLY | O_CREAT | O_TRUNC);
    actions.open(STDERR_FILENO, options_.stderr_path.empty() ? "/dev/null" : options_.stderr_path,
                 O_WRONLY | O_CREAT | O_TRUNC);
    // The test's own sockets and files (backends, the JUnit report) stay out of the child.
    actions.close_from(3);
    if (!options_.cwd.empty()) actions.chdir(options_.cwd);

    std::vector<char*> argv;
    argv.reserve(options_.argv.size() + 1);
    for (std::string& argument : options_.argv) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const int error = ::posix_spawnp(&pid_, argv[0], actions.get(), nullptr, argv.data(), environ);
    if (error != 0) {
        pid_ = -1;
        throw std::system_error(error, std::generic_category(), "posix_spawnp " + options_.argv[0]);
    }
}

Process::~Process() {
    if (pid_ <= 0 || status_) return;
    ::kill(pid_, SIGKILL);
    // SIGKILL cannot be caught; the bound only guards against a kernel that never delivers it.
    if (!wait_exit(Millis(10000)))
        std::cerr << "integration: pid " << pid_ << " survived SIGKILL for 10 s\n";
}

bool Process::running() {
    if (status_) return false;
    int wait_status = 0;
    const pid_t reaped = ::waitpid(pid_, &wait_status, WNOHANG);
    if (reaped == pid_) {
        status_ = status_code(wait_status);
        return false;
    }
    if (reaped < 0 && errno != EINTR) {
        status_ = -1;  // not our child any more: nothing to wait for
        return false;
    }
    return true;
}

std::optional<int> Process::wait_exit(Millis timeout) {
    wait_until([this] { return !running(); }, timeout, Millis(5));
    return status_;
}

int Process::terminate(Millis grace) {
    if (!running()) return *status_;
    ::kill(pid_, SIGTERM);
    if (auto status = wait_exit(grace)) return *status;
    ::kill(pid_, SIGKILL);
    if (auto status = wait_exit(Millis(10000))) return *status;
    return -1;
}

void Process::send_signal(int signal) {
    if (running()) ::kill(pid_, signal);
}

std::string Process::stdout_text() const {
    return options_.stdout_path.empty() ? std::string() : read_file(options_.stdout_path);
}

std::string Process::stderr_text() const {
    return options_.stderr_path.empty() ? std::string() : read_file(options_.stderr_path);
}

RunResult run(const std::vector<std::string>& argv, const TempDir& dir, const std::string& name,
              Millis timeout) {
    SpawnOptions options;
    options.argv = argv;
    options.stdout_path = dir.file(name + ".out");
    options.stderr_path = dir.file(name + ".err");
    options.cwd = dir.path().string();
    Process process(options);
    RunResult result;
    result.status = process.wait_exit(timeout);
    if (!result.status) process.terminate(Millis(1000));
    result.out = process.stdout_text();
    result.err = process.stderr_text();
    return result;
}

// ---- Waiting, ports, HTTP ------------------------------------------------------------------------

bool wait_until(const std::function<bool()>& predicate, Millis timeout, Millis step) {
    if (step.count() <= 0) step = Millis(1);
    const Clock::time_point deadline = Clock::now() + timeout;
    const long max_rounds = timeout.count() / step.count() + 2;
    for (long round = 0; round < max_rounds; ++round) {
        if (predicate()) return true;
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(step);
    }
    return predicate();
}

namespace {
// Test listeners take ports below the kernel's ephemeral range (32768-60999 by default), never
// from it: a port picked from that range can be taken, between the pick and the test's bind, by
// any outgoing connection on the machine (a client's, or passgate's own connect to a backend), and
// its TIME_WAIT then blocks the bind for a minute. Seen: a test API server brought back up on its
// old port after 10 s of client load, and an s_server started on a just-picked port.
constexpr std::uint16_t first_test_port = 10240;
constexpr std::uint16_t test_port_count = 20480;  // up to 30719

// True when nothing is bound to `port` on any address: a dual-stack [::] bind without
// SO_REUSEADDR conflicts with every IPv4 and IPv6 socket on the port, TIME_WAIT included
// (IPv4 only where IPv6 is off).
bool port_unused(std::uint16_t port) {
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        const int off = 0;
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
            ::close(fd);
            throw_errno("setsockopt IPV6_V6ONLY");
        }
        sockaddr_in6 address{};
        address.sin6_family = AF_INET6;
        address.sin6_addr = in6addr_any;
        address.sin6_port = htons(port);
        const bool unused = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        ::close(fd);
        return unused;
    }
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw_errno("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(port);
    const bool unused = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return unused;
}
}  // namespace

// Ports are handed out in turn from a start that depends on the process id (two test processes
// side by side start far apart), each checked unused; a port is not handed out twice by one
// process until the whole range has gone round.
std::uint16_t free_port() {
    static std::mutex mutex;
    static std::uint32_t next = (static_cast<std::uint32_t>(::getpid()) * 7919u) % test_port_count;
    std::lock_guard lock(mutex);
    for (std::uint32_t attempt = 0; attempt < test_port_count; ++attempt) {
        const auto port = static_cast<std::uint16_t>(first_test_port + next);
        next = (next + 1) % test_port_count;
        if (port_unused(port)) return port;
    }
    throw std::runtime_error("free_port: every port from " + std::to_string(first_test_port) + " to " +
                             std::to_string(first_test_port + test_port_count - 1) + " is in use");
}

std::uint16_t free_privileged_port(std::uint16_t from, std::uint16_t except) {
    for (std::uint16_t port = from; port < 1024; ++port) {
        if (port == except) continue;
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        ::close(fd);
        if (free) return port;
    }
    FAIL("no free port below 1024 on 127.0.0.1 from " << from);
    return 0;
}

std::string status_field(pid_t pid, const std::string& name) {
    std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    for (int count = 0; count < 200 && std::getline(status, line); ++count)
        if (line.rfind(name + ":", 0) == 0) {
            const std::size_t value = line.find_first_not_of(" \t", name.size() + 1);
            return value == std::string::npos ? "" : line.substr(value);
        }
    return {};
}

namespace {

// A non-blocking connect to 127.0.0.1:port finished within `timeout`; returns a blocking fd or -1.
int connect_loopback(std::uint16_t port, Millis timeout) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        if (errno != EINPROGRESS) {
            ::close(fd);
            return -1;
        }
        pollfd item{fd, POLLOUT, 0};
        int error = 0;
        socklen_t length = sizeof error;
        if (::poll(&item, 1, static_cast<int>(timeout.count())) != 1 ||
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
            ::close(fd);
            return -1;
        }
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

}  // namespace

bool port_accepts(std::uint16_t port, Millis timeout) {
    const int fd = connect_loopback(port, timeout);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

std::optional<HttpResponse> http_get(std::uint16_t port, const std::string& path, Millis timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    const int fd = connect_loopback(port, timeout);
    if (fd < 0) return std::nullopt;
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    std::string reply;
    bool ok = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size());
    // Read until EOF; bounded by the deadline and by a size cap.
    for (int round = 0; ok && round < 10000 && reply.size() < (1u << 20); ++round) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        pollfd item{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&item, 1, static_cast<int>(left)) != 1) {
            ok = false;
            break;
        }
        char buffer[4096];
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got == 0) break;
        if (got < 0) {
            ok = false;
            break;
        }
        reply.append(buffer, static_cast<std::size_t>(got));
    }
    ::close(fd);
    if (!ok) return std::nullopt;
    // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
    if (reply.compare(0, 5, "HTTP/") != 0) return std::nullopt;
    const std::size_t space = reply.find(' ');
    const std::size_t header_end = reply.find("\r\n\r\n");
    if (space == std::string::npos || header_end == std::string::npos) return std::nullopt;
    HttpResponse response;
    response.status = std::atoi(reply.c_str() + space + 1);
    response.body = reply.substr(header_end + 4);
    return response;
}

// ---- Files ---------------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::uint8_t> read_binary_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
}

// ---- /proc ---------------------------------------------------------------------------------------

std::map<std::string, int> open_fds(pid_t pid) {
    std::map<std::string, int> kinds;
    const std::filesystem::path directory = "/proc/" + std::to_string(pid) + "/fd";
    std::error_code error;
    std::filesystem::directory_iterator it(directory, error);
    if (error) return kinds;
    int seen = 0;
    for (; it != std::filesystem::directory_iterator() && seen < 100000; it.increment(error), ++seen) {
        if (error) break;
        const std::string target = std::filesystem::read_symlink(it->path(), error).string();
        if (error) {
            error.clear();
            continue;  // closed while we looked
        }
        std::string kind;
        if (target.rfind("socket:", 0) == 0) kind = "socket";
        else if (target.rfind("pipe:", 0) == 0) kind = "pipe";
        else if (target.rfind("anon_inode:", 0) == 0) kind = target;
        else kind = "file";
        ++kinds[kind];
    }
    return kinds;
}

int total_fds(const std::map<std::string, int>& fds) {
    int total = 0;
    for (const auto& [kind, count] : fds) total += count;
    return total;
}

std::string describe_fds(const std::map<std::string, int>& fds) {
    std::string text = std::to_string(total_fds(fds)) + " (";
    bool first = true;
    for (const auto& [kind, count] : fds) {
        if (!first) text += ", ";
        first = false;
        text += kind + "=" + std::to_string(count);
    }
    return text + ")";
}

std::string required_env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        FAIL("environment variable " << name << " is not set (meson test sets it)");
        return {};
    }
    return value;
}

}  // namespace integration
