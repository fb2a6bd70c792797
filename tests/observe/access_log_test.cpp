#include "src/observe/access_log.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using passgate::AccessLog;
using passgate::AccessLogFormat;
using passgate::AccessLogOptions;
using passgate::AccessRecord;
using passgate::format_access_line;

namespace {

// 2026-11-27T11:30:05.123456789Z
constexpr timespec example_time{1795779005, 123456789};

AccessRecord completed_record() {
    AccessRecord record;
    record.time = example_time;
    record.worker = 1;
    record.client = "192.0.2.7:51234";
    record.listener = "public";
    record.sni = "api.example.com";
    record.alpn = {"h2", "http/1.1"};
    record.route = "api";
    record.service = "api-v1";
    record.endpoint = "10.0.0.1:8443";
    record.bytes_client_to_backend = 1517;
    record.bytes_backend_to_client = 2048;
    record.duration_ms = 35;
    record.connect_attempts = 1;
    return record;
}

// Quote, space, '=', newline, backslash, UTF-8 bytes; in ALPN also a ',' inside a protocol id,
// control bytes, DEL and a byte that is not UTF-8.
AccessRecord hostile_record() {
    AccessRecord record = completed_record();
    record.sni = "evil\" x=1\n\\\xc3\xa9";
    record.alpn = {"h2", "a,b", "x\"y", "\x01\x7f\xff", "sp ace"};
    return record;
}

// A line's fields as written (still escaped, without quotes); a tiny logfmt reader.
std::map<std::string, std::string> logfmt_fields(const std::string& line) {
    std::map<std::string, std::string> fields;
    std::size_t at = 0;
    while (at < line.size() && line[at] != '\n') {
        const std::size_t equals = line.find('=', at);
        REQUIRE(equals != std::string::npos);
        const std::string key = line.substr(at, equals - at);
        std::size_t end = equals + 1;
        std::string value;
        if (line[end] == '"') {
            ++end;
            while (line[end] != '"') {
                if (line[end] == '\\') value += line[end++];
                value += line[end++];
            }
            ++end;
        } else {
            while (end < line.size() && line[end] != ' ' && line[end] != '\n') value += line[end++];
        }
        fields[key] = value;
        at = end + (end < line.size() && line[end] == ' ' ? 1 : 0);
    }
    return fields;
}

std::string unescape(const std::string& escaped) {
    std::string out;
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        if (escaped[i] != '\\') {
            out += escaped[i];
            continue;
        }
        const char kind = escaped[++i];
        if (kind == 'n')
            out += '\n';
        else if (kind == 'r')
            out += '\r';
        else if (kind == 't')
            out += '\t';
        else if (kind == 'u') {
            out += static_cast<char>(std::stoi(escaped.substr(i + 1, 4), nullptr, 16));
            i += 4;
        } else
            out += kind;
    }
    return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream stream(text);
    while (std::getline(stream, part, separator)) parts.push_back(part);
    return parts;
}

std::string hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        out += digits[static_cast<unsigned char>(c) >> 4];
        out += digits[static_cast<unsigned char>(c) & 0xf];
    }
    return out;
}

