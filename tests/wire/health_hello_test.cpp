// Tests for the bytes of the tls health check (src/wire/health_hello.h). The hello is read back with
// passgate's own ClientHello parser and with a small extension walker below; that a real server
// answers it is shown in health_check_test.cpp against openssl s_server.

#include "src/wire/client_hello.h"
#include "src/wire/health_hello.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

using namespace passgate;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t kCap = 64 * 1024;

HelloEntropy fixed_entropy() {
    HelloEntropy entropy;
    for (std::size_t i = 0; i < 32; ++i) {
        entropy.random[i] = static_cast<std::uint8_t>(i);
        entropy.session_id[i] = static_cast<std::uint8_t>(0x40 + i);
        entropy.key_share[i] = static_cast<std::uint8_t>(0x80 + i);
    }
    return entropy;
}

unsigned u16(const Bytes& bytes, std::size_t at) {
    REQUIRE(at + 2 <= bytes.size());
    return static_cast<unsigned>(bytes[at] << 8 | bytes[at + 1]);
}

// The hello's fields, walked with every length checked against the record.
struct Walked {
    unsigned record_version = 0;
    unsigned legacy_version = 0;
    Bytes random, session_id;
    std::vector<unsigned> cipher_suites;
    std::map<unsigned, Bytes> extensions;
};

Walked walk(const Bytes& hello) {
    Walked out;
    REQUIRE(hello.size() >= 9);
    REQUIRE(hello[0] == 22);
    out.record_version = u16(hello, 1);
    REQUIRE(u16(hello, 3) == hello.size() - 5);  // one record carries the whole hello
    REQUIRE(hello[5] == 1);                      // client_hello
    const std::size_t message = static_cast<std::size_t>(hello[6] << 16 | hello[7] << 8 | hello[8]);
    REQUIRE(message == hello.size() - 9);
    std::size_t at = 9;
    out.legacy_version = u16(hello, at);
    at += 2;
    out.random.assign(hello.begin() + 11, hello.begin() + 43);
    at = 43;
    const std::size_t session_length = hello[at++];
    REQUIRE(at + session_length <= hello.size());
    out.session_id.assign(hello.begin() + static_cast<long>(at), hello.begin() + static_cast<long>(at + session_length));
    at += session_length;
    const std::size_t suites_length = u16(hello, at);
    at += 2;
    REQUIRE(suites_length % 2 == 0);
    for (std::size_t i = 0; i < suites_length; i += 2) out.cipher_suites.push_back(u16(hello, at + i));
    at += suites_length;
    REQUIRE(at + 2 <= hello.size());
    CHECK(hello[at] == 1);      // one compression method
    CHECK(hello[at + 1] == 0);  // null
    at += 2;
    const std::size_t extensions_end = at + 2 + u16(hello, at);
    REQUIRE(extensions_end == hello.size());
    at += 2;
    while (at < extensions_end) {
        const unsigned type = u16(hello, at);
        const std::size_t length = u16(hello, at + 2);
        at += 4;
        REQUIRE(at + length <= extensions_end);
        REQUIRE_FALSE(out.extensions.contains(type));
        out.extensions[type] = Bytes(hello.begin() + static_cast<long>(at),
                                     hello.begin() + static_cast<long>(at + length));
        at += length;
    }
    return out;
}

}  // namespace

TEST_CASE("health hello: passgate's own parser reads it back, with the SNI", "[health]") {
    const Bytes hello = make_health_client_hello("backend.example.com", fixed_entropy());
    const HelloParse parse = parse_client_hello(hello, kCap);
    REQUIRE(parse.status == HelloParse::Status::complete);
    CHECK(parse.hello.sni == "backend.example.com");
    CHECK(parse.hello.alpn.empty());
    CHECK(parse.hello.record_bytes == hello.size());
}

TEST_CASE("health hello: no server_name extension when the SNI is empty", "[health]") {
    const Bytes hello = make_health_client_hello("", fixed_entropy());
    const HelloParse parse = parse_client_hello(hello, kCap);
    REQUIRE(parse.status == HelloParse::Status::complete);
    CHECK(parse.hello.sni.empty());
    CHECK_FALSE(walk(hello).extensions.contains(0));
}

