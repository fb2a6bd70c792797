#include "src/observe/access_log.h"

#include "reactor/system_error.h"
#include "src/observe/log.h"
#include "src/observe/log_queue.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace passgate {

// ---------------------------------------------------------------------------------------------
// Formatting (pure).

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

bool is_printable_ascii(unsigned char byte) { return byte >= 0x21 && byte <= 0x7e; }

// Appends `text` escaped as the header describes. `also_escape`: one more byte to write as
// \u00XX (the logfmt alpn separator), or '\0' for none.
void append_escaped(std::string& out, std::string_view text, char also_escape = '\0') {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == ' ' || (is_printable_ascii(byte) && c != also_escape)) {
            out += c;
        } else {
            out += "\\u00";
            out += hex_digits[byte >> 4];
            out += hex_digits[byte & 0xf];
        }
    }
}

// A logfmt value may go bare only when it is non-empty printable ASCII without '=', '"', '\'.
bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (!is_printable_ascii(byte) || c == '=' || c == '"' || c == '\\') return true;
    }
    return false;
}

void append_logfmt_value(std::string& out, std::string_view value) {
    if (!needs_quotes(value)) {
        out += value;
        return;
    }
    out += '"';
    append_escaped(out, value);
    out += '"';
}

void append_logfmt_alpn(std::string& out, const std::vector<std::string>& alpn) {
    bool quote = alpn.empty();
    for (const std::string& protocol : alpn)
        quote = quote || needs_quotes(protocol) || protocol.find(',') != std::string::npos;
    if (quote) out += '"';
    for (std::size_t i = 0; i < alpn.size(); ++i) {
        if (i > 0) out += ',';
        if (quote)
            append_escaped(out, alpn[i], ',');
        else
            out += alpn[i];
    }
    if (quote) out += '"';
}

void append_json_string(std::string& out, std::string_view value) {
    out += '"';
    append_escaped(out, value);
    out += '"';
}

void append_time(std::string& out, const timespec& time) {
    tm utc{};
    const time_t seconds = time.tv_sec;
    ::gmtime_r(&seconds, &utc);
    char text[64];
    const int length =
        std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                      utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                      static_cast<int>(time.tv_nsec / 1000000));
    if (length > 0) out.append(text, static_cast<std::size_t>(length));
}

std::string_view hello_error_text(HelloError error) {
    return error == HelloError::none ? std::string_view() : hello_error_name(error);
}

std::string error_text(int error) {
    if (error == 0) return {};
    // strerror() may use a shared buffer for unknown values; the GNU strerror_r does not.
    char buffer[128];
    return ::strerror_r(error, buffer, sizeof buffer);
}

// ---- The field table: the one list of a line's fields, which both formats walk.

// How a value is written. number: bare in both formats. text: JSON string; logfmt quotes it
// when needed. list: JSON array of strings; logfmt joins it with commas.
enum class FieldKind { number, text, list };

struct FieldValue {
    FieldKind kind = FieldKind::text;
    std::string_view text;                            // number and text
    const std::vector<std::string>* list = nullptr;  // list
};

// Reads one field of `record`. `scratch` holds text the field had to make (a number, the time,
// the error text); the returned value may point into it or into the record.
using FieldReader = FieldValue (*)(const AccessRecord& record, std::string& scratch);

struct AccessField {
    std::string_view name;  // logfmt key = JSON key
    FieldReader read;
};

FieldValue text(std::string_view value) { return {FieldKind::text, value, nullptr}; }
FieldValue number(std::string& scratch, std::uint64_t value) {
    scratch = std::to_string(value);
    return {FieldKind::number, scratch, nullptr};
}
FieldValue signed_number(std::string& scratch, std::int64_t value) {
    scratch = std::to_string(value);
    return {FieldKind::number, scratch, nullptr};
}

