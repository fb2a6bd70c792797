#pragma once
// A DNS response message (RFC 1035 section 4.1, wire format) read for what endpoint discovery
// needs: the A, AAAA or SRV (RFC 2782) records of the answer section, each with its TTL. Pure:
// bytes in, records or an error out. The message is untrusted input: every read is bounds-checked,
// and a name compression pointer must point before the labels that contain it, so no pointer
// chain can loop.
//
// What is accepted:
//  - a response (QR set) to a standard query (opcode 0), not truncated (TC clear: c-ares retries a
//    truncated UDP answer over TCP; a partial record set would silently shrink a pool);
//  - RCODE NOERROR; any other RCODE is the error ("NXDOMAIN", "SERVFAIL", ...);
//  - exactly one question, of class IN and of the type asked for;
//  - answer records of the type asked for and class IN, owned by the question name or, when the
//    answer section has a CNAME chain starting at the question name, by the name at its end
//    (names compared case-insensitively, RFC 4343). The chain is followed through the answer
//    section's CNAME records whatever their order, at most 8 links; a loop is an error ("CNAME
//    loop"), a longer chain too ("CNAME chain too long"). Records of the asked type owned by any
//    other name are not an answer to this question (a confused server, or injected data) and are
//    ignored; if every record of the asked type is such a record, the answer is an error
//    ("answer name mismatch"), so that discovery keeps its last good set rather than emptying
//    the pool. Records of another type or class are skipped.
// NOERROR with no record of the asked type is NODATA: an empty, successful answer, distinct from
// NXDOMAIN. The authority and additional sections are walked for well-formedness only; bytes
// after the last declared record are ignored.

#include "config/address.h"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

inline constexpr std::uint16_t dns_type_a = 1;
inline constexpr std::uint16_t dns_type_cname = 5;
inline constexpr std::uint16_t dns_type_aaaa = 28;
inline constexpr std::uint16_t dns_type_srv = 33;
inline constexpr std::uint16_t dns_class_in = 1;

struct DnsAddressRecord {
    int family = 0;                        // AF_INET (4 bytes used) or AF_INET6 (16 bytes)
    std::array<std::uint8_t, 16> bytes{};  // network order
    std::uint32_t ttl = 0;                 // seconds; values above 2^31-1 read as 0 (RFC 2181 8)

    friend bool operator==(const DnsAddressRecord&, const DnsAddressRecord&) = default;
};

struct DnsSrvRecord {
    std::uint16_t priority = 0;
    std::uint16_t weight = 0;
    std::uint16_t port = 0;
    // Lower case, without the trailing dot; only letters, digits, '-' and '_'. A "." target
    // ("service decidedly not available here", RFC 2782) is dropped, not returned.
    std::string target;
    std::uint32_t ttl = 0;

    friend bool operator==(const DnsSrvRecord&, const DnsSrvRecord&) = default;
};

struct DnsAnswer {
    // Empty when the message was read. Otherwise one of: "truncated", "not a response",
    // "unexpected opcode", "TC bit set", an RCODE name ("FORMERR", "SERVFAIL", "NXDOMAIN",
    // "NOTIMP", "REFUSED", or "RCODE n"), "bad question count", "question mismatch", "bad name",
    // "bad name compression", "bad record length", "bad SRV target", "unsupported query type",
    // "CNAME loop", "CNAME chain too long", "answer name mismatch".
    std::string error;
    std::vector<DnsAddressRecord> addresses;  // the query type was A or AAAA (wire order)
    std::vector<DnsSrvRecord> services;       // the query type was SRV (wire order)

    bool ok() const { return error.empty(); }
};

// `qtype` is dns_type_a, dns_type_aaaa or dns_type_srv.
DnsAnswer parse_dns_answer(std::span<const std::uint8_t> message, std::uint16_t qtype);

// "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", else "RCODE n".
std::string dns_rcode_name(unsigned rcode);

// The record as a socket address with `port`.
config::Address dns_record_address(const DnsAddressRecord& record, std::uint16_t port);

}  // namespace passgate
