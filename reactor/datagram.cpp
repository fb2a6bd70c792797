#include "reactor/datagram.h"

#include "reactor/socket.h"
#include "reactor/system_error.h"

#include <netinet/udp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace passgate::reactor {

bool is_wildcard(const sockaddr* address) {
    if (address->sa_family == AF_INET)
        return reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (address->sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
    return false;
}

Fd bind_udp(const sockaddr* address, socklen_t length) {
    Fd socket(::socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!socket) throw_errno("socket");
    const int one = 1;
    if (::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        throw_errno("setsockopt(SO_REUSEADDR)");
    if (::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        throw_errno("setsockopt(SO_REUSEPORT)");
    set_dual_stack(socket.get(), address->sa_family);
    if (is_wildcard(address)) {
        if (address->sa_family == AF_INET) {
            if (::setsockopt(socket.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0)
                throw_errno("setsockopt(IP_PKTINFO)");
        } else {
            if (::setsockopt(socket.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0)
                throw_errno("setsockopt(IPV6_RECVPKTINFO)");
            // A dual-stack socket also gets IPv4 datagrams (mapped addresses): their packet info.
            ::setsockopt(socket.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        }
    }
    if (::bind(socket.get(), address, length) != 0) throw_errno("bind");
    return socket;
}

UdpConnect connect_udp(const sockaddr* address, socklen_t length, bool gro) {
    UdpConnect out;
    out.socket = Fd(::socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!out.socket) {
        out.error = errno;
        return out;
    }
    const int one = 1;
    // Best effort: a kernel without UDP GRO (before 5.0) delivers one datagram per read.
    if (gro) ::setsockopt(out.socket.get(), IPPROTO_UDP, UDP_GRO, &one, sizeof one);
    if (::connect(out.socket.get(), address, length) != 0) {
        out.error = errno;
        out.socket.reset();
    }
    return out;
}

socklen_t address_length(const SocketAddress& address) {
    return address.any.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

DatagramBatch::DatagramBatch(std::size_t count, std::size_t size) : slots_(count), headers_(count) {
    for (Slot& slot : slots_) slot.buffer.resize(size);
}

int DatagramBatch::receive(int fd) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        Slot& slot = slots_[i];
        slot.iov = iovec{slot.buffer.data(), slot.buffer.size()};
        msghdr& header = headers_[i].msg_hdr;
        header = msghdr{};
        header.msg_name = &slot.peer;
        header.msg_namelen = sizeof slot.peer;
        header.msg_iov = &slot.iov;
        header.msg_iovlen = 1;
        header.msg_control = slot.control;
        header.msg_controllen = sizeof slot.control;
        headers_[i].msg_len = 0;
    }
    const int received = ::recvmmsg(fd, headers_.data(), static_cast<unsigned>(headers_.size()), MSG_DONTWAIT, nullptr);
    if (received >= 0) return received;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

DatagramBatch::Received DatagramBatch::at(std::size_t index) {
    Slot& slot = slots_[index];
    msghdr& header = headers_[index].msg_hdr;
    Received out;
    out.data = std::span<std::uint8_t>(slot.buffer.data(), headers_[index].msg_len);
    out.peer = &slot.peer;
    out.truncated = (header.msg_flags & MSG_TRUNC) != 0;
    for (cmsghdr* message = CMSG_FIRSTHDR(&header); message != nullptr; message = CMSG_NXTHDR(&header, message)) {
        if (message->cmsg_level == IPPROTO_IP && message->cmsg_type == IP_PKTINFO) {
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(message), sizeof info);
            out.local.v4 = sockaddr_in{.sin_family = AF_INET, .sin_port = 0, .sin_addr = info.ipi_addr, .sin_zero = {}};
            out.has_local = true;
        } else if (message->cmsg_level == IPPROTO_UDP && message->cmsg_type == UDP_GRO) {
            int size = 0;
            std::memcpy(&size, CMSG_DATA(message), sizeof size);
            if (size > 0) out.segment_size = static_cast<std::size_t>(size);
        } else if (message->cmsg_level == IPPROTO_IPV6 && message->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(message), sizeof info);
            out.local.v6 = sockaddr_in6{.sin6_family = AF_INET6, .sin6_port = 0, .sin6_flowinfo = 0,
                                        .sin6_addr = info.ipi6_addr, .sin6_scope_id = 0};
            out.has_local = true;
        }
    }
    return out;
}

namespace {

// One control message in a header whose msg_control buffer is zeroed and large enough.
// Appends one control message to a header whose msg_control buffer is zeroed and large enough
// (msg_controllen: what is used so far).
template <class Info>
void put_control(msghdr& header, int level, int type, const Info& info) {
    cmsghdr* message = reinterpret_cast<cmsghdr*>(static_cast<std::uint8_t*>(header.msg_control) + header.msg_controllen);
    message->cmsg_level = level;
    message->cmsg_type = type;
    message->cmsg_len = CMSG_LEN(sizeof info);
    std::memcpy(CMSG_DATA(message), &info, sizeof info);
    header.msg_controllen += CMSG_SPACE(sizeof info);
}

}  // namespace

DatagramSender::DatagramSender(std::size_t capacity) : slots_(capacity), headers_(capacity) {}

void DatagramSender::add(int fd, std::span<const std::uint8_t> data, const SocketAddress& peer,
                         const SocketAddress* local, std::size_t segment_size) {
    if (used_ == slots_.size() || (used_ > 0 && fd != fd_)) failed_ += flush_now();
    fd_ = fd;
    Slot& slot = slots_[used_];
    slot.iov = iovec{const_cast<std::uint8_t*>(data.data()), data.size()};
    slot.peer = peer;
    msghdr& header = headers_[used_].msg_hdr;
    header = msghdr{};
    header.msg_name = &slot.peer;
    header.msg_namelen = address_length(slot.peer);
    header.msg_iov = &slot.iov;
    header.msg_iovlen = 1;
    const bool segmented = segment_size > 0 && segment_size < data.size();
    slot.segment_size = segmented ? segment_size : 0;
    slot.has_local = local != nullptr;
    if (local != nullptr || segmented) {
        std::memset(slot.control, 0, sizeof slot.control);
        header.msg_control = slot.control;
        header.msg_controllen = 0;
    }
    if (segmented) put_control(header, IPPROTO_UDP, UDP_SEGMENT, static_cast<std::uint16_t>(segment_size));
    if (local != nullptr) {
        // The reply leaves from the address the peer sent to (a wildcard listener).
        if (local->any.sa_family == AF_INET) {
            in_pktinfo info{};
            info.ipi_spec_dst = local->v4.sin_addr;
            put_control(header, IPPROTO_IP, IP_PKTINFO, info);
        } else {
            in6_pktinfo info{};
            info.ipi6_addr = local->v6.sin6_addr;
            put_control(header, IPPROTO_IPV6, IPV6_PKTINFO, info);
        }
    }
    ++used_;
}

std::size_t DatagramSender::flush_now() {
    std::size_t failed = 0;
    std::size_t sent = 0;
    while (sent < used_) {
        const int result = ::sendmmsg(fd_, headers_.data() + sent, static_cast<unsigned>(used_ - sent), MSG_DONTWAIT);
        if (result > 0) {
            sent += static_cast<std::size_t>(result);
            continue;
        }
        if (result < 0 && errno == EINTR) continue;
        const int error = result < 0 ? errno : EIO;
        // A GSO message the path refuses (a segment over its MTU, EINVAL/EMSGSIZE) goes again
        // datagram by datagram; otherwise the first message left failed (buffer full, an ICMP
        // error queued on the socket): dropped, as the network would; the rest are tried.
        if (slots_[sent].segment_size > 0 && error != EAGAIN && error != EWOULDBLOCK)
            failed += send_segments(slots_[sent], headers_[sent].msg_hdr);
        else
            ++failed;
        ++sent;
    }
    used_ = 0;
    return failed;
}

// One GSO message's datagrams, one sendmsg each, with its packet info but no UDP_SEGMENT.
// Returns how many failed.
std::size_t DatagramSender::send_segments(Slot& slot, const msghdr& original) {
    msghdr header = original;
    if (slot.has_local) {
        // Skip the UDP_SEGMENT message (the first one) and keep the packet info after it.
        cmsghdr* first = CMSG_FIRSTHDR(&header);
        const std::size_t skip = CMSG_SPACE(sizeof(std::uint16_t));
        header.msg_control = reinterpret_cast<std::uint8_t*>(first) + skip;
        header.msg_controllen -= skip;
    } else {
        header.msg_control = nullptr;
        header.msg_controllen = 0;
    }
    const auto* bytes = static_cast<const std::uint8_t*>(slot.iov.iov_base);
    std::size_t failed = 0;
    for (std::size_t offset = 0; offset < slot.iov.iov_len; offset += slot.segment_size) {
        iovec part{const_cast<std::uint8_t*>(bytes + offset), std::min(slot.segment_size, slot.iov.iov_len - offset)};
        header.msg_iov = &part;
        header.msg_iovlen = 1;
        if (::sendmsg(fd_, &header, MSG_DONTWAIT) < 0) ++failed;
    }
    return failed;
}

std::size_t DatagramSender::flush() {
    const std::size_t failed = failed_ + flush_now();
    failed_ = 0;
    return failed;
}

}  // namespace passgate::reactor
