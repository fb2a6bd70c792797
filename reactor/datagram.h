#pragma once
// UDP sockets and batched datagram I/O (recvmmsg/sendmmsg): one system call moves a batch. Plain
// sockaddrs and bytes; the reactor knows nothing of what the datagrams carry.

#include "reactor/fd.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace passgate::reactor {

// socket + SO_REUSEADDR + SO_REUSEPORT + bind; non-blocking, close-on-exec. A wildcard address
// (0.0.0.0, ::) also asks for each datagram's destination address (IP_PKTINFO,
// IPV6_RECVPKTINFO), so that replies can leave from the address the peer used.
// Throws std::system_error naming the failed call.
Fd bind_udp(const sockaddr* address, socklen_t length);
bool is_wildcard(const sockaddr* address);

// A non-blocking UDP socket connected to `address` (the kernel picks the local port). Returns the
// socket and 0, or an invalid Fd and the errno. With `gro`, it also asks for UDP GRO (where the
// kernel has it): a burst of same-size datagrams arrives as one buffer with its segment size.
struct UdpConnect {
    Fd socket;
    int error = 0;
};
UdpConnect connect_udp(const sockaddr* address, socklen_t length, bool gro = false);

// An IPv4 or IPv6 socket address.
union SocketAddress {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
};
socklen_t address_length(const SocketAddress& address);

// A batch of receive buffers, reused for every call.
class DatagramBatch {
public:
    DatagramBatch(std::size_t count, std::size_t size);

    // recvmmsg: up to count() datagrams waiting on `fd`. Returns how many (0: none waiting) or
    // -errno.
    int receive(int fd);
    std::size_t count() const { return slots_.size(); }

    struct Received {
        std::span<std::uint8_t> data;
        const SocketAddress* peer;   // the sender
        bool truncated = false;      // larger than the buffer: data is cut
        bool has_local = false;      // local holds the destination address (packet info)
        SocketAddress local{};       // its port is 0
        // UDP GRO: data holds datagrams of this size (the last may be shorter); 0: one datagram.
        std::size_t segment_size = 0;
        std::size_t datagrams() const {
            return segment_size == 0 || data.empty() ? 1 : (data.size() + segment_size - 1) / segment_size;
        }
    };
    Received at(std::size_t index);

private:
    struct Slot {
        std::vector<std::uint8_t> buffer;
        SocketAddress peer{};
        alignas(cmsghdr) std::uint8_t control[96]{};
        iovec iov{};
    };
    std::vector<Slot> slots_;
    std::vector<mmsghdr> headers_;
};

// Datagrams to send from one socket, to various peers, in one sendmmsg. The bytes are not copied:
// they must live until flush().
class DatagramSender {
public:
    explicit DatagramSender(std::size_t capacity);
    // Queues one; flushes first when full. `local`: the source address to use (packet info), or
    // nullptr for the socket's own. `segment_size` > 0 (and under data's size): data is several
    // datagrams of that size, sent with UDP GSO (UDP_SEGMENT) in one message.
    void add(int fd, std::span<const std::uint8_t> data, const SocketAddress& peer, const SocketAddress* local,
             std::size_t segment_size = 0);
    // Sends what is queued. Returns how many datagrams the kernel did not take (buffer full,
    // an error): UDP may drop, the caller counts.
    std::size_t flush();
    std::size_t pending() const { return used_; }

private:
    std::size_t flush_now();
    struct Slot {
        iovec iov{};
        SocketAddress peer{};
        std::size_t segment_size = 0;  // > 0: a GSO message (its UDP_SEGMENT control message first)
        bool has_local = false;
        alignas(cmsghdr) std::uint8_t control[96]{};
    };
    std::size_t send_segments(Slot& slot, const msghdr& original);
    int fd_ = -1;
    std::size_t used_ = 0;
    std::size_t failed_ = 0;
    std::vector<Slot> slots_;
    std::vector<mmsghdr> headers_;
};

}  // namespace passgate::reactor
