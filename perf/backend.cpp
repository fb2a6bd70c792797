// passgate-backend: the benchmark's server. Single thread, epoll (edge-triggered).
//
// Every connection starts with a TLS ClientHello: the backend reads the whole handshake message
// (5-byte record headers give the lengths; it may span several records), optionally checks that
// the bytes are exactly the expected capture (a proxy must replay the hello unchanged), then runs
// the mode's workload:
//
//   echo     echo every byte; with --close-after N, close (server side first) once N bytes have
//            been echoed: the "conn" workload (hello + 1 KiB echo + close)
//   sink     read and discard (bulk, client to server)
//   source   write without end, read and discard whatever comes (bulk, server to client)
//   both     sink and source at once (bulk both ways)
//   hold     write --reply bytes after the hello (stands for the server's first flight), then
//            hold the connection; any byte from the client makes the server close first (idle)
//
//   passgate-backend --listen 127.0.0.1:PORT --mode MODE [--close-after N] [--reply N]
//                    [--expect-hello FILE] [--max-seconds S] [--max-conns N]
//
// SIGTERM or SIGINT (or --max-seconds) ends it; it then prints one JSON line of counters.

#include "common.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <memory>

namespace {

enum class Mode { echo, sink, source, both, hold };

struct Options {
    sockaddr_in listen{};
    Mode mode = Mode::echo;
    std::uint64_t close_after = 0;
    std::uint64_t reply = 64;
    std::vector<std::uint8_t> expect_hello;
    double max_seconds = 3600;
    std::uint64_t max_conns = 20000;
};

struct Counters {
    std::uint64_t accepted = 0;
    std::uint64_t hello_ok = 0;
    std::uint64_t hello_mismatch = 0;  // well-formed, but not the expected bytes
    std::uint64_t hello_bad = 0;       // not a TLS ClientHello
    std::uint64_t closed_by_server = 0;
    std::uint64_t closed_by_client = 0;  // EOF
    std::uint64_t errors = 0;            // reset, EPIPE...
    std::uint64_t refused_over_limit = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t max_open = 0;
};

constexpr std::size_t io_size = 256 * 1024;
constexpr std::size_t echo_buffer_size = 16 * 1024;

struct Conn {
    int fd = -1;
    std::uint32_t generation = 0;
    bool hello_done = false;
    bool reply_sent = false;
    std::vector<std::uint8_t> hello;        // bytes until the hello is complete
    std::unique_ptr<std::uint8_t[]> echo;  // echo mode: bytes read, not yet written back
    std::size_t echo_begin = 0;
    std::size_t echo_end = 0;
    std::uint64_t echoed = 0;
};

class Backend {
public:
    explicit Backend(Options options) : options_(std::move(options)) {
        std::memset(source_.data(), 'S', source_.size());
    }

    int run() {
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) perf::die("epoll_create1 failed");
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&options_.listen), sizeof options_.listen) != 0)
            perf::die(std::string("bind: ") + std::strerror(errno));
        if (::listen(listen_fd_, 4096) != 0) perf::die(std::string("listen: ") + std::strerror(errno));
        add(listen_fd_, EPOLLIN, listen_tag);

        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGTERM);
        sigaddset(&signals, SIGINT);
        ::sigprocmask(SIG_BLOCK, &signals, nullptr);
        signal_fd_ = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
        add(signal_fd_, EPOLLIN, signal_tag);
        ::signal(SIGPIPE, SIG_IGN);

        std::fprintf(stderr, "passgate-backend: listening\n");
        const std::uint64_t end = perf::now_ns() + static_cast<std::uint64_t>(options_.max_seconds * 1e9);
        std::array<epoll_event, 256> events{};
        bool stopping = false;
        while (!stopping && perf::now_ns() < end) {
            const int count = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 500);
            if (count < 0 && errno != EINTR) perf::die(std::string("epoll_wait: ") + std::strerror(errno));
            for (int i = 0; i < count; ++i) {
                const std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
                if (tag == listen_tag) accept_all();
                else if (tag == signal_tag) stopping = true;
                else service(tag);
            }
        }
        print_counters();
        return 0;
    }

