// The systemd notify protocol, for real: passgate started with NOTIFY_SOCKET naming a datagram
// socket the test has bound, and the messages it sends checked in order: READY=1 once it serves,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around each reload, STOPPING=1 on SIGTERM.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>

using namespace integration;

namespace {

std::uint64_t monotonic_usec_now() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
}

struct NotifyMessage {
    std::string text;
    pid_t sender = -1;  // from SCM_CREDENTIALS
};

// An AF_UNIX datagram socket bound at `path`, as systemd's notify socket; SO_PASSCRED so that
// each message carries its sender's pid.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        socket_ = Socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(socket_);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof address.sun_path);
        std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
        REQUIRE(::bind(socket_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
        const int one = 1;
        REQUIRE(::setsockopt(socket_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0);
    }
    ~NotifySocket() { ::unlink(path_.c_str()); }

    // The next message, or nullopt when none arrives within the timeout.
    std::optional<NotifyMessage> receive(Millis timeout) {
        pollfd item{socket_.get(), POLLIN, 0};
        if (::poll(&item, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
        char buffer[4096];
        iovec vector{buffer, sizeof buffer};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        msghdr message{};
        message.msg_iov = &vector;
        message.msg_iovlen = 1;
        message.msg_control = control;
        message.msg_controllen = sizeof control;
        const ssize_t got = ::recvmsg(socket_.get(), &message, MSG_DONTWAIT);
        if (got < 0) return std::nullopt;
        NotifyMessage result;
        result.text.assign(buffer, static_cast<std::size_t>(got));
        for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS) {
                ucred credentials{};
                std::memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
                result.sender = credentials.pid;
            }
        }
        received_.push_back(result.text);
        return result;
    }

    // Every message received so far, for failure reports.
    std::string transcript() const {
        std::string text;
        for (const std::string& message : received_) {
            std::string shown = message;
            for (char& c : shown)
                if (c == '\n') c = '|';
            text += "  " + shown + "\n";
        }
        return text;
    }

private:
    std::string path_;
    Socket socket_;
    std::vector<std::string> received_;
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    for (int count = 0; count < 1000 && std::getline(in, line); ++count)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

bool has_line(const std::string& text, const std::string& wanted) {
    for (const std::string& line : lines_of(text))
        if (line == wanted) return true;
    return false;
}

// The value of the "KEY=" line, or nullopt.
std::optional<std::string> value_of(const std::string& text, const std::string& key) {
    for (const std::string& line : lines_of(text))
        if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
    return std::nullopt;
}

// A message that holds nothing but a STATUS= line (sent periodically).
bool status_only(const std::string& text) {
    const std::vector<std::string> lines = lines_of(text);
    return lines.size() == 1 && lines[0].rfind("STATUS=", 0) == 0;
}

// Sets an environment variable for the lifetime of the guard (the children spawned meanwhile
// inherit it), then restores what was there.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) previous_ = old;
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (previous_) ::setenv(name_, previous_->c_str(), 1);
        else ::unsetenv(name_);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> previous_;
};

std::string notify_config(std::uint16_t port, std::uint16_t backend, const std::string& hostname) {
    return "[admin]\naddress = \"@ADMIN@\"\n\n"
           "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n\n"
           "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"" + hostname + "\"]\n"
           "backends = [ { service = \"echo\" } ]\n\n"
           "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" + std::to_string(backend) + "\"]\n";
}

// A passgate started with NOTIFY_SOCKET set to a socket of its own (as systemd would set it),
// serving `*.corpus.test` from one echo backend; `runtime` goes before the config.
struct NotifyingNode {
    explicit NotifyingNode(const std::string& runtime = "")
        : port(free_port()), socket_path(dir.file("notify.sock")), notify(socket_path) {
        const ScopedEnv env("NOTIFY_SOCKET", socket_path);
        passgate = std::make_unique<Passgate>(
            dir, PassgateOptions{runtime + notify_config(port, backend.port(), "*.corpus.test"), {}, 2});
    }
    TempDir dir;
    EchoBackend backend;
    std::uint16_t port;
    std::string socket_path;
    NotifySocket notify;
    std::unique_ptr<Passgate> passgate;
};

}  // namespace