TEST_CASE("health hello: a TLS 1.3-capable hello in a TLS record", "[health]") {
    const HelloEntropy entropy = fixed_entropy();
    const Bytes hello = make_health_client_hello("a.example", entropy);
    const Walked walked = walk(hello);
    CHECK(walked.record_version == 0x0301);
    CHECK(walked.legacy_version == 0x0303);
    CHECK(walked.random == Bytes(entropy.random.begin(), entropy.random.end()));
    CHECK(walked.session_id == Bytes(entropy.session_id.begin(), entropy.session_id.end()));
    for (const unsigned suite : {0x1301U, 0x1302U, 0x1303U, 0xc02bU, 0xc02fU})
        CHECK(std::find(walked.cipher_suites.begin(), walked.cipher_suites.end(), suite) !=
              walked.cipher_suites.end());

    // server_name: list of one host_name.
    const Bytes sni = {0, 12, 0, 0, 9, 'a', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'};
    CHECK(walked.extensions.at(0) == sni);
    // supported_versions: TLS 1.3 first, then 1.2.
    CHECK(walked.extensions.at(43) == Bytes{4, 0x03, 0x04, 0x03, 0x03});
    // supported_groups starts with x25519 then secp256r1.
    const Bytes& groups = walked.extensions.at(10);
    REQUIRE(groups.size() >= 6);
    CHECK(u16(groups, 0) == groups.size() - 2);
    CHECK(u16(groups, 2) == 0x001d);
    CHECK(u16(groups, 4) == 0x0017);
    // key_share: one x25519 share carrying the 32 entropy bytes.
    Bytes key_share(6 + 32);
    const std::uint8_t header[] = {0, 36, 0x00, 0x1d, 0, 32};  // list length, x25519, key length
    std::copy(std::begin(header), std::end(header), key_share.begin());
    std::copy(entropy.key_share.begin(), entropy.key_share.end(), key_share.begin() + 6);
    CHECK(walked.extensions.at(51) == key_share);
    // signature_algorithms include ecdsa_secp256r1_sha256 and rsa_pss_rsae_sha256.
    const Bytes& algorithms = walked.extensions.at(13);
    REQUIRE(algorithms.size() >= 2);
    CHECK(u16(algorithms, 0) == algorithms.size() - 2);
    std::vector<unsigned> listed;
    for (std::size_t i = 2; i + 1 < algorithms.size(); i += 2) listed.push_back(u16(algorithms, i));
    CHECK(std::find(listed.begin(), listed.end(), 0x0403U) != listed.end());
    CHECK(std::find(listed.begin(), listed.end(), 0x0804U) != listed.end());
}

TEST_CASE("health hello: fresh entropy differs between hellos, the layout does not", "[health]") {
    const Bytes first = make_health_client_hello("a.example");
    const Bytes second = make_health_client_hello("a.example");
    REQUIRE(first.size() == second.size());
    CHECK(first != second);
    CHECK(walk(first).random != walk(second).random);
    CHECK(parse_client_hello(first, kCap).hello.sni == "a.example");
}

TEST_CASE("health hello: a 253-byte SNI still parses", "[health]") {
    // Three 63-byte labels and a 61-byte one: the longest DNS name.
    const std::string name = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                             std::string(63, 'c') + "." + std::string(61, 'd');
    REQUIRE(name.size() == 253);
    const HelloParse parse = parse_client_hello(make_health_client_hello(name, fixed_entropy()), kCap);
    REQUIRE(parse.status == HelloParse::Status::complete);
    CHECK(parse.hello.sni == name);
}

TEST_CASE("health reply: the first bytes decide, with at most six of them", "[health]") {
    using R = ServerReply;
    const auto classify = [](Bytes bytes) { return classify_server_reply(bytes); };
    CHECK(classify({}) == R::need_more);
    // ServerHello (and HelloRetryRequest, also type 2) in a handshake record.
    CHECK(classify({22}) == R::need_more);
    CHECK(classify({22, 3, 3, 0, 0x7a}) == R::need_more);
    CHECK(classify({22, 3, 3, 0, 0x7a, 2}) == R::server_hello);
    CHECK(classify({22, 3, 1, 0, 0x7a, 2, 0, 0, 0x76, 3, 3}) == R::server_hello);
    // Alerts, whatever follows.
    CHECK(classify({21}) == R::alert);
    CHECK(classify({21, 3, 3, 0, 2, 2, 40}) == R::alert);
    // Another handshake message, a bad version, an empty record, another record type, not TLS.
    CHECK(classify({22, 3, 3, 0, 4, 1}) == R::not_server_hello);
    CHECK(classify({22, 2}) == R::not_server_hello);
    CHECK(classify({22, 3, 3, 0, 0}) == R::not_server_hello);
    CHECK(classify({23, 3, 3, 0, 5, 2}) == R::not_server_hello);
    CHECK(classify({'H', 'T', 'T', 'P', '/', '1'}) == R::not_server_hello);
    CHECK(classify({'S'}) == R::not_server_hello);
}
