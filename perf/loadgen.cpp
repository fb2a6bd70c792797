// passgate-loadgen: the benchmark's client. Single thread, epoll (edge-triggered).
//
// Every connection binds a source address from 127.0.0.BASE.. (IP_BIND_ADDRESS_NO_PORT, so the
// kernel picks ports per 4-tuple), connects to --connect, and sends a captured TLS ClientHello
// (--hello FILE, sent unchanged) before anything else. Then, by --workload (passgate-backend runs
// the matching --mode on the other side):
//
//   conn   fixed concurrency of short connections: hello, --size bytes (1 KiB) echoed back, then
//          the server closes first (so TIME_WAIT stays on the server side) and we close after
//          its EOF. Connections/s and latency (connect() to EOF) p50/p99/p99.9.
//   rr     --concurrency long connections, each doing --size-byte (64) ping-pong one at a time.
//          Transactions/s and round trip p50/p99.
//   bulk   --concurrency connections streaming (--direction down: server to client, up, both).
//          Gbit/s (bytes the client received plus bytes it sent).
//   idle   --conns connections held open after the hello and the server's --reply bytes; the
//          memory of --mem-pids (Rss, Pss from smaps_rollup) before and with them all open.
//          Then each sends one byte, the server closes first, we close after its EOF.
//
// --rate R makes conn and rr open loop (arrivals on a fixed schedule, whatever completes):
//   conn   R new connections per second (overload), at most --concurrency in flight (an arrival
//          over that cap is counted as skipped, not started). The outcome of every connection
//          started in the window is counted (completed, or its error), and the latency from
//          connect() to the first echo byte of those that got one (first_byte_p*).
//   rr     R transactions per second over the --concurrency connections (a pool: a transaction
//          waits for a free connection); the round trip counts from its scheduled time, so a
//          queue that builds up shows in the latency (no coordinated omission).
//
// conn, rr and bulk: --warmup seconds, then a --duration window; counters, histograms and the
// CPU time (utime+stime from /proc/PID/stat) of --cpu-pids (the proxy) and --aux-pids (the
// backend) are taken at the window's edges. --cpu-tree PID instead counts PID and all its
// descendants at each edge, reaped ones included (a proxy that forks workers on reload).
// --baseline S measures an extra window of S seconds just before the main one (reported as
// baseline_*) and prints the line {"event": "window"} on stdout when the main window begins, so
// that perf/run can start disturbing the proxy (reloads) exactly then. Every loop is bounded in
// time (a hard deadline after the window) and in count (--max-conns, --max-errors). conn with
// --max-conns ends its window early once that many connections have been started and have all
// ended (perf/soak).
//
// Output: one JSON object on stdout. Exit status 0 when the run completed (errors are counted
// in the JSON), 1 when it was aborted (too many errors), 2 on bad usage.

#include "common.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>

namespace {

enum class Workload { conn, rr, bulk, idle };
enum class Direction { down, up, both };

struct Options {
    sockaddr_in target{};
    std::vector<std::uint8_t> hello;
    Workload workload = Workload::conn;
    Direction direction = Direction::down;
    std::string label;
    std::uint64_t concurrency = 0;  // 0: the workload's default
    std::uint64_t size = 0;         // 0: the workload's default
    double warmup = 0.5;
    double duration = 5;
    double timeout = 10;  // per step: connect+hello+response, one ping, release
    in_addr_t source_base = htonl(0x7f000002);  // 127.0.0.2
    std::uint32_t source_count = 64;
    std::vector<int> cpu_pids;
    int cpu_tree = 0;     // root of the proxy's process tree (instead of cpu_pids)
    double baseline = 0;  // seconds measured before the main window (0: none)
    std::vector<int> aux_pids;
    std::vector<int> mem_pids;
    std::uint64_t max_conns = 10'000'000;
    std::uint64_t max_errors = 10'000;
    double rate = 0;  // open loop: conn connections/s, rr transactions/s (0: closed loop)
    // idle
    std::uint64_t idle_conns = 5000;
    std::uint64_t reply = 64;
    double settle = 1.0;
    double hold = 0.5;
};

enum class Phase { connecting, sending, receiving, wait_eof, streaming, established, releasing };

struct Conn {
    int fd = -1;
    std::uint32_t generation = 0;
    Phase phase = Phase::connecting;
    std::uint64_t started = 0;     // connect() call
    std::uint64_t op_started = 0;  // rr: this ping's first byte sent
    std::uint64_t deadline = 0;    // 0: none
    std::size_t hello_sent = 0;
    std::size_t out_sent = 0;
    std::size_t in_got = 0;
    bool opening = false;  // idle: counted in opening_ until established or closed
    bool first_byte = false;  // conn: the first echo byte arrived
    bool in_flight = false;   // rr: a ping is out (op_started set)
    bool parked = false;      // rr --rate: waiting in idle_ for a scheduled transaction
};

struct Totals {
    std::uint64_t completed = 0;  // conn: connections done; rr: transactions
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
};

struct Snapshot {
    std::uint64_t at = 0;
    Totals totals;
    double proxy_cpu = 0;
    double proxy_system_cpu = 0;  // of proxy_cpu, the part in the kernel (stime)
    int proxy_processes = 0;  // with --cpu-tree
    double aux_cpu = 0;
    double self_cpu = 0;
    perf::CpuTimes cpus;
};

constexpr std::size_t io_size = 256 * 1024;

class Loadgen {
public:
    explicit Loadgen(Options options) : options_(std::move(options)) {
        switch (options_.workload) {
            case Workload::conn:
                if (options_.concurrency == 0) options_.concurrency = 32;
                if (options_.size == 0) options_.size = 1024;
                break;
            case Workload::rr:
                if (options_.concurrency == 0) options_.concurrency = 16;
                if (options_.size == 0) options_.size = 64;
                break;
            case Workload::bulk:
                if (options_.concurrency == 0) options_.concurrency = 4;
                break;
            case Workload::idle:
                if (options_.concurrency == 0) options_.concurrency = 200;  // connects in flight
                break;
        }
        if (options_.mem_pids.empty()) options_.mem_pids = options_.cpu_pids;
        if (options_.rate > 0) {
            if (options_.workload != Workload::conn && options_.workload != Workload::rr)
                perf::die("--rate applies to conn and rr only");
            interval_ns_ = std::max(1.0, 1e9 / options_.rate);
        }
        payload_.resize(std::max<std::size_t>(options_.size, 1));
        for (std::size_t i = 0; i < payload_.size(); ++i) payload_[i] = static_cast<std::uint8_t>('a' + i % 26);
        scratch_ = std::make_unique<std::uint8_t[]>(io_size);
        source_ = std::make_unique<std::uint8_t[]>(io_size);
        std::memset(source_.get(), 'C', io_size);
        const long length = perf::hello_records_length(options_.hello.data(), options_.hello.size());
        if (length <= 0 || static_cast<std::size_t>(length) != options_.hello.size())
            perf::die("--hello file is not exactly one complete TLS ClientHello");
    }

