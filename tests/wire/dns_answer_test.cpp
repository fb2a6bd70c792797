#include "src/wire/dns_answer.h"

#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

using passgate::dns_type_a;
using passgate::dns_type_aaaa;
using passgate::dns_type_cname;
using passgate::dns_type_srv;
using passgate::parse_dns_answer;
using Bytes = std::vector<std::uint8_t>;

namespace {

// Builds messages byte by byte, so each test shows exactly what is on the wire.
struct Message {
    Bytes bytes;

    std::size_t size() const { return bytes.size(); }
    Message& u8(unsigned value) {
        bytes.push_back(static_cast<std::uint8_t>(value));
        return *this;
    }
    Message& u16(unsigned value) { return u8(value >> 8).u8(value & 0xFF); }
    Message& u32(std::uint32_t value) { return u16(value >> 16).u16(value & 0xFFFF); }
    Message& raw(const Bytes& data) {
        bytes.insert(bytes.end(), data.begin(), data.end());
        return *this;
    }
    // Uncompressed, with the root label: "web.test" -> 3 w e b 4 t e s t 0.
    Message& name(const std::string& dotted) { return labels(dotted).u8(0); }
    // Labels without the root label, to be followed by a pointer.
    Message& labels(const std::string& dotted) {
        std::size_t start = 0;
        while (start < dotted.size()) {
            std::size_t dot = dotted.find('.', start);
            if (dot == std::string::npos) dot = dotted.size();
            u8(static_cast<unsigned>(dot - start));
            for (std::size_t i = start; i < dot; ++i) u8(static_cast<unsigned char>(dotted[i]));
            start = dot + 1;
        }
        return *this;
    }
    Message& pointer(std::size_t offset) { return u8(0xC0 | (offset >> 8)).u8(offset & 0xFF); }
    Message& header(unsigned flags, unsigned qd, unsigned an, unsigned ns = 0, unsigned ar = 0) {
        return u16(0xBEEF).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
    }
    Message& question(const std::string& qname, unsigned qtype, unsigned qclass = 1) {
        return name(qname).u16(qtype).u16(qclass);
    }
    // Type, class, TTL and RDLENGTH; the owner name and the RDATA are written by the caller.
    Message& fixed(unsigned type, std::uint32_t ttl, unsigned rdlength, unsigned klass = 1) {
        return u16(type).u16(klass).u32(ttl).u16(rdlength);
    }
};

constexpr unsigned response = 0x8180;  // QR, RD, RA, NOERROR
constexpr std::size_t question_offset = 12;

// "web.test" A 127.0.0.5 TTL 42, owner compressed to the question (as dnsmasq answers).
Message a_answer() {
    Message m;
    m.header(response, 1, 1).question("web.test", dns_type_a);
    m.pointer(question_offset).fixed(dns_type_a, 42, 4).raw({127, 0, 0, 5});
    return m;
}

// An SRV answer of two records (one target compressed into the question name) and one A record
// in the additional section.
Message srv_answer() {
    Message m;
    m.header(response, 1, 2, 0, 1).question("_tls._tcp.svc.test", dns_type_srv);
    m.pointer(question_offset).fixed(dns_type_srv, 300, 6 + 10).u16(0).u16(10).u16(8443).name("web.test");
    // "b" + pointer to "svc.test" inside the question (offset 12 + 5 + 5).
    m.pointer(question_offset).fixed(dns_type_srv, 200, 6 + 4).u16(0).u16(0).u16(9443);
    m.labels("b").pointer(question_offset + 10);
    m.name("web.test").fixed(dns_type_a, 42, 4).raw({127, 0, 0, 5});
    return m;
}

std::string address_text(const passgate::DnsAddressRecord& record, std::uint16_t port) {
    return passgate::dns_record_address(record, port).to_string();
}

}  // namespace

