#include "src/proxy/forwarder.h"


#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

namespace passgate {

void Direction::note_end_events(int events) {
    if ((events & POLLRDHUP) != 0) fin_seen = true;
    if ((events & (POLLHUP | POLLERR)) != 0) error_seen = true;
}

namespace {

using Outcome = ForwardResult::Outcome;

// Ends `result` with `outcome` (and the errno value behind it, for a failure).
ForwardResult& end_with(ForwardResult& result, Outcome outcome, int error = 0) {
    result.outcome = outcome;
    result.error = error;
    return result;
}

void count_delivered(Direction& direction, ForwardResult& result, std::size_t bytes) {
    direction.bytes += bytes;
    result.moved += bytes;
}

// The source's end has been read: remember it (the caller stops watching the source, or every
// wake-up on the socket, ACKs for the other direction, would report it again).
void note_source_end(Direction& direction, ForwardResult& result) {
    direction.source_eof = true;
    result.source_ended = true;
}

// A send that took only part of the buffer: the remainder waits in the direction's pipe (it
// fits: see copy_chunk) until the destination drains.
ForwardResult& keep_remainder(Direction& direction, PipePool& pipes, const std::uint8_t* remainder,
                              std::size_t length, ForwardResult& result) {
    if (!direction.pipe.held()) {
        if (const int error = direction.pipe.acquire(pipes); error != 0)
            return end_with(result, Outcome::out_of_pipes, error);
    }
    const ssize_t kept = length <= direction.pipe.capacity()
                             ? ::write(direction.pipe.pipe().write_end.get(), remainder, length)
                             : -1;
    // A pipe smaller than copy_chunk, or one that took less: no room for the bytes.
    if (kept != static_cast<ssize_t>(length)) return end_with(result, Outcome::out_of_pipes, ENOBUFS);
    direction.pipe.bytes_inside = length;
    direction.waiting_writable = true;
    return end_with(result, Outcome::destination_full);
}

// Small messages (interactive traffic, a short connection's request and response) go through a
// buffer: recv + send are two system calls where splice takes three (in, out, and the read that
// says EAGAIN: a short recv proves the socket's queue empty, a short splice does not), and no
// pipe is leased. A full buffer means a stream: the splice path moves the rest of this turn, and
// the turns after it until one moves less. Returns true when `result` is final, false to go on
// splicing (a stream, or the source's end read: the splice path passes it on).
bool copy_through_buffer(Direction& direction, DirectionEnds ends, PipePool& pipes, ForwardResult& result) {
    for (;;) {
        std::uint8_t buffer[copy_chunk];
        ssize_t got;
        do got = ::recv(ends.source, buffer, sizeof buffer, MSG_DONTWAIT);
        while (got < 0 && errno == EINTR);
        if (got < 0) {
            const int error = errno;
            if (error == EAGAIN) end_with(result, Outcome::source_empty);
            else end_with(result, Outcome::source_error, error);
            return true;
        }
        if (got == 0) {
            note_source_end(direction, result);
            return false;
        }
        const auto length = static_cast<std::size_t>(got);
        ssize_t sent;
        do sent = ::send(ends.destination, buffer, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (sent < 0 && errno == EINTR);
        if (sent < 0) {
            const int error = errno;
            if (error != EAGAIN) {
                end_with(result, Outcome::destination_error, error);
                return true;
            }
        }
        const std::size_t delivered = sent > 0 ? static_cast<std::size_t>(sent) : 0;
        count_delivered(direction, result, delivered);
        if (delivered < length) {
            keep_remainder(direction, pipes, buffer + delivered, length - delivered, result);
            return true;
        }
        if (length == sizeof buffer) {
            direction.streaming = true;
            return false;
        }
        // A short read emptied the queue of data. An error signalled meanwhile still waits
        // behind it: read on to find it. A FIN signalled (POLLRDHUP: the kernel processed it in
        // order, so every byte before it was queued and has now been read) is the end: no read
        // needed to see the 0.
        if (direction.error_seen) continue;
        if (direction.fin_seen) {
            note_source_end(direction, result);
            return false;
        }
        end_with(result, Outcome::source_empty);
        return true;
    }
}

// Source to pipe, pipe to destination, up to pump_rounds_per_turn rounds.
ForwardResult& splice_through_pipe(Direction& direction, DirectionEnds ends, PipePool& pipes,
                                   bool other_finished, ForwardResult& result) {
    std::size_t moved_this_turn = 0;
    for (int round = 0; round < pump_rounds_per_turn; ++round) {
        bool source_empty = false;
        if (!direction.source_eof) {
            if (!direction.pipe.held()) {
                if (const int error = direction.pipe.acquire(pipes); error != 0)
                    return end_with(result, Outcome::out_of_pipes, error);
            }
            const std::size_t room = direction.pipe.capacity() - direction.pipe.bytes_inside;
            // EAGAIN means "socket empty" only when the pipe was empty: a pipe also fills up by
            // slots (one per skb fragment), long before its byte capacity with small segments.
            const bool pipe_was_empty = direction.pipe.bytes_inside == 0;
            if (room > 0) {
                const ssize_t moved = ::splice(ends.source, nullptr, direction.pipe.pipe().write_end.get(),
                                               nullptr, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                const int error = moved < 0 ? errno : 0;
                if (moved > 0) direction.pipe.bytes_inside += static_cast<std::size_t>(moved);
                else if (moved == 0) note_source_end(direction, result);
                else if (error == EAGAIN) source_empty = pipe_was_empty;
                else if (error != EINTR) return end_with(result, Outcome::source_error, error);
            }
        }
        if (direction.pipe.bytes_inside > 0) {
            const ssize_t moved = ::splice(direction.pipe.pipe().read_end.get(), nullptr, ends.destination,
                                           nullptr, direction.pipe.bytes_inside, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            const int error = moved < 0 ? errno : 0;
            if (moved > 0) {
                direction.pipe.bytes_inside -= static_cast<std::size_t>(moved);
                moved_this_turn += static_cast<std::size_t>(moved);
                count_delivered(direction, result, static_cast<std::size_t>(moved));
            } else if (error == EAGAIN) {
                // Destination full: wait until it drains. Bytes stay in the pipe meanwhile.
                direction.waiting_writable = true;
                return end_with(result, Outcome::destination_full);
            } else if (moved < 0 && error != EINTR) {
                return end_with(result, Outcome::destination_error, error);
            }
        }
        if (direction.pipe.bytes_inside == 0 && direction.source_eof) {
            direction.pipe.release();
            // Half-close passes through: the peer sees our FIN when the source sent its own.
            // When the other direction has finished already, the connection closes now and
            // close(2) sends that FIN (both receive queues were read to their end): no
            // shutdown(2) needed.
            if (!other_finished) {
                // shutdown(2), not IORING_OP_SHUTDOWN: the kernel hands every ring shutdown to an
                // io-wq thread (it never runs non-blocking), which cost 5% more CPU per short
                // connection than this call (perf/ANALYSIS.md, "Overload, session 11").
                const int error = ::shutdown(ends.destination, SHUT_WR) == 0 ? 0 : errno;
                if (error != 0 && error != ENOTCONN) return end_with(result, Outcome::destination_error, error);
            }
            direction.finished = true;
            return end_with(result, Outcome::finished);
        }
        if (direction.pipe.bytes_inside == 0 && source_empty) {
            direction.pipe.release();  // quiet: idle connections hold no pipe
            // A turn that moved less than a buffer's worth: back to the copying path.
            if (moved_this_turn < copy_chunk) direction.streaming = false;
            return end_with(result, Outcome::source_empty);
        }
    }
    return end_with(result, Outcome::budget_spent);
}

ForwardResult forward_turn(Direction& direction, DirectionEnds ends, PipePool& pipes, bool other_finished) {
    ForwardResult result;
    if (!direction.streaming && !direction.source_eof && direction.pipe.bytes_inside == 0) {
        // An empty pipe still held (a turn that spent its budget) goes back to the pool: the
        // copying path needs none, and a direction that turns out quiet must hold none.
        direction.pipe.release();
        if (copy_through_buffer(direction, ends, pipes, result)) return result;
    }
    return splice_through_pipe(direction, ends, pipes, other_finished, result);
}

// What holds after every call: the pipe is held only while bytes are in it, except across a
// spent turn's resume; a direction waits for its destination only with bytes to deliver.
[[maybe_unused]] bool pipe_lease_consistent(const Direction& direction, Outcome outcome) {
    const PipeLease& pipe = direction.pipe;
    if (pipe.held() && pipe.bytes_inside > pipe.capacity()) return false;
    if (!pipe.held() && pipe.bytes_inside != 0) return false;
    switch (outcome) {
        case Outcome::source_empty:
        case Outcome::finished:
            return !pipe.held();
        case Outcome::destination_full:
            return direction.waiting_writable && pipe.held() && pipe.bytes_inside > 0;
        case Outcome::budget_spent:
            return pipe.held();
        case Outcome::source_error:
        case Outcome::destination_error:
        case Outcome::out_of_pipes:
            return true;  // the caller closes: the lease goes with the connection
    }
    return false;
}

}  // namespace

ForwardResult forward(Direction& direction, DirectionEnds ends, PipePool& pipes, bool other_finished) {
    assert(!direction.finished && !direction.waiting_writable);
    assert(ends.source >= 0 && ends.destination >= 0);
    [[maybe_unused]] const std::uint64_t bytes_before = direction.bytes;
    const ForwardResult result = forward_turn(direction, ends, pipes, other_finished);
    assert(direction.bytes == bytes_before + result.moved);  // monotone, and all of it reported
    assert(pipe_lease_consistent(direction, result.outcome));
    assert(!direction.finished || direction.source_eof);
    return result;
}

}  // namespace passgate