    int run() {
        ::signal(SIGPIPE, SIG_IGN);
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) perf::die("epoll_create1 failed");
        if (options_.workload == Workload::idle) run_idle();
        else run_timed();
        print_result();
        return aborted_ ? 1 : 0;
    }

private:
    // ---- Connections ---------------------------------------------------------------------------

    Conn* start_conn() {
        const std::uint64_t now = perf::now_ns();
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error(errno == EMFILE || errno == ENFILE ? "socket_emfile" : "socket_error", now);
            return nullptr;
        }
        ++started_;
        if (in_window(now)) ++window_started_;
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl(ntohl(options_.source_base) + next_source_++ % options_.source_count);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
            ::close(fd);
            error("bind_error", now);
            return nullptr;
        }
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&options_.target), sizeof options_.target) != 0 &&
            errno != EINPROGRESS) {
            const int code = errno;
            ::close(fd);
            error(code == ECONNREFUSED ? "connect_refused" : code == EADDRNOTAVAIL ? "connect_no_port" : "connect_error", now);
            return nullptr;
        }
        if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(static_cast<std::size_t>(fd) + 1024);
        Conn& conn = conns_[static_cast<std::size_t>(fd)];
        const std::uint32_t generation = conn.generation + 1;
        conn = Conn{};
        conn.fd = fd;
        conn.generation = generation;
        conn.started = now;
        conn.deadline = now + timeout_ns();
        ++active_;
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.u64 = tag_of(conn);
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) perf::die("epoll_ctl ADD failed");
        return &conn;
    }

    static std::uint64_t tag_of(const Conn& conn) {
        return (std::uint64_t{conn.generation} << 32) | static_cast<std::uint32_t>(conn.fd);
    }

    Conn* lookup(std::uint64_t tag) {
        const std::size_t fd = static_cast<std::uint32_t>(tag);
        if (fd >= conns_.size()) return nullptr;
        Conn& conn = conns_[fd];
        if (conn.fd < 0 || conn.generation != static_cast<std::uint32_t>(tag >> 32)) return nullptr;
        return &conn;
    }

    // reset: close with RST (SO_LINGER 0) so that no TIME_WAIT stays on our side.
    void close_conn(Conn& conn, bool reset) {
        if (reset) {
            const linger option{1, 0};
            ::setsockopt(conn.fd, SOL_SOCKET, SO_LINGER, &option, sizeof option);
        }
        if (conn.phase == Phase::established) --established_alive_;
        if (conn.opening) --opening_;
        ::close(conn.fd);
        conn.fd = -1;
        --active_;
    }

    void fail(Conn& conn, const char* reason) {
        error(reason, conn.started);
        close_conn(conn, true);
    }

    // started: when the connection was begun (0: unknown), to count the outcome of the window's
    // connections apart (open-loop conn).
    void error(const std::string& reason, std::uint64_t started = 0) {
        ++errors_[reason];
        if (in_window(started)) ++window_errors_[reason];
        if (++error_count_ >= options_.max_errors) aborted_ = true;
    }

    bool in_window(std::uint64_t at) const { return at >= window_begin_ && at < window_end_; }

    void rearm(Conn& conn) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.u64 = tag_of(conn);
        ::epoll_ctl(epoll_, EPOLL_CTL_MOD, conn.fd, &event);
    }

    std::uint64_t timeout_ns() const { return static_cast<std::uint64_t>(options_.timeout * 1e9); }

    const char* recv_error_name(int code) {
        if (code == ECONNRESET) return "reset";
        if (code == ETIMEDOUT) return "timeout_kernel";
        return "recv_error";
    }

    // ---- One connection's progress (runs until it would block) -------------------------------

    void service(std::uint64_t tag, std::uint32_t events) {
        Conn* found = lookup(tag);
        if (found == nullptr) return;
        Conn& conn = *found;
        if (conn.phase == Phase::connecting) {
            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            int code = 0;
            socklen_t length = sizeof code;
            ::getsockopt(conn.fd, SOL_SOCKET, SO_ERROR, &code, &length);
            if (code != 0) return fail(conn, code == ECONNREFUSED ? "connect_refused" : "connect_error");
            conn.phase = Phase::sending;
        }
        if (conn.phase == Phase::sending) {
            while (conn.hello_sent < options_.hello.size()) {
                const ssize_t sent = ::send(conn.fd, options_.hello.data() + conn.hello_sent,
                                            options_.hello.size() - conn.hello_sent, MSG_NOSIGNAL);
                if (sent < 0 && errno == EINTR) continue;
                if (sent < 0 && errno == EAGAIN) return;
                if (sent < 0) return fail(conn, errno == ECONNRESET || errno == EPIPE ? "reset" : "send_error");
                conn.hello_sent += static_cast<std::size_t>(sent);
            }
            conn.phase = options_.workload == Workload::bulk ? Phase::streaming : Phase::receiving;
        }
        switch (options_.workload) {
            case Workload::conn: return service_conn(conn);
            case Workload::rr: return service_rr(conn);
            case Workload::bulk: return service_bulk(conn);
            case Workload::idle: return service_idle(conn);
        }
    }

    void service_conn(Conn& conn) {
        while (conn.out_sent < payload_.size()) {
            const ssize_t sent = ::send(conn.fd, payload_.data() + conn.out_sent, payload_.size() - conn.out_sent, MSG_NOSIGNAL);
            if (sent < 0 && errno == EINTR) continue;
            if (sent < 0 && errno == EAGAIN) return;
            if (sent < 0) return fail(conn, errno == ECONNRESET || errno == EPIPE ? "reset" : "send_error");
            conn.out_sent += static_cast<std::size_t>(sent);
        }
        for (int round = 0; round < 64; ++round) {
            const ssize_t got = ::recv(conn.fd, scratch_.get(), io_size, 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                return fail(conn, recv_error_name(errno));
            }
            if (got == 0) {
                if (conn.in_got < payload_.size()) return fail(conn, "early_eof");
                return complete(conn);
            }
            const std::size_t count = static_cast<std::size_t>(got);
            if (!conn.first_byte) {
                conn.first_byte = true;
                if (in_window(conn.started)) first_byte_.record(perf::now_ns() - conn.started);
            }
            if (conn.in_got + count > payload_.size()) return fail(conn, "extra_data");
            if (std::memcmp(scratch_.get(), payload_.data() + conn.in_got, count) != 0) return fail(conn, "bad_data");
            conn.in_got += count;
            if (conn.in_got == payload_.size()) conn.phase = Phase::wait_eof;
        }
        rearm(conn);
    }

    void complete(Conn& conn) {
        const std::uint64_t now = perf::now_ns();
        ++totals_.completed;
        if (in_window(conn.started)) ++window_completed_;
        if (measuring_) histogram_.record(now - conn.started);
        close_conn(conn, false);  // after the server's FIN: no TIME_WAIT here
    }

    void service_rr(Conn& conn) {
        for (int round = 0; round < 256; ++round) {
            if (conn.out_sent < payload_.size()) {
                if (!conn.in_flight) {
                    const std::uint64_t now = perf::now_ns();
                    if (options_.rate > 0) {
                        if (pending_.empty()) {  // nothing due: wait for refill() to hand one over
                            if (!conn.parked) idle_.push_back(tag_of(conn));
                            conn.parked = true;
                            return;
                        }
                        conn.op_started = pending_.front();  // its scheduled time, maybe past
                        pending_.pop_front();
                        conn.parked = false;
                    } else {
                        conn.op_started = now;
                    }
                    conn.in_flight = true;
                    conn.deadline = now + timeout_ns();
                }
                const ssize_t sent = ::send(conn.fd, payload_.data() + conn.out_sent, payload_.size() - conn.out_sent, MSG_NOSIGNAL);
                if (sent < 0 && errno == EINTR) continue;
                if (sent < 0 && errno == EAGAIN) return;
                if (sent < 0) return fail(conn, errno == ECONNRESET || errno == EPIPE ? "reset" : "send_error");
                conn.out_sent += static_cast<std::size_t>(sent);
                continue;
            }
            const ssize_t got = ::recv(conn.fd, scratch_.get(), payload_.size() - conn.in_got, 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                return fail(conn, recv_error_name(errno));
            }
            if (got == 0) return fail(conn, "early_eof");
            const std::size_t count = static_cast<std::size_t>(got);
            if (std::memcmp(scratch_.get(), payload_.data() + conn.in_got, count) != 0) return fail(conn, "bad_data");
            conn.in_got += count;
            if (conn.in_got < payload_.size()) continue;
            ++totals_.completed;
            if (measuring_) histogram_.record(perf::now_ns() - conn.op_started);
            conn.out_sent = 0;
            conn.in_got = 0;
            conn.deadline = 0;
            conn.in_flight = false;
        }
        rearm(conn);
    }

    void service_bulk(Conn& conn) {
        conn.deadline = 0;  // streaming: no step deadline
        bool write_blocked = options_.direction == Direction::down;
        bool read_blocked = false;
        for (int round = 0; round < 64 && !(write_blocked && read_blocked); ++round) {
            if (!write_blocked) {
                const ssize_t sent = ::send(conn.fd, source_.get(), io_size, MSG_NOSIGNAL);
                if (sent > 0) totals_.bytes_out += static_cast<std::uint64_t>(sent);
                else if (sent < 0 && errno == EAGAIN) write_blocked = true;
                else if (sent < 0 && errno != EINTR) return fail(conn, errno == ECONNRESET || errno == EPIPE ? "reset" : "send_error");
            }
            if (!read_blocked) {
                const ssize_t got = ::recv(conn.fd, scratch_.get(), io_size, 0);
                if (got > 0) totals_.bytes_in += static_cast<std::uint64_t>(got);
                else if (got == 0) return fail(conn, "early_eof");
                else if (errno == EAGAIN) read_blocked = true;
                else if (errno != EINTR) return fail(conn, recv_error_name(errno));
            }
        }
        if (!(write_blocked && read_blocked)) rearm(conn);
    }

    void service_idle(Conn& conn) {
        for (int round = 0; round < 64; ++round) {
            const ssize_t got = ::recv(conn.fd, scratch_.get(), io_size, 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                return fail(conn, recv_error_name(errno));
            }
            if (got == 0) {
                if (conn.phase == Phase::releasing) return complete(conn);
                return fail(conn, conn.phase == Phase::established ? "dropped_while_idle" : "early_eof");
            }
            const std::size_t count = static_cast<std::size_t>(got);
            if (conn.phase != Phase::receiving || conn.in_got + count > options_.reply) return fail(conn, "extra_data");
            conn.in_got += count;
            if (conn.in_got == options_.reply) {
                conn.phase = Phase::established;
                conn.deadline = 0;
                conn.opening = false;
                --opening_;
                ++established_;
                ++established_alive_;
            }
        }
        rearm(conn);
    }

    // ---- Event loop --------------------------------------------------------------------------

    // Runs events until `done()` or the time `until`. `refill` starts connections as needed (and,
    // open loop, sets wake_at_ to the next scheduled arrival: the wait is in nanoseconds for it).
    void loop_until(std::uint64_t until, const std::function<bool()>& done, const std::function<void()>& refill) {
        std::array<epoll_event, 512> events{};
        for (;;) {
            wake_at_ = 0;
            if (refill) refill();
            const std::uint64_t now = perf::now_ns();
            if (done() || now >= until || aborted_) return;
            std::uint64_t wait = std::min<std::uint64_t>(until - now, 20'000'000);
            if (wake_at_ != 0) wait = std::min(wait, wake_at_ > now ? wake_at_ - now : 0);
            const timespec timeout{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
            const int count = ::epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &timeout, nullptr);
            if (count < 0 && errno != EINTR) perf::die(std::string("epoll_pwait2: ") + std::strerror(errno));
            for (int i = 0; i < count; ++i)
                service(events[static_cast<std::size_t>(i)].data.u64, events[static_cast<std::size_t>(i)].events);
            check_deadlines();
        }
    }

    void check_deadlines() {
        const std::uint64_t now = perf::now_ns();
        if (now < next_deadline_check_) return;
        next_deadline_check_ = now + 50'000'000;
        for (Conn& conn : conns_) {
            if (conn.fd < 0 || conn.deadline == 0 || now < conn.deadline) continue;
            switch (conn.phase) {
                case Phase::connecting: fail(conn, "timeout_connect"); break;
                case Phase::sending: fail(conn, "timeout_send_hello"); break;
                case Phase::wait_eof: fail(conn, "timeout_wait_server_close"); break;
                case Phase::releasing: fail(conn, "timeout_release"); break;
                default: fail(conn, "timeout_response"); break;
            }
        }
    }

    void close_all(bool reset) {
        for (Conn& conn : conns_)
            if (conn.fd >= 0) close_conn(conn, reset);
    }

    Snapshot snapshot() {
        Snapshot s;
        s.at = perf::now_ns();
        s.totals = totals_;
        s.proxy_cpu = options_.cpu_tree > 0
                          ? perf::tree_cpu_seconds(options_.cpu_tree, &s.proxy_processes, &s.proxy_system_cpu)
                          : perf::cpu_seconds(options_.cpu_pids, &missing_pids_, &s.proxy_system_cpu);
        s.aux_cpu = perf::cpu_seconds(options_.aux_pids);
        s.self_cpu = perf::cpu_seconds({static_cast<int>(::getpid())});
        s.cpus = perf::cpu_times();
        return s;
    }

    // Open loop (--rate): the arrivals due by now. conn: start a connection each (or count it as
    // skipped over the in-flight cap); rr: queue its scheduled time and hand it to a free
    // connection. Bounded per call; sets wake_at_ to the next arrival.
    void arrivals() {
        const std::uint64_t now = perf::now_ns();
        for (int budget = 100'000; next_arrival_ <= now && budget > 0 && !aborted_; --budget) {
            const std::uint64_t due = next_arrival_;
            // From the origin, not by adding the interval: no drift from rounding.
            next_arrival_ = arrivals_origin_ + static_cast<std::uint64_t>(interval_ns_ * static_cast<double>(++arrival_count_));
            if (options_.workload == Workload::rr) {
                if (pending_.size() < 1'000'000) pending_.push_back(due);
                else if (in_window(due)) ++skipped_;
            } else if (active_ >= options_.concurrency || started_ >= options_.max_conns) {
                if (in_window(due)) ++skipped_;
            } else {
                start_conn();
            }
        }
        while (!pending_.empty() && !idle_.empty()) {
            const std::uint64_t tag = idle_.back();
            idle_.pop_back();
            Conn* conn = lookup(tag);
            if (conn == nullptr || !conn->parked) continue;  // closed, or took a transaction itself
            conn->parked = false;
            service_rr(*conn);
        }
        // No timer when an arrival could not be served anyway: conn at its in-flight cap, rr with
        // no free connection. Waking for every arrival only to skip or queue it would cost the
        // client CPU it shares with the backend; the next event (a connection ending, a round
        // trip done) or the loop's 20 ms tick handles the arrivals due meanwhile.
        const bool capped = options_.workload == Workload::conn ? active_ >= options_.concurrency : idle_.empty();
        wake_at_ = capped ? 0 : next_arrival_;
    }

    // conn, rr, bulk: warm-up, measured window, then drain.
    void run_timed() {
        const std::uint64_t start = perf::now_ns();
        const std::uint64_t window_start = start + static_cast<std::uint64_t>(options_.warmup * 1e9);
        bool filling = true;
        const bool open_loop = options_.rate > 0;
        arrivals_origin_ = next_arrival_ = start;
        auto refill = [&] {
            if (filling && open_loop) arrivals();
            if (open_loop && options_.workload == Workload::conn) return;  // arrivals() starts them
            while (filling && active_ < options_.concurrency && started_ < options_.max_conns && !aborted_)
                if (!start_conn()) break;
        };
        auto never = [] { return false; };
        // conn with --max-conns: the window also ends once every connection allowed has ended.
        auto all_done = [&] {
            return options_.workload == Workload::conn && started_ >= options_.max_conns && active_ == 0;
        };
        loop_until(window_start, never, refill);
        if (options_.baseline > 0) {
            baseline_begin_ = snapshot();
            loop_until(baseline_begin_.at + static_cast<std::uint64_t>(options_.baseline * 1e9), never, refill);
            begin_ = snapshot();
            std::printf("{\"event\": \"window\"}\n");
            std::fflush(stdout);
        } else {
            begin_ = snapshot();
        }
        measuring_ = true;
        window_begin_ = begin_.at;
        window_end_ = begin_.at + static_cast<std::uint64_t>(options_.duration * 1e9);
        loop_until(window_end_, all_done, refill);
        end_ = snapshot();
        measuring_ = false;
        filling = false;
        if (options_.workload == Workload::conn) {
            // Let connections in flight finish (bounded), then reset what is left.
            loop_until(perf::now_ns() + timeout_ns(), [&] { return active_ == 0; }, nullptr);
            leftover_ = active_;
            close_all(true);
        } else {
            leftover_ = 0;
            close_all(false);
        }
    }

    // idle: open --conns, measure memory, release them (server closes first).
    void run_idle() {
        const std::uint64_t start = perf::now_ns();
        mem_base_ = perf::memory_of(options_.mem_pids);
        begin_ = snapshot();
        std::uint64_t requested = 0;
        auto refill = [&] {
            while (requested < options_.idle_conns && opening_ < options_.concurrency && !aborted_) {
                ++requested;
                if (Conn* conn = start_conn()) {
                    conn->opening = true;
                    ++opening_;
                }
            }
        };
        const std::uint64_t open_budget = static_cast<std::uint64_t>((options_.timeout + 30) * 1e9);
        loop_until(start + open_budget, [&] { return requested >= options_.idle_conns && opening_ == 0; }, refill);
        open_seconds_ = static_cast<double>(perf::now_ns() - start) / 1e9;
        end_ = snapshot();  // CPU spent opening them
        loop_until(perf::now_ns() + static_cast<std::uint64_t>(options_.settle * 1e9), [] { return false; }, nullptr);
        mem_loaded_ = perf::memory_of(options_.mem_pids);
        alive_at_measure_ = established_alive_;
        loop_until(perf::now_ns() + static_cast<std::uint64_t>(options_.hold * 1e9), [] { return false; }, nullptr);
        const std::uint8_t byte = 'x';
        const std::uint64_t deadline = perf::now_ns() + timeout_ns();
        for (Conn& conn : conns_) {
            if (conn.fd < 0) continue;
            if (conn.phase != Phase::established) {
                fail(conn, "not_established_at_release");
                continue;
            }
            --established_alive_;
            conn.phase = Phase::releasing;
            conn.deadline = deadline;
            if (::send(conn.fd, &byte, 1, MSG_NOSIGNAL) != 1) fail(conn, "send_error");
        }
        loop_until(deadline + 1'000'000'000, [&] { return active_ == 0; }, nullptr);
        leftover_ = active_;
        close_all(true);
    }

    // ---- Report --------------------------------------------------------------------------------

    void print_result() {
        const double window = static_cast<double>(end_.at - begin_.at) / 1e9;
        const double proxy_cpu = end_.proxy_cpu - begin_.proxy_cpu;
        const std::uint64_t done = end_.totals.completed - begin_.totals.completed;
        const std::uint64_t bytes = (end_.totals.bytes_in - begin_.totals.bytes_in) + (end_.totals.bytes_out - begin_.totals.bytes_out);
        const bool have_proxy = !options_.cpu_pids.empty() || options_.cpu_tree > 0;
        std::string out = "{";
        auto field = [&](const std::string& key, const std::string& value) {
            if (out.size() > 1) out += ", ";
            out += "\"" + key + "\": " + value;
        };
        auto number = [](double value) {
            char text[64];
            std::snprintf(text, sizeof text, "%.6g", value);
            return std::string(text);
        };
        auto integer = [](std::uint64_t value) { return std::to_string(value); };
        const char* names[] = {"conn", "rr", "bulk", "idle"};
        field("label", "\"" + options_.label + "\"");
        field("workload", std::string("\"") + names[static_cast<int>(options_.workload)] + "\"");
        field("concurrency", integer(options_.concurrency));
        field("window_s", number(window));
        field("started", integer(started_));
        field("aborted", aborted_ ? "true" : "false");
        field("leftover", integer(leftover_));
        if (have_proxy) {
            field("proxy_cpu_s", number(proxy_cpu));
            field("proxy_cpu_util", number(window > 0 ? proxy_cpu / window : 0));
            // The kernel's part: system calls and the TCP work behind them (on loopback a send also
            // runs the receiver's protocol processing). What a proxy's own code costs is the rest.
            const double system_cpu = end_.proxy_system_cpu - begin_.proxy_system_cpu;
            field("proxy_system_cpu_s", number(system_cpu));
            field("proxy_system_share", number(proxy_cpu > 0 ? system_cpu / proxy_cpu : 0));
            field("proxy_pids_missing", integer(static_cast<std::uint64_t>(missing_pids_)));
        }
        if (options_.cpu_tree > 0) {
            field("proxy_processes_begin", integer(static_cast<std::uint64_t>(begin_.proxy_processes)));
            field("proxy_processes_end", integer(static_cast<std::uint64_t>(end_.proxy_processes)));
        }
        if (options_.baseline > 0 && baseline_begin_.at > 0) {
            const double base_window = static_cast<double>(begin_.at - baseline_begin_.at) / 1e9;
            const std::uint64_t base_done = begin_.totals.completed - baseline_begin_.totals.completed;
            field("baseline_window_s", number(base_window));
            field("baseline_completed", integer(base_done));
            field("baseline_per_s", number(base_window > 0 ? static_cast<double>(base_done) / base_window : 0));
            if (have_proxy) field("baseline_proxy_cpu_s", number(begin_.proxy_cpu - baseline_begin_.proxy_cpu));
        }
        field("backend_cpu_s", number(end_.aux_cpu - begin_.aux_cpu));
        field("loadgen_cpu_s", number(end_.self_cpu - begin_.self_cpu));
        std::string busy = "[";
        for (std::size_t cpu = 0; cpu < end_.cpus.busy.size() && cpu < begin_.cpus.busy.size(); ++cpu) {
            const double total = static_cast<double>(end_.cpus.total[cpu] - begin_.cpus.total[cpu]);
            const double used = static_cast<double>(end_.cpus.busy[cpu] - begin_.cpus.busy[cpu]);
            busy += (cpu > 0 ? ", " : "") + number(total > 0 ? used / total : 0);
        }
        field("cpu_busy", busy + "]");  // per CPU, all processes, during the window
        // Machine-wide busy CPU (all CPUs, all modes but idle and iowait) over the same window:
        // perf/run subtracts direct's from a proxy's, per unit of work, for the marginal cost.
        const double machine_cpu = perf::ticks_to_seconds(end_.cpus.machine_busy - begin_.cpus.machine_busy);
        field("machine_cpu_s", number(machine_cpu));
        field("machine_cpu_util", number(window > 0 ? machine_cpu / window : 0));  // in cores
        switch (options_.workload) {
            case Workload::conn:
                field("completed", integer(done));
                field("completed_total", integer(totals_.completed));  // warm-up and drain included
                field("conn_per_s", number(window > 0 ? static_cast<double>(done) / window : 0));
                field("lat_p50_us", number(histogram_.quantile(0.50) / 1e3));
                field("lat_p99_us", number(histogram_.quantile(0.99) / 1e3));
                field("lat_p999_us", number(histogram_.quantile(0.999) / 1e3));
                if (options_.rate > 0) {
                    // Connections started in the window and what became of each (counted until the
                    // drain ended: completed + errors + leftover = started).
                    field("rate", number(options_.rate));
                    field("window_started", integer(window_started_));
                    field("offered_per_s", number(window > 0 ? static_cast<double>(window_started_ + skipped_) / window : 0));
                    field("started_per_s", number(window > 0 ? static_cast<double>(window_started_) / window : 0));
                    field("skipped", integer(skipped_));
                    field("window_completed", integer(window_completed_));
                    field("first_byte_count", integer(first_byte_.count()));
                    field("first_byte_p50_us", number(first_byte_.quantile(0.50) / 1e3));
                    field("first_byte_p99_us", number(first_byte_.quantile(0.99) / 1e3));
                    field("first_byte_p999_us", number(first_byte_.quantile(0.999) / 1e3));
                    std::string window_errors = "{";
                    for (const auto& [reason, count] : window_errors_) {
                        if (window_errors.size() > 1) window_errors += ", ";
                        window_errors += "\"" + reason + "\": " + std::to_string(count);
                    }
                    field("window_errors", window_errors + "}");
                }
                if (have_proxy && done > 0) field("cpu_s_per_10k_conn", number(proxy_cpu / static_cast<double>(done) * 1e4));
                if (done > 0) field("machine_cpu_s_per_10k_conn", number(machine_cpu / static_cast<double>(done) * 1e4));
                break;
            case Workload::rr:
                field("transactions", integer(done));
                field("tx_per_s", number(window > 0 ? static_cast<double>(done) / window : 0));
                field("rtt_p50_us", number(histogram_.quantile(0.50) / 1e3));
                field("rtt_p99_us", number(histogram_.quantile(0.99) / 1e3));
                field("rtt_p999_us", number(histogram_.quantile(0.999) / 1e3));
                if (options_.rate > 0) {  // round trips count from each transaction's scheduled time
                    field("rate", number(options_.rate));
                    field("skipped", integer(skipped_));
                    field("pending_end", integer(pending_.size()));
                }
                if (have_proxy && done > 0) field("cpu_us_per_tx", number(proxy_cpu / static_cast<double>(done) * 1e6));
                if (done > 0) field("machine_cpu_us_per_tx", number(machine_cpu / static_cast<double>(done) * 1e6));
                break;
            case Workload::bulk:
                field("bytes", integer(bytes));
                field("gbit_s", number(window > 0 ? static_cast<double>(bytes) * 8 / window / 1e9 : 0));
                if (have_proxy && bytes > 0)
                    field("cpu_s_per_gib", number(proxy_cpu / (static_cast<double>(bytes) / (1024.0 * 1024 * 1024))));
                if (bytes > 0)
                    field("machine_cpu_s_per_gib", number(machine_cpu / (static_cast<double>(bytes) / (1024.0 * 1024 * 1024))));
                break;
            case Workload::idle: {
                field("requested", integer(options_.idle_conns));
                field("established", integer(established_));
                field("alive_at_measure", integer(alive_at_measure_));
                field("open_s", number(open_seconds_));
                field("released", integer(totals_.completed));
                if (have_proxy && alive_at_measure_ > 0 && mem_loaded_.rss_kib > 0) {
                    field("rss_base_kib", integer(mem_base_.rss_kib));
                    field("pss_base_kib", integer(mem_base_.pss_kib));
                    field("rss_kib", integer(mem_loaded_.rss_kib));
                    field("pss_kib", integer(mem_loaded_.pss_kib));
                    const double alive = static_cast<double>(alive_at_measure_);
                    field("rss_per_conn_kib", number((static_cast<double>(mem_loaded_.rss_kib) - static_cast<double>(mem_base_.rss_kib)) / alive));
                    field("pss_per_conn_kib", number((static_cast<double>(mem_loaded_.pss_kib) - static_cast<double>(mem_base_.pss_kib)) / alive));
                    if (established_ > 0) field("cpu_us_per_open", number(proxy_cpu / static_cast<double>(established_) * 1e6));
                }
                break;
            }
        }
        std::string errors = "{";
        for (const auto& [reason, count] : errors_) {
            if (errors.size() > 1) errors += ", ";
            errors += "\"" + reason + "\": " + std::to_string(count);
        }
        field("errors", errors + "}");
        field("errors_total", integer(error_count_));
        std::printf("%s}\n", out.c_str());
        std::fflush(stdout);
    }

    Options options_;
    int epoll_ = -1;
    std::vector<Conn> conns_;  // indexed by fd
    std::uint64_t active_ = 0;
    std::uint64_t started_ = 0;
    std::uint32_t next_source_ = 0;
    std::vector<std::uint8_t> payload_;
    std::unique_ptr<std::uint8_t[]> scratch_;
    std::unique_ptr<std::uint8_t[]> source_;
    Totals totals_;
    perf::Histogram histogram_;
    bool measuring_ = false;
    bool aborted_ = false;
    std::map<std::string, std::uint64_t> errors_;
    std::uint64_t error_count_ = 0;
    std::uint64_t next_deadline_check_ = 0;
    std::uint64_t leftover_ = 0;
    int missing_pids_ = 0;
    // open loop (--rate)
    double interval_ns_ = 0;
    std::uint64_t arrivals_origin_ = 0;
    std::uint64_t next_arrival_ = 0;
    std::uint64_t arrival_count_ = 0;
    std::uint64_t wake_at_ = 0;  // 0: no timer wanted
    std::uint64_t skipped_ = 0;  // arrivals in the window not started (in-flight cap) or dropped
    std::deque<std::uint64_t> pending_;  // rr: scheduled times of transactions not yet sent
    std::vector<std::uint64_t> idle_;    // rr: tags of connections waiting for one
    std::uint64_t window_begin_ = 0;     // the measured window, for connections' start times
    std::uint64_t window_end_ = 0;
    std::uint64_t window_started_ = 0;
    std::uint64_t window_completed_ = 0;
    std::map<std::string, std::uint64_t> window_errors_;
    perf::Histogram first_byte_;  // conn --rate: connect() to the first echo byte
    Snapshot baseline_begin_;
    Snapshot begin_;
    Snapshot end_;
    // idle
    std::uint64_t opening_ = 0;
    std::uint64_t established_ = 0;
    std::uint64_t established_alive_ = 0;
    std::uint64_t alive_at_measure_ = 0;
    double open_seconds_ = 0;
    perf::Memory mem_base_;
    perf::Memory mem_loaded_;
};