TEST_CASE("DNS answer: A record with a compressed owner name", "[dns]") {
    const Message m = a_answer();
    const auto answer = parse_dns_answer(m.bytes, dns_type_a);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 1);
    CHECK(answer.addresses[0].family == AF_INET);
    CHECK(answer.addresses[0].ttl == 42);
    CHECK(address_text(answer.addresses[0], 8443) == "127.0.0.5:8443");
    CHECK(answer.services.empty());
}

TEST_CASE("DNS answer: AAAA records in wire order", "[dns]") {
    Message m;
    m.header(response, 1, 2).question("web.test", dns_type_aaaa);
    m.pointer(question_offset).fixed(dns_type_aaaa, 7, 16).raw({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    m.pointer(question_offset).fixed(dns_type_aaaa, 9, 16)
        .raw({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5});
    const auto answer = parse_dns_answer(m.bytes, dns_type_aaaa);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 2);
    CHECK(answer.addresses[0].family == AF_INET6);
    CHECK(address_text(answer.addresses[0], 443) == "[::1]:443");
    CHECK(answer.addresses[0].ttl == 7);
    CHECK(address_text(answer.addresses[1], 443) == "[2001:db8::5]:443");
    CHECK(answer.addresses[1].ttl == 9);
}

TEST_CASE("DNS answer: a CNAME chain is skipped and the records at its end are taken", "[dns]") {
    Message m;
    m.header(response, 1, 3).question("alias.test", dns_type_a);
    const std::size_t cname_rdata = m.size() + 2 + 10;
    m.pointer(question_offset).fixed(dns_type_cname, 60, 6).labels("mid").pointer(question_offset + 6);
    const std::size_t second_rdata = m.size() + 2 + 10;
    m.pointer(cname_rdata).fixed(dns_type_cname, 60, 6).labels("real").u8(0);
    m.pointer(second_rdata).fixed(dns_type_a, 30, 4).raw({10, 0, 0, 2});
    const auto answer = parse_dns_answer(m.bytes, dns_type_a);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "10.0.0.2:1");
    CHECK(answer.addresses[0].ttl == 30);
}

TEST_CASE("DNS answer: records owned by another name than the question are not taken", "[dns]") {
    // One record for the name asked, one for another name (what an off-path attacker or a confused
    // server adds): only the first is an answer.
    Message m;
    m.header(response, 1, 2).question("web.test", dns_type_a);
    m.pointer(question_offset).fixed(dns_type_a, 42, 4).raw({10, 0, 0, 1});
    m.name("evil.test").fixed(dns_type_a, 42, 4).raw({10, 6, 6, 6});
    auto answer = parse_dns_answer(m.bytes, dns_type_a);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "10.0.0.1:1");

    // Only records for another name: an error (the last good set stays), not an empty pool.
    Message other;
    other.header(response, 1, 1).question("web.test", dns_type_a);
    other.name("evil.test").fixed(dns_type_a, 42, 4).raw({10, 6, 6, 6});
    answer = parse_dns_answer(other.bytes, dns_type_a);
    CHECK(answer.error == "answer name mismatch");
    CHECK(answer.addresses.empty());

    // Names compare case-insensitively (RFC 4343): "WEB.Test" owns answers to "web.test".
    Message upper;
    upper.header(response, 1, 1).question("web.test", dns_type_a);
    upper.name("WEB.Test").fixed(dns_type_a, 42, 4).raw({10, 0, 0, 2});
    answer = parse_dns_answer(upper.bytes, dns_type_a);
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "10.0.0.2:1");

    // SRV too: a record for another service name is not taken.
    Message srv;
    srv.header(response, 1, 2).question("_tls._tcp.svc.test", dns_type_srv);
    srv.pointer(question_offset).fixed(dns_type_srv, 60, 6 + 10).u16(0).u16(1).u16(8443).name("web.test");
    srv.name("_tls._tcp.evil.test").fixed(dns_type_srv, 60, 6 + 10).u16(0).u16(1).u16(9999).name("bad.test");
    answer = parse_dns_answer(srv.bytes, dns_type_srv);
    REQUIRE(answer.services.size() == 1);
    CHECK(answer.services[0].target == "web.test");
}

