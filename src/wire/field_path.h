#pragma once
// Field paths shared by yaml_document.cpp (the line of every value) and gateway_objects.cpp (the
// field an error names), so that one names exactly what the other recorded:
// "spec.listeners[1].port", and `metadata.labels["app.kubernetes.io/name"]` for a key that is not
// a plain identifier. Internal to src/wire.

#include <cstddef>
#include <string>
#include <string_view>

namespace passgate::wire {

// The longest key a path spells out; a longer one is cut (paths are for messages and lines).
inline constexpr std::size_t kMaxPathKeyBytes = 64;

inline bool is_plain_key(std::string_view key) {
    if (key.empty()) return false;
    for (const char c : key) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                           c == '_' || c == '-';
        if (!plain) return false;
    }
    return true;
}

// `text` for a message: bytes outside printable ASCII (and `"`, `\`) as \xNN, at most `max_bytes`
// of it, "..." when cut.
inline std::string printable(std::string_view text, std::size_t max_bytes) {
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < max_bytes; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        }
    }
    if (text.size() > max_bytes) out += "...";
    return out;
}

// `path` followed by the member `key`.
inline std::string member_path(const std::string& path, std::string_view key) {
    if (is_plain_key(key) && key.size() <= kMaxPathKeyBytes) {
        return path.empty() ? std::string(key) : path + "." + std::string(key);
    }
    // Quoted, printable, bounded: a key may be anything YAML or JSON allows.
    return path + "[\"" + printable(key, kMaxPathKeyBytes) + "\"]";
}

// `path` followed by the element `index`.
inline std::string index_path(const std::string& path, std::size_t index) {
    return path + "[" + std::to_string(index) + "]";
}

}  // namespace passgate::wire