[[noreturn]] void usage_and_exit(const std::string& problem) {
    perf::die("passgate-loadgen: " + problem +
              "\nusage: passgate-loadgen --connect IP:PORT --hello FILE --workload conn|rr|bulk|idle\n"
              "         [--label TEXT] [--concurrency N] [--size BYTES] [--direction down|up|both]\n"
              "         [--warmup S] [--duration S] [--timeout S] [--sources 127.0.0.2/64]\n"
              "         [--cpu-pids P,P | --cpu-tree PID] [--aux-pids P,P] [--mem-pids P,P] [--baseline S]\n"
              "         [--max-conns N] [--max-errors N] [--rate PER_S]\n"
              "         [--conns N] [--reply BYTES] [--settle S] [--hold S]");
}

Options parse_options(int argc, char** argv) {
    Options options;
    bool have_target = false;
    for (int i = 1; i < argc; ++i) {
        const std::string argument = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_and_exit(argument + " needs a value");
            return argv[++i];
        };
        if (argument == "--connect") {
            options.target = perf::parse_ipv4(value());
            have_target = true;
        } else if (argument == "--hello") {
            options.hello = perf::read_binary_file(value());
        } else if (argument == "--workload") {
            const std::string name = value();
            if (name == "conn") options.workload = Workload::conn;
            else if (name == "rr") options.workload = Workload::rr;
            else if (name == "bulk") options.workload = Workload::bulk;
            else if (name == "idle") options.workload = Workload::idle;
            else usage_and_exit("unknown --workload " + name);
        } else if (argument == "--direction") {
            const std::string name = value();
            if (name == "down") options.direction = Direction::down;
            else if (name == "up") options.direction = Direction::up;
            else if (name == "both") options.direction = Direction::both;
            else usage_and_exit("unknown --direction " + name);
        } else if (argument == "--label") {
            options.label = value();
            for (char& c : options.label)
                if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
        } else if (argument == "--concurrency") {
            options.concurrency = perf::parse_u64(value(), "--concurrency");
        } else if (argument == "--size") {
            options.size = std::min<std::uint64_t>(perf::parse_u64(value(), "--size"), 16 * 1024 * 1024);
        } else if (argument == "--warmup") {
            options.warmup = perf::parse_double(value(), "--warmup");
        } else if (argument == "--duration") {
            options.duration = perf::parse_double(value(), "--duration");
        } else if (argument == "--timeout") {
            options.timeout = perf::parse_double(value(), "--timeout");
        } else if (argument == "--sources") {
            const std::string text = value();
            const std::size_t slash = text.find('/');
            const sockaddr_in base = perf::parse_ipv4(text.substr(0, slash), false);
            options.source_base = base.sin_addr.s_addr;
            if (slash != std::string::npos)
                options.source_count = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(perf::parse_u64(text.substr(slash + 1), "--sources count"), 1, 250));
        } else if (argument == "--cpu-pids") {
            options.cpu_pids = perf::parse_pid_list(value());
        } else if (argument == "--cpu-tree") {
            options.cpu_tree = static_cast<int>(std::clamp<std::uint64_t>(perf::parse_u64(value(), "--cpu-tree"), 1, 1u << 30));
        } else if (argument == "--baseline") {
            options.baseline = perf::parse_double(value(), "--baseline");
        } else if (argument == "--aux-pids") {
            options.aux_pids = perf::parse_pid_list(value());
        } else if (argument == "--mem-pids") {
            options.mem_pids = perf::parse_pid_list(value());
        } else if (argument == "--max-conns") {
            options.max_conns = perf::parse_u64(value(), "--max-conns");
        } else if (argument == "--max-errors") {
            options.max_errors = std::max<std::uint64_t>(1, perf::parse_u64(value(), "--max-errors"));
        } else if (argument == "--rate") {
            options.rate = std::min(perf::parse_double(value(), "--rate"), 10'000'000.0);
        } else if (argument == "--conns") {
            options.idle_conns = std::min<std::uint64_t>(perf::parse_u64(value(), "--conns"), 19000);
        } else if (argument == "--reply") {
            options.reply = std::clamp<std::uint64_t>(perf::parse_u64(value(), "--reply"), 1, 16384);
        } else if (argument == "--settle") {
            options.settle = perf::parse_double(value(), "--settle");
        } else if (argument == "--hold") {
            options.hold = perf::parse_double(value(), "--hold");
        } else {
            usage_and_exit("unknown argument " + argument);
        }
    }
    if (!have_target) usage_and_exit("--connect IP:PORT is required");
    if (options.hello.empty()) usage_and_exit("--hello FILE is required");
    if (options.duration > 3600 || options.warmup > 600 || options.timeout > 600 || options.baseline > 600 || options.settle > 600 || options.hold > 600)
        usage_and_exit("durations are capped (duration 3600 s, others 600 s)");
    return options;
}

}  // namespace

int main(int argc, char** argv) {
    auto loadgen = std::make_unique<Loadgen>(parse_options(argc, argv));
    return loadgen->run();
}