TEST_CASE("DNS answer: only the CNAME chain from the question name is followed", "[dns]") {
    // alias.test CNAME real.test; records for real.test count, records for a name that no chain
    // link names do not, even though they follow a CNAME record.
    Message m;
    m.header(response, 1, 4).question("alias.test", dns_type_a);
    m.name("unrelated.test").fixed(dns_type_cname, 60, 12).name("other.test");
    m.pointer(question_offset).fixed(dns_type_cname, 60, 11).name("real.test");
    m.name("real.test").fixed(dns_type_a, 30, 4).raw({10, 0, 0, 2});
    m.name("other.test").fixed(dns_type_a, 30, 4).raw({10, 6, 6, 6});
    auto answer = parse_dns_answer(m.bytes, dns_type_a);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "10.0.0.2:1");

    // The chain's records in any order: the A record first, then the CNAME.
    Message reordered;
    reordered.header(response, 1, 2).question("alias.test", dns_type_a);
    reordered.name("real.test").fixed(dns_type_a, 30, 4).raw({10, 0, 0, 3});
    reordered.pointer(question_offset).fixed(dns_type_cname, 60, 11).name("real.test");
    answer = parse_dns_answer(reordered.bytes, dns_type_a);
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "10.0.0.3:1");

    // With a CNAME, a record still owned by the question name is not the answer: the alias has
    // no records of its own (RFC 1034 3.6.2).
    Message aliased;
    aliased.header(response, 1, 2).question("alias.test", dns_type_a);
    aliased.pointer(question_offset).fixed(dns_type_cname, 60, 11).name("real.test");
    aliased.pointer(question_offset).fixed(dns_type_a, 30, 4).raw({10, 6, 6, 6});
    CHECK(parse_dns_answer(aliased.bytes, dns_type_a).error == "answer name mismatch");
}

TEST_CASE("DNS answer: CNAME loops and overlong chains are errors", "[dns]") {
    Message self;
    self.header(response, 1, 1).question("alias.test", dns_type_a);
    self.pointer(question_offset).fixed(dns_type_cname, 60, 2).pointer(question_offset);
    CHECK(parse_dns_answer(self.bytes, dns_type_a).error == "CNAME loop");

    Message two;
    two.header(response, 1, 2).question("a.test", dns_type_a);
    two.pointer(question_offset).fixed(dns_type_cname, 60, 8).name("b.test");
    two.name("b.test").fixed(dns_type_cname, 60, 8).name("a.test");
    CHECK(parse_dns_answer(two.bytes, dns_type_a).error == "CNAME loop");

    // c0.test -> c1.test -> ... -> cN.test, then an A record for cN.test: 8 links are followed,
    // 9 are too many.
    auto chain = [](unsigned links) {
        Message m;
        m.header(response, 1, links + 1).question("c0.test", dns_type_a);
        for (unsigned link = 0; link < links; ++link)
            m.name("c" + std::to_string(link) + ".test").fixed(dns_type_cname, 60, 9)
                .name("c" + std::to_string(link + 1) + ".test");
        m.name("c" + std::to_string(links) + ".test").fixed(dns_type_a, 30, 4).raw({10, 0, 0, 8});
        return m;
    };
    const auto eight = parse_dns_answer(chain(8).bytes, dns_type_a);
    REQUIRE(eight.ok());
    CHECK(eight.addresses.size() == 1);
    CHECK(parse_dns_answer(chain(9).bytes, dns_type_a).error == "CNAME chain too long");

    // A CNAME target that does not fill its RDATA exactly is malformed.
    Message loose;
    loose.header(response, 1, 1).question("alias.test", dns_type_a);
    loose.pointer(question_offset).fixed(dns_type_cname, 60, 12).name("real.test").u8(0);
    CHECK(parse_dns_answer(loose.bytes, dns_type_a).error == "bad record length");
}

