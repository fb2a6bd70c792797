#include "src/wire/dns_answer.h"

#include "config/hostname.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace passgate {

namespace {

constexpr std::size_t header_size = 12;
constexpr std::size_t max_name_wire_length = 255;  // RFC 1035 3.1, length octets included
// Pointers only go backwards, so chains end anyway; a name of 255 octets has at most 127 labels,
// and no honest encoder chains more pointers than labels.
constexpr int max_pointer_hops = 127;

// A cursor over the message. Every read checks the bound first; a failed read leaves the cursor
// where it was and returns nullopt, and the caller turns that into "truncated".
class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> message) : message_(message) {}

    std::size_t offset() const { return offset_; }
    void seek(std::size_t offset) { offset_ = offset; }
    std::size_t left() const { return message_.size() - offset_; }

    std::optional<std::uint16_t> u16() {
        if (left() < 2) return std::nullopt;
        const auto value = static_cast<std::uint16_t>(message_[offset_] << 8 | message_[offset_ + 1]);
        offset_ += 2;
        return value;
    }
    std::optional<std::uint32_t> u32() {
        if (left() < 4) return std::nullopt;
        const std::uint32_t value = std::uint32_t{message_[offset_]} << 24 |
                                    std::uint32_t{message_[offset_ + 1]} << 16 |
                                    std::uint32_t{message_[offset_ + 2]} << 8 |
                                    std::uint32_t{message_[offset_ + 3]};
        offset_ += 4;
        return value;
    }

private:
    std::span<const std::uint8_t> message_;
    std::size_t offset_ = 0;
};

bool srv_target_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Reads the (possibly compressed) name at the reader's offset and leaves the reader just past it
// in the record (after its first pointer, or after its root label). With `text`, the name is
// written there as lower-case dotted labels without the trailing dot ("" for the root), and only
// characters a host name may carry are accepted. With `wire`, the name is written there as its
// uncompressed wire form with ASCII letters lower-cased (length-prefixed labels, no root label):
// two names are the same DNS name exactly when these are equal (RFC 4343). Returns an error, or
// nullptr.
const char* read_name(std::span<const std::uint8_t> message, Reader& reader, std::string* text,
                      std::string* wire = nullptr) {
    std::size_t position = reader.offset();
    // Labels being read are at or after run_start; a pointer must point strictly before it, so
    // each jump lands earlier than the last and the walk ends.
    std::size_t run_start = position;
    std::size_t end_in_record = 0;  // set at the first pointer
    bool jumped = false;
    std::size_t wire_length = 0;
    int hops = 0;
    if (text != nullptr) text->clear();
    if (wire != nullptr) wire->clear();
    // Every round adds a label to wire_length (at most 255 octets in all) or takes one of at most
    // max_pointer_hops jumps: a few hundred rounds at most.
    for (;;) {
        if (position >= message.size()) return "truncated";
        const std::uint8_t length = message[position];
        const std::uint8_t kind = length & 0xC0;
        if (kind == 0xC0) {
            if (position + 1 >= message.size()) return "truncated";
            const std::size_t target = std::size_t{length & 0x3Fu} << 8 | message[position + 1];
            if (target < header_size || target >= run_start || ++hops > max_pointer_hops)
                return "bad name compression";
            if (!jumped) end_in_record = position + 2;
            jumped = true;
            position = target;
            run_start = target;
            continue;
        }
        if (kind != 0) return "bad name";  // 0x40 and 0x80 label types are not in use (RFC 6891)
        wire_length += 1 + std::size_t{length};
        if (wire_length > max_name_wire_length) return "bad name";
        if (length == 0) {
            reader.seek(jumped ? end_in_record : position + 1);
            return nullptr;
        }
        if (message.size() - position - 1 < length) return "truncated";
        if (wire != nullptr) {
            wire->push_back(static_cast<char>(length));
            for (std::size_t i = 0; i < length; ++i) {
                const char c = config::ascii_lower(static_cast<char>(message[position + 1 + i]));
                wire->push_back(c);
            }
        }
        if (text != nullptr) {
            if (!text->empty()) text->push_back('.');
            for (std::size_t i = 0; i < length; ++i) {
                const char c = config::ascii_lower(static_cast<char>(message[position + 1 + i]));
                if (!srv_target_char(c)) return "bad SRV target";
                text->push_back(c);
            }
        }
        position += 1 + std::size_t{length};
    }
}

