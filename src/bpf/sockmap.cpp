#include "src/bpf/sockmap.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

// bpftool's skeleton is C: it converts void* implicitly and leaves fields to zero-initialisation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wpedantic"
#include "sockmap_forward.skel.h"
#pragma GCC diagnostic pop

namespace passgate::bpf {

namespace {
// The pairs map's value (struct pair in sockmap_forward.bpf.c).
struct PairValue {
    std::uint64_t peer = 0;
    std::uint64_t bytes = 0;
};

std::string failure(const char* step, int error) {
    std::string text = std::string("sockmap forwarding: ") + step + ": " + std::strerror(error);
    if (error == EPERM || error == EACCES)
        text += " (forwarding = \"sockmap\" needs CAP_BPF and CAP_NET_ADMIN)";
    return text;
}

int cookie_of(int socket, std::uint64_t& cookie) {
    socklen_t length = sizeof cookie;
    return ::getsockopt(socket, SOL_SOCKET, SO_COOKIE, &cookie, &length) == 0 ? 0 : errno;
}
}  // namespace

std::unique_ptr<Sockmap> Sockmap::load() {
    sockmap_forward* skeleton = sockmap_forward__open_and_load();
    if (skeleton == nullptr) throw std::runtime_error(failure("loading the BPF program", errno));
    const int program = bpf_program__fd(skeleton->progs.redirect_to_peer);
    const int sockets = bpf_map__fd(skeleton->maps.sockets);
    if (bpf_prog_attach(program, sockets, BPF_SK_SKB_STREAM_VERDICT, 0) != 0) {
        const int error = errno;
        sockmap_forward__destroy(skeleton);
        throw std::runtime_error(failure("attaching the stream verdict program", error));
    }
    return std::unique_ptr<Sockmap>(new Sockmap(skeleton));
}

Sockmap::~Sockmap() { sockmap_forward__destroy(skeleton_); }

int Sockmap::pair(int a, int b, Pair& out) {
    if (const int error = cookie_of(a, out.a.cookie)) return error;
    if (const int error = cookie_of(b, out.b.cookie)) return error;
    const int pairs = bpf_map__fd(skeleton_->maps.pairs);
    const int sockets = bpf_map__fd(skeleton_->maps.sockets);
    // Pairs first: a socket in the sockhash has its skbs redirected from then on.
    const PairValue to_b{out.b.cookie, 0};
    const PairValue to_a{out.a.cookie, 0};
    if (bpf_map_update_elem(pairs, &out.a.cookie, &to_b, BPF_NOEXIST) != 0) return errno;
    if (bpf_map_update_elem(pairs, &out.b.cookie, &to_a, BPF_NOEXIST) != 0) {
        const int error = errno;
        bpf_map_delete_elem(pairs, &out.a.cookie);
        return error;
    }
    const std::uint32_t fd_a = static_cast<std::uint32_t>(a);
    const std::uint32_t fd_b = static_cast<std::uint32_t>(b);
    if (bpf_map_update_elem(sockets, &out.b.cookie, &fd_b, BPF_NOEXIST) != 0 ||
        bpf_map_update_elem(sockets, &out.a.cookie, &fd_a, BPF_NOEXIST) != 0) {
        const int error = errno;
        unpair(out);
        return error;
    }
    return 0;
}

Sockmap::Bytes Sockmap::unpair(const Pair& pair) {
    Bytes bytes{bytes_from(pair.a), bytes_from(pair.b)};
    const int pairs = bpf_map__fd(skeleton_->maps.pairs);
    const int sockets = bpf_map__fd(skeleton_->maps.sockets);
    // ENOENT is expected: a closed socket has left the sockhash already, or never got in.
    for (const SocketKey& key : {pair.a, pair.b}) {
        bpf_map_delete_elem(sockets, &key.cookie);
        bpf_map_delete_elem(pairs, &key.cookie);
    }
    return bytes;
}

std::uint64_t Sockmap::bytes_from(SocketKey key) const {
    PairValue value;
    if (bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.pairs), &key.cookie, &value) != 0) return 0;
    return value.bytes;
}

std::size_t Sockmap::paired_sockets() const {
    const int pairs = bpf_map__fd(skeleton_->maps.pairs);
    std::size_t count = 0;
    std::uint64_t key = 0;
    std::uint64_t next = 0;
    // Bounded by the map's size: the walk ends at ENOENT after its last key.
    for (const std::uint64_t* from = nullptr; count <= bpf_map__max_entries(skeleton_->maps.pairs); from = &key) {
        if (bpf_map_get_next_key(pairs, from, &next) != 0) break;
        key = next;
        ++count;
    }
    return count;
}

}  // namespace passgate::bpf