private:
    static constexpr std::uint64_t listen_tag = ~std::uint64_t{0};
    static constexpr std::uint64_t signal_tag = ~std::uint64_t{0} - 1;

    void add(int fd, std::uint32_t events, std::uint64_t tag) {
        epoll_event event{};
        event.events = events;
        event.data.u64 = tag;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0)
            perf::die(std::string("epoll_ctl: ") + std::strerror(errno));
    }

    void accept_all() {
        for (int accepted = 0; accepted < 1024; ++accepted) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EMFILE || errno == ENFILE) ++counters_.errors;
                return;  // EAGAIN, or out of descriptors (the level-triggered listener retries)
            }
            ++counters_.accepted;
            if (open_ >= options_.max_conns) {
                ++counters_.refused_over_limit;
                ::close(fd);
                continue;
            }
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(static_cast<std::size_t>(fd) + 1024);
            Conn& conn = conns_[static_cast<std::size_t>(fd)];
            const std::uint32_t generation = conn.generation + 1;
            conn = Conn{};
            conn.fd = fd;
            conn.generation = generation;
            ++open_;
            counters_.max_open = std::max(counters_.max_open, open_);
            add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd));
            service((std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd));
        }
    }

    void close_conn(Conn& conn, bool by_server) {
        if (by_server) ++counters_.closed_by_server;
        ::close(conn.fd);
        conn.fd = -1;
        conn.hello = {};
        conn.echo.reset();
        --open_;
    }

    void fail(Conn& conn) {
        ++counters_.errors;
        close_conn(conn, false);
    }

    // Runs a connection until it would block (edge-triggered: always drain to EAGAIN).
    void service(std::uint64_t tag) {
        const std::size_t fd = static_cast<std::uint32_t>(tag);
        if (fd >= conns_.size()) return;
        Conn& conn = conns_[fd];
        if (conn.fd < 0 || conn.generation != static_cast<std::uint32_t>(tag >> 32)) return;  // stale
        if (!conn.hello_done && !read_hello(conn)) return;
        switch (options_.mode) {
            case Mode::echo: return run_echo(conn);
            case Mode::sink: return run_stream(conn, false);
            case Mode::source: return run_stream(conn, true);
            case Mode::both: return run_stream(conn, true);
            case Mode::hold: return run_hold(conn);
        }
    }

    // True once the hello is complete (the connection is open and ready for the workload).
    bool read_hello(Conn& conn) {
        for (int round = 0; round < 64; ++round) {
            // Read only up to the end of the records announced so far, never past the hello.
            std::size_t offset = 0;
            while (offset + 5 <= conn.hello.size()) {
                const std::size_t length = (std::size_t{conn.hello[offset + 3]} << 8) | conn.hello[offset + 4];
                offset += 5 + length;
            }
            const std::size_t want =
                offset > conn.hello.size() ? offset - conn.hello.size() : 5 - (conn.hello.size() - offset);
            const std::size_t old_size = conn.hello.size();
            conn.hello.resize(old_size + want);
            const ssize_t got = ::recv(conn.fd, conn.hello.data() + old_size, want, 0);
            if (got <= 0) {
                conn.hello.resize(old_size);
                if (got < 0 && errno == EINTR) continue;
                if (got < 0 && errno == EAGAIN) return false;
                if (got == 0) ++counters_.closed_by_client;
                else ++counters_.errors;
                close_conn(conn, false);
                return false;
            }
            conn.hello.resize(old_size + static_cast<std::size_t>(got));
            counters_.bytes_in += static_cast<std::uint64_t>(got);
            const long length = perf::hello_records_length(conn.hello.data(), conn.hello.size());
            if (length < 0 || conn.hello.size() > 256 * 1024) {
                ++counters_.hello_bad;
                close_conn(conn, true);
                return false;
            }
            if (length > 0) {
                if (!options_.expect_hello.empty() && conn.hello != options_.expect_hello) ++counters_.hello_mismatch;
                else ++counters_.hello_ok;
                conn.hello = {};
                conn.hello_done = true;
                return true;
            }
        }
        ++counters_.hello_bad;  // a hello in more than 64 pieces: give up
        close_conn(conn, true);
        return false;
    }

    void run_echo(Conn& conn) {
        if (!conn.echo) conn.echo = std::make_unique<std::uint8_t[]>(echo_buffer_size);
        for (int round = 0; round < 1024; ++round) {
            if (conn.echo_begin < conn.echo_end) {
                const ssize_t sent = ::send(conn.fd, conn.echo.get() + conn.echo_begin, conn.echo_end - conn.echo_begin, MSG_NOSIGNAL);
                if (sent < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN) return;  // EPOLLOUT resumes
                    return fail(conn);
                }
                conn.echo_begin += static_cast<std::size_t>(sent);
                conn.echoed += static_cast<std::uint64_t>(sent);
                counters_.bytes_out += static_cast<std::uint64_t>(sent);
                if (conn.echo_begin < conn.echo_end) continue;
                conn.echo_begin = conn.echo_end = 0;
                if (options_.close_after > 0 && conn.echoed >= options_.close_after) return close_conn(conn, true);
            }
            const ssize_t got = ::recv(conn.fd, conn.echo.get(), echo_buffer_size, 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                return fail(conn);
            }
            if (got == 0) {
                ++counters_.closed_by_client;
                return close_conn(conn, false);
            }
            counters_.bytes_in += static_cast<std::uint64_t>(got);
            conn.echo_end = static_cast<std::size_t>(got);
        }
        // Budget spent with data still flowing: re-arm by a no-op modify (edge re-trigger).
        rearm(conn);
    }

    // sink / source / both. Bounded per call; a still-ready socket is re-armed.
    void run_stream(Conn& conn, bool write_side) {
        const bool read_side = true;  // always read: discard data, detect EOF and errors
        bool read_blocked = !read_side;
        bool write_blocked = !write_side;
        for (int round = 0; round < 64 && !(read_blocked && write_blocked); ++round) {
            if (!read_blocked) {
                const ssize_t got = ::recv(conn.fd, scratch_.data(), scratch_.size(), 0);
                if (got > 0) counters_.bytes_in += static_cast<std::uint64_t>(got);
                else if (got == 0) {
                    ++counters_.closed_by_client;
                    return close_conn(conn, false);
                } else if (errno == EAGAIN) read_blocked = true;
                else if (errno != EINTR) return fail(conn);
            }
            if (!write_blocked) {
                const ssize_t sent = ::send(conn.fd, source_.data(), source_.size(), MSG_NOSIGNAL);
                if (sent > 0) counters_.bytes_out += static_cast<std::uint64_t>(sent);
                else if (sent < 0 && errno == EAGAIN) write_blocked = true;
                else if (sent < 0 && errno != EINTR) return fail(conn);
            }
        }
        if (!(read_blocked && write_blocked)) rearm(conn);
    }

    void run_hold(Conn& conn) {
        while (!conn.reply_sent) {
            std::vector<std::uint8_t> reply(options_.reply, 'R');
            const ssize_t sent = ::send(conn.fd, reply.data(), reply.size(), MSG_NOSIGNAL);
            if (sent < 0 && errno == EINTR) continue;
            if (sent < 0 && errno == EAGAIN) return;
            if (sent < 0 || static_cast<std::size_t>(sent) != reply.size()) return fail(conn);
            counters_.bytes_out += static_cast<std::uint64_t>(sent);
            conn.reply_sent = true;
        }
        std::uint8_t byte[64];
        for (;;) {
            const ssize_t got = ::recv(conn.fd, byte, sizeof byte, 0);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0 && errno == EAGAIN) return;
            if (got < 0) return fail(conn);
            if (got == 0) {
                ++counters_.closed_by_client;
                return close_conn(conn, false);
            }
            counters_.bytes_in += static_cast<std::uint64_t>(got);
            return close_conn(conn, true);  // the client asks us to close first
        }
    }

    // Edge-triggered epoll reports nothing new for a socket still ready: a modify re-queues it.
    void rearm(Conn& conn) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.u64 = (std::uint64_t{conn.generation} << 32) | static_cast<std::uint32_t>(conn.fd);
        ::epoll_ctl(epoll_, EPOLL_CTL_MOD, conn.fd, &event);
    }

    void print_counters() {
        std::printf(
            "{\"accepted\": %llu, \"hello_ok\": %llu, \"hello_mismatch\": %llu, \"hello_bad\": %llu, "
            "\"closed_by_server\": %llu, \"closed_by_client\": %llu, \"errors\": %llu, "
            "\"refused_over_limit\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu, \"max_open\": %llu, "
            "\"open_at_exit\": %llu}\n",
            static_cast<unsigned long long>(counters_.accepted), static_cast<unsigned long long>(counters_.hello_ok),
            static_cast<unsigned long long>(counters_.hello_mismatch), static_cast<unsigned long long>(counters_.hello_bad),
            static_cast<unsigned long long>(counters_.closed_by_server),
            static_cast<unsigned long long>(counters_.closed_by_client), static_cast<unsigned long long>(counters_.errors),
            static_cast<unsigned long long>(counters_.refused_over_limit),
            static_cast<unsigned long long>(counters_.bytes_in), static_cast<unsigned long long>(counters_.bytes_out),
            static_cast<unsigned long long>(counters_.max_open), static_cast<unsigned long long>(open_));
        std::fflush(stdout);
    }

    Options options_;
    Counters counters_;
    int epoll_ = -1;
    int listen_fd_ = -1;
    int signal_fd_ = -1;
    std::uint64_t open_ = 0;
    std::vector<Conn> conns_;  // indexed by fd
    std::array<std::uint8_t, io_size> scratch_{};
    std::array<std::uint8_t, io_size> source_{};
};

