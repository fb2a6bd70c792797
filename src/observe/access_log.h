#pragma once
// Access log: one line per finished connection, in logfmt or JSON.
//
// Workers never format or write: each hands a plain AccessRecord to its own bounded
// single-producer queue (a reactor::SpscRing, reactor/spsc_ring.h) and goes on. One writer thread drains the queues, formats, batches and
// writes with write(2). A slow destination (full disk, stalled journal, pipe nobody reads) only
// slows the writer; once a worker's queue is full its records are dropped and counted, never
// queued without bound and never waited for. A queue is bounded twice: in records
// (queue_capacity) and in the bytes those records hold (queue_bytes, as access_record_bytes
// counts them), so that records carrying long client-supplied values cannot make a full queue
// hold more memory than a full queue of ordinary ones. A record that finds either bound reached
// is dropped and counted the same way.
//
// Line fields, always all present and in this order (logfmt keys = JSON keys: both formats walk
// one field table, access_log.cpp):
//   time              connection end, RFC 3339 UTC with milliseconds ("2026-11-27T11:30:05.123Z")
//   worker            index of the worker thread
//   client            client address "ip:port"
//   listener          listener name
//   sni               server name from the ClientHello (lowercased); empty: none sent
//   alpn              ALPN protocols offered, client order (logfmt: comma-joined; JSON: array);
//                     at most max_alpn_protocols ids and max_alpn_list_bytes bytes (client_hello.h:
//                     a hello offering more is refused, bad_alpn, and logs none)
//   route             route taken; empty: none (rejected before routing, or no route)
//   service           service chosen among the route's backends; empty: none
//   endpoint          backend "ip:port" last connected or tried; empty: none
//   bytes_to_backend  bytes client -> backend, the ClientHello included
//   bytes_to_client   bytes backend -> client
//   duration_ms       accept to close
//   reason            close reason (close_reason_name: completed, hello_timeout, no_route, ...)
//   hello_error       why the ClientHello was rejected (hello_error_name); empty: it was not
//   connect_attempts  backend connects tried
//   error             strerror text of the errno behind the close; empty: none
//
// Escaping: the SNI and ALPN come from clients, so every value is escaped the same way in both
// formats: '"' and '\' get a backslash, \n \r \t their usual forms, and every other byte outside
// printable ASCII (controls, DEL, 0x80-0xff) becomes \u00XX. A byte string therefore always
// stays on one line and reads back as the code points U+0000-U+00FF, one per original byte (JSON
// stays valid even for bytes that are not UTF-8). logfmt quotes a value when it is empty or holds
// anything but printable ASCII other than '=', '"', '\'. In logfmt's alpn list a ',' inside one
// protocol id is written \u002c, so the commas left are exactly the separators.

