// SPDX-License-Identifier: GPL-2.0
// Forwarding in the kernel (listener key forwarding = "sockmap"): both sockets of a connection
// sit in `sockets`, a sockhash keyed by their socket cookies, with this stream-verdict program
// attached to it. Every skb received on one socket is redirected to the egress of its peer
// (the cookie `pairs` names), so a connection's steady state takes no wake-up and no system call
// in passgate. User space keeps only the ends: EOF, errors, timeouts (src/bpf/sockmap.h).
// GPL: bpf_sk_redirect_hash is a GPL-only helper.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// What one socket forwards to: its peer's cookie, and the bytes redirected there so far (the
// connection's byte counts in the access log and metrics).
struct pair {
    __u64 peer;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u32);
} sockets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct pair);
} pairs SEC(".maps");

SEC("sk_skb/stream_verdict")
int redirect_to_peer(struct __sk_buff* skb) {
    __u64 cookie = bpf_get_socket_cookie(skb);
    struct pair* pair = bpf_map_lookup_elem(&pairs, &cookie);
    // Not one of ours (cannot happen: pairs are written before the sockets go in): leave the
    // bytes on the socket rather than drop them.
    if (!pair) return SK_PASS;
    __sync_fetch_and_add(&pair->bytes, skb->len);
    return bpf_sk_redirect_hash(skb, &sockets, &pair->peer, 0);
}

char LICENSE[] SEC("license") = "GPL";
