#include "src/control/upgrade.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace passgate {

namespace {

constexpr int first_listen_fd = 3;  // SD_LISTEN_FDS_START
constexpr const char* upgrade_fd_variable = "PASSGATE_UPGRADE_FD";
constexpr const char* quic_forward_fd_variable = "PASSGATE_UPGRADE_QUIC_FD";
// Room for a burst of forwarded client datagrams while the old process's workers are busy (the
// kernel caps it at wmem_max); beyond it the new process drops and counts.
constexpr int quic_forward_buffer = 4 * 1024 * 1024;

// Async-signal-safe: writes `value` in decimal at `out`, NUL-terminated. `out` has room for 21.
void format_decimal(char* out, long value) {
    char digits[21];
    int length = 0;
    do {
        digits[length++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0 && length < 20);
    for (int index = 0; index < length; ++index) out[index] = digits[length - 1 - index];
    out[length] = '\0';
}

std::runtime_error system_failure(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

bool passed_by_an_upgrade_or_systemd(const char* entry) {
    for (const char* name : {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "PASSGATE_UPGRADE_FD=", "PASSGATE_UPGRADE_QUIC_FD="})
        if (std::strncmp(entry, name, std::strlen(name)) == 0) return true;
    return false;
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
    return "ended with wait status " + std::to_string(status);
}

std::optional<std::string> receive(int fd) {
    char buffer[4096];
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (got > 0) return std::string(buffer, static_cast<std::size_t>(got));
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
    return std::string();  // closed (0), or failed: the other end is gone either way
}

bool send_message(int fd, const std::string& message) {
    return ::send(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT) ==
           static_cast<ssize_t>(message.size());
}

}  // namespace

UpgradeChild::UpgradeChild(const std::string& binary, const std::vector<std::string>& arguments,
                           const std::vector<PassedSocket>& sockets) {
    int pair[2];
    // The child's end stays blocking (its own file description): the new process sets what it needs.
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw system_failure("socketpair");
    channel_ = reactor::Fd(pair[0]);
    const reactor::Fd child_end(pair[1]);
    const int flags = ::fcntl(channel_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(channel_.get(), F_SETFL, flags | O_NONBLOCK) != 0) throw system_failure("fcntl(O_NONBLOCK)");
    int forward_pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, forward_pair) != 0)
        throw system_failure("socketpair (QUIC forwarding)");
    quic_forward_ = reactor::Fd(forward_pair[0]);
    const reactor::Fd forward_child_end(forward_pair[1]);
    // Best effort: the kernel may cap it lower (a full channel drops, counted).
    ::setsockopt(forward_child_end.get(), SOL_SOCKET, SO_SNDBUF, &quic_forward_buffer, sizeof quic_forward_buffer);
    ::setsockopt(quic_forward_.get(), SOL_SOCKET, SO_RCVBUF, &quic_forward_buffer, sizeof quic_forward_buffer);

    // The child places the sockets at 3, 4, ... then the channel, then the QUIC forwarding channel. Their duplicates
    // here sit above all of those numbers, so no dup2 in the child overwrites a source.
    const int count = static_cast<int>(sockets.size());
    const int channel_number = first_listen_fd + count;
    const int forward_number = channel_number + 1;
    std::vector<reactor::Fd> sources;
    for (const PassedSocket& socket : sockets) {
        sources.emplace_back(::fcntl(socket.fd, F_DUPFD_CLOEXEC, forward_number + 1));
        if (!sources.back()) throw system_failure("fcntl(F_DUPFD_CLOEXEC) of socket " + socket.name);
    }
    const reactor::Fd channel_source(::fcntl(child_end.get(), F_DUPFD_CLOEXEC, forward_number + 1));
    if (!channel_source) throw system_failure("fcntl(F_DUPFD_CLOEXEC) of the upgrade channel");
    const reactor::Fd forward_source(::fcntl(forward_child_end.get(), F_DUPFD_CLOEXEC, forward_number + 1));
    if (!forward_source) throw system_failure("fcntl(F_DUPFD_CLOEXEC) of the QUIC forwarding channel");
    std::vector<int> source_numbers;
    for (const reactor::Fd& source : sources) source_numbers.push_back(source.get());

    // Everything the child uses is built here: between fork and execve it may only make
    // async-signal-safe calls (this process has threads).
    std::vector<std::string> environment;
    for (char** entry = environ; *entry != nullptr; ++entry)
        if (!passed_by_an_upgrade_or_systemd(*entry)) environment.emplace_back(*entry);
    std::string names = "LISTEN_FDNAMES=";
    for (std::size_t index = 0; index < sockets.size(); ++index) names += (index ? ":" : "") + sockets[index].name;
    environment.push_back("LISTEN_FDS=" + std::to_string(count));
    environment.push_back(names);
    environment.push_back(std::string(upgrade_fd_variable) + "=" + std::to_string(channel_number));
    environment.push_back(std::string(quic_forward_fd_variable) + "=" + std::to_string(forward_number));
    char listen_pid[40] = "LISTEN_PID=";
    char* const listen_pid_digits = listen_pid + std::strlen(listen_pid);
    std::vector<char*> envp;
    for (std::string& entry : environment) envp.push_back(entry.data());
    envp.push_back(listen_pid);
    envp.push_back(nullptr);
    std::vector<std::string> argument_copies = arguments;
    std::vector<char*> argv;
    for (std::string& argument : argument_copies) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const std::string exec_failed = "failed cannot execute " + binary + ": errno ";
    char exec_failed_message[4096];
    const std::size_t prefix = std::min(exec_failed.size(), sizeof exec_failed_message - 24);
    std::memcpy(exec_failed_message, exec_failed.data(), prefix);