// In the order of the header's list (and config/README.md's).
constexpr std::array<AccessField, 17> access_fields{{
    {"time", [](const AccessRecord& r, std::string& scratch) { append_time(scratch, r.time); return text(scratch); }},
    {"worker", [](const AccessRecord& r, std::string& scratch) { return number(scratch, r.worker); }},
    {"client", [](const AccessRecord& r, std::string&) { return text(r.client); }},
    {"listener", [](const AccessRecord& r, std::string&) { return text(r.listener); }},
    {"sni", [](const AccessRecord& r, std::string&) { return text(r.sni); }},
    {"alpn", [](const AccessRecord& r, std::string&) { return FieldValue{FieldKind::list, {}, &r.alpn}; }},
    {"route", [](const AccessRecord& r, std::string&) { return text(r.route); }},
    {"service", [](const AccessRecord& r, std::string&) { return text(r.service); }},
    {"endpoint", [](const AccessRecord& r, std::string&) { return text(r.endpoint); }},
    {"bytes_to_backend",
     [](const AccessRecord& r, std::string& scratch) { return number(scratch, r.bytes_client_to_backend); }},
    {"bytes_to_client",
     [](const AccessRecord& r, std::string& scratch) { return number(scratch, r.bytes_backend_to_client); }},
    {"duration_ms", [](const AccessRecord& r, std::string& scratch) { return signed_number(scratch, r.duration_ms); }},
    {"reason", [](const AccessRecord& r, std::string&) { return text(close_reason_name(r.reason)); }},
    {"hello_error", [](const AccessRecord& r, std::string&) { return text(hello_error_text(r.hello_error)); }},
    {"connect_attempts",
     [](const AccessRecord& r, std::string& scratch) { return number(scratch, r.connect_attempts); }},
    {"error", [](const AccessRecord& r, std::string& scratch) {
         scratch = error_text(r.error);
         return text(scratch);
     }},
    {"protocol", [](const AccessRecord& r, std::string&) { return text(r.protocol); }},
}};

void append_logfmt(std::string& out, const AccessRecord& record) {
    std::string scratch;
    for (std::size_t i = 0; i < access_fields.size(); ++i) {
        if (i > 0) out += ' ';
        out += access_fields[i].name;
        out += '=';
        scratch.clear();
        const FieldValue value = access_fields[i].read(record, scratch);
        switch (value.kind) {
            case FieldKind::number: out += value.text; break;
            case FieldKind::text: append_logfmt_value(out, value.text); break;
            case FieldKind::list: append_logfmt_alpn(out, *value.list); break;
        }
    }
    out += '\n';
}

void append_json(std::string& out, const AccessRecord& record) {
    std::string scratch;
    out += '{';
    for (std::size_t i = 0; i < access_fields.size(); ++i) {
        if (i > 0) out += ',';
        append_json_string(out, access_fields[i].name);
        out += ':';
        scratch.clear();
        const FieldValue value = access_fields[i].read(record, scratch);
        switch (value.kind) {
            case FieldKind::number: out += value.text; break;
            case FieldKind::text: append_json_string(out, value.text); break;
            case FieldKind::list:
                out += '[';
                for (std::size_t j = 0; j < value.list->size(); ++j) {
                    if (j > 0) out += ',';
                    append_json_string(out, (*value.list)[j]);
                }
                out += ']';
                break;
        }
    }
    out += "}\n";
}

}  // namespace

AccessRecord make_access_record(const ConnectionSummary& summary, std::string_view listener_name,
                                unsigned worker, timespec now) {
    AccessRecord record;
    record.time = now;
    record.worker = worker;
    record.client = summary.client;
    record.listener = listener_name;
    record.sni = summary.sni;
    record.alpn = summary.alpn;
    if (summary.route != nullptr) record.route = *summary.route;
    if (summary.service != nullptr) record.service = *summary.service;
    record.endpoint = summary.endpoint;
    record.bytes_client_to_backend = summary.bytes_client_to_backend;
    record.bytes_backend_to_client = summary.bytes_backend_to_client;
    record.duration_ms = summary.duration_ms;
    record.reason = summary.reason;
    record.hello_error = summary.hello_error;
    record.connect_attempts = summary.connect_attempts;
    record.error = summary.error;
    return record;
}

std::size_t access_record_bytes(const AccessRecord& record) {
    std::size_t bytes = record.client.size() + record.listener.size() + record.sni.size() +
                        record.route.size() + record.service.size() + record.endpoint.size();
    for (const std::string& protocol : record.alpn) bytes += sizeof(std::string) + protocol.size();
    return bytes;
}

std::vector<std::string_view> access_log_field_names() {
    std::vector<std::string_view> names;
    for (const AccessField& field : access_fields) names.push_back(field.name);
    return names;
}

void append_access_line(std::string& out, const AccessRecord& record, AccessLogFormat format) {
    switch (format) {
        case AccessLogFormat::logfmt:
            return append_logfmt(out, record);
        case AccessLogFormat::json:
            return append_json(out, record);
    }
}

