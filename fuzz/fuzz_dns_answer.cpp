// libFuzzer target for the DNS answer parser (src/wire/dns_answer.h).
//
// The input is a whole response message, parsed as the answer to each supported query type (only
// the type in its question gets past the question check). Invariant violations abort, so libFuzzer
// reports them as crashes; out-of-bounds reads are caught by ASan.

#include "src/wire/dns_answer.h"

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

bool target_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

void check(std::span<const std::uint8_t> message, std::uint16_t qtype) {
    const passgate::DnsAnswer answer = passgate::parse_dns_answer(message, qtype);
    // Pure: the same bytes give the same answer.
    const passgate::DnsAnswer again = passgate::parse_dns_answer(message, qtype);
    require(answer.error == again.error);
    require(answer.addresses == again.addresses);
    require(answer.services == again.services);
    if (!answer.ok()) {
        require(answer.addresses.empty() && answer.services.empty());
        return;
    }
    // A header, a question (at least 5 bytes), then at least 11 bytes per record.
    require(message.size() >= 12 + 5);
    const std::size_t records = answer.addresses.size() + answer.services.size();
    require(records <= (message.size() - 17) / 11);
    // Only answer-section records are taken (owned by the question name or its CNAME chain's
    // end; the chain's CNAMEs are answer records too, at most 8 of them).
    const std::size_t answer_count = std::size_t{message[6]} << 8 | message[7];
    require(records <= answer_count);
    for (const auto& record : answer.addresses) {
        require(qtype != passgate::dns_type_srv);
        require(record.family == (qtype == passgate::dns_type_a ? AF_INET : AF_INET6));
        require(record.ttl <= 0x7FFFFFFFu);
        require(passgate::dns_record_address(record, 443).port() == 443);
    }
    for (const auto& record : answer.services) {
        require(qtype == passgate::dns_type_srv);
        require(record.ttl <= 0x7FFFFFFFu);
        require(!record.target.empty() && record.target.size() <= 253);
        require(record.target.front() != '.' && record.target.back() != '.');
        for (const char c : record.target) require(target_char(c));
        require(record.target.find("..") == std::string::npos);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> message(data, size);
    for (const std::uint16_t qtype :
         {passgate::dns_type_a, passgate::dns_type_aaaa, passgate::dns_type_srv}) {
        check(message, qtype);
    }
    return 0;
}