    const pid_t pid = ::fork();
    if (pid < 0) throw system_failure("fork");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the control thread's blocked signals
        for (int index = 0; index < count; ++index)
            if (::dup2(source_numbers[static_cast<std::size_t>(index)], first_listen_fd + index) < 0) ::_exit(126);
        if (::dup2(channel_source.get(), channel_number) < 0) ::_exit(126);
        if (::dup2(forward_source.get(), forward_number) < 0) ::_exit(126);
        ::close_range(static_cast<unsigned>(forward_number + 1), ~0U, 0);
        format_decimal(listen_pid_digits, static_cast<long>(::getpid()));
        ::execve(binary.c_str(), argv.data(), envp.data());
        format_decimal(exec_failed_message + prefix, errno);
        [[maybe_unused]] const ssize_t sent =
            ::send(channel_number, exec_failed_message, std::strlen(exec_failed_message), MSG_NOSIGNAL);
        ::_exit(127);
    }
    pid_ = pid;
    pidfd_ = reactor::Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd_) {
        const std::runtime_error error = system_failure("pidfd_open");
        kill_and_reap();
        throw error;
    }
}

UpgradeChild::~UpgradeChild() {
    if (pid_ > 0 && !released_ && !reaped_) kill_and_reap();
}

std::optional<std::string> UpgradeChild::read_message() { return receive(channel_.get()); }

bool UpgradeChild::send_go() { return send_message(channel_.get(), "go"); }

std::string UpgradeChild::kill_and_reap() {
    if (reaped_) return "already ended";
    ::kill(pid_, SIGKILL);
    return reap();
}

std::string UpgradeChild::reap() {
    if (reaped_) return "already ended";
    int status = 0;
    pid_t waited = -1;
    do {
        waited = ::waitpid(pid_, &status, 0);
    } while (waited < 0 && errno == EINTR);
    reaped_ = true;
    if (waited < 0) return std::string("could not be waited for: ") + std::strerror(errno);
    return describe_status(status);
}

std::optional<UpgradeParent> UpgradeParent::from_environment() {
    const char* value = std::getenv(upgrade_fd_variable);
    if (value == nullptr) return std::nullopt;
    const std::string text = value;
    ::unsetenv(upgrade_fd_variable);
    int fd = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), fd);
    if (error != std::errc() || end != text.data() + text.size() || fd < 3)
        throw std::runtime_error(std::string(upgrade_fd_variable) + " is not a descriptor number: \"" + text + "\"");
    reactor::Fd channel(fd);
    int type = 0;
    socklen_t length = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_SEQPACKET)
        throw std::runtime_error(std::string(upgrade_fd_variable) + "=" + text + " is not the upgrade channel");
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        throw system_failure(std::string(upgrade_fd_variable) + ": fcntl");
    // The QUIC forwarding channel: absent when the old process predates it (then nothing is
    // forwarded, as before).
    reactor::Fd quic_forward;
    if (const char* forward = std::getenv(quic_forward_fd_variable)) {
        const std::string forward_text = forward;
        ::unsetenv(quic_forward_fd_variable);
        int forward_fd = -1;
        const auto [forward_end, forward_error] =
            std::from_chars(forward_text.data(), forward_text.data() + forward_text.size(), forward_fd);
        int forward_type = 0;
        socklen_t forward_length = sizeof forward_type;
        if (forward_error != std::errc() || forward_end != forward_text.data() + forward_text.size() || forward_fd < 3 ||
            ::getsockopt(forward_fd, SOL_SOCKET, SO_TYPE, &forward_type, &forward_length) != 0 ||
            forward_type != SOCK_SEQPACKET)
            throw std::runtime_error(std::string(quic_forward_fd_variable) + "=" + forward_text +
                                     " is not the QUIC forwarding channel");
        quic_forward = reactor::Fd(forward_fd);
        const int forward_flags = ::fcntl(forward_fd, F_GETFL);
        if (forward_flags < 0 || ::fcntl(forward_fd, F_SETFL, forward_flags | O_NONBLOCK) != 0 ||
            ::fcntl(forward_fd, F_SETFD, FD_CLOEXEC) != 0)
            throw system_failure(std::string(quic_forward_fd_variable) + ": fcntl");
    }
    return UpgradeParent(std::move(channel), std::move(quic_forward), ::getppid());
}

bool UpgradeParent::send_ready(const std::string& version) { return send_message(channel_.get(), "ready " + version); }

bool UpgradeParent::send_failed(const std::string& reason) {
    // One datagram, bounded: a long reason is cut.
    return send_message(channel_.get(), "failed " + reason.substr(0, 3800));
}

std::optional<std::string> UpgradeParent::read_message() { return receive(channel_.get()); }

}  // namespace passgate
