// libFuzzer target for the health check's bytes (src/wire/health_hello.h).
//
// The input is used two ways:
//  - as the first bytes a backend answers a `tls` health check with: classify_server_reply must
//    decide within kServerReplyBytes, and a verdict on a prefix never changes with more bytes
//    (the checker stops reading at the first verdict);
//  - as a server name: when the config would take it as a health check's sni, the health check's
//    ClientHello for it must be a hello that passgate's own parser accepts, with that SNI.
// Invariant violations abort, so libFuzzer reports them as crashes.

#include "config/hostname.h"
#include "src/wire/client_hello.h"
#include "src/wire/health_hello.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

void check_reply(std::span<const std::uint8_t> bytes) {
    using passgate::ServerReply;
    const ServerReply whole = passgate::classify_server_reply(bytes);
    if (bytes.size() >= passgate::kServerReplyBytes) require(whole != ServerReply::need_more);
    ServerReply first_verdict = ServerReply::need_more;
    for (std::size_t length = 0; length <= bytes.size() && length <= passgate::kServerReplyBytes + 2; ++length) {
        const ServerReply prefix = passgate::classify_server_reply(bytes.first(length));
        if (first_verdict == ServerReply::need_more) first_verdict = prefix;
        else require(prefix == first_verdict);
    }
    if (first_verdict != ServerReply::need_more) require(whole == first_verdict);
}

void check_hello(std::span<const std::uint8_t> bytes) {
    const std::string_view name(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    // The names make_health_client_hello is specified for: those the config accepts as a health
    // check's sni (the one hostname rule, config/hostname.h).
    if (!passgate::config::is_valid_hostname(name, passgate::config::HostnameSyntax::route)) return;
    passgate::HelloEntropy entropy;
    for (std::size_t i = 0; i < entropy.random.size(); ++i) entropy.random[i] = static_cast<std::uint8_t>(i);
    const std::vector<std::uint8_t> hello = passgate::make_health_client_hello(name, entropy);
    const passgate::HelloParse parsed = passgate::parse_client_hello(hello, 64 * 1024, passgate::max_hello_records);
    // The same rule on both sides: every name the config takes is an SNI the parser takes.
    require(parsed.status == passgate::HelloParse::Status::complete);
    require(parsed.hello.sni == name);
    require(parsed.hello.record_bytes == hello.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    check_reply(bytes);
    check_hello(bytes);
    return 0;
}