TEST_CASE("DNS answer: NODATA is an empty success, NXDOMAIN and other RCODEs are errors", "[dns]") {
    Message nodata;
    nodata.header(response, 1, 0).question("b.test", dns_type_aaaa);
    auto answer = parse_dns_answer(nodata.bytes, dns_type_aaaa);
    CHECK(answer.ok());
    CHECK(answer.addresses.empty());

    // Only a CNAME, nothing of the asked type: NODATA too.
    Message cname_only;
    cname_only.header(response, 1, 1).question("alias.test", dns_type_a);
    cname_only.pointer(question_offset).fixed(dns_type_cname, 60, 11).name("real.test");
    answer = parse_dns_answer(cname_only.bytes, dns_type_a);
    CHECK(answer.ok());
    CHECK(answer.addresses.empty());

    const std::pair<unsigned, const char*> rcodes[] = {
        {1, "FORMERR"}, {2, "SERVFAIL"}, {3, "NXDOMAIN"}, {4, "NOTIMP"}, {5, "REFUSED"}, {9, "RCODE 9"}};
    for (const auto& [rcode, name] : rcodes) {
        Message m;
        m.header(response | rcode, 1, 0).question("missing.test", dns_type_a);
        CHECK(parse_dns_answer(m.bytes, dns_type_a).error == name);
    }
    CHECK(passgate::dns_rcode_name(0) == "NOERROR");
    CHECK(passgate::dns_rcode_name(15) == "RCODE 15");
}

TEST_CASE("DNS answer: header flags and the question are checked", "[dns]") {
    Message query;
    query.header(0x0100, 1, 0).question("web.test", dns_type_a);
    CHECK(parse_dns_answer(query.bytes, dns_type_a).error == "not a response");

    Message opcode;
    opcode.header(response | (2u << 11), 1, 0).question("web.test", dns_type_a);
    CHECK(parse_dns_answer(opcode.bytes, dns_type_a).error == "unexpected opcode");

    Message truncated_flag;
    truncated_flag.header(response | 0x0200, 1, 0).question("web.test", dns_type_a);
    CHECK(parse_dns_answer(truncated_flag.bytes, dns_type_a).error == "TC bit set");

    for (const unsigned count : {0u, 2u}) {
        Message m;
        m.header(response, count, 0).question("web.test", dns_type_a).question("web.test", dns_type_a);
        CHECK(parse_dns_answer(m.bytes, dns_type_a).error == "bad question count");
    }

    const Message a = a_answer();
    CHECK(parse_dns_answer(a.bytes, dns_type_aaaa).error == "question mismatch");
    CHECK(parse_dns_answer(a.bytes, dns_type_srv).error == "question mismatch");
    CHECK(parse_dns_answer(a.bytes, dns_type_cname).error == "unsupported query type");

    Message chaos;
    chaos.header(response, 1, 0).question("web.test", dns_type_a, 3);
    CHECK(parse_dns_answer(chaos.bytes, dns_type_a).error == "question mismatch");
}

TEST_CASE("DNS answer: records of another class or type, and in other sections, are skipped", "[dns]") {
    Message m;
    m.header(response, 1, 2, 1, 1).question("web.test", dns_type_a);
    m.pointer(question_offset).fixed(dns_type_a, 42, 4, 3).raw({10, 9, 9, 9});  // class CH
    m.pointer(question_offset).fixed(dns_type_a, 42, 4).raw({10, 0, 0, 1});
    m.pointer(question_offset).fixed(dns_type_a, 42, 4).raw({10, 0, 0, 3});  // authority
    m.u8(0).fixed(41, 0, 0, 1232);                                           // OPT, additional
    const auto answer = parse_dns_answer(m.bytes, dns_type_a);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "10.0.0.1:1");

    // Bytes after the last declared record are ignored.
    Message trailing = a_answer();
    trailing.raw({1, 2, 3});
    CHECK(parse_dns_answer(trailing.bytes, dns_type_a).addresses.size() == 1);
}

