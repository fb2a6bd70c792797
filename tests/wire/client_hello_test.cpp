// Tests for the TLS ClientHello reader (src/wire/client_hello.h).
//
// Real captures come from $PASSGATE_CLIENTHELLOS (set by meson): index.json is read with a tiny
// JSON parser and also checked against a hardcoded table. Malformed and fragmented variants are
// built with the small builder below, or by decomposing and re-encoding the captures.

#include "src/wire/client_hello.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using passgate::ClientHello;
using passgate::hello_error_metric_reason;
using passgate::hello_error_name;
using passgate::HelloError;
using passgate::HelloParse;
using passgate::HelloReader;
using passgate::max_alpn_list_bytes;
using passgate::max_alpn_protocols;
using passgate::max_hello_records;
using passgate::parse_client_hello;
using Status = HelloParse::Status;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t kCap = 64 * 1024;  // the application's default

// ---------------------------------------------------------------------------------------------
// Byte builder.

Bytes str_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

void put_u8(Bytes& out, std::size_t value) { out.push_back(static_cast<std::uint8_t>(value & 0xff)); }

void put_u16(Bytes& out, std::size_t value) {
    put_u8(out, value >> 8);
    put_u8(out, value);
}

void put_u24(Bytes& out, std::size_t value) {
    put_u8(out, value >> 16);
    put_u16(out, value);
}

void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& part : parts) append(out, part);
    return out;
}

Bytes u16(std::size_t value) {
    Bytes out;
    put_u16(out, value);
    return out;
}

Bytes vec8(const Bytes& body) {
    REQUIRE(body.size() <= 0xff);
    Bytes out;
    put_u8(out, body.size());
    append(out, body);
    return out;
}

Bytes vec16(const Bytes& body) {
    REQUIRE(body.size() <= 0xffff);
    Bytes out;
    put_u16(out, body.size());
    append(out, body);
    return out;
}

Bytes extension(std::uint16_t type, const Bytes& data) { return cat({u16(type), vec16(data)}); }

Bytes host_name_entry(std::string_view name, std::uint8_t name_type = 0) {
    Bytes out;
    put_u8(out, name_type);
    append(out, vec16(str_bytes(name)));
    return out;
}

Bytes sni_ext(std::initializer_list<std::string_view> names) {
    Bytes list;
    for (const auto name : names) append(list, host_name_entry(name));
    return extension(0, vec16(list));
}

Bytes alpn_ext(std::initializer_list<std::string_view> names) {
    Bytes list;
    for (const auto name : names) append(list, vec8(str_bytes(name)));
    return extension(16, vec16(list));
}

// A ClientHello body assembled from already-encoded fields, so that tests can replace any field
// with deliberately wrong bytes.
struct HelloSpec {
    Bytes version = u16(0x0303);
    Bytes random = Bytes(32, 0x5a);
    Bytes session_id = vec8(Bytes(32, 0x11));
    Bytes ciphers = vec16({0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f});
    Bytes compression = vec8({0x00});
    std::optional<Bytes> extensions;  // the whole encoded block, length prefix included
    Bytes trailing;

    Bytes body() const {
        Bytes out = cat({version, random, session_id, ciphers, compression});
        if (extensions) append(out, *extensions);
        append(out, trailing);
        return out;
    }
};

Bytes extensions_block(std::initializer_list<Bytes> exts) {
    Bytes list;
    for (const Bytes& ext : exts) append(list, ext);
    return vec16(list);
}

HelloSpec typical_spec() {
    HelloSpec spec;
    spec.extensions = extensions_block({
        extension(0xff01, {0x00}),  // renegotiation_info
        sni_ext({"example.com"}),
        extension(10, vec16({0x00, 0x1d, 0x00, 0x17})),  // supported_groups
        alpn_ext({"h2", "http/1.1"}),
        extension(43, vec8({0x03, 0x04, 0x03, 0x03})),  // supported_versions
    });
    return spec;
}

Bytes handshake(std::uint8_t type, const Bytes& body) {
    Bytes out;
    put_u8(out, type);
    put_u24(out, body.size());
    append(out, body);
    return out;
}

Bytes client_hello(const HelloSpec& spec) { return handshake(1, spec.body()); }

Bytes record_header(std::uint8_t type, std::size_t length, std::uint16_t version = 0x0301) {
    Bytes out;
    put_u8(out, type);
    put_u16(out, version);
    put_u16(out, length);
    return out;
}

Bytes record(std::uint8_t type, const Bytes& payload, std::uint16_t version = 0x0301) {
    REQUIRE(payload.size() <= 0xffff);
    return cat({record_header(type, payload.size(), version), payload});
}

// Splits `message` into records of `chunk` payload bytes (the last one may be shorter).
Bytes frame(const Bytes& message, std::size_t chunk, std::uint8_t type = 22) {
    Bytes out;
    for (std::size_t at = 0; at < message.size(); at += chunk) {
        const std::size_t n = std::min(chunk, message.size() - at);
        append(out, record(type, Bytes(message.begin() + at, message.begin() + at + n)));
    }
    return out;
}

Bytes frame(const HelloSpec& spec, std::size_t chunk = 16384) { return frame(client_hello(spec), chunk); }

// Test-side reassembly of well-formed records (trusts its input; uses checked access).
Bytes unframe(const Bytes& records) {
    Bytes message;
    std::size_t at = 0;
    while (at < records.size()) {
        const std::size_t length = (std::size_t{records.at(at + 3)} << 8) | records.at(at + 4);
        REQUIRE(at + 5 + length <= records.size());
        message.insert(message.end(), records.begin() + at + 5, records.begin() + at + 5 + length);
        at += 5 + length;
    }
    return message;
}

std::size_t count_records(const Bytes& records) {
    std::size_t count = 0;
    std::size_t at = 0;
    while (at < records.size()) {
        at += 5 + ((std::size_t{records.at(at + 3)} << 8) | records.at(at + 4));
        ++count;
    }
    REQUIRE(at == records.size());
    return count;
}

// Most tests here are about the record walk and the body, and frame hellos into records of a
// few bytes to reach every split: they lift the record limit. The limit itself (64 records, as a
// connection applies it) has its own tests, which pass max_hello_records.
constexpr std::size_t kAnyRecords = std::numeric_limits<std::size_t>::max();

HelloParse parse(const Bytes& bytes, std::size_t max_size = kCap, std::size_t max_records = kAnyRecords) {
    return parse_client_hello(std::span<const std::uint8_t>(bytes.data(), bytes.size()), max_size,
                              max_records);
}

HelloParse parse_prefix(const Bytes& bytes, std::size_t n, std::size_t max_size = kCap,
                        std::size_t max_records = kAnyRecords) {
    return parse_client_hello(std::span<const std::uint8_t>(bytes.data(), n), max_size, max_records);
}

std::string describe(const HelloParse& result) {
    switch (result.status) {
    case Status::need_more: return "need_more";
    case Status::complete: return "complete sni=" + result.hello.sni;
    case Status::rejected: return "rejected " + std::string(hello_error_name(result.error));
    }
    return "?";
}

// Asserts rejection with `error` and returns nothing; INFO shows what came back instead.
void require_rejected(const Bytes& bytes, HelloError error, std::size_t max_size = kCap) {
    const HelloParse result = parse(bytes, max_size);
    INFO("got " << describe(result) << ", want " << hello_error_name(error));
    CHECK(result.status == Status::rejected);
    CHECK(result.error == error);
}

ClientHello require_complete(const Bytes& bytes, std::size_t max_size = kCap) {
    const HelloParse result = parse(bytes, max_size);
    INFO("got " << describe(result));
    REQUIRE(result.status == Status::complete);
    CHECK(result.error == HelloError::none);
    return result.hello;
}

// Every strict prefix of `bytes` must be need_more. Returns the first offending length, if any.
std::optional<std::size_t> first_prefix_not_need_more(const Bytes& bytes, std::size_t max_size = kCap) {
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        if (parse_prefix(bytes, n, max_size).status != Status::need_more) return n;
    }
    return std::nullopt;
}

// A single-record hello with one SNI host name and nothing else of note.
Bytes hello_with_sni(std::string_view name) {
    HelloSpec spec;
    spec.extensions = extensions_block({sni_ext({name})});
    return frame(spec);
}

// ---------------------------------------------------------------------------------------------
// Minimal JSON reader (objects, arrays, strings with simple escapes, numbers, literals): enough
// for index.json, and strict about anything else.

struct Json {
    enum class Kind { null, boolean, number, string, array, object };
    Kind kind = Kind::null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<Json> array;
    // Object members as parallel vectors (a vector of pair<string, Json> would need Json complete).
    std::vector<std::string> keys;
    std::vector<Json> values;

