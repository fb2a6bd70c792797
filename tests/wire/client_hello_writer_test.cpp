// Tests for the one ClientHello writer (src/wire/client_hello_writer.h): what it writes, the data
// path's parser (src/wire/client_hello.h) reads back, whatever the record size.

#include "src/wire/client_hello.h"
#include "src/wire/client_hello_writer.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

using namespace passgate;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint16_t kSuites[] = {0x1301, 0xc02f};

ClientHello read_back(const Bytes& records, std::size_t want_records) {
    const HelloParse parse = parse_client_hello(records, records.size(), 1'000'000);
    INFO("hello_error=" << hello_error_name(parse.error));
    REQUIRE(parse.status == HelloParse::Status::complete);
    CHECK(parse.hello.record_bytes == records.size());
    CHECK(parse.hello.records == want_records);
    return parse.hello;
}

std::size_t u16_at(const Bytes& bytes, std::size_t at) {
    return static_cast<std::size_t>(bytes[at] << 8 | bytes[at + 1]);
}

// Walks the record headers: each is a handshake record of version 0x0301 whose length fits, and
// none is longer than `max_payload`. Returns how many there are.
std::size_t count_records(const Bytes& records, std::size_t max_payload) {
    std::size_t at = 0;
    std::size_t count = 0;
    while (at < records.size()) {
        REQUIRE(at + 5 <= records.size());
        CHECK(records[at] == 22);
        CHECK(u16_at(records, at + 1) == 0x0301);
        const std::size_t length = u16_at(records, at + 3);
        CHECK(length >= 1);
        CHECK(length <= max_payload);
        at += 5 + length;
        ++count;
    }
    CHECK(at == records.size());
    return count;
}

}  // namespace

TEST_CASE("writer: SNI and ALPN read back by the parser", "[client_hello_writer]") {
    const std::vector<std::string> alpn = {"h2", "http/1.1", std::string(255, 'p')};
    ClientHelloSpec spec;
    spec.cipher_suites = kSuites;
    spec.sni = "api.example.com";
    spec.alpn = alpn;
    const Bytes records = write_client_hello(spec);
    CHECK(count_records(records, max_tls_record_payload) == 1);
    const ClientHello hello = read_back(records, 1);
    CHECK(hello.sni == "api.example.com");
    CHECK(hello.alpn == alpn);
}

TEST_CASE("writer: without SNI, ALPN or extensions", "[client_hello_writer]") {
    ClientHelloSpec spec;
    spec.cipher_suites = kSuites;
    const Bytes records = write_client_hello(spec);
    const ClientHello hello = read_back(records, 1);
    CHECK(hello.sni.empty());
    CHECK(hello.alpn.empty());
    // No extensions block at all: the body ends with the compression methods (one, null).
    REQUIRE(records.size() >= 2);
    CHECK(records[records.size() - 2] == 1);
    CHECK(records[records.size() - 1] == 0);
}

TEST_CASE("writer: fixed fields and extra extensions in order", "[client_hello_writer]") {
    Bytes random(32), session_id(32);
    for (std::size_t i = 0; i < 32; ++i) {
        random[i] = static_cast<std::uint8_t>(i);
        session_id[i] = static_cast<std::uint8_t>(0x40 + i);
    }
    const std::vector<TlsExtension> extra = {{10, {0x00, 0x02, 0x00, 0x1d}}, {23, {}}};
    ClientHelloSpec spec;
    spec.random = random;
    spec.session_id = session_id;
    spec.cipher_suites = kSuites;
    spec.sni = "a";
    spec.extensions = extra;
    const Bytes records = write_client_hello(spec);
    CHECK(read_back(records, 1).sni == "a");
    // record(5) type(1) length(3) legacy_version(2) random(32) session_id(1+32) suites(2+4)
    // compression(2) extensions(2), then server_name, then the extra ones as given.
    REQUIRE(records.size() > 85);
    CHECK(u16_at(records, 9) == 0x0303);
    CHECK(Bytes(records.begin() + 11, records.begin() + 43) == random);
    CHECK(records[43] == 32);
    CHECK(Bytes(records.begin() + 44, records.begin() + 76) == session_id);
    CHECK(u16_at(records, 76) == 4);
    CHECK(u16_at(records, 78) == 0x1301);
    CHECK(u16_at(records, 80) == 0xc02f);
    CHECK(u16_at(records, 84) == records.size() - 86);  // the extensions block ends the hello
    const std::size_t server_name = 86;
    CHECK(u16_at(records, server_name) == 0);
    const std::size_t groups = server_name + 4 + u16_at(records, server_name + 2);
    CHECK(u16_at(records, groups) == 10);
    CHECK(u16_at(records, groups + 2) == 4);
    const std::size_t master_secret = groups + 4 + 4;
    CHECK(u16_at(records, master_secret) == 23);
    CHECK(u16_at(records, master_secret + 2) == 0);
    CHECK(master_secret + 4 == records.size());
}

TEST_CASE("writer: records split at the record size, read back the same", "[client_hello_writer]") {
    std::vector<std::string> alpn;
    for (int i = 0; i < 8; ++i) alpn.push_back("proto-" + std::to_string(i));
    ClientHelloSpec spec;
    spec.cipher_suites = kSuites;
    spec.sni = "split.example.com";
    spec.alpn = alpn;
    const Bytes one = write_client_hello(spec);
    const std::size_t message = one.size() - 5;
    for (const std::size_t payload : {std::size_t{1}, std::size_t{4}, std::size_t{7}, message - 1, message}) {
        CAPTURE(payload);
        spec.record_payload = payload;
        const Bytes records = write_client_hello(spec);
        const std::size_t want = (message + payload - 1) / payload;
        CHECK(count_records(records, payload) == want);
        CHECK(records.size() == message + 5 * want);
        const ClientHello hello = read_back(records, want);
        CHECK(hello.sni == "split.example.com");
        CHECK(hello.alpn == alpn);
    }
}

TEST_CASE("writer: a hello over 2^14 bytes takes two records", "[client_hello_writer]") {
    // What `passgate route --alpn` may ask for: an ALPN list the data path refuses (over
    // max_alpn_list_bytes) still has to be written for the parser to refuse it.
    const std::vector<std::string> alpn(100, std::string(200, 'x'));
    ClientHelloSpec spec;
    spec.cipher_suites = kSuites;
    spec.sni = "big.example.com";
    spec.alpn = alpn;
    const Bytes records = write_client_hello(spec);
    CHECK(count_records(records, max_tls_record_payload) == 2);
    const HelloParse parse = parse_client_hello(records, records.size());
    CHECK(parse.status == HelloParse::Status::rejected);
    CHECK(parse.error == HelloError::bad_alpn);

    const std::vector<std::string> small(2, std::string(200, 'x'));
    spec.alpn = small;
    spec.extensions = {};
    const std::vector<TlsExtension> padding = {{21, Bytes(20000, 0)}};
    spec.extensions = padding;
    const Bytes padded = write_client_hello(spec);
    CHECK(count_records(padded, max_tls_record_payload) == 2);
    const ClientHello hello = read_back(padded, 2);
    CHECK(hello.sni == "big.example.com");
    CHECK(hello.alpn == small);
}