TEST_CASE("DNS answer: a TTL with the top bit set reads as zero", "[dns]") {
    Message m;
    m.header(response, 1, 2).question("web.test", dns_type_a);
    m.pointer(question_offset).fixed(dns_type_a, 0x80000000u, 4).raw({10, 0, 0, 1});
    m.pointer(question_offset).fixed(dns_type_a, 0x7FFFFFFFu, 4).raw({10, 0, 0, 2});
    const auto answer = parse_dns_answer(m.bytes, dns_type_a);
    REQUIRE(answer.addresses.size() == 2);
    CHECK(answer.addresses[0].ttl == 0);
    CHECK(answer.addresses[1].ttl == 0x7FFFFFFFu);
}

TEST_CASE("DNS answer: address records of the wrong length", "[dns]") {
    for (const unsigned length : {0u, 3u, 5u, 16u}) {
        Message m;
        m.header(response, 1, 1).question("web.test", dns_type_a);
        m.pointer(question_offset).fixed(dns_type_a, 1, length).raw(Bytes(length, 1));
        CHECK(parse_dns_answer(m.bytes, dns_type_a).error == "bad record length");
    }
    Message m;
    m.header(response, 1, 1).question("web.test", dns_type_aaaa);
    m.pointer(question_offset).fixed(dns_type_aaaa, 1, 4).raw({1, 2, 3, 4});
    CHECK(parse_dns_answer(m.bytes, dns_type_aaaa).error == "bad record length");
}

TEST_CASE("DNS answer: SRV records", "[dns]") {
    const Message m = srv_answer();
    const auto answer = parse_dns_answer(m.bytes, dns_type_srv);
    REQUIRE(answer.ok());
    CHECK(answer.addresses.empty());  // the additional A record is not an answer
    REQUIRE(answer.services.size() == 2);
    CHECK(answer.services[0] == passgate::DnsSrvRecord{0, 10, 8443, "web.test", 300});
    CHECK(answer.services[1] == passgate::DnsSrvRecord{0, 0, 9443, "b.svc.test", 200});
}

TEST_CASE("DNS answer: SRV targets are lower-cased and checked", "[dns]") {
    auto with_target = [](const std::function<void(Message&)>& write_target, unsigned rdlength) {
        Message m;
        m.header(response, 1, 1).question("_s._tcp.x.test", dns_type_srv);
        m.pointer(question_offset).fixed(dns_type_srv, 5, rdlength).u16(1).u16(2).u16(3);
        write_target(m);
        return parse_dns_answer(m.bytes, dns_type_srv);
    };
    auto answer = with_target([](Message& m) { m.name("Web-1.EXAMPLE_x.test"); }, 6 + 22);
    REQUIRE(answer.ok());
    REQUIRE(answer.services.size() == 1);
    CHECK(answer.services[0].target == "web-1.example_x.test");

    // "." means "no service here": dropped, and the answer is an empty success.
    answer = with_target([](Message& m) { m.u8(0); }, 6 + 1);
    CHECK(answer.ok());
    CHECK(answer.services.empty());

    CHECK(with_target([](Message& m) { m.name("a b.test"); }, 6 + 10).error == "bad SRV target");
    CHECK(with_target([](Message& m) { m.name("a.te\xFFst"); }, 6 + 9).error == "bad SRV target");
    // RDLENGTH shorter than the target, longer than it, or too short for the fixed fields.
    CHECK(with_target([](Message& m) { m.name("web.test"); }, 6 + 9).error == "bad record length");
    CHECK(with_target([](Message& m) { m.name("web.test").u8(0); }, 6 + 11).error == "bad record length");
    CHECK(with_target([](Message&) {}, 5).error == "bad record length");
    CHECK(with_target([](Message&) {}, 6 + 1).error == "truncated");
}