Options parse_options(int argc, char** argv) {
    Options options;
    bool have_listen = false;
    for (int i = 1; i < argc; ++i) {
        const std::string argument = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) perf::die(argument + " needs a value");
            return argv[++i];
        };
        if (argument == "--listen") {
            options.listen = perf::parse_ipv4(value());
            have_listen = true;
        } else if (argument == "--mode") {
            const std::string mode = value();
            if (mode == "echo") options.mode = Mode::echo;
            else if (mode == "sink") options.mode = Mode::sink;
            else if (mode == "source") options.mode = Mode::source;
            else if (mode == "both") options.mode = Mode::both;
            else if (mode == "hold") options.mode = Mode::hold;
            else perf::die("unknown --mode " + mode);
        } else if (argument == "--close-after") {
            options.close_after = perf::parse_u64(value(), "--close-after");
        } else if (argument == "--reply") {
            options.reply = std::max<std::uint64_t>(1, std::min<std::uint64_t>(perf::parse_u64(value(), "--reply"), 16384));
        } else if (argument == "--expect-hello") {
            options.expect_hello = perf::read_binary_file(value());
        } else if (argument == "--max-seconds") {
            options.max_seconds = perf::parse_double(value(), "--max-seconds");
        } else if (argument == "--max-conns") {
            options.max_conns = perf::parse_u64(value(), "--max-conns");
        } else {
            perf::die("passgate-backend: unknown argument " + argument +
                      "\nusage: passgate-backend --listen IP:PORT --mode echo|sink|source|both|hold "
                      "[--close-after N] [--reply N] [--expect-hello FILE] [--max-seconds S] [--max-conns N]");
        }
    }
    if (!have_listen) perf::die("passgate-backend: --listen IP:PORT is required");
    return options;
}

}  // namespace

int main(int argc, char** argv) {
    auto backend = std::make_unique<Backend>(parse_options(argc, argv));
    return backend->run();
}