    const Json& at(std::string_view key) const {
        REQUIRE(kind == Kind::object);
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i] == key) return values[i];
        }
        FAIL("index.json: missing key " << key);
        return *this;
    }
};

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : text_(text) {}

    Json document() {
        Json value = parse_value();
        skip_space();
        REQUIRE(pos_ == text_.size());
        return value;
    }

private:
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                       text_[pos_] == '\r' || text_[pos_] == '\t')) {
            ++pos_;
        }
    }

    char peek() {
        skip_space();
        REQUIRE(pos_ < text_.size());
        return text_[pos_];
    }

    void expect(char c) {
        REQUIRE(peek() == c);
        ++pos_;
    }

    bool consume_literal(std::string_view literal) {
        if (text_.substr(pos_, literal.size()) != literal) return false;
        pos_ += literal.size();
        return true;
    }

    Json parse_value() {
        const char c = peek();
        Json value;
        if (c == '{') {
            value.kind = Json::Kind::object;
            expect('{');
            if (peek() == '}') return ++pos_, value;
            while (true) {
                value.keys.push_back(parse_string());
                expect(':');
                value.values.push_back(parse_value());
                if (peek() == '}') return ++pos_, value;
                expect(',');
            }
        }
        if (c == '[') {
            value.kind = Json::Kind::array;
            expect('[');
            if (peek() == ']') return ++pos_, value;
            while (true) {
                value.array.push_back(parse_value());
                if (peek() == ']') return ++pos_, value;
                expect(',');
            }
        }
        if (c == '"') {
            value.kind = Json::Kind::string;
            value.string = parse_string();
            return value;
        }
        if (consume_literal("null")) return value;
        if (consume_literal("true") || consume_literal("false")) {
            value.kind = Json::Kind::boolean;
            value.boolean = text_[pos_ - 1] == 'e' && text_[pos_ - 2] == 'u';
            return value;
        }
        REQUIRE(((c >= '0' && c <= '9') || c == '-'));
        const std::size_t start = pos_;
        while (pos_ < text_.size() && std::string_view("0123456789+-.eE").find(text_[pos_]) !=
                                          std::string_view::npos) {
            ++pos_;
        }
        value.kind = Json::Kind::number;
        value.number = std::stod(std::string(text_.substr(start, pos_ - start)));
        return value;
    }

    std::string parse_string() {
        expect('"');
        std::string out;
        while (true) {
            REQUIRE(pos_ < text_.size());
            const char c = text_[pos_++];
            if (c == '"') return out;
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            REQUIRE(pos_ < text_.size());
            const char e = text_[pos_++];
            switch (e) {
            case '"': case '\\': case '/': out.push_back(e); break;
            case 'n': out.push_back('\n'); break;
            case 't': out.push_back('\t'); break;
            case 'r': out.push_back('\r'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'u': {
                REQUIRE(pos_ + 4 <= text_.size());
                const unsigned code = static_cast<unsigned>(std::stoul(std::string(text_.substr(pos_, 4)), nullptr, 16));
                pos_ += 4;
                REQUIRE(code < 0x80);  // index.json is ASCII
                out.push_back(static_cast<char>(code));
                break;
            }
            default: FAIL("bad JSON escape");
            }
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Captures.

struct Capture {
    std::string file;
    std::string sni;  // empty: none sent (null in index.json)
    std::vector<std::string> alpn;
    std::size_t bytes = 0;
    std::size_t tls_records = 0;
    Bytes data;
};

// The fixed contents of index.json, so that a change to the data set is noticed.
const std::vector<Capture>& expected_captures() {
    static const std::vector<Capture> table = {
        {"chromium.bin", "chromium.corpus.test", {"h2", "http/1.1"}, 1960, 1, {}},
        {"firefox-esr.bin", "firefox.corpus.test", {"h2", "http/1.1"}, 1902, 1, {}},
        {"curl-h2.bin", "curl-h2.corpus.test", {"h2", "http/1.1"}, 517, 1, {}},
        {"curl-tls12.bin", "curl-tls12.corpus.test", {"h2", "http/1.1"}, 233, 1, {}},
        {"openssl-noservername.bin", "", {}, 297, 1, {}},
        {"go-crypto-tls.bin", "go.corpus.test", {"h2", "http/1.1"}, 280, 1, {}},
        {"python3-ssl.bin", "python.corpus.test", {"h2", "http/1.1"}, 517, 1, {}},
        {"openssl-alpn.bin", "openssl-alpn.corpus.test", {"h2", "http/1.1"}, 348, 1, {}},
    };
    return table;
}

std::string captures_dir() {
    const char* dir = std::getenv("PASSGATE_CLIENTHELLOS");
    INFO("PASSGATE_CLIENTHELLOS must point at tests/data/clienthellos (meson test sets it)");
    REQUIRE(dir != nullptr);
    return dir;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    INFO("reading " << path);
    REQUIRE(in.good());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes read_bytes(const std::string& path) {
    const std::string text = read_text(path);
    return Bytes(text.begin(), text.end());
}

// The captures as described by index.json, with their bytes loaded.
const std::vector<Capture>& captures() {
    static const std::vector<Capture> loaded = [] {
        const std::string dir = captures_dir();
        const Json index = JsonParser(read_text(dir + "/index.json")).document();
        REQUIRE(index.kind == Json::Kind::array);
        std::vector<Capture> out;
        for (const Json& entry : index.array) {
            Capture capture;
            capture.file = entry.at("file").string;
            const Json& sni = entry.at("sni");
            REQUIRE((sni.kind == Json::Kind::string || sni.kind == Json::Kind::null));
            capture.sni = sni.string;
            REQUIRE(entry.at("alpn").kind == Json::Kind::array);
            for (const Json& name : entry.at("alpn").array) capture.alpn.push_back(name.string);
            capture.bytes = static_cast<std::size_t>(entry.at("bytes").number);
            capture.tls_records = static_cast<std::size_t>(entry.at("tls_records").number);
            capture.data = read_bytes(dir + "/" + capture.file);
            out.push_back(std::move(capture));
        }
        return out;
    }();
    return loaded;
}

// A capture decomposed into the fixed part of its ClientHello body and its extensions, so that
// variants can be re-encoded.
struct HelloParts {
    Bytes fixed;  // legacy_version .. compression_methods
    std::vector<std::pair<std::uint16_t, Bytes>> extensions;

    Bytes message() const {
        Bytes list;
        for (const auto& [type, data] : extensions) append(list, extension(type, data));
        return handshake(1, cat({fixed, vec16(list)}));
    }
    Bytes records(std::size_t chunk = 16384) const { return frame(message(), chunk); }

    std::size_t index_of(std::uint16_t type) const {
        for (std::size_t i = 0; i < extensions.size(); ++i) {
            if (extensions[i].first == type) return i;
        }
        FAIL("extension " << type << " not found");
        return 0;
    }
};

HelloParts split_capture(const Bytes& capture) {
    const Bytes message = unframe(capture);
    REQUIRE(message.at(0) == 1);
    const Bytes body(message.begin() + 4, message.end());
    std::size_t at = 2 + 32;
    at += 1 + body.at(at);                                               // session id
    at += 2 + ((std::size_t{body.at(at)} << 8) | body.at(at + 1));       // cipher suites
    at += 1 + body.at(at);                                               // compression
    HelloParts parts;
    parts.fixed.assign(body.begin(), body.begin() + at);
    const std::size_t block = (std::size_t{body.at(at)} << 8) | body.at(at + 1);
    at += 2;
    REQUIRE(at + block == body.size());
    while (at < body.size()) {
        const auto type = static_cast<std::uint16_t>((body.at(at) << 8) | body.at(at + 1));
        const std::size_t length = (std::size_t{body.at(at + 2)} << 8) | body.at(at + 3);
        at += 4;
        REQUIRE(at + length <= body.size());
        parts.extensions.emplace_back(type, Bytes(body.begin() + at, body.begin() + at + length));
        at += length;
    }
    return parts;
}

Bytes sni_data(std::initializer_list<Bytes> entries) {
    Bytes list;
    for (const Bytes& entry : entries) append(list, entry);
    return vec16(list);
}

}  // namespace

// =============================================================================================

TEST_CASE("hello_error_name gives the enum identifiers", "[client_hello]") {
    const std::vector<std::pair<HelloError, std::string_view>> names = {
        {HelloError::none, "none"},
        {HelloError::not_tls, "not_tls"},
        {HelloError::sslv2, "sslv2"},
        {HelloError::not_handshake, "not_handshake"},
        {HelloError::bad_record_version, "bad_record_version"},
        {HelloError::bad_record_length, "bad_record_length"},
        {HelloError::not_client_hello, "not_client_hello"},
        {HelloError::too_large, "too_large"},
        {HelloError::malformed, "malformed"},
        {HelloError::trailing_bytes, "trailing_bytes"},
        {HelloError::duplicate_extension, "duplicate_extension"},
        {HelloError::multiple_names, "multiple_names"},
        {HelloError::bad_sni, "bad_sni"},
        {HelloError::bad_alpn, "bad_alpn"},
        {HelloError::too_many_records, "too_many_records"},
    };
    for (const auto& [error, name] : names) CHECK(hello_error_name(error) == name);
    CHECK(hello_error_name(static_cast<HelloError>(200)) == "unknown");
}

TEST_CASE("hello_error_metric_reason groups reasons into not_tls / too_large / malformed",
          "[client_hello]") {
    CHECK(hello_error_metric_reason(HelloError::not_tls) == "not_tls");
    CHECK(hello_error_metric_reason(HelloError::sslv2) == "not_tls");
    CHECK(hello_error_metric_reason(HelloError::not_handshake) == "not_tls");
    CHECK(hello_error_metric_reason(HelloError::bad_record_version) == "not_tls");
    CHECK(hello_error_metric_reason(HelloError::too_large) == "too_large");
    CHECK(hello_error_metric_reason(HelloError::too_many_records) == "too_large");
    for (const HelloError error :
         {HelloError::bad_record_length, HelloError::not_client_hello, HelloError::malformed,
          HelloError::trailing_bytes, HelloError::duplicate_extension, HelloError::multiple_names,
          HelloError::bad_sni, HelloError::bad_alpn}) {
        CAPTURE(hello_error_name(error));
        CHECK(hello_error_metric_reason(error) == "malformed");
    }
}

TEST_CASE("index.json agrees with the expected table and the files", "[client_hello][captures]") {
    const auto& loaded = captures();
    const auto& expected = expected_captures();
    REQUIRE(loaded.size() == expected.size());
    for (std::size_t i = 0; i < loaded.size(); ++i) {
        INFO(loaded[i].file);
        CHECK(loaded[i].file == expected[i].file);
        CHECK(loaded[i].sni == expected[i].sni);
        CHECK(loaded[i].alpn == expected[i].alpn);
        CHECK(loaded[i].bytes == expected[i].bytes);
        CHECK(loaded[i].tls_records == expected[i].tls_records);
        CHECK(loaded[i].data.size() == loaded[i].bytes);
        CHECK(count_records(loaded[i].data) == loaded[i].tls_records);
    }
}

TEST_CASE("every capture parses complete with its SNI and ALPN", "[client_hello][captures]") {
    for (const Capture& capture : captures()) {
        INFO(capture.file);
        // As a connection reads it: with the record limit.
        const HelloParse result = parse(capture.data, kCap, max_hello_records);
        REQUIRE(result.status == Status::complete);
        CHECK(result.hello.records == capture.tls_records);
        const ClientHello hello = require_complete(capture.data);
        CHECK(hello.sni == capture.sni);
        CHECK(hello.alpn == capture.alpn);
        CHECK(hello.record_bytes == capture.data.size());
    }
}

TEST_CASE("every truncation of every capture needs more", "[client_hello][captures]") {
    for (const Capture& capture : captures()) {
        INFO(capture.file);
        CHECK(first_prefix_not_need_more(capture.data) == std::nullopt);
    }
}

TEST_CASE("captures re-framed into many records parse the same", "[client_hello][captures]") {
    for (const Capture& capture : captures()) {
        const Bytes message = unframe(capture.data);
        for (const std::size_t chunk : {1, 2, 3, 4, 5, 7, 100, 16384}) {
            INFO(capture.file << " in records of " << chunk);
            const Bytes records = frame(message, chunk);
            CHECK(count_records(records) == (message.size() + chunk - 1) / chunk);
            const ClientHello hello = require_complete(records);
            CHECK(hello.sni == capture.sni);
            CHECK(hello.alpn == capture.alpn);
            CHECK(hello.record_bytes == records.size());
            // Fed byte by byte: need_more on every arrival until the last byte.
            CHECK(first_prefix_not_need_more(records) == std::nullopt);
            // Followed by more data: the same hello, record_bytes excludes the rest.
            const Bytes followed = cat({records, record(23, Bytes(40, 0xee))});
            CHECK(require_complete(followed).record_bytes == records.size());
        }
    }
}

TEST_CASE("bytes after the hello are not part of it", "[client_hello]") {
    const Bytes hello = frame(typical_spec());
    const std::vector<Bytes> afters = {
        record(23, Bytes(100, 0x42)),                       // early/application data
        record(20, {0x01}),                                 // middlebox-compat change_cipher_spec
        record(22, handshake(1, typical_spec().body())),    // another handshake record
        str_bytes("GET / HTTP/1.1\r\n"),                    // anything at all
        {0x17},                                             // a partial next record
        Bytes(70000, 0xcc),                                 // more than the cap after the hello
    };
    for (const Bytes& after : afters) {
        INFO("after: " << after.size() << " bytes");
        const ClientHello parsed = require_complete(cat({hello, after}));
        CHECK(parsed.record_bytes == hello.size());
        CHECK(parsed.sni == "example.com");
        CHECK(parsed.alpn == std::vector<std::string>{"h2", "http/1.1"});
    }
}

TEST_CASE("typical built hello parses, byte by byte too", "[client_hello]") {
    const Bytes hello = frame(typical_spec());
    const ClientHello parsed = require_complete(hello);
    CHECK(parsed.sni == "example.com");
    CHECK(parsed.alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(parsed.record_bytes == hello.size());
    CHECK(first_prefix_not_need_more(hello) == std::nullopt);
}

TEST_CASE("the first byte tells TLS from other protocols", "[client_hello]") {
    CHECK(parse(Bytes{}).status == Status::need_more);
    CHECK(parse(Bytes{0x16}).status == Status::need_more);
    CHECK(parse(Bytes{0x16, 0x03}).status == Status::need_more);
    CHECK(parse(Bytes{0x16, 0x03, 0x01, 0x02}).status == Status::need_more);
    require_rejected(str_bytes("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), HelloError::not_tls);
    require_rejected(str_bytes("G"), HelloError::not_tls);
    require_rejected(str_bytes("SSH-2.0-OpenSSH_9.2p1\r\n"), HelloError::not_tls);
    require_rejected(str_bytes("PRI * HTTP/2.0\r\n"), HelloError::not_tls);
    require_rejected({0x00}, HelloError::not_tls);
    require_rejected({0x13}, HelloError::not_tls);
    require_rejected({0x19}, HelloError::not_tls);
    require_rejected({0x7f}, HelloError::not_tls);
    // SSLv2-compatible hello: 2-byte header with the high bit set.
    require_rejected({0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15}, HelloError::sslv2);
    require_rejected({0x80}, HelloError::sslv2);
    require_rejected({0xff}, HelloError::sslv2);
    // Valid TLS content types other than handshake.
    for (const std::uint8_t type : {20, 21, 23, 24}) {
        CAPTURE(int{type});
        require_rejected({type}, HelloError::not_handshake);
        require_rejected(record(type, {0x01, 0x02}), HelloError::not_handshake);
    }
    // An alert record (fatal, handshake_failure).
    require_rejected({0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, HelloError::not_handshake);
}

TEST_CASE("record version major must be 3", "[client_hello]") {
    const Bytes message = client_hello(typical_spec());
    for (const std::uint16_t version : {0x0200, 0x0002, 0x0403, 0xfeff, 0x0000}) {
        CAPTURE(version);
        require_rejected(cat({record_header(22, message.size(), version), message}),
                         HelloError::bad_record_version);
        // Known from the first two bytes already.
        require_rejected({0x16, static_cast<std::uint8_t>(version >> 8)}, HelloError::bad_record_version);
    }
    // Any minor version is fine (SSL 3.0 .. TLS 1.2 record versions occur in the wild).
    for (const std::uint16_t version : {0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x03ff}) {
        CAPTURE(version);
        CHECK(require_complete(cat({record_header(22, message.size(), version), message})).sni ==
              "example.com");
    }
    // In the second record of the hello.
    const Bytes first = record(22, Bytes(message.begin(), message.begin() + 50));
    const Bytes second = record(22, Bytes(message.begin() + 50, message.end()), 0x0203);
    require_rejected(cat({first, second}), HelloError::bad_record_version);
}

TEST_CASE("record length must be 1 .. 2^14", "[client_hello]") {
    require_rejected({0x16, 0x03, 0x01, 0x00, 0x00}, HelloError::bad_record_length);
    require_rejected({0x16, 0x03, 0x01, 0x40, 0x01}, HelloError::bad_record_length);  // 16385
    require_rejected({0x16, 0x03, 0x01, 0xff, 0xff}, HelloError::bad_record_length);
    CHECK(parse(Bytes{0x16, 0x03, 0x01, 0x40, 0x00}).status == Status::need_more);  // 16384
    CHECK(parse(Bytes{0x16, 0x03, 0x01, 0x00, 0x01}).status == Status::need_more);  // 1
    // A zero-length record in the middle of a fragmented hello.
    const Bytes message = client_hello(typical_spec());
    const Bytes first = record(22, Bytes(message.begin(), message.begin() + 10));
    const Bytes rest = record(22, Bytes(message.begin() + 10, message.end()));
    require_rejected(cat({first, record_header(22, 0), rest}), HelloError::bad_record_length);
    require_rejected(cat({first, record_header(22, 16385)}), HelloError::bad_record_length);
    // A whole hello in one record larger than 2^14.
    HelloSpec spec = typical_spec();
    spec.extensions = extensions_block({sni_ext({"example.com"}), extension(21, Bytes(17000, 0))});
    const Bytes big = client_hello(spec);
    require_rejected(cat({record_header(22, big.size()), big}), HelloError::bad_record_length);
}

TEST_CASE("handshake type must be client_hello", "[client_hello]") {
    const HelloSpec spec = typical_spec();
    for (const std::uint8_t type : {0, 2, 4, 11, 20, 255}) {
        CAPTURE(int{type});
        const Bytes records = frame(handshake(type, spec.body()), 16384);
        require_rejected(records, HelloError::not_client_hello);
        // Known as soon as the first handshake byte is there.
        require_rejected(Bytes(records.begin(), records.begin() + 6), HelloError::not_client_hello);
        // Also when that byte is alone in a 1-byte first record.
        require_rejected(record(22, {type}), HelloError::not_client_hello);
    }
}

TEST_CASE("too_large: declared handshake length beyond the cap", "[client_hello]") {
    // 4 + 70000 handshake bytes need at least 5 records: cannot fit 64 KiB.
    const Bytes header = cat({record_header(22, 16384), {0x01, 0x01, 0x11, 0x70}});
    require_rejected(header, HelloError::too_large);
    require_rejected(cat({record_header(22, 4), {0x01, 0xff, 0xff, 0xff}}), HelloError::too_large);
    // Exactly at the boundary, in one record: 4 + len + 5 == max_size fits, one more does not.
    const Bytes hello = frame(typical_spec());
    CHECK(require_complete(hello, hello.size()).record_bytes == hello.size());
    require_rejected(hello, HelloError::too_large, hello.size() - 1);
    // Detected from the first 9 bytes already.
    require_rejected(Bytes(hello.begin(), hello.begin() + 9), HelloError::too_large, hello.size() - 1);
    // A handshake length that needs several records: the record header overhead counts.
    HelloSpec spec = typical_spec();
    spec.extensions = extensions_block({extension(21, Bytes(40000, 0))});
    const Bytes message = client_hello(spec);  // 3 records of 16384 at least
    const std::size_t minimum = message.size() + 3 * 5;
    const Bytes records = frame(message, 16384);
    CHECK(records.size() == minimum);
    CHECK(require_complete(records, minimum).record_bytes == minimum);
    require_rejected(records, HelloError::too_large, minimum - 1);
    require_rejected(Bytes(records.begin(), records.begin() + 9), HelloError::too_large, minimum - 1);
    // 64 KiB - 4 bytes of handshake body: 4 + len + 4*5 > 65536.
    require_rejected(cat({record_header(22, 16384), {0x01, 0x00, 0xff, 0xfc}}), HelloError::too_large);
}

TEST_CASE("too_large: received bytes reach the cap without a complete hello", "[client_hello]") {
    // 1-byte records: 6 record bytes per handshake byte, far more than the minimum.
    const Bytes message = client_hello(typical_spec());
    const Bytes records = frame(message, 1);
    CHECK(require_complete(records, records.size()).record_bytes == records.size());
    require_rejected(records, HelloError::too_large, records.size() - 1);
    const std::size_t cap = records.size() / 2;
    require_rejected(records, HelloError::too_large, cap);
    // On the way there, every prefix is need_more or too_large, and too_large from the cap on.
    bool seen_too_large = false;
    for (std::size_t n = 0; n <= records.size(); ++n) {
        const HelloParse result = parse_prefix(records, n, cap);
        if (result.status == Status::need_more) {
            CHECK_FALSE(seen_too_large);
            CHECK(n < cap);
            if (seen_too_large || n >= cap) break;
            continue;
        }
        REQUIRE(result.status == Status::rejected);
        CHECK(result.error == HelloError::too_large);
        seen_too_large = true;
    }
    CHECK(seen_too_large);
    // A record whose declared end lies beyond the cap.
    require_rejected(cat({record_header(22, 16384), {0x01, 0x00, 0x01}}), HelloError::too_large, 1000);
    // Tiny caps.
    require_rejected({0x16, 0x03, 0x01, 0x00}, HelloError::too_large, 4);
    CHECK(parse(Bytes{0x16, 0x03, 0x01}, 4).status == Status::need_more);
    // Errors in the record header still take precedence over the size cap.
    require_rejected(str_bytes("GET / HTTP/1.1\r\n"), HelloError::not_tls, 4);
}

TEST_CASE("a 30 KB hello parses under the default cap", "[client_hello]") {
    HelloSpec spec = typical_spec();
    spec.extensions = extensions_block({
        sni_ext({"Big.Example.COM."}),
        alpn_ext({"h2"}),
        extension(21, Bytes(30000, 0)),  // padding
    });
    const Bytes message = client_hello(spec);
    REQUIRE(message.size() > 30000);
    for (const std::size_t chunk : {16384, 10000, 4096, 1000}) {
        INFO("records of " << chunk);
        const Bytes records = frame(message, chunk);
        const ClientHello hello = require_complete(records);
        CHECK(hello.sni == "big.example.com");
        CHECK(hello.alpn == std::vector<std::string>{"h2"});
        CHECK(hello.record_bytes == records.size());
        CHECK(first_prefix_not_need_more(records) == std::nullopt);
        require_rejected(records, HelloError::too_large, 30000);
    }
}

TEST_CASE("every record of the hello must be a handshake record", "[client_hello]") {
    const Bytes message = client_hello(typical_spec());
    const Bytes first = record(22, Bytes(message.begin(), message.begin() + 60));
    const Bytes rest = record(22, Bytes(message.begin() + 60, message.end()));
    REQUIRE(require_complete(cat({first, rest})).sni == "example.com");
    for (const int value : {20, 21, 23, 24, 0, int{'G'}, 0x80}) {
        CAPTURE(value);
        const auto type = static_cast<std::uint8_t>(value);
        require_rejected(cat({first, record(type, {0x01}), rest}), HelloError::not_handshake);
        require_rejected(cat({first, Bytes{type}}), HelloError::not_handshake);
    }
    // Handshake header split across records, then an interloper.
    require_rejected(cat({record(22, {0x01, 0x00}), record(23, {0x00})}), HelloError::not_handshake);
}

TEST_CASE("the body is parsed only once the whole message is there", "[client_hello]") {
    // A hello with an invalid session id length: need_more until the last byte, then malformed.
    HelloSpec spec = typical_spec();
    spec.session_id = vec8(Bytes(33, 0));
    const Bytes records = frame(client_hello(spec), 7);
    CHECK(first_prefix_not_need_more(records) == std::nullopt);
    require_rejected(records, HelloError::malformed);
}

TEST_CASE("ClientHello body fields are checked against their parent", "[client_hello]") {
    SECTION("well-formed variants") {
        HelloSpec spec = typical_spec();
        spec.session_id = vec8({});
        CHECK(require_complete(frame(spec)).sni == "example.com");
        spec.ciphers = vec16({0x00, 0x2f});
        spec.compression = vec8({0x01, 0x00});
        CHECK(require_complete(frame(spec)).sni == "example.com");
    }
    SECTION("legacy hello without an extensions block") {
        HelloSpec spec;
        const ClientHello hello = require_complete(frame(spec));
        CHECK(hello.sni.empty());
        CHECK(hello.alpn.empty());
        CHECK(first_prefix_not_need_more(frame(spec)) == std::nullopt);
    }
    SECTION("empty extensions block") {
        HelloSpec spec;
        spec.extensions = vec16({});
        CHECK(require_complete(frame(spec)).sni.empty());
    }
    SECTION("truncated fixed fields") {
        HelloSpec spec;
        const Bytes body = spec.body();
        // Cut before the end of legacy_version, random, session id, ciphers, compression.
        for (const std::size_t cut : {0, 1, 2, 20, 34, 35, 40, 67, 68, 70, 73, 74}) {
            CAPTURE(cut);
            require_rejected(frame(handshake(1, Bytes(body.begin(), body.begin() + cut)), 16384),
                             HelloError::malformed);
        }
    }
    SECTION("session id") {
        HelloSpec spec = typical_spec();
        spec.session_id = vec8(Bytes(33, 0));
        require_rejected(frame(spec), HelloError::malformed);
        // Length overflowing the handshake message.
        HelloSpec last;
        last.session_id = cat({{32}, Bytes(10, 0)});
        last.ciphers.clear();
        last.compression.clear();
        require_rejected(frame(last), HelloError::malformed);
    }
    SECTION("cipher suites") {
        HelloSpec spec = typical_spec();
        spec.ciphers = vec16({});
        require_rejected(frame(spec), HelloError::malformed);
        spec.ciphers = vec16({0x13, 0x01, 0x13});
        require_rejected(frame(spec), HelloError::malformed);
        spec.ciphers = vec16({0x13});
        require_rejected(frame(spec), HelloError::malformed);
        HelloSpec last;
        last.ciphers = cat({u16(0x10), Bytes(4, 0x13)});
        last.compression.clear();
        require_rejected(frame(last), HelloError::malformed);
    }
    SECTION("compression methods") {
        HelloSpec spec = typical_spec();
        spec.compression = vec8({});
        require_rejected(frame(spec), HelloError::malformed);
        HelloSpec last;
        last.compression = {0x05, 0x00};
        require_rejected(frame(last), HelloError::malformed);
    }
    SECTION("extensions block") {
        HelloSpec spec;
        spec.extensions = cat({u16(0x20), sni_ext({"example.com"})});  // 0x20 > what follows
        require_rejected(frame(spec), HelloError::malformed);
        spec.extensions = Bytes{0x00};  // half a length
        require_rejected(frame(spec), HelloError::malformed);
    }
    SECTION("single extension") {
        HelloSpec spec;
        spec.extensions = vec16(cat({u16(43), u16(10), {0x02, 0x03, 0x04}}));
        require_rejected(frame(spec), HelloError::malformed);
        for (const Bytes& partial : {Bytes{0x00}, Bytes{0x00, 0x2b}, Bytes{0x00, 0x2b, 0x00}}) {
            spec.extensions = vec16(cat({sni_ext({"example.com"}), partial}));
            require_rejected(frame(spec), HelloError::malformed);
        }
    }
    SECTION("trailing bytes inside the handshake message") {
        HelloSpec spec = typical_spec();
        spec.trailing = {0x00};
        require_rejected(frame(spec), HelloError::trailing_bytes);
        spec.trailing = Bytes(100, 0x00);
        require_rejected(frame(spec, 7), HelloError::trailing_bytes);
        HelloSpec legacy;
        legacy.extensions = vec16({});
        legacy.trailing = {0x01};
        require_rejected(frame(legacy), HelloError::trailing_bytes);
        // No extensions block at all but a single stray byte: a truncated length, malformed.
        HelloSpec stray;
        stray.trailing = {0x00};
        require_rejected(frame(stray), HelloError::malformed);
    }
}

TEST_CASE("another handshake message coalesced into the hello's records", "[client_hello]") {
    const Bytes message = client_hello(typical_spec());
    const Bytes extra = handshake(20, Bytes(12, 0x77));  // something after the ClientHello
    // In the same record as the end of the ClientHello: rejected, as the hello must be alone.
    require_rejected(record(22, cat({message, extra})), HelloError::trailing_bytes);
    // Known from the record header alone once the handshake length is known.
    const Bytes both = record(22, cat({message, extra}));
    require_rejected(Bytes(both.begin(), both.begin() + 9), HelloError::trailing_bytes);
    // The ClientHello ends mid-record after being split across records.
    const Bytes first = record(22, Bytes(message.begin(), message.begin() + 2));
    const Bytes rest = record(22, cat({Bytes(message.begin() + 2, message.end()), extra}));
    require_rejected(cat({first, rest}), HelloError::trailing_bytes);
    // In a record of its own after the hello: outside the hello, left alone.
    const Bytes separate = cat({record(22, message), record(22, extra)});
    CHECK(require_complete(separate).record_bytes == message.size() + 5);
}

TEST_CASE("extension types must not repeat", "[client_hello]") {
    HelloSpec spec;
    spec.extensions = extensions_block({sni_ext({"a.example"}), alpn_ext({"h2"}), sni_ext({"b.example"})});
    require_rejected(frame(spec), HelloError::duplicate_extension);
    spec.extensions = extensions_block({alpn_ext({"h2"}), alpn_ext({"h2"})});
    require_rejected(frame(spec), HelloError::duplicate_extension);
    spec.extensions = extensions_block({extension(0x1234, {}), sni_ext({"a.example"}), extension(0x1234, {1})});
    require_rejected(frame(spec), HelloError::duplicate_extension);
    spec.extensions = extensions_block({extension(0xffff, {}), extension(0xffff, {})});
    require_rejected(frame(spec), HelloError::duplicate_extension);
    // Different types, including the extremes, are fine.
    spec.extensions = extensions_block({extension(0x0000 + 0xffff, {}), extension(0x0001, {}),
                                        extension(0xfffe, {}), extension(0x0a0a, {})});
    CHECK(require_complete(frame(spec)).sni.empty());
}

TEST_CASE("server_name extension structure", "[client_hello][sni]") {
    const auto with_sni_data = [](const Bytes& data) {
        HelloSpec spec;
        spec.extensions = extensions_block({extension(0, data)});
        return frame(spec);
    };
    SECTION("two host names") {
        require_rejected(with_sni_data(sni_data({host_name_entry("a.example"), host_name_entry("b.example")})),
                         HelloError::multiple_names);
        require_rejected(with_sni_data(sni_data({host_name_entry("a.example"), host_name_entry("a.example")})),
                         HelloError::multiple_names);
    }
    SECTION("name types other than host_name") {
        require_rejected(with_sni_data(sni_data({host_name_entry("a.example", 1)})), HelloError::malformed);
        require_rejected(with_sni_data(sni_data({host_name_entry("a.example"), host_name_entry("x", 255)})),
                         HelloError::malformed);
    }
    SECTION("list and name lengths") {
        require_rejected(with_sni_data({}), HelloError::malformed);           // no list at all
        require_rejected(with_sni_data({0x00}), HelloError::malformed);       // half a length
        require_rejected(with_sni_data(vec16({})), HelloError::malformed);    // empty list
        // List length overflowing the extension.
        require_rejected(with_sni_data(cat({u16(0x20), host_name_entry("abc")})), HelloError::malformed);
        // Host name length overflowing the list.
        require_rejected(with_sni_data(vec16({0x00, 0x00, 0x20, 'a', 'b', 'c'})), HelloError::malformed);
        // Entry cut short inside the list.
        require_rejected(with_sni_data(vec16({0x00, 0x00})), HelloError::malformed);
        require_rejected(with_sni_data(vec16({0x00})), HelloError::malformed);
        require_rejected(with_sni_data(vec16(cat({host_name_entry("a.example"), {0x00}}))),
                         HelloError::malformed);
        // Bytes after the list inside the extension.
        require_rejected(with_sni_data(cat({sni_data({host_name_entry("a.example")}), {0x00}})),
                         HelloError::malformed);
    }
    SECTION("empty host name") {
        require_rejected(with_sni_data(sni_data({host_name_entry("")})), HelloError::bad_sni);
    }
}

TEST_CASE("SNI is normalized and validated as a DNS host name", "[client_hello][sni]") {
    SECTION("normalized") {
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"example.com", "example.com"},
            {"Example.COM", "example.com"},
            {"example.com.", "example.com"},
            {"WWW.EXAMPLE.COM.", "www.example.com"},
            {"localhost", "localhost"},
            {"_acme-challenge.example.com", "_acme-challenge.example.com"},
            {"a-b.c_d.e", "a-b.c_d.e"},
            {"123.example.com", "123.example.com"},
            {"1.2.3.4a", "1.2.3.4a"},
            {"a", "a"},
            {std::string(63, 'a') + ".com", std::string(63, 'a') + ".com"},
        };
        for (const auto& [raw, want] : cases) {
            CAPTURE(raw);
            CHECK(require_complete(hello_with_sni(raw)).sni == want);
        }
    }
    SECTION("length limits") {
        // 253 bytes in all: 63+1+63+1+63+1+61.
        const std::string name253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                    std::string(63, 'c') + "." + std::string(61, 'd');
        REQUIRE(name253.size() == 253);
        CHECK(require_complete(hello_with_sni(name253)).sni == name253);
        CHECK(require_complete(hello_with_sni(name253 + ".")).sni == name253);
        require_rejected(hello_with_sni(name253 + "d"), HelloError::bad_sni);
        require_rejected(hello_with_sni(name253 + ".d"), HelloError::bad_sni);
        require_rejected(hello_with_sni(std::string(64, 'a') + ".com"), HelloError::bad_sni);
        require_rejected(hello_with_sni(std::string(64, 'a')), HelloError::bad_sni);
        require_rejected(hello_with_sni(std::string(1000, 'a')), HelloError::bad_sni);
    }
    SECTION("rejected") {
        const std::vector<std::string> bad = {
            ".", "..", "example.com..", ".example.com", "a..b", "exa mple.com", "example.com/",
            "ex*ample.com", "*.example.com", "a@b.com", "a:b.com", "exa\tmple.com", "\xc3\xa9t\xc3\xa9.fr",
            "xn--\xff.com", "a\x7f.com", "[::1]", "example.com:443", std::string("ex\0ample.com", 12),
            // IP literals
            "192.168.1.1", "192.168.1.1.", "10.0.0.1", "255.255.255.255", "999.1.1.1", "127.1",
            "2130706433", "0x7f.0.0.1", "0X7F.0.0.1", "1.2.3.0x4", "x.0x", "example.123",
            "::1", "::", "fe80::1", "2001:db8::1", "::ffff:1.2.3.4", "FE80::1%eth0",
        };
        for (const std::string& name : bad) {
            CAPTURE(name);
            require_rejected(hello_with_sni(name), HelloError::bad_sni);
        }
    }
}

TEST_CASE("ALPN extension", "[client_hello][alpn]") {
    const auto with_alpn_data = [](const Bytes& data) {
        HelloSpec spec;
        spec.extensions = extensions_block({sni_ext({"example.com"}), extension(16, data)});
        return frame(spec);
    };
    SECTION("order and content preserved") {
        HelloSpec spec;
        spec.extensions = extensions_block({alpn_ext({"http/1.1", "h2", "acme-tls/1", "x"})});
        const ClientHello hello = require_complete(frame(spec));
        CHECK(hello.alpn == std::vector<std::string>{"http/1.1", "h2", "acme-tls/1", "x"});
        CHECK(hello.sni.empty());
        const std::string binary("\x00\xff\x0a", 3);
        const std::string longest(255, 'p');
        CHECK(require_complete(with_alpn_data(vec16(cat({vec8(str_bytes(binary)), vec8(str_bytes(longest))}))))
                  .alpn == std::vector<std::string>{binary, longest});
    }
    SECTION("malformed") {
        require_rejected(with_alpn_data({}), HelloError::bad_alpn);                  // no list
        require_rejected(with_alpn_data({0x00}), HelloError::bad_alpn);              // half a length
        require_rejected(with_alpn_data(vec16({})), HelloError::bad_alpn);           // empty list
        require_rejected(with_alpn_data(vec16({0x00})), HelloError::bad_alpn);       // empty name
        require_rejected(with_alpn_data(vec16({0x02, 'h', '2', 0x00})), HelloError::bad_alpn);
        // List length overflowing the extension.
        require_rejected(with_alpn_data({0x00, 0x10, 0x02, 'h', '2'}), HelloError::bad_alpn);
        // Name length overflowing the list.
        require_rejected(with_alpn_data(vec16({0x05, 'h', '2'})), HelloError::bad_alpn);
        require_rejected(with_alpn_data(vec16({0x02, 'h', '2', 0x08, 'h', 't'})), HelloError::bad_alpn);
        // Bytes after the list inside the extension.
        require_rejected(with_alpn_data(cat({vec16({0x02, 'h', '2'}), {0x00}})), HelloError::bad_alpn);
    }
}

TEST_CASE("capture variants re-encoded from their extensions", "[client_hello][captures]") {
    for (const Capture& capture : captures()) {
        INFO(capture.file);
        const HelloParts parts = split_capture(capture.data);
        REQUIRE(parts.records() == capture.data);  // the decomposition round-trips

        // Any extension repeated.
        for (std::size_t i = 0; i < parts.extensions.size(); ++i) {
            HelloParts dup = parts;
            dup.extensions.push_back(parts.extensions[i]);
            INFO("duplicated extension " << parts.extensions[i].first);
            require_rejected(dup.records(), HelloError::duplicate_extension);
        }

        HelloParts variant = parts;
        const bool has_sni = !capture.sni.empty();
        if (has_sni) {
            const std::size_t sni = parts.index_of(0);
            // Uppercased with a trailing dot: normalized back to the same name.
            std::string upper = capture.sni + ".";
            for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
            variant.extensions[sni].second = sni_data({host_name_entry(upper)});
            CHECK(require_complete(variant.records(7)).sni == capture.sni);
            // Two names.
            variant.extensions[sni].second = sni_data({host_name_entry(capture.sni), host_name_entry("x.test")});
            require_rejected(variant.records(), HelloError::multiple_names);
            // IP literals and junk.
            for (const std::string name : {"10.1.2.3", "::1", "", "bad name.test"}) {
                CAPTURE(name);
                variant.extensions[sni].second = sni_data({host_name_entry(name)});
                require_rejected(variant.records(), HelloError::bad_sni);
            }
            // Removed entirely: no SNI, still a valid hello.
            variant = parts;
            variant.extensions.erase(variant.extensions.begin() + static_cast<std::ptrdiff_t>(sni));
            const ClientHello hello = require_complete(variant.records());
            CHECK(hello.sni.empty());
            CHECK(hello.alpn == capture.alpn);
        } else {
            // Add one to the hello that had none.
            variant.extensions.insert(variant.extensions.begin(), {0, sni_data({host_name_entry("Added.Test")})});
            CHECK(require_complete(variant.records()).sni == "added.test");
        }

        if (!capture.alpn.empty()) {
            variant = parts;
            const std::size_t alpn = parts.index_of(16);
            variant.extensions[alpn].second = vec16({});
            require_rejected(variant.records(), HelloError::bad_alpn);
            variant.extensions[alpn].second = vec16({0x02, 'h', '2', 0x00});
            require_rejected(variant.records(), HelloError::bad_alpn);
        }

        // Byte-level mutations of the raw capture.
        Bytes bytes = capture.data;
        bytes[0] = 23;
        require_rejected(bytes, HelloError::not_handshake);
        bytes = capture.data;
        bytes[1] = 2;
        require_rejected(bytes, HelloError::bad_record_version);
        bytes = capture.data;
        bytes[5] = 2;
        require_rejected(bytes, HelloError::not_client_hello);
        // One byte appended inside both the record and the handshake message.
        bytes = capture.data;
        bytes.push_back(0x00);
        const std::size_t record_len = bytes.size() - 5;
        const std::size_t hs_len = record_len - 4;
        bytes[3] = static_cast<std::uint8_t>(record_len >> 8);
        bytes[4] = static_cast<std::uint8_t>(record_len);
        bytes[6] = static_cast<std::uint8_t>(hs_len >> 16);
        bytes[7] = static_cast<std::uint8_t>(hs_len >> 8);
        bytes[8] = static_cast<std::uint8_t>(hs_len);
        require_rejected(bytes, HelloError::trailing_bytes);
        // Handshake length one more than the record carries: waits for a next record.
        bytes = capture.data;
        const std::size_t longer = capture.data.size() - 9 + 1;
        bytes[7] = static_cast<std::uint8_t>(longer >> 8);
        bytes[8] = static_cast<std::uint8_t>(longer);
        CHECK(parse(bytes).status == Status::need_more);
        require_rejected(cat({bytes, record(22, {0x00})}), HelloError::trailing_bytes);
        require_rejected(cat({bytes, record(23, {0x00})}), HelloError::not_handshake);
        // Handshake length one less than the record carries: a byte coalesced after it.
        bytes = capture.data;
        const std::size_t shorter = capture.data.size() - 9 - 1;
        bytes[7] = static_cast<std::uint8_t>(shorter >> 8);
        bytes[8] = static_cast<std::uint8_t>(shorter);
        require_rejected(bytes, HelloError::trailing_bytes);
        // Extensions block one byte short: the last extension overflows it.
        bytes = capture.data;
        const HelloParts fresh = split_capture(capture.data);
        const std::size_t ext_len_at = 9 + fresh.fixed.size();
        const std::size_t ext_len = (std::size_t{bytes[ext_len_at]} << 8) | bytes[ext_len_at + 1];
        bytes[ext_len_at] = static_cast<std::uint8_t>((ext_len + 1) >> 8);
        bytes[ext_len_at + 1] = static_cast<std::uint8_t>(ext_len + 1);
        require_rejected(bytes, HelloError::malformed);
        bytes[ext_len_at] = static_cast<std::uint8_t>((ext_len - 1) >> 8);
        bytes[ext_len_at + 1] = static_cast<std::uint8_t>(ext_len - 1);
        {
            const HelloParse result = parse(bytes);
            REQUIRE(result.status == Status::rejected);
            // The block now ends inside the last extension: malformed within the block, or a
            // stray byte after it.
            CHECK((result.error == HelloError::malformed || result.error == HelloError::trailing_bytes));
        }
    }
}

TEST_CASE("single-bit flips of the captures never crash and keep the invariants",
          "[client_hello][captures]") {
    std::size_t completes = 0;
    std::size_t rejections = 0;
    for (const Capture& capture : captures()) {
        Bytes bytes = capture.data;
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            for (int bit = 0; bit < 8; ++bit) {
                bytes[i] ^= static_cast<std::uint8_t>(1u << bit);
                const HelloParse result = parse(bytes);
                bytes[i] = capture.data[i];
                if (result.status == Status::complete) {
                    ++completes;
                    if (result.error != HelloError::none || result.hello.record_bytes > bytes.size() ||
                        result.hello.sni.size() > 253 ||
                        (!result.hello.sni.empty() && result.hello.sni.back() == '.')) {
                        FAIL_CHECK(capture.file << " flip " << i << ":" << bit << " broke an invariant");
                    }
                } else if (result.status == Status::rejected) {
                    ++rejections;
                    if (result.error == HelloError::none) FAIL_CHECK(capture.file << " rejected without a reason");
                }
            }
        }
    }
    CHECK(completes > 0);
    CHECK(rejections > 0);
}

TEST_CASE("a prefix decision never changes with more bytes", "[client_hello]") {
    // Complete stays complete with the same result; rejected stays rejected.
    const std::vector<Bytes> inputs = {
        frame(typical_spec()),
        frame(client_hello(typical_spec()), 3),
        cat({frame(typical_spec()), record(23, {1, 2, 3})}),
        cat({frame(client_hello(typical_spec()), 50), {0x15}}),
    };
    for (const Bytes& input : inputs) {
        for (const std::size_t cap : {kCap, std::size_t{300}, std::size_t{100}}) {
            const HelloParse full = parse(input, cap);
            for (std::size_t n = 0; n <= input.size(); ++n) {
                const HelloParse prefix = parse_prefix(input, n, cap);
                if (prefix.status == Status::complete) {
                    REQUIRE(full.status == Status::complete);
                    CHECK(full.hello.record_bytes == prefix.hello.record_bytes);
                    CHECK(full.hello.sni == prefix.hello.sni);
                } else if (prefix.status == Status::rejected) {
                    CHECK(full.status == Status::rejected);
                }
            }
        }
    }
}

// =============================================================================================
// Incremental reading: one HelloReader per connection, fed the growing buffer at each arrival.

namespace {

bool same_result(const HelloParse& a, const HelloParse& b) {
    return a.status == b.status && a.error == b.error && a.hello.sni == b.hello.sni &&
           a.hello.alpn == b.hello.alpn && a.hello.record_bytes == b.hello.record_bytes &&
           a.hello.records == b.hello.records;
}

struct Fed {
    HelloParse result;
    std::uint64_t bytes_examined = 0;
};

// Feeds `bytes` to one HelloReader in arrivals ending at each of `ends` (increasing), stopping at
// the first verdict, as a connection does.
Fed feed(const Bytes& bytes, const std::vector<std::size_t>& ends, std::size_t max_size = kCap,
         std::size_t max_records = kAnyRecords) {
    HelloReader reader(max_records);
    Fed fed;
    for (const std::size_t end : ends) {
        fed.result = reader.parse(std::span<const std::uint8_t>(bytes.data(), end), max_size);
        if (fed.result.status != Status::need_more) break;
    }
    fed.bytes_examined = reader.bytes_examined();
    return fed;
}

std::vector<std::size_t> byte_by_byte(std::size_t size) {
    std::vector<std::size_t> ends;
    for (std::size_t end = 1; end <= size; ++end) ends.push_back(end);
    return ends;
}

// Arrival ends at each record boundary of well-formed `records`.
std::vector<std::size_t> record_by_record(const Bytes& records) {
    std::vector<std::size_t> ends;
    std::size_t at = 0;
    while (at < records.size()) {
        at += 5 + ((std::size_t{records.at(at + 3)} << 8) | records.at(at + 4));
        ends.push_back(at);
    }
    return ends;
}

// The captures, as sent and re-framed into records of 7 bytes and of 1 byte.
std::vector<std::pair<std::string, Bytes>> framed_captures() {
    std::vector<std::pair<std::string, Bytes>> out;
    for (const Capture& capture : captures()) {
        out.emplace_back(capture.file, capture.data);
        const Bytes message = unframe(capture.data);
        out.emplace_back(capture.file + " in 7-byte records", frame(message, 7));
        out.emplace_back(capture.file + " in 1-byte records", frame(message, 1));
    }
    return out;
}

// The bound HelloReader documents: 5 per byte received, plus the 4 handshake-header bytes.
std::uint64_t linear_bound(std::size_t bytes) { return 5 * std::uint64_t{bytes} + 4; }

}  // namespace

TEST_CASE("HelloReader: every two-arrival split of every capture gives the one-shot result",
          "[client_hello][captures][incremental]") {
    for (const auto& [name, bytes] : framed_captures()) {
        for (const std::size_t max_records : {max_hello_records, kAnyRecords}) {
            INFO(name << ", record limit " << max_records);
            const HelloParse whole = parse(bytes, kCap, max_records);
            // Within the limit (or with it lifted) each one is complete; in records of 1 or 7
            // bytes most are more than the limit allows.
            const bool fits = max_records == kAnyRecords || count_records(bytes) <= max_hello_records;
            CHECK(whole.status == (fits ? Status::complete : Status::rejected));
            if (!fits) CHECK(whole.error == HelloError::too_many_records);
            std::size_t mismatches = 0;
            for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
                const Fed fed = feed(bytes, {cut, bytes.size()}, kCap, max_records);
                if (!same_result(fed.result, whole)) ++mismatches;
            }
            CHECK(mismatches == 0);
        }
    }
}

TEST_CASE("HelloReader: fed byte by byte, each answer is the one-shot answer on that prefix",
          "[client_hello][captures][incremental]") {
    for (const auto& [name, bytes] : framed_captures()) {
        if (bytes.size() > 4000) continue;  // the one-shot side is quadratic here; 1-byte records below
        for (const std::size_t max_records : {max_hello_records, kAnyRecords}) {
            INFO(name << ", record limit " << max_records);
            HelloReader reader(max_records);
            std::size_t mismatches = 0;
            for (std::size_t end = 0; end <= bytes.size(); ++end) {
                const HelloParse incremental =
                    reader.parse(std::span<const std::uint8_t>(bytes.data(), end), kCap);
                if (!same_result(incremental, parse_prefix(bytes, end, kCap, max_records)))
                    ++mismatches;
                if (incremental.status != Status::need_more) break;
            }
            CHECK(mismatches == 0);
        }
    }
}

TEST_CASE("HelloReader: the captures in 1-byte records, in any arrivals, parse as in one piece",
          "[client_hello][captures][incremental]") {
    std::uint64_t seed = 0x9e3779b97f4a7c15;
    const auto next = [&seed] {  // xorshift64: fixed, reproducible arrival sizes
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        return seed;
    };
    for (const Capture& capture : captures()) {
        const Bytes records = frame(unframe(capture.data), 1);
        INFO(capture.file << " in " << count_records(records) << " 1-byte records");
        const HelloParse whole = parse(records);
        REQUIRE(whole.status == Status::complete);
        CHECK(whole.hello.sni == capture.sni);
        CHECK(whole.hello.alpn == capture.alpn);
        CHECK(same_result(feed(records, byte_by_byte(records.size())).result, whole));
        CHECK(same_result(feed(records, record_by_record(records)).result, whole));
        for (int round = 0; round < 20; ++round) {
            std::vector<std::size_t> ends;
            for (std::size_t end = 0; end < records.size();) {
                end = std::min(records.size(), end + 1 + next() % 40);
                ends.push_back(end);
            }
            CHECK(same_result(feed(records, ends).result, whole));
        }
    }
}

TEST_CASE("HelloReader: the work is linear in the bytes, whatever the framing and the arrivals",
          "[client_hello][incremental]") {
    for (const auto& [name, bytes] : framed_captures()) {
        INFO(name << ": " << bytes.size() << " bytes");
        for (const auto& ends : {byte_by_byte(bytes.size()), record_by_record(bytes),
                                 std::vector<std::size_t>{bytes.size()}}) {
            const Fed fed = feed(bytes, ends);
            CHECK(fed.result.status == Status::complete);
            CHECK(fed.bytes_examined <= linear_bound(bytes.size()));
        }
    }
    // A 64 KiB hello in 1-byte records (about 10,900 of them), one record per arrival: the walk
    // used to start again from byte 0 at every arrival (59 million header bytes looked at).
    HelloSpec spec = typical_spec();
    spec.extensions = extensions_block({sni_ext({"big.example.com"}), extension(21, Bytes(10800, 0))});
    const Bytes records = frame(client_hello(spec), 1);
    REQUIRE(records.size() > 64000);
    REQUIRE(records.size() <= kCap);
    const Fed fed = feed(records, record_by_record(records));
    REQUIRE(fed.result.status == Status::complete);
    CHECK(fed.result.hello.sni == "big.example.com");
    CHECK(fed.bytes_examined <= linear_bound(records.size()));
    // An arrival that brings nothing new costs nothing (a connection parses again after EAGAIN).
    HelloReader reader;
    const std::span<const std::uint8_t> some(records.data(), 3);
    CHECK(reader.parse(some, kCap).status == Status::need_more);
    const std::uint64_t after_first = reader.bytes_examined();
    CHECK(reader.parse(some, kCap).status == Status::need_more);
    CHECK(reader.bytes_examined() == after_first);
}

TEST_CASE("a verdict is final: later arrivals get the same answer", "[client_hello][incremental]") {
    const Bytes hello = frame(typical_spec());
    const Bytes followed = cat({hello, record(23, Bytes(100, 1))});
    HelloReader reader;
    const HelloParse first = reader.parse(std::span<const std::uint8_t>(hello.data(), hello.size()), kCap);
    REQUIRE(first.status == Status::complete);
    CHECK(same_result(reader.parse(std::span<const std::uint8_t>(followed.data(), followed.size()), kCap), first));
    HelloReader refusing;
    const Bytes http = str_bytes("GET / HTTP/1.1\r\n");
    CHECK(refusing.parse(std::span<const std::uint8_t>(http.data(), 1), kCap).error == HelloError::not_tls);
    CHECK(refusing.parse(std::span<const std::uint8_t>(http.data(), http.size()), kCap).error ==
          HelloError::not_tls);
}

TEST_CASE("record limit: a hello in 64 records parses, one that needs a 65th is too_many_records",
          "[client_hello][records]") {
    REQUIRE(max_hello_records == 64);
    const Bytes message = client_hello(typical_spec());
    // 64 records exactly: 63 of one byte, the last one carries what is left.
    const Bytes in_64 = cat({frame(Bytes(message.begin(), message.begin() + 63), 1),
                             record(22, Bytes(message.begin() + 63, message.end()))});
    REQUIRE(count_records(in_64) == 64);
    const HelloParse fits = parse(in_64, kCap, max_hello_records);
    REQUIRE(fits.status == Status::complete);
    CHECK(fits.hello.records == 64);
    CHECK(fits.hello.sni == "example.com");
    // One byte per record: 64 records carry 64 of the message's bytes. Refused as soon as the
    // 64th record's header is in (the message needs more than it declares), before its payload,
    // and never need_more before that point.
    const Bytes in_1 = frame(message, 1);
    const std::size_t decided_at = 63 * 6 + 5;
    CHECK(parse_prefix(in_1, decided_at - 1, kCap, max_hello_records).status == Status::need_more);
    const HelloParse refused = parse_prefix(in_1, decided_at, kCap, max_hello_records);
    CHECK(refused.status == Status::rejected);
    CHECK(refused.error == HelloError::too_many_records);
    CHECK(hello_error_metric_reason(refused.error) == "too_large");
    // parse_client_hello's default limit is the same.
    CHECK(parse_client_hello(std::span<const std::uint8_t>(in_1.data(), in_1.size()), kCap).error ==
          HelloError::too_many_records);
    // Records of 2 bytes: the handshake header (4 bytes) spans two records; 64 records carry
    // 128 bytes, fewer than the message.
    CHECK(parse(frame(message, 2), kCap, max_hello_records).error == HelloError::too_many_records);
    // A tiny limit: the handshake header itself cannot be complete within it.
    CHECK(parse(frame(message, 1), kCap, 3).error == HelloError::too_many_records);
    CHECK(parse(frame(message, 1), kCap, 4).error == HelloError::too_many_records);
    CHECK(parse_prefix(frame(message, 1), 3 * 6, kCap, 4).status == Status::need_more);
}

TEST_CASE("record limit: the largest valid hello fits it many times over in full records",
          "[client_hello][records]") {
    // A ClientHello's variable parts are 8- and 16-bit vectors: at most about 128 KiB in all,
    // whatever max_client_hello_size allows. Cipher suites and extensions both full:
    HelloSpec spec;
    spec.session_id = vec8(Bytes(32, 0x11));
    spec.ciphers = vec16(Bytes(0xfffe, 0x13));
    spec.compression = vec8(Bytes(0xff, 0x00));
    spec.extensions = vec16(cat({sni_ext({"huge.example.com"}),
                                  extension(21, Bytes(0xffff - 4 - sni_ext({"huge.example.com"}).size(), 0))}));
    REQUIRE(spec.extensions->size() == 2 + 0xffff);
    const Bytes message = client_hello(spec);
    const Bytes full_records = frame(message, 16384);
    INFO(message.size() << " bytes of message, " << count_records(full_records) << " records of 16 KiB");
    CHECK(count_records(full_records) == 9);
    const HelloParse result = parse(full_records, 1024 * 1024, max_hello_records);
    REQUIRE(result.status == Status::complete);
    CHECK(result.hello.sni == "huge.example.com");
    // Cut into records of 2 KiB it needs 65: that is refused.
    const Bytes small_records = frame(message, 2048);
    REQUIRE(count_records(small_records) == 65);
    CHECK(parse(small_records, 1024 * 1024, max_hello_records).error == HelloError::too_many_records);
}

TEST_CASE("ALPN caps: 16 ids and 512 bytes are kept, more is bad_alpn", "[client_hello][alpn]") {
    REQUIRE(max_alpn_protocols == 16);
    REQUIRE(max_alpn_list_bytes == 512);
    const auto with_alpn_list = [](const Bytes& list) {
        HelloSpec spec;
        spec.extensions = extensions_block({sni_ext({"example.com"}), extension(16, vec16(list))});
        return frame(spec);
    };
    const auto ids = [](std::size_t count, std::size_t length) {
        Bytes list;
        for (std::size_t i = 0; i < count; ++i) {
            Bytes name(length, static_cast<std::uint8_t>('a' + i % 26));
            append(list, vec8(name));
        }
        return list;
    };
    // 16 ids: kept in order.
    const ClientHello sixteen = require_complete(with_alpn_list(ids(16, 3)));
    CHECK(sixteen.alpn.size() == 16);
    CHECK(sixteen.alpn.front() == "aaa");
    CHECK(sixteen.alpn.back() == "ppp");
    require_rejected(with_alpn_list(ids(17, 3)), HelloError::bad_alpn);
    // 512 bytes of list: two ids of the RFC's maximum, 255 bytes (2 x 256 list bytes).
    const ClientHello longest = require_complete(with_alpn_list(ids(2, 255)));
    CHECK(longest.alpn == std::vector<std::string>{std::string(255, 'a'), std::string(255, 'b')});
    require_rejected(with_alpn_list(cat({ids(2, 255), ids(1, 1)})), HelloError::bad_alpn);
    require_rejected(with_alpn_list(cat({ids(1, 255), ids(1, 255), ids(1, 1)})), HelloError::bad_alpn);
    // The amplification case: 30,000 one-byte ids (60,000 bytes) in a 64 KiB hello.
    const Bytes amplifier = with_alpn_list(ids(30000, 1));
    REQUIRE(amplifier.size() < kCap);
    require_rejected(amplifier, HelloError::bad_alpn);
    CHECK(hello_error_metric_reason(HelloError::bad_alpn) == "malformed");
}