TEST_CASE("DNS answer: name compression pointers only point backwards", "[dns]") {
    auto with_owner = [](const std::function<void(Message&)>& write_owner) {
        Message m;
        m.header(response, 1, 1).question("web.test", dns_type_a);
        write_owner(m);
        m.fixed(dns_type_a, 1, 4).raw({10, 0, 0, 1});
        return parse_dns_answer(m.bytes, dns_type_a);
    };
    // To itself.
    CHECK(with_owner([](Message& m) { m.pointer(m.size()); }).error == "bad name compression");
    // Forwards (past itself, into the record that follows).
    CHECK(with_owner([](Message& m) { m.pointer(m.size() + 4); }).error == "bad name compression");
    // Into the header.
    CHECK(with_owner([](Message& m) { m.pointer(4); }).error == "bad name compression");
    // Back to its own first label: "x" then a pointer to "x" would loop.
    CHECK(with_owner([](Message& m) { m.labels("x").pointer(m.size() - 2); }).error ==
          "bad name compression");
    // Back into the middle of the question name, then on: a well-formed name ("test"), though
    // not the name asked, so its record is not an answer.
    CHECK(with_owner([](Message& m) { m.pointer(question_offset + 4); }).error == "answer name mismatch");
    // A chain of two backward pointers is fine ("a.web.test", again another name).
    CHECK(with_owner([](Message& m) { m.labels("a").pointer(question_offset); }).error ==
          "answer name mismatch");
    // A pointer to the question name itself: the answer.
    CHECK(with_owner([](Message& m) { m.pointer(question_offset); }).addresses.size() == 1);
    // Beyond the end of the message.
    Message cut;
    cut.header(response, 1, 1).question("web.test", dns_type_a).u8(0xC0);
    CHECK(parse_dns_answer(cut.bytes, dns_type_a).error == "truncated");
}

TEST_CASE("DNS answer: a pointer loop built of two names is rejected", "[dns]") {
    // Two names pointing at each other: one of the two pointers must point forwards, and a
    // forward pointer is rejected wherever the walk meets it.
    Message m;
    m.header(response, 1, 1).question("web.test", dns_type_a);
    const std::size_t owner = m.size();
    m.labels("a").pointer(owner + 4);  // forward, to the pointer below
    m.pointer(owner);                  // the second "name": back to the first
    m.fixed(dns_type_a, 1, 4).raw({10, 0, 0, 1});
    CHECK(parse_dns_answer(m.bytes, dns_type_a).error == "bad name compression");
}

TEST_CASE("DNS answer: malformed names", "[dns]") {
    // Label types 0x40 and 0x80.
    for (const unsigned kind : {0x40u, 0x80u}) {
        Message m;
        m.header(response, 1, 0).u8(kind | 1).u8('a').u8(0).u16(dns_type_a).u16(1);
        CHECK(parse_dns_answer(m.bytes, dns_type_a).error == "bad name");
    }
    // 255 octets is the limit: four 62-byte labels (4 * 63 = 252) plus "ab" (3) and the root (1)
    // is 256.
    const std::string label(62, 'x');
    Message too_long;
    too_long.header(response, 1, 0).question(label + "." + label + "." + label + "." + label + ".ab",
                                             dns_type_a);
    CHECK(parse_dns_answer(too_long.bytes, dns_type_a).error == "bad name");
    Message longest;
    longest.header(response, 1, 0).question(label + "." + label + "." + label + "." + label + ".a",
                                            dns_type_a);
    CHECK(parse_dns_answer(longest.bytes, dns_type_a).ok());
    // A long name made by compression counts its pointed-to labels too: 63 + 194 octets.
    Message compressed;
    compressed.header(response, 1, 1).question(label + "." + label + "." + label + ".abc", dns_type_a);
    compressed.labels(label).pointer(question_offset).fixed(dns_type_a, 1, 4).raw({1, 2, 3, 4});
    CHECK(parse_dns_answer(compressed.bytes, dns_type_a).error == "bad name");
}