#include "config/config.h"
#include "metrics/owned_counter.h"
#include "reactor/fd.h"
#include "src/wire/client_hello.h"
#include "src/observe/connection_summary.h"

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace passgate {

// The config's enum ([access_log] format), parsed and validated there.
using AccessLogFormat = config::AccessLogFormat;

// The values of one line, owned, so that it can be formatted on another thread after the
// connection and its snapshot are gone. Enums and errno stay raw: turning them into text is the
// writer's job, not the worker's.
struct AccessRecord {
    timespec time{};  // CLOCK_REALTIME when the connection ended
    unsigned worker = 0;
    std::string client;
    std::string listener;
    std::string sni;
    std::vector<std::string> alpn;
    std::string route;
    std::string service;
    std::string endpoint;
    std::uint64_t bytes_client_to_backend = 0;
    std::uint64_t bytes_backend_to_client = 0;
    std::int64_t duration_ms = 0;
    CloseReason reason = CloseReason::completed;
    HelloError hello_error = HelloError::none;
    unsigned connect_attempts = 0;
    int error = 0;  // errno; 0: none
    std::string_view protocol = "tls";  // "quic" for a QUIC flow (a literal: outlives the record)
};

// What a queued record holds beyond its fixed-size slot, as the queue's byte bound counts it: the
// lengths of its strings, plus one std::string per ALPN id (the vector's elements). Pure.
std::size_t access_record_bytes(const AccessRecord& record);

// The worker side in one call: copies what the line needs out of `summary` (route and service
// names point into the snapshot, which may be gone by the time the line is written).
// `now`: clock_gettime(CLOCK_REALTIME).
AccessRecord make_access_record(const ConnectionSummary& summary, std::string_view listener_name,
                                unsigned worker, timespec now);

// The fields of a line, in order: the names of the one field table (access_log.cpp) that both
// formats walk, so a field cannot exist in one format and not in the other.
std::vector<std::string_view> access_log_field_names();

// One line, '\n' included. Pure.
std::string format_access_line(const AccessRecord& record, AccessLogFormat format);
// The same, appended to `out` (the writer batches lines without a string per line).
void append_access_line(std::string& out, const AccessRecord& record, AccessLogFormat format);

struct AccessLogOptions {
    // "-" or "stderr": standard error (the journal under systemd). Anything else: a file path,
    // opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640, and reopened by reopen().
    std::string destination = "-";
    AccessLogFormat format = AccessLogFormat::logfmt;
    unsigned workers = 1;  // one queue each; submit(worker, ...) needs worker < workers
    std::size_t queue_capacity = 4096;  // records per worker queue, at least 1
    // Bytes of queued records per worker queue (access_record_bytes), at least 1. An ordinary
    // record holds 100-200 bytes, so 4096 of them fit and queue_capacity binds first; records
    // with the longest SNI (253 bytes) and ALPN list (16 ids, 512 bytes) hold about 1.3 KiB and
    // find this bound first, after about 800.
    std::size_t queue_bytes = 1024 * 1024;
};

// Opens `destination` as AccessLogOptions describes (standard error is dup'ed, so the returned
// Fd always owns its descriptor). Throws std::system_error.
reactor::Fd open_access_log_destination(const std::string& destination);

class AccessLog {
public:
    // Opens options.destination (throws std::system_error) and starts the writer thread.
    explicit AccessLog(const AccessLogOptions& options);
    // Writes to an already open descriptor (a pipe, a socket, a test's file) instead;
    // options.destination is ignored and reopen() keeps the descriptor.
    AccessLog(const AccessLogOptions& options, reactor::Fd destination);
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;
    ~AccessLog();  // stop()

    // Worker thread `worker` only (one producer per queue). Never blocks and never takes a lock:
    // false when the record was dropped (the worker's queue is full, or stop() has begun), which
    // is counted in dropped(). At most one eventfd write, only when the writer is asleep.
    bool submit(unsigned worker, AccessRecord&& record);

    // Any thread. Asks the writer to reopen the destination file (logrotate: rename, then
    // SIGUSR1/SIGHUP) and returns at once; reopens() counts the reopens done. Lines the writer
    // formats after that go to the new file. On failure the old file is kept and the error is
    // logged and counted in write_errors().
    void reopen();

    // Owner thread, once the workers no longer submit: writes everything queued, then joins the
    // writer. Idempotent. If the destination blocks for good (a blocking pipe nobody reads) this
    // waits for it; a non-blocking one is given up on after a few seconds of no progress.
    void stop();

    // Any thread; relaxed sums of per-thread counters.
    std::uint64_t dropped() const;  // records refused by submit() (either bound, or stopping)
    std::uint64_t written() const;  // lines written completely
    // Failed write(2) batches (their lines are lost) and failed reopens.
    std::uint64_t write_errors() const;
    std::uint64_t reopens() const;  // reopen requests carried out (failed ones too)

private:
    class WorkerQueue;

    AccessLog(const AccessLogOptions& options, reactor::Fd destination, std::string reopen_path);
    void start_writer();
    void run_writer();
    std::size_t drain_queues(std::string& batch);
    void write_batch(std::string& batch, std::uint64_t lines);
    bool write_all(std::string_view data);
    void wait_for_work();
    bool work_pending() const;
    void reopen_destination();
    void ring_doorbell();

    AccessLogFormat format_;
    std::string reopen_path_;  // empty: nothing to reopen
    reactor::Fd destination_;  // written by the writer thread only, once it runs
    reactor::Fd doorbell_;     // eventfd the writer sleeps on
    std::vector<std::unique_ptr<WorkerQueue>> queues_;
    std::thread writer_;

    // Writer sleep protocol (no lock on the worker side): the writer sets writer_asleep_, then
    // re-checks the queues before poll(2); a worker, after publishing a record, rings only if it
    // sees writer_asleep_ (each side's store then load are seq_cst, so one sees the other's store).
    alignas(64) std::atomic<bool> writer_asleep_{false};
    alignas(64) std::atomic<bool> stop_requested_{false};
    std::atomic<bool> reopen_requested_{false};
    metrics::OwnedCounter written_;       // written by the writer thread
    metrics::OwnedCounter write_errors_;  // written by the writer thread
    // Not an OwnedCounter: stored with release, so that a thread that sees the count also sees
    // the reopened destination in use (reopen_destination()).
    std::atomic<std::uint64_t> reopens_{0};
};

}  // namespace passgate