struct TempDir {
    TempDir() {
        std::string pattern = "/tmp/passgate-access-log-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string path;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

template <class Predicate>
bool wait_until(Predicate done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace

TEST_CASE("access log: logfmt line of a completed connection", "[access_log]") {
    CHECK(format_access_line(completed_record(), AccessLogFormat::logfmt) ==
          "time=2026-11-27T11:30:05.123Z worker=1 client=192.0.2.7:51234 listener=public "
          "sni=api.example.com alpn=h2,http/1.1 route=api service=api-v1 endpoint=10.0.0.1:8443 "
          "bytes_to_backend=1517 bytes_to_client=2048 duration_ms=35 reason=completed "
          "hello_error=\"\" connect_attempts=1 error=\"\" protocol=tls\n");
}

TEST_CASE("access log: JSON line of a completed connection", "[access_log]") {
    CHECK(format_access_line(completed_record(), AccessLogFormat::json) ==
          R"({"time":"2026-11-27T11:30:05.123Z","worker":1,"client":"192.0.2.7:51234",)"
          R"("listener":"public","sni":"api.example.com","alpn":["h2","http/1.1"],"route":"api",)"
          R"("service":"api-v1","endpoint":"10.0.0.1:8443","bytes_to_backend":1517,)"
          R"("bytes_to_client":2048,"duration_ms":35,"reason":"completed","hello_error":"",)"
          R"("connect_attempts":1,"error":"","protocol":"tls"})"
          "\n");
}

TEST_CASE("access log: rejected and failed connections", "[access_log]") {
    AccessRecord rejected;
    rejected.time = {0, 999999999};
    rejected.client = "[2001:db8::1]:443";
    rejected.listener = "public";
    rejected.bytes_client_to_backend = 5;
    rejected.reason = passgate::CloseReason::hello_rejected;
    rejected.hello_error = passgate::HelloError::not_tls;
    CHECK(
        format_access_line(rejected, AccessLogFormat::logfmt) ==
        "time=1970-01-01T00:00:00.999Z worker=0 client=[2001:db8::1]:443 listener=public sni=\"\" "
        "alpn=\"\" route=\"\" service=\"\" endpoint=\"\" bytes_to_backend=5 bytes_to_client=0 "
        "duration_ms=0 reason=hello_rejected hello_error=not_tls connect_attempts=0 error=\"\" protocol=tls\n");
    CHECK(format_access_line(rejected, AccessLogFormat::json) ==
          R"({"time":"1970-01-01T00:00:00.999Z","worker":0,"client":"[2001:db8::1]:443",)"
          R"("listener":"public","sni":"","alpn":[],"route":"","service":"","endpoint":"",)"
          R"("bytes_to_backend":5,"bytes_to_client":0,"duration_ms":0,"reason":"hello_rejected",)"
          R"("hello_error":"not_tls","connect_attempts":0,"error":"","protocol":"tls"})"
          "\n");

    AccessRecord failed = completed_record();
    failed.reason = passgate::CloseReason::connect_failed;
    failed.connect_attempts = 3;
    failed.error = ECONNREFUSED;
    const auto fields = logfmt_fields(format_access_line(failed, AccessLogFormat::logfmt));
    CHECK(fields.at("reason") == "connect_failed");
    CHECK(fields.at("connect_attempts") == "3");
    CHECK(fields.at("error") == "Connection refused");
    CHECK(format_access_line(failed, AccessLogFormat::json)
              .find(R"("connect_attempts":3,"error":"Connection refused","protocol":"tls"})") != std::string::npos);
}

TEST_CASE("access log: hostile SNI and ALPN are escaped, one line each", "[access_log]") {
    const AccessRecord record = hostile_record();
    const std::string logfmt = format_access_line(record, AccessLogFormat::logfmt);
    const std::string json = format_access_line(record, AccessLogFormat::json);
    CHECK(logfmt.find(R"( sni="evil\" x=1\n\\\u00c3\u00a9" )") != std::string::npos);
    CHECK(logfmt.find(R"( alpn="h2,a\u002cb,x\"y,\u0001\u007f\u00ff,sp ace" )") !=
          std::string::npos);
    CHECK(json.find(R"("sni":"evil\" x=1\n\\\u00c3\u00a9",)") != std::string::npos);
    CHECK(json.find(R"("alpn":["h2","a,b","x\"y","\u0001\u007f\u00ff","sp ace"],)") !=
          std::string::npos);
    for (const std::string& line : {logfmt, json}) {
        CHECK(line.find('\n') == line.size() - 1);
        for (const char c : line) {
            const auto byte = static_cast<unsigned char>(c);
            CHECK(((byte >= 0x20 && byte < 0x7f) || c == '\n'));
        }
    }

    // logfmt reads back: the fields are all there, and the alpn list splits on its commas.
    const auto fields = logfmt_fields(logfmt);
    CHECK(fields.size() == 17);
    CHECK(unescape(fields.at("sni")) == record.sni);
    std::vector<std::string> alpn;
    for (const std::string& part : split(fields.at("alpn"), ',')) alpn.push_back(unescape(part));
    CHECK(alpn == record.alpn);
    CHECK(fields.at("route") == "api");
}

TEST_CASE("access log: JSON lines parse back with python3, bytes intact", "[access_log]") {
    TempDir dir;
    const std::string path = dir.path + "/line.json";
    {
        std::ofstream out(path, std::ios::binary);
        out << format_access_line(hostile_record(), AccessLogFormat::json);
    }
    const std::string script =
        "import json,sys\n"
        "r=json.loads(open(sys.argv[1],'rb').read())\n"
        "print(r['sni'].encode('latin-1').hex())\n"
        "print(' '.join(a.encode('latin-1').hex() for a in r['alpn']))\n"
        "print(r['bytes_to_backend']+r['bytes_to_client'], r['worker'], r['reason'], len(r))\n";
    const std::string script_path = dir.path + "/check.py";
    {
        std::ofstream out(script_path);
        out << script;
    }
    FILE* python = ::popen(("python3 '" + script_path + "' '" + path + "'").c_str(), "r");
    REQUIRE(python != nullptr);
    std::string output;
    char buffer[512];
    while (const std::size_t got = std::fread(buffer, 1, sizeof buffer, python))
        output.append(buffer, got);
    REQUIRE(::pclose(python) == 0);

    const AccessRecord record = hostile_record();
    std::string alpn_hex;
    for (const std::string& protocol : record.alpn)
        alpn_hex += (alpn_hex.empty() ? "" : " ") + hex(protocol);
    CHECK(output == hex(record.sni) + "\n" + alpn_hex + "\n3565 1 completed 17\n");
}

TEST_CASE("access log: make_access_record copies what the line needs", "[access_log]") {
    const std::string route = "api";
    const std::string service = "api-v1";
    passgate::ConnectionSummary summary;
    summary.route = &route;
    summary.service = &service;
    summary.endpoint = "10.0.0.1:8443";
    summary.client = "192.0.2.7:51234";
    summary.sni = "api.example.com";
    summary.alpn = {"h2", "http/1.1"};
    summary.bytes_client_to_backend = 1517;
    summary.bytes_backend_to_client = 2048;
    summary.duration_ms = 35;
    summary.connect_attempts = 1;
    const AccessRecord record = passgate::make_access_record(summary, "public", 1, example_time);
    CHECK(format_access_line(record, AccessLogFormat::logfmt) ==
          format_access_line(completed_record(), AccessLogFormat::logfmt));

    summary.route = nullptr;
    summary.service = nullptr;
    const AccessRecord unrouted = passgate::make_access_record(summary, "public", 1, example_time);
    CHECK(unrouted.route.empty());
    CHECK(unrouted.service.empty());
}

TEST_CASE("access log: two workers x 10000 lines, each exactly once and in order", "[access_log]") {
    TempDir dir;
    const std::string path = dir.path + "/access.log";
    constexpr unsigned workers = 2;
    constexpr int per_worker = 10000;
    AccessLogOptions options;
    options.destination = path;
    options.workers = workers;
    options.queue_capacity = per_worker + 1;  // room for all: this test is about delivery
    options.queue_bytes = std::size_t{1} << 30;  // in bytes too
    AccessLog log(options);

    std::vector<std::thread> producers;
    for (unsigned worker = 0; worker < workers; ++worker) {
        producers.emplace_back([&log, worker] {
            for (int sequence = 0; sequence < per_worker; ++sequence) {
                AccessRecord record = completed_record();
                record.worker = worker;
                record.sni =
                    "w" + std::to_string(worker) + "-" + std::to_string(sequence) + ".test";
                log.submit(worker, std::move(record));
            }
        });
    }
    for (std::thread& producer : producers) producer.join();
    log.stop();
    CHECK(log.dropped() == 0);
    CHECK(log.written() == workers * per_worker);
    CHECK(log.write_errors() == 0);

    struct stat status {};
    REQUIRE(::stat(path.c_str(), &status) == 0);
    CHECK((status.st_mode & 0777 & ~0640) == 0);  // at most rw-r----- whatever the umask

    std::vector<int> next(workers, 0);
    int lines = 0;
    bool in_order = true;
    for (const std::string& line : split(read_file(path), '\n')) {
        ++lines;
        const auto fields = logfmt_fields(line + "\n");
        const unsigned worker = static_cast<unsigned>(std::stoul(fields.at("worker")));
        REQUIRE(worker < workers);
        const std::string expected =
            "w" + std::to_string(worker) + "-" + std::to_string(next[worker]) + ".test";
        if (fields.at("sni") != expected) in_order = false;
        ++next[worker];
    }
    CHECK(in_order);
    CHECK(lines == workers * per_worker);
    CHECK(next == std::vector<int>(workers, per_worker));
}

TEST_CASE("access log: a stalled destination never blocks submit; drops are counted exactly",
          "[access_log]") {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    passgate::reactor::Fd read_end(pipe_fds[0]);
    ::fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096);  // one page: a few lines fill it

    AccessLogOptions options;
    options.workers = 1;
    options.queue_capacity = 8;
    AccessLog log(options, passgate::reactor::Fd(pipe_fds[1]));

    // Nobody reads the pipe: the writer blocks in write(2) after a dozen lines. A submit that
    // waited for the writer would hang this loop for good; the timings only bound preemption.
    constexpr int submitted = 20000;
    int accepted = 0;
    auto slowest = std::chrono::nanoseconds(0);
    const auto start = std::chrono::steady_clock::now();
    for (int sequence = 0; sequence < submitted; ++sequence) {
        AccessRecord record = completed_record();
        record.duration_ms = sequence;
        const auto before = std::chrono::steady_clock::now();
        if (log.submit(0, std::move(record))) ++accepted;
        slowest = std::max(slowest, std::chrono::steady_clock::now() - before);
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    INFO("slowest submit " << std::chrono::duration_cast<std::chrono::microseconds>(slowest).count()
                           << " us, all "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                           << " ms");
    CHECK(slowest < std::chrono::seconds(1));
    CHECK(elapsed < std::chrono::seconds(10));
    CHECK(log.dropped() == static_cast<std::uint64_t>(submitted - accepted));
    CHECK(log.dropped() > 0);

    // Unblock: read everything the writer has and will write.
    std::string received;
    std::thread reader([&] {
        char buffer[65536];
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        long newlines = 0;
        while (newlines < accepted && std::chrono::steady_clock::now() < deadline) {
            const ssize_t got = ::read(read_end.get(), buffer, sizeof buffer);
            if (got <= 0) break;
            received.append(buffer, static_cast<std::size_t>(got));
            newlines += std::count(buffer, buffer + got, '\n');
        }
    });
    REQUIRE(wait_until([&] { return log.written() == static_cast<std::uint64_t>(accepted); }));
    log.stop();
    reader.join();
    CHECK(log.written() + log.dropped() == static_cast<std::uint64_t>(submitted));
    CHECK(log.write_errors() == 0);
    const std::vector<std::string> lines = split(received, '\n');
    REQUIRE(lines.size() == static_cast<std::size_t>(accepted));
    // The accepted ones come out in order (the first ones, then whichever found room).
    long previous = -1;
    bool increasing = true;
    for (const std::string& line : lines) {
        const long sequence = std::stol(logfmt_fields(line + "\n").at("duration_ms"));
        increasing = increasing && sequence > previous;
        previous = sequence;
    }
    CHECK(increasing);
}

TEST_CASE("access log: a queue is bounded in bytes as well as in records; drops are counted",
          "[access_log]") {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    passgate::reactor::Fd read_end(pipe_fds[0]);
    ::fcntl(pipe_fds[1], F_SETPIPE_SZ, 4096);  // one page

    AccessLogOptions options;
    options.workers = 1;
    options.queue_capacity = 100000;  // the record bound never binds here
    options.queue_bytes = 64 * 1024;
    AccessLog log(options, passgate::reactor::Fd(pipe_fds[1]));

    // Records of about 4 KiB each, held by a destination nobody reads. Accepted at most: what the
    // queue may hold (64 KiB) plus what the writer took out of it before blocking in write(2)
    // (its batch: 64 KiB and one more line), give or take one record at each end.
    AccessRecord big = completed_record();
    big.route = std::string(4000, 'r');
    const std::size_t record_bytes = passgate::access_record_bytes(big);
    REQUIRE(record_bytes > 4000);
    constexpr int submitted = 10000;
    int accepted = 0;
    for (int sequence = 0; sequence < submitted; ++sequence) {
        AccessRecord record = big;
        record.duration_ms = sequence;
        if (log.submit(0, std::move(record))) ++accepted;
    }
    const std::size_t most = (options.queue_bytes + 64 * 1024) / record_bytes + 3;
    INFO(accepted << " accepted of " << submitted << ", at most " << most << " expected");
    CHECK(static_cast<std::size_t>(accepted) <= most);
    CHECK(accepted >= static_cast<int>(options.queue_bytes / record_bytes) - 1);
    CHECK(log.dropped() == static_cast<std::uint64_t>(submitted - accepted));

    // Unblocked, everything accepted is written, and the queue takes records again.
    std::atomic<bool> done{false};
    std::thread reader([&] {
        char buffer[65536];
        while (!done.load()) {
            pollfd readable{read_end.get(), POLLIN, 0};
            if (::poll(&readable, 1, 50) > 0 && ::read(read_end.get(), buffer, sizeof buffer) <= 0) break;
        }
    });
    CHECK(wait_until([&] { return log.written() == static_cast<std::uint64_t>(accepted); }));
    CHECK(log.submit(0, AccessRecord(big)));
    CHECK(wait_until([&] { return log.written() == static_cast<std::uint64_t>(accepted) + 1; }));
    log.stop();
    done.store(true);
    reader.join();
    CHECK(log.written() + log.dropped() == static_cast<std::uint64_t>(submitted) + 1);
}

TEST_CASE("access log: the default byte bound leaves room for 4096 ordinary records",
          "[access_log]") {
    const AccessLogOptions defaults;
    CHECK(defaults.queue_bytes == 1024 * 1024);
    CHECK(passgate::access_record_bytes(completed_record()) * defaults.queue_capacity <
          defaults.queue_bytes);
    // The largest a hello can make a record: a 253-byte SNI and the ALPN caps (16 ids, 512 bytes
    // of list: 496 bytes of names).
    AccessRecord largest = completed_record();
    largest.sni = std::string(253, 's');
    largest.alpn.assign(16, std::string(31, 'a'));
    const std::size_t bytes = passgate::access_record_bytes(largest);
    CHECK(bytes < 1400);
    CHECK(defaults.queue_bytes / bytes > 700);
}

TEST_CASE("access log: reopen() after a rename writes to the new file", "[access_log]") {
    TempDir dir;
    const std::string path = dir.path + "/access.log";
    AccessLogOptions options;
    options.destination = path;
    options.format = AccessLogFormat::json;
    AccessLog log(options);

    for (int i = 0; i < 10; ++i) REQUIRE(log.submit(0, completed_record()));
    REQUIRE(wait_until([&] { return log.written() == 10; }));
    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    log.reopen();
    REQUIRE(wait_until([&] { return log.reopens() == 1; }));
    for (int i = 0; i < 5; ++i) REQUIRE(log.submit(0, completed_record()));
    log.stop();

    CHECK(split(read_file(path + ".1"), '\n').size() == 10);
    CHECK(split(read_file(path), '\n').size() == 5);
    CHECK(log.write_errors() == 0);
}

TEST_CASE("access log: a failed reopen keeps the old file", "[access_log]") {
    TempDir dir;
    const std::string path = dir.path + "/sub/access.log";
    REQUIRE(::mkdir((dir.path + "/sub").c_str(), 0700) == 0);
    AccessLogOptions options;
    options.destination = path;
    AccessLog log(options);
    REQUIRE(::rename((dir.path + "/sub").c_str(), (dir.path + "/moved").c_str()) == 0);
    log.reopen();  // the directory is gone: ENOENT
    REQUIRE(wait_until([&] { return log.reopens() == 1; }));
    CHECK(log.write_errors() == 1);
    REQUIRE(log.submit(0, completed_record()));
    log.stop();
    CHECK(split(read_file(dir.path + "/moved/access.log"), '\n').size() == 1);
}

TEST_CASE("access log: write errors are counted, not fatal (EPIPE, no SIGPIPE)", "[access_log]") {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    ::close(pipe_fds[0]);  // nobody will ever read
    AccessLogOptions options;
    AccessLog log(options, passgate::reactor::Fd(pipe_fds[1]));
    REQUIRE(log.submit(0, completed_record()));
    REQUIRE(wait_until([&] { return log.write_errors() == 1; }));
    REQUIRE(log.submit(0, completed_record()));
    log.stop();
    CHECK(log.write_errors() == 2);
    CHECK(log.written() == 0);
}

TEST_CASE("access log: submit after stop() is a counted drop", "[access_log]") {
    AccessLogOptions options;
    options.workers = 2;
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    passgate::reactor::Fd read_end(pipe_fds[0]);
    AccessLog log(options, passgate::reactor::Fd(pipe_fds[1]));
    log.stop();
    log.stop();  // idempotent
    CHECK_FALSE(log.submit(1, completed_record()));
    CHECK(log.dropped() == 1);
}

TEST_CASE("access log: \"-\" writes to a duplicate of standard error", "[access_log]") {
    const passgate::reactor::Fd fd = passgate::open_access_log_destination("-");
    REQUIRE(fd.valid());
    CHECK(fd.get() != STDERR_FILENO);
    CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_THROWS_AS(passgate::open_access_log_destination("/nonexistent-dir/access.log"),
                    std::system_error);
}

namespace {

// The keys of a logfmt line, in order (values skipped, quoted ones with their escapes).
std::vector<std::string> logfmt_keys(const std::string& line) {
    std::vector<std::string> keys;
    std::size_t at = 0;
    while (at < line.size() && line[at] != '\n') {
        const std::size_t equals = line.find('=', at);
        REQUIRE(equals != std::string::npos);
        keys.push_back(line.substr(at, equals - at));
        std::size_t end = equals + 1;
        if (line[end] == '"') {
            for (++end; line[end] != '"'; ++end)
                if (line[end] == '\\') ++end;
            ++end;
        } else {
            while (end < line.size() && line[end] != ' ' && line[end] != '\n') ++end;
        }
        at = end + (end < line.size() && line[end] == ' ' ? 1 : 0);
    }
    return keys;
}

// The keys of a one-line JSON object, in order: the strings at depth 1 followed by ':'.
std::vector<std::string> json_keys(const std::string& line) {
    std::vector<std::string> keys;
    int depth = 0;
    for (std::size_t at = 0; at < line.size(); ++at) {
        const char c = line[at];
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') --depth;
        if (c != '"') continue;
        std::string text;
        for (++at; line[at] != '"'; ++at) {
            if (line[at] == '\\') text += line[at++];
            text += line[at];
        }
        if (depth == 1 && line[at + 1] == ':') keys.push_back(text);
    }
    return keys;
}

}  // namespace

TEST_CASE("access log: logfmt and JSON lines have the same fields in the same order, the "
          "table's", "[access_log]") {
    std::vector<std::string> table;
    for (const std::string_view name : passgate::access_log_field_names()) table.emplace_back(name);
    REQUIRE(table.size() == 17);
    for (const AccessRecord& record : {completed_record(), hostile_record(), AccessRecord{}}) {
        CHECK(logfmt_keys(format_access_line(record, AccessLogFormat::logfmt)) == table);
        CHECK(json_keys(format_access_line(record, AccessLogFormat::json)) == table);
    }
}

TEST_CASE("access log: config/README.md lists the fields of the table, in order", "[access_log]") {
    const char* root = std::getenv("PASSGATE_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    const std::string readme = read_file(std::string(root) + "/config/README.md");
    const std::string marker = "Fields, in order: `";
    const std::size_t start = readme.find(marker);
    REQUIRE(start != std::string::npos);
    const std::size_t end = readme.find('`', start + marker.size());
    std::string listed = readme.substr(start + marker.size(), end - start - marker.size());
    std::replace(listed.begin(), listed.end(), '\n', ' ');
    std::vector<std::string> documented;
    for (const std::string& word : split(listed, ' '))
        if (!word.empty()) documented.push_back(word);
    std::vector<std::string> table;
    for (const std::string_view name : passgate::access_log_field_names()) table.emplace_back(name);
    CHECK(documented == table);
}
