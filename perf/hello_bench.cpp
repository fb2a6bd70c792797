// passgate-hello-bench: the cost of reading a ClientHello cut into tiny TLS records (see
// perf/HELLO.md; perf/hello runs both modes and writes the figures).
//
//   passgate-hello-bench parser [--size BYTES]... [--old]
//       The parser alone, in this process: a hello of BYTES of 1-byte TLS records (6 record
//       bytes per handshake byte) fed one record per call, as a connection gets it when the
//       client sends one record per segment. Reported per size: CPU time and bytes_examined
//       with the record limit lifted (the walk's own cost over the whole size), and with the
//       record limit (64) as passgate applies it. --old also times the former way, a one-shot
//       parse of the whole buffer at each arrival (quadratic; 64 KiB only unless asked).
//
//   passgate-hello-bench live --port PORT --pid PID [--size BYTES] [--connections N]
//                             [--records-of BYTES] [--segment-bytes BYTES] [--gap-us US]
//       A running passgate (process PID, listening on 127.0.0.1:PORT): N connections one after
//       the other, each sending a hello of BYTES (default 65536) framed into records of
//       --records-of bytes (default 1), one record per send(2) (or --segment-bytes per send,
//       whatever the records) with TCP_NODELAY and --gap-us between sends (default 50, so that
//       each arrives in its own segment and wake-up), until passgate closes the connection or
//       the hello is sent. Reported: passgate's CPU time per
//       connection (sum of its threads' /proc/PID/task/*/schedstat run time, nanoseconds), the
//       records sent per connection, and how the connections ended.
//
// Output: one JSON object per measurement on stdout.

#include "perf/common.h"
#include "src/wire/client_hello.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