TEST_CASE("DNS answer: every truncation of a well-formed answer is an error", "[dns]") {
    const std::pair<Message, std::uint16_t> cases[] = {{a_answer(), dns_type_a},
                                                       {srv_answer(), dns_type_srv}};
    for (const auto& [message, qtype] : cases) {
        REQUIRE(parse_dns_answer(message.bytes, qtype).ok());
        for (std::size_t cut = 0; cut < message.size(); ++cut) {
            const std::span<const std::uint8_t> prefix(message.bytes.data(), cut);
            const auto answer = parse_dns_answer(prefix, qtype);
            INFO("cut at " << cut << " of " << message.size());
            CHECK(answer.error == "truncated");
            CHECK(answer.addresses.empty());
            CHECK(answer.services.empty());
        }
    }
}

TEST_CASE("DNS answer: an answer count larger than the records present is truncated", "[dns]") {
    Message m = a_answer();
    m.bytes[7] = 2;  // ANCOUNT 2, one record present
    CHECK(parse_dns_answer(m.bytes, dns_type_a).error == "truncated");
    m.bytes[7] = 1;
    m.bytes[11] = 1;  // ARCOUNT 1, none present
    CHECK(parse_dns_answer(m.bytes, dns_type_a).error == "truncated");
}

TEST_CASE("DNS answer: real dnsmasq answers from the fuzz corpus", "[dns]") {
    const std::string corpus =
        integration::required_env("PASSGATE_SOURCE_ROOT") + "/fuzz/corpus/dns_answer/";
    auto load = [&](const std::string& name) { return integration::read_binary_file(corpus + name); };

    auto answer = parse_dns_answer(load("a-web.bin"), dns_type_a);
    REQUIRE(answer.ok());
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "127.0.0.5:1");
    CHECK(answer.addresses[0].ttl == 42);

    answer = parse_dns_answer(load("aaaa-web.bin"), dns_type_aaaa);
    REQUIRE(answer.addresses.size() == 2);
    CHECK(address_text(answer.addresses[0], 1) == "[::1]:1");
    CHECK(address_text(answer.addresses[1], 1) == "[2001:db8::5]:1");

    CHECK(parse_dns_answer(load("a-many.bin"), dns_type_a).addresses.size() == 30);
    answer = parse_dns_answer(load("a-cname.bin"), dns_type_a);
    REQUIRE(answer.addresses.size() == 1);
    CHECK(address_text(answer.addresses[0], 1) == "127.0.0.5:1");
    answer = parse_dns_answer(load("aaaa-nodata.bin"), dns_type_aaaa);
    CHECK(answer.ok());
    CHECK(answer.addresses.empty());
    CHECK(parse_dns_answer(load("a-nxdomain.bin"), dns_type_a).error == "NXDOMAIN");
    CHECK(parse_dns_answer(load("srv-nxdomain.bin"), dns_type_srv).error == "NXDOMAIN");
    answer = parse_dns_answer(load("srv-unavailable.bin"), dns_type_srv);
    CHECK(answer.ok());
    CHECK(answer.services.empty());

    answer = parse_dns_answer(load("srv-tls.bin"), dns_type_srv);
    REQUIRE(answer.ok());
    REQUIRE(answer.services.size() == 3);
    std::vector<std::string> seen;
    for (const auto& record : answer.services) {
        seen.push_back(record.target + " " + std::to_string(record.priority) + " " +
                       std::to_string(record.weight) + " " + std::to_string(record.port));
        CHECK(record.ttl == 42);
    }
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::string>{"b.test 0 0 9443", "c.test 5 5 7000", "web.test 0 10 8443"});

    CHECK(parse_dns_answer(load("hand-pointer-loop.bin"), dns_type_a).error == "bad name compression");
    answer = parse_dns_answer(load("hand-srv-compressed-target.bin"), dns_type_srv);
    REQUIRE(answer.services.size() == 1);
    CHECK(answer.services[0].target == "web.x.test");
}