// CNAME records followed from the question name before giving up (glibc and c-ares stop at
// 8 to 16; a longer chain is a misconfiguration or an attack).
constexpr int max_cname_chain = 8;

// A record of the answer section kept between the two passes (see parse_dns_answer).
struct AnswerRecord {
    std::string owner;   // wire form, lower-cased (read_name's `wire`)
    std::string target;  // CNAME only: the canonical name, same form
    std::size_t rdata = 0;
    std::size_t rdata_end = 0;
    std::uint32_t ttl = 0;
};

// RFC 2181 section 8: a TTL with the top bit set is treated as zero.
std::uint32_t clamp_ttl(std::uint32_t ttl) { return ttl > 0x7FFFFFFFu ? 0 : ttl; }

DnsAnswer fail(const char* error) {
    DnsAnswer answer;
    answer.error = error;
    return answer;
}

}  // namespace

std::string dns_rcode_name(unsigned rcode) {
    switch (rcode) {
        case 0: return "NOERROR";
        case 1: return "FORMERR";
        case 2: return "SERVFAIL";
        case 3: return "NXDOMAIN";
        case 4: return "NOTIMP";
        case 5: return "REFUSED";
        default: return "RCODE " + std::to_string(rcode);
    }
}

DnsAnswer parse_dns_answer(std::span<const std::uint8_t> message, std::uint16_t qtype) {
    if (qtype != dns_type_a && qtype != dns_type_aaaa && qtype != dns_type_srv)
        return fail("unsupported query type");
    if (message.size() < header_size) return fail("truncated");
    // The whole header is there, so these reads cannot fail. The ID (bytes 0-1) is not read:
    // the transport matched it to the query already.
    Reader reader(message);
    reader.seek(2);
    const std::uint16_t flags = reader.u16().value();
    const std::uint16_t question_count = reader.u16().value();
    const std::uint16_t answer_count = reader.u16().value();
    const std::uint16_t authority_count = reader.u16().value();
    const std::uint16_t additional_count = reader.u16().value();

    if ((flags & 0x8000) == 0) return fail("not a response");
    if (((flags >> 11) & 0xF) != 0) return fail("unexpected opcode");
    if ((flags & 0x0200) != 0) return fail("TC bit set");
    const unsigned rcode = flags & 0xF;
    if (rcode != 0) {
        DnsAnswer answer;
        answer.error = dns_rcode_name(rcode);
        return answer;
    }
    if (question_count != 1) return fail("bad question count");
    std::string question_name;
    if (const char* error = read_name(message, reader, nullptr, &question_name)) return fail(error);
    const auto question_type = reader.u16();
    const auto question_class = reader.u16();
    if (!question_type || !question_class) return fail("truncated");
    if (*question_type != qtype || *question_class != dns_class_in) return fail("question mismatch");

    // First pass: every record is walked (well-formedness); the answer section's CNAME records
    // and records of the asked type are kept for the second pass.
    std::vector<AnswerRecord> cnames;
    std::vector<AnswerRecord> wanted;
    // Each record takes at least 11 bytes, so the counts are bounded by the message size.
    const std::size_t record_count =
        std::size_t{answer_count} + std::size_t{authority_count} + std::size_t{additional_count};
    for (std::size_t index = 0; index < record_count; ++index) {
        AnswerRecord record;
        if (const char* error = read_name(message, reader, nullptr, &record.owner)) return fail(error);
        const auto type = reader.u16();
        const auto klass = reader.u16();
        const auto ttl = reader.u32();
        const auto rdlength = reader.u16();
        if (!type || !klass || !ttl || !rdlength) return fail("truncated");
        record.rdata = reader.offset();
        if (reader.left() < *rdlength) return fail("truncated");
        record.rdata_end = record.rdata + *rdlength;
        record.ttl = *ttl;
        reader.seek(record.rdata_end);
        if (index >= answer_count || *klass != dns_class_in) continue;
        if (*type == dns_type_cname) {
            // The target must fill the RDATA exactly; a sub-reader that ends there keeps its
            // labels inside it (pointers to earlier names are followed).
            Reader target(message.first(record.rdata_end));
            target.seek(record.rdata);
            if (const char* error = read_name(message.first(record.rdata_end), target, nullptr, &record.target))
                return fail(std::strcmp(error, "truncated") == 0 ? "bad record length" : error);
            if (target.offset() != record.rdata_end) return fail("bad record length");
            cnames.push_back(std::move(record));
        } else if (*type == qtype) {
            wanted.push_back(std::move(record));
        }
    }

    // The name whose records answer the question: the question name, or the end of the CNAME
    // chain that starts at it (RFC 1034 3.6.2, 4.3.2). Records owned by any other name are not
    // an answer to this question (a confused or poisoned server's extra data) and are ignored.
    std::string answer_name = question_name;
    std::vector<std::string> seen{question_name};
    for (int hop = 0;; ++hop) {
        const auto next = std::find_if(cnames.begin(), cnames.end(),
                                       [&](const AnswerRecord& cname) { return cname.owner == answer_name; });
        if (next == cnames.end()) break;
        if (hop == max_cname_chain) return fail("CNAME chain too long");
        if (std::find(seen.begin(), seen.end(), next->target) != seen.end()) return fail("CNAME loop");
        answer_name = next->target;
        seen.push_back(answer_name);
    }

    DnsAnswer answer;
    bool other_names = false;  // records of the asked type for a name not in the chain's end
    for (const AnswerRecord& record : wanted) {
        if (record.owner != answer_name) {
            other_names = true;
            continue;
        }
        const std::size_t rdlength = record.rdata_end - record.rdata;
        if (qtype == dns_type_a || qtype == dns_type_aaaa) {
            const std::size_t size = qtype == dns_type_a ? 4 : 16;
            if (rdlength != size) return fail("bad record length");
            DnsAddressRecord address;
            address.family = qtype == dns_type_a ? AF_INET : AF_INET6;
            std::memcpy(address.bytes.data(), message.data() + record.rdata, size);
            address.ttl = clamp_ttl(record.ttl);
            answer.addresses.push_back(address);
            continue;
        }
        // SRV: priority, weight, port, target. The target must end exactly at the end of the
        // RDATA (RFC 2782 forbids compressing it; pointers are still followed, as resolvers do).
        // The sub-reader sees only the message up to the end of this RDATA, so the target's own
        // labels cannot run past it.
        Reader srv(message.first(record.rdata_end));
        srv.seek(record.rdata);
        const auto priority = srv.u16();
        const auto weight = srv.u16();
        const auto port = srv.u16();
        if (!priority || !weight || !port) return fail("bad record length");
        DnsSrvRecord service;
        if (const char* error = read_name(message.first(record.rdata_end), srv, &service.target)) {
            return fail(std::strcmp(error, "truncated") == 0 ? "bad record length" : error);
        }
        if (srv.offset() != record.rdata_end) return fail("bad record length");
        service.priority = *priority;
        service.weight = *weight;
        service.port = *port;
        service.ttl = clamp_ttl(record.ttl);
        if (!service.target.empty()) answer.services.push_back(std::move(service));
    }
    // Records of the asked type, none of them for the name asked: not NODATA (which would empty
    // the pool) but an error, so discovery keeps its last good set.
    if (other_names && answer.addresses.empty() && answer.services.empty())
        return fail("answer name mismatch");
    return answer;
}

config::Address dns_record_address(const DnsAddressRecord& record, std::uint16_t port) {
    config::Address address;
    if (record.family == AF_INET) {
        auto& sin = reinterpret_cast<sockaddr_in&>(address.storage);
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        std::memcpy(&sin.sin_addr, record.bytes.data(), 4);
        address.length = sizeof(sockaddr_in);
    } else {
        auto& sin6 = reinterpret_cast<sockaddr_in6&>(address.storage);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        std::memcpy(&sin6.sin6_addr, record.bytes.data(), 16);
        address.length = sizeof(sockaddr_in6);
    }
    return address;
}

}  // namespace passgate
