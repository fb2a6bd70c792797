#pragma once
// The sockmap forwarder's kernel half, loaded once per process and shared by every worker
// (listener key forwarding = "sockmap"): the stream-verdict program of sockmap_forward.bpf.c, its
// sockhash of sockets and its map of pairs with their byte counters. It knows sockets, not
// connections: the caller pairs two connected TCP sockets, reads their counters, and unpairs them
// before it closes them. Needs CAP_BPF and CAP_NET_ADMIN; load() says which is missing.

#include <cstddef>
#include <cstdint>
#include <memory>

struct sockmap_forward;

namespace passgate::bpf {

// One paired socket as the maps know it.
struct SocketKey {
    std::uint64_t cookie = 0;  // SO_COOKIE: the key in both maps
};

struct Pair {
    SocketKey a;
    SocketKey b;
};

class Sockmap {
public:
    // Loads and verifies the program, creates its maps and attaches the program to the sockhash.
    // Throws std::runtime_error naming the failing step, the errno text and, for EPERM, the
    // capabilities it needs.
    static std::unique_ptr<Sockmap> load();
    Sockmap(const Sockmap&) = delete;
    Sockmap& operator=(const Sockmap&) = delete;
    ~Sockmap();

    // From now on, each byte received on either socket goes out on the other, in the kernel.
    // Both must be connected TCP sockets. 0, or the errno value of the step that failed (then
    // neither socket is left in the maps).
    int pair(int a, int b, Pair& out);
    // Takes both sockets out of the maps (closing a socket takes it out of the sockhash, not out
    // of the pairs map): call it before closing them. Returns the bytes each had forwarded.
    struct Bytes {
        std::uint64_t from_a = 0;
        std::uint64_t from_b = 0;
    };
    Bytes unpair(const Pair& pair);
    // Bytes received on this socket and redirected to its peer so far.
    std::uint64_t bytes_from(SocketKey key) const;
    // Entries in the pairs map (two per paired connection): tests check that none leak.
    std::size_t paired_sockets() const;

private:
    explicit Sockmap(sockmap_forward* skeleton) : skeleton_(skeleton) {}
    sockmap_forward* skeleton_;
};

}  // namespace passgate::bpf