void put_u16(Bytes& out, std::size_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

// A ClientHello handshake message whose records, framed in `record_size`-byte records, take
// about `record_bytes` bytes. Up to the largest valid hello (its extensions block is a 16-bit
// vector) it is valid: SNI bench.example and a padding extension. Beyond that no valid hello
// exists; the body is then zeros (the verdict is `malformed`, once, at the end: the walk over
// the records, which is what grows with the size, is the same).
Bytes hello_message(std::size_t record_bytes, std::size_t record_size) {
    const std::size_t message_size = record_bytes * record_size / (record_size + 5);
    const std::string sni = "bench.example";
    // legacy_version 0x0303 and 32 bytes of random. (Made in one piece: g++ 12 -O3 warns,
    // wrongly, about an insert after a 2-byte initializer list.)
    Bytes body(2 + 32, 0x5a);
    body[0] = 0x03;
    body[1] = 0x03;
    body.push_back(0);
    body.insert(body.end(), {0x00, 0x02, 0x13, 0x01, 0x01, 0x00});
    const std::size_t fixed = 4 + body.size() + 2 + (4 + 5 + sni.size()) + 4;
    if (message_size < fixed || message_size - fixed > 0xffff - (4 + 5 + sni.size()) - 4) {
        Bytes message = {0x01, static_cast<std::uint8_t>((message_size - 4) >> 16)};
        put_u16(message, (message_size - 4) & 0xffff);
        message.resize(message_size, 0);
        return message;
    }
    const std::size_t padding = message_size - fixed;
    Bytes extensions;
    put_u16(extensions, 0);
    put_u16(extensions, sni.size() + 5);
    put_u16(extensions, sni.size() + 3);
    extensions.push_back(0);
    put_u16(extensions, sni.size());
    extensions.insert(extensions.end(), sni.begin(), sni.end());
    put_u16(extensions, 21);  // padding
    put_u16(extensions, padding);
    extensions.insert(extensions.end(), padding, 0);
    put_u16(body, extensions.size());
    body.insert(body.end(), extensions.begin(), extensions.end());
    Bytes message = {0x01, static_cast<std::uint8_t>(body.size() >> 16)};
    put_u16(message, body.size() & 0xffff);
    message.insert(message.end(), body.begin(), body.end());
    return message;
}

// `message` in records of `record_size` bytes; `ends` gets each record's end offset.
Bytes frame(const Bytes& message, std::size_t record_size, std::vector<std::size_t>& ends) {
    Bytes records;
    records.reserve(message.size() / record_size * (record_size + 5) + record_size + 5);
    for (std::size_t at = 0; at < message.size(); at += record_size) {
        const std::size_t size = std::min(record_size, message.size() - at);
        records.insert(records.end(), {0x16, 0x03, 0x01});
        put_u16(records, size);
        records.insert(records.end(), message.begin() + static_cast<std::ptrdiff_t>(at),
                       message.begin() + static_cast<std::ptrdiff_t>(at + size));
        ends.push_back(records.size());
    }
    return records;
}

double thread_cpu_seconds() {
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

const char* status_name(const passgate::HelloParse& result) {
    if (result.status == passgate::HelloParse::Status::complete) return "complete";
    if (result.status == passgate::HelloParse::Status::need_more) return "need_more";
    return passgate::hello_error_name(result.error).data();
}

struct ParserRun {
    double cpu_s = 0;
    std::uint64_t bytes_examined = 0;
    std::size_t calls = 0;
    std::string verdict;
};

// One HelloReader fed one record per call, as a connection is.
ParserRun run_incremental(const Bytes& records, const std::vector<std::size_t>& ends,
                          std::size_t max_records) {
    ParserRun run;
    const double start = thread_cpu_seconds();
    passgate::HelloReader reader(max_records);
    passgate::HelloParse result;
    for (const std::size_t end : ends) {
        ++run.calls;
        result = reader.parse(std::span<const std::uint8_t>(records.data(), end), records.size());
        if (result.status != passgate::HelloParse::Status::need_more) break;
    }
    run.cpu_s = thread_cpu_seconds() - start;
    run.bytes_examined = reader.bytes_examined();
    run.verdict = status_name(result);
    return run;
}

// The former way: the whole buffer parsed from byte 0 at each arrival.
ParserRun run_one_shot_each_arrival(const Bytes& records, const std::vector<std::size_t>& ends) {
    ParserRun run;
    const double start = thread_cpu_seconds();
    passgate::HelloParse result;
    for (const std::size_t end : ends) {
        ++run.calls;
        result = passgate::parse_client_hello(std::span<const std::uint8_t>(records.data(), end),
                                              records.size(), static_cast<std::size_t>(-1));
        if (result.status != passgate::HelloParse::Status::need_more) break;
    }
    run.cpu_s = thread_cpu_seconds() - start;
    run.verdict = status_name(result);
    return run;
}

void print_parser(const char* what, std::size_t size, std::size_t records, const ParserRun& run) {
    std::printf("{\"mode\":\"parser\",\"what\":\"%s\",\"record_bytes\":%zu,\"records\":%zu,"
                "\"calls\":%zu,\"cpu_ms\":%.3f,\"bytes_examined\":%llu,\"examined_per_byte\":%.2f,"
                "\"verdict\":\"%s\"}\n",
                what, size, records, run.calls, run.cpu_s * 1e3,
                static_cast<unsigned long long>(run.bytes_examined),
                static_cast<double>(run.bytes_examined) / static_cast<double>(size), run.verdict.c_str());
    std::fflush(stdout);
}

int parser_mode(const std::vector<std::size_t>& sizes, bool old) {
    for (const std::size_t size : sizes) {
        std::vector<std::size_t> ends;
        const Bytes records = frame(hello_message(size, 1), 1, ends);
        print_parser("incremental, no record limit", records.size(), ends.size(),
                     run_incremental(records, ends, static_cast<std::size_t>(-1)));
        print_parser("incremental, record limit 64", records.size(), ends.size(),
                     run_incremental(records, ends, passgate::max_hello_records));
        if (old) print_parser("one-shot at each arrival (before)", records.size(), ends.size(),
                              run_one_shot_each_arrival(records, ends));
    }
    return 0;
}

// ---- live

// Run time of every thread of `pid`, in ns (first field of /proc/PID/task/TID/schedstat).
std::optional<std::uint64_t> process_run_ns(int pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* tasks = ::opendir(dir.c_str());
    if (tasks == nullptr) return std::nullopt;
    std::uint64_t total = 0;
    int count = 0;
    while (const dirent* entry = ::readdir(tasks)) {
        if (entry->d_name[0] == '.') continue;
        std::ifstream in(dir + "/" + entry->d_name + "/schedstat");
        std::uint64_t ns = 0;
        if (in >> ns) total += ns;
        if (++count > 4096) break;
    }
    ::closedir(tasks);
    return total;
}

struct Sent {
    std::size_t records = 0;
    bool closed_by_peer = false;
};

// Sends `records` one record per send, until passgate closes or everything is sent; then waits
// (bounded) for passgate's verdict: a close (refused), or nothing (all sent, hello complete or
// waiting: we close).
Sent send_hello(std::uint16_t port, const Bytes& records, const std::vector<std::size_t>& ends,
                unsigned gap_us) {
    Sent sent;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return sent;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return sent;
    }
    std::size_t at = 0;
    for (const std::size_t end : ends) {
        // A close from passgate shows as readable (EOF or reset) before the next record.
        pollfd readable{fd, POLLIN, 0};
        if (::poll(&readable, 1, 0) > 0) {
            sent.closed_by_peer = true;
            break;
        }
        const ssize_t written = ::send(fd, records.data() + at, end - at, MSG_NOSIGNAL);
        if (written != static_cast<ssize_t>(end - at)) {
            sent.closed_by_peer = true;
            break;
        }
        at = end;
        ++sent.records;
        if (gap_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    }
    if (!sent.closed_by_peer) {
        pollfd readable{fd, POLLIN, 0};
        if (::poll(&readable, 1, 200) > 0) sent.closed_by_peer = true;
    }
    ::close(fd);
    return sent;
}

int live_mode(std::uint16_t port, int pid, std::size_t size, std::size_t connections,
              std::size_t record_size, std::size_t segment_bytes, unsigned gap_us) {
    std::vector<std::size_t> ends;
    const Bytes records = frame(hello_message(size, record_size), record_size, ends);
    const std::size_t records_in_hello = ends.size();
    if (segment_bytes > 0) {
        ends.clear();
        for (std::size_t end = segment_bytes; end < records.size() + segment_bytes; end += segment_bytes)
            ends.push_back(std::min(end, records.size()));
    }
    const auto before = process_run_ns(pid);
    if (!before) {
        std::fprintf(stderr, "cannot read /proc/%d/task/*/schedstat\n", pid);
        return 1;
    }
    std::size_t refused = 0;
    std::size_t sends = 0;
    const std::uint64_t wall_start = perf::now_ns();
    for (std::size_t i = 0; i < connections; ++i) {
        const Sent sent = send_hello(port, records, ends, gap_us);
        sends += sent.records;
        if (sent.closed_by_peer) ++refused;
    }
    const double wall_s = static_cast<double>(perf::now_ns() - wall_start) / 1e9;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // passgate finishes its closes
    const auto after = process_run_ns(pid);
    if (!after) return 1;
    const double cpu_ms = static_cast<double>(*after - *before) / 1e6;
    std::printf("{\"mode\":\"live\",\"hello_record_bytes\":%zu,\"records_of\":%zu,\"records_in_hello\":%zu,"
                "\"sends_in_hello\":%zu,\"connections\":%zu,\"closed_by_passgate\":%zu,"
                "\"sends_per_connection\":%.1f,\"gap_us\":%u,\"passgate_cpu_ms\":%.3f,"
                "\"passgate_cpu_ms_per_connection\":%.4f,\"wall_s\":%.2f}\n",
                records.size(), record_size, records_in_hello, ends.size(), connections, refused,
                static_cast<double>(sends) / static_cast<double>(connections), gap_us, cpu_ms,
                cpu_ms / static_cast<double>(connections), wall_s);
    std::fflush(stdout);
    return 0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: passgate-hello-bench parser [--size BYTES]... [--old]\n"
                 "       passgate-hello-bench live --port PORT --pid PID [--size BYTES] [--connections N]\n"
                 "                                 [--records-of BYTES] [--segment-bytes BYTES] [--gap-us US]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    std::vector<std::size_t> sizes;
    bool old = false;
    std::uint16_t port = 0;
    int pid = 0;
    std::size_t connections = 100;
    std::size_t record_size = 1;
    std::size_t segment_bytes = 0;
    unsigned gap_us = 50;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--old") {
            old = true;
        } else if (arg == "--size" && has_value) {
            sizes.push_back(perf::parse_u64(argv[++i], "--size"));
        } else if (arg == "--port" && has_value) {
            port = static_cast<std::uint16_t>(perf::parse_u64(argv[++i], "--port"));
        } else if (arg == "--pid" && has_value) {
            pid = static_cast<int>(perf::parse_u64(argv[++i], "--pid"));
        } else if (arg == "--connections" && has_value) {
            connections = perf::parse_u64(argv[++i], "--connections");
        } else if (arg == "--records-of" && has_value) {
            record_size = perf::parse_u64(argv[++i], "--records-of");
        } else if (arg == "--segment-bytes" && has_value) {
            segment_bytes = perf::parse_u64(argv[++i], "--segment-bytes");
        } else if (arg == "--gap-us" && has_value) {
            gap_us = static_cast<unsigned>(perf::parse_u64(argv[++i], "--gap-us"));
        } else {
            return usage();
        }
    }
    if (mode == "parser") {
        if (sizes.empty()) sizes = {64 * 1024, 1024 * 1024};
        return parser_mode(sizes, old);
    }
    if (mode == "live") {
        if (port == 0 || pid <= 0 || connections == 0 || connections > 100000 || record_size == 0 ||
            record_size > 16384)
            return usage();
        return live_mode(port, pid, sizes.empty() ? 64 * 1024 : sizes.front(), connections, record_size,
                         segment_bytes, gap_us);
    }
    return usage();
}