std::string format_access_line(const AccessRecord& record, AccessLogFormat format) {
    std::string out;
    append_access_line(out, record, format);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Delivery: per-worker queues, one writer thread.

namespace {

// The writer formats into one buffer and writes it when it holds this much or the queues are
// empty: under load, one write(2) carries hundreds of lines.
constexpr std::size_t batch_bytes = 64 * 1024;
// Records taken from one queue before moving to the next, so that a busy worker cannot hold back
// the lines of the others.
constexpr std::size_t records_per_turn = 256;
// After a batch, the writer lets lines gather this long before it looks again (not marked
// asleep meanwhile, so workers do not ring): a line waits at most this long, and each worker's
// queue (4096 lines) holds 10 ms of 400,000 connections/s.
constexpr std::chrono::milliseconds gather_interval{10};
// A non-blocking destination that accepts nothing for this long after stop() is given up on.
constexpr int stop_stall_limit_ms = 3000;
constexpr int stall_poll_ms = 100;

bool is_standard_error(const std::string& destination) {
    return destination == "-" || destination == "stderr";
}

}  // namespace

// One worker's queue to the writer (log_queue.h): bounded in records and in bytes.
class AccessLog::WorkerQueue : public LogQueue<AccessRecord, access_record_bytes> {
public:
    using LogQueue::LogQueue;
};

reactor::Fd open_access_log_destination(const std::string& destination) {
    if (is_standard_error(destination)) {
        reactor::Fd fd(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
        if (!fd) reactor::throw_errno("access log: dup standard error");
        return fd;
    }
    reactor::Fd fd(::open(destination.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!fd) reactor::throw_errno("access log: open " + destination);
    return fd;
}

AccessLog::AccessLog(const AccessLogOptions& options)
    : AccessLog(options, open_access_log_destination(options.destination),
                is_standard_error(options.destination) ? std::string() : options.destination) {}

AccessLog::AccessLog(const AccessLogOptions& options, reactor::Fd destination)
    : AccessLog(options, std::move(destination), std::string()) {}

AccessLog::AccessLog(const AccessLogOptions& options, reactor::Fd destination,
                     std::string reopen_path)
    : format_(options.format),
      reopen_path_(std::move(reopen_path)),
      destination_(std::move(destination)),
      doorbell_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (!doorbell_) reactor::throw_errno("access log: eventfd");
    if (options.workers == 0 || options.queue_capacity == 0 || options.queue_bytes == 0)
        throw std::invalid_argument(
            "access log: workers, queue_capacity and queue_bytes must be at least 1");
    queues_.reserve(options.workers);
    for (unsigned worker = 0; worker < options.workers; ++worker)
        queues_.push_back(
            std::make_unique<WorkerQueue>(options.queue_capacity, options.queue_bytes));
    start_writer();  // last: the thread sees every member initialised
}

AccessLog::~AccessLog() { stop(); }

void AccessLog::start_writer() {
    // The writer takes no signals: they belong to the control thread's signalfd, and a SIGPIPE
    // from writing to a closed pipe must become EPIPE, not kill the process. The mask is
    // inherited, so set it around the thread's creation and restore ours.
    sigset_t all;
    sigset_t previous;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
        writer_ = std::thread([this] { run_writer(); });
    } catch (...) {
        ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    ::pthread_setname_np(writer_.native_handle(), "passgate-log");
}

bool AccessLog::submit(unsigned worker, AccessRecord&& record) {
    WorkerQueue& queue = *queues_[worker];
    if (stop_requested_.load(std::memory_order_relaxed) || !queue.try_push(std::move(record))) {
        queue.count_drop();
        return false;
    }
    // The record's publication (a seq_cst store) comes before this seq_cst load in the single
    // total order, as the writer's store of writer_asleep_ comes before its check of the queues:
    // either the writer sees the record before it sleeps, or this sees it asleep and wakes it.
    if (writer_asleep_.load(std::memory_order_seq_cst) &&
        writer_asleep_.exchange(false, std::memory_order_relaxed)) {
        ring_doorbell();
    }
    return true;
}

void AccessLog::ring_doorbell() {
    const std::uint64_t one = 1;
    // Non-blocking eventfd: cannot block; cannot overflow either, the writer resets it on wake.
    [[maybe_unused]] const ssize_t written = ::write(doorbell_.get(), &one, sizeof one);
}

void AccessLog::reopen() {
    reopen_requested_.store(true, std::memory_order_release);
    ring_doorbell();
}

void AccessLog::stop() {
    if (!writer_.joinable()) return;
    stop_requested_.store(true, std::memory_order_release);
    ring_doorbell();
    writer_.join();
}

std::uint64_t AccessLog::dropped() const {
    std::uint64_t sum = 0;
    for (const auto& queue : queues_) sum += queue->dropped();
    return sum;
}
std::uint64_t AccessLog::written() const { return written_.get(); }
std::uint64_t AccessLog::write_errors() const { return write_errors_.get(); }
std::uint64_t AccessLog::reopens() const { return reopens_.load(std::memory_order_acquire); }

// ----- writer thread

void AccessLog::run_writer() {
    std::string batch;
    batch.reserve(batch_bytes + 4096);
    while (true) {
        if (reopen_requested_.exchange(false, std::memory_order_acq_rel)) reopen_destination();
        // Read before draining: records submitted before stop() are then all visible below.
        const bool stopping = stop_requested_.load(std::memory_order_acquire);
        const std::size_t taken = drain_queues(batch);
        if (taken > 0) {
            // Lines keep coming: let them gather for a moment instead of waking up (and being
            // woken, a write to the doorbell and two context switches) for every few lines.
            // Busy queues are drained again at once.
            if (taken < records_per_turn && !stopping) std::this_thread::sleep_for(gather_interval);
            continue;
        }
        if (stopping) return;
        wait_for_work();
    }
}

std::size_t AccessLog::drain_queues(std::string& batch) {
    std::size_t taken = 0;
    std::uint64_t lines = 0;
    for (const auto& queue : queues_) {
        for (std::size_t turn = 0; turn < records_per_turn; ++turn) {
            AccessRecord* record = queue->front();
            if (record == nullptr) break;
            append_access_line(batch, *record, format_);
            queue->pop();
            ++taken;
            ++lines;
            if (batch.size() >= batch_bytes) {
                write_batch(batch, lines);
                lines = 0;
            }
        }
    }
    write_batch(batch, lines);
    return taken;
}

void AccessLog::write_batch(std::string& batch, std::uint64_t lines) {
    if (batch.empty()) return;
    if (write_all(batch)) {
        written_.add(lines);
    } else {
        write_errors_.add();
    }
    batch.clear();
}

// Whole batch or an error. A blocking destination may block here: only this thread waits.
bool AccessLog::write_all(std::string_view data) {
    int stalled_ms = 0;
    while (!data.empty()) {
        const ssize_t written = ::write(destination_.get(), data.data(), data.size());
        if (written > 0) {
            data.remove_prefix(static_cast<std::size_t>(written));
            stalled_ms = 0;
            continue;
        }
        if (written < 0 && errno == EINTR) continue;
        if (written < 0 && errno == EAGAIN) {
            // A non-blocking destination (someone's O_NONBLOCK stderr pipe): wait until it
            // drains, but not forever once stop() wants the thread back.
            pollfd writable{destination_.get(), POLLOUT, 0};
            if (::poll(&writable, 1, stall_poll_ms) == 0) stalled_ms += stall_poll_ms;
            if (stop_requested_.load(std::memory_order_relaxed) &&
                stalled_ms >= stop_stall_limit_ms)
                return false;
            continue;
        }
        return false;  // EPIPE, ENOSPC, EIO, EBADF...: these lines are lost, the next may pass
    }
    return true;
}

bool AccessLog::work_pending() const {
    if (stop_requested_.load(std::memory_order_relaxed) ||
        reopen_requested_.load(std::memory_order_relaxed))
        return true;
    for (const auto& queue : queues_)
        if (!queue->empty()) return true;
    return false;
}

void AccessLog::wait_for_work() {
    writer_asleep_.store(true, std::memory_order_seq_cst);  // then the queues: see submit()
    if (!work_pending()) {
        pollfd doorbell{doorbell_.get(), POLLIN, 0};
        // EINTR cannot happen (signals are blocked here); any return just means "look again".
        ::poll(&doorbell, 1, -1);
    }
    // Reset the eventfd before looking at the queues again: a ring after this read is kept.
    std::uint64_t rings = 0;
    [[maybe_unused]] const ssize_t got = ::read(doorbell_.get(), &rings, sizeof rings);
    writer_asleep_.store(false, std::memory_order_relaxed);
}

void AccessLog::reopen_destination() {
    if (!reopen_path_.empty()) {
        reactor::Fd reopened(
            ::open(reopen_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
        if (reopened) {
            destination_ = std::move(reopened);  // closes the old file
        } else {
            const int error = errno;
            write_errors_.add();
            log_line(LogLevel::warning, "access log: cannot reopen " + reopen_path_ + ": " +
                                            error_text(error) + " (still writing to the old file)");
        }
    }
    // Counted once done, so that a caller who sees the count knows the new file is in use.
    reopens_.store(reopens_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

}  // namespace passgate
