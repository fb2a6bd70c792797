#pragma once
// The forwarding engine: moves one direction of a connection's byte stream from its source
// socket to its destination socket, and passes the source's end on as shutdown(SHUT_WR).
// Each wake-up's first bytes go through an 8 KiB buffer (recv + send); a full buffer means a
// stream, which goes on with splice(2) through a pipe leased from the worker's PipePool only
// while bytes are in flight. It knows sockets and pipes, not sessions: the caller (ProxyConnection)
// picks the sockets, arms its watches and maps each ForwardResult to metrics and close reasons.
// Every failure comes back in the result with its errno value; nothing is passed through errno.

#include "src/proxy/pipe_pool.h"

#include <cstddef>
#include <cstdint>

namespace passgate {

// Per call, a direction moves at most this many pipe-fulls before yielding to other
// connections (the caller resumes it on the next loop iteration): one busy stream cannot starve
// the rest.
inline constexpr int pump_rounds_per_turn = 8;
// A direction that is not streaming reads each wake-up's first bytes into a buffer of this size
// and sends them from there. 8 KiB: never more than the smallest pipe the kernel hands out
// (2 pages, when the user's pipe budget is spent), so a partial send's remainder always fits in
// the direction's pipe.
inline constexpr std::size_t copy_chunk = 8 * 1024;

// One direction of the byte stream: what the forwarder remembers between calls. Kept small: every
// idle connection holds two.
struct Direction {
    PipeLease pipe;                 // held only while bytes are in it (or for a turn's resume)
    std::uint64_t bytes = 0;        // delivered to the destination
    bool source_eof = false;        // read side returned 0
    bool finished = false;          // EOF forwarded as shutdown(SHUT_WR)
    bool waiting_writable = false;  // destination full: the caller waits for it to be writable
    bool streaming = false;         // moving full buffers: splice, skip the copying path
    bool fin_seen = false;          // a readable event carried POLLRDHUP: FIN after the data
    bool error_seen = false;        // ... or POLLHUP/POLLERR: read on to find the error

    // What a readiness event on the source says about the end of its stream, behind whatever
    // data is queued.
    void note_end_events(int events);
    // The destination became writable: forward() may be called again.
    void on_writable() { waiting_writable = false; }
};

// The two sockets of one direction.
struct DirectionEnds {
    int source = -1;
    int destination = -1;
};

struct ForwardResult {
    enum class Outcome : std::uint8_t {
        source_empty,       // everything the source had is delivered: wait until it is readable
        destination_full,   // the destination took no more: the rest waits in the direction's
                            // pipe (waiting_writable is set): wait until it is writable
        finished,           // the source's end is passed on (finished is set)
        budget_spent,       // pump_rounds_per_turn pipe-fulls moved: call again next iteration
        source_error,       // reading the source failed with `error`
        destination_error,  // writing to (or shutting down) the destination failed with `error`
        out_of_pipes,       // a pipe was needed and none could be had: `error` says why
    };
    Outcome outcome = Outcome::source_empty;
    int error = 0;               // errno value, for the three failures
    std::size_t moved = 0;       // bytes delivered to the destination by this call
    bool source_ended = false;   // this call read the source's end (0): stop watching it
};

// Moves what can move now in one direction. Call it when the source is readable, the destination
// writable (after destination_full) or a turn resumes (after budget_spent); never for a
// direction that is finished or waiting for its destination. `other_finished`: the other
// direction has passed its end on already, so the connection closes as soon as this one ends and
// close(2) sends the FIN (no shutdown(2) call). Direction::bytes grows by `moved`. On an error
// outcome the direction may still hold a pipe: the caller closes, and the lease's release
// destroys a pipe that has bytes inside.
ForwardResult forward(Direction& direction, DirectionEnds ends, PipePool& pipes, bool other_finished);

}  // namespace passgate