TEST_CASE("sd_notify: READY=1, RELOADING=1 with MONOTONIC_USEC then READY=1, STOPPING=1, in order",
          "[integration][notify]") {
    NotifyingNode node;
    EchoBackend& backend = node.backend;
    const std::uint16_t port = node.port;
    NotifySocket& notify = node.notify;
    Passgate& passgate = *node.passgate;
    REQUIRE(passgate.wait_ready());

    // Skips STATUS-only messages (each must report connections) and returns the next other one.
    const auto next = [&](Millis timeout) -> std::optional<NotifyMessage> {
        const Deadline deadline = deadline_in(timeout);
        for (int round = 0; round < 1000; ++round) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
            if (left.count() <= 0) return std::nullopt;
            std::optional<NotifyMessage> message = notify.receive(left);
            if (!message) return std::nullopt;
            CHECK(message->sender == passgate.pid());
            if (!status_only(message->text)) return message;
            CHECK(message->text.find("connections") != std::string::npos);
        }
        return std::nullopt;
    };

    // 1. READY=1 (with STATUS=) once /readyz answers, and it is the first thing said.
    {
        const std::optional<NotifyMessage> ready = notify.receive(Millis(2000));
        INFO("transcript:\n" << notify.transcript());
        REQUIRE(ready.has_value());
        CHECK(ready->sender == passgate.pid());
        CHECK(has_line(ready->text, "READY=1"));
        CHECK(value_of(ready->text, "STATUS").has_value());
        CHECK(port_accepts(port));  // the listeners were bound when it said so
    }

    // 2. A valid reload: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, microseconds, taken
    // when the reload starts), then READY=1.
    const auto check_reload = [&](const std::string& config, int reloads) {
        const std::uint64_t before = monotonic_usec_now();
        reload_with(passgate, config);
        const std::optional<NotifyMessage> reloading = next(Millis(3000));
        const std::uint64_t after = monotonic_usec_now();
        INFO("transcript:\n" << notify.transcript());
        REQUIRE(reloading.has_value());
        CHECK(has_line(reloading->text, "RELOADING=1"));
        const std::optional<std::string> usec = value_of(reloading->text, "MONOTONIC_USEC");
        REQUIRE(usec.has_value());
        REQUIRE(!usec->empty());
        CHECK(usec->find_first_not_of("0123456789") == std::string::npos);
        const std::uint64_t stamp = std::strtoull(usec->c_str(), nullptr, 10);
        CHECK(stamp >= before);
        CHECK(stamp <= after);
        const std::optional<NotifyMessage> ready = next(Millis(3000));
        REQUIRE(ready.has_value());
        CHECK(has_line(ready->text, "READY=1"));
        CHECK_FALSE(has_line(ready->text, "RELOADING=1"));
        CHECK(wait_for_reloads(passgate, reloads));
    };
    check_reload(notify_config(port, backend.port(), "*.example.com"), 1);
    // An invalid file: the reload is rejected, the running config goes on: the same pair.
    check_reload("[[listener]\nnot toml\n", 2);
    CHECK(metric_sample(passgate, "passgate_config_reloads_total{result=\"failure\"}") == 1);
    // The byte-identical file again: the same pair too.
    check_reload(notify_config(port, backend.port(), "*.corpus.test"), 3);
    check_reload(notify_config(port, backend.port(), "*.corpus.test"), 4);

    // 3. SIGTERM with a connection open: STOPPING=1 at once (STATUS says what is drained); then
    // the connection ends and passgate exits 0. Nothing but STATUS lines after STOPPING=1.
    Socket client = connect_to(port);
    REQUIRE(client);
    const CapturedHello& hello = captured_hello("python3-ssl.bin");
    REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
    std::vector<std::uint8_t> echoed(hello.bytes.size());
    REQUIRE(recv_exact(client.get(), echoed.data(), echoed.size(), deadline_in(Millis(3000))));
    passgate.process().send_signal(SIGTERM);
    {
        const std::optional<NotifyMessage> stopping = next(Millis(3000));
        INFO("transcript:\n" << notify.transcript());
        REQUIRE(stopping.has_value());
        CHECK(has_line(stopping->text, "STOPPING=1"));
        const std::optional<std::string> status = value_of(stopping->text, "STATUS");
        REQUIRE(status.has_value());
        CHECK(status->find("draining 1 connections") != std::string::npos);
    }
    client.reset();
    const std::optional<int> status = passgate.process().wait_exit(Millis(5000));
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    // Whatever came after STOPPING=1: only STATUS lines about draining.
    for (int round = 0; round < 1000; ++round) {
        const std::optional<NotifyMessage> late = notify.receive(Millis(100));
        if (!late) break;
        INFO("after STOPPING=1: " << late->text);
        CHECK(status_only(late->text));
        CHECK(late->text.find("draining") != std::string::npos);
    }
    stop_and_check(passgate);
}

TEST_CASE("sd_notify: with drain_delay, STOPPING=1 at SIGTERM says draining and accepting for the delay; "
          "then STATUS counts down and passgate exits 0",
          "[integration][notify][drain]") {
    NotifyingNode node("[runtime]\ndrain_delay = \"1s\"\n");
    NotifySocket& notify = node.notify;
    Passgate& passgate = *node.passgate;
    REQUIRE(passgate.wait_ready());
    const std::optional<NotifyMessage> ready = notify.receive(Millis(2000));
    REQUIRE(ready.has_value());
    REQUIRE(has_line(ready->text, "READY=1"));

    passgate.process().send_signal(SIGTERM);
    // Everything said from the signal to the exit (bounded: a message every 100 ms at most).
    std::vector<std::string> said;
    for (int round = 0; round < 200; ++round) {
        const std::optional<NotifyMessage> message = notify.receive(Millis(300));
        if (message) said.push_back(message->text);
        else if (!passgate.process().running()) break;
    }
    INFO("transcript:\n" << notify.transcript());
    REQUIRE(!said.empty());
    CHECK(has_line(said.front(), "STOPPING=1"));
    CHECK(std::count_if(said.begin(), said.end(), [](const std::string& text) { return has_line(text, "STOPPING=1"); }) ==
          1);
    CHECK(value_of(said.front(), "STATUS").value_or("")
              .starts_with("draining: /readyz answers 503, accepting new connections for 1000 ms (drain_delay); "));
    // While the delay runs, STATUS says how long accepting goes on; after it, only the draining.
    const auto accepting = std::count_if(said.begin(), said.end(), [](const std::string& text) {
        return status_only(text) && text.find("STATUS=draining (accepting for ") == 0;
    });
    CHECK(accepting >= 3);  // about 10 in the second (one every 100 ms)
    CHECK(status_only(said.back()));
    CHECK(said.back().find("STATUS=draining 0 connections") == 0);
    CHECK(passgate.process().wait_exit(Millis(2000)) == 0);
    CHECK(sanitizer_report(passgate.stderr_text()).empty());
}
