#pragma once
// Parser of a hostnames file: the hostnames of a route kept in a file of their own
// (`hostnames_file = "path"` in a [[route]]), for tables too large for the TOML (shared hosting,
// SaaS custom domains: up to millions of names), rewritten by some other program and watched for
// changes. parse_hostnames_file is pure; read_hostnames_file (src/discovery/hostnames_file_reader.h)
// reads the file without ever blocking. The caller keeps the last good list on an error.
// Untrusted input: everything is bounded and every byte is checked.
//
// Format (config/README.md, "Hostnames file format"):
//
//     # tenants of edge-1, written by sync-tenants
//     shop.example.com
//     *.customers.example.net      # every customer subdomain
//     WWW.Example.ORG
//
// - One hostname pattern per line, exactly as a route's `hostnames` entry: a name, or "*." and a
//   name; lowercased on reading; no trailing dot; not an IP literal (config/hostname.h).
// - Blanks (spaces, tabs) around the name are ignored; `#` starts a comment anywhere on a line;
//   blank lines are ignored; lines may end in "\r\n". A second word on a line is an error.
// - A name listed twice in one file is kept once (generated lists often repeat a name; it
//   changes nothing).
// - An empty file, or one with only comments, is a valid empty list: the route then matches no
//   hostname.
// - Bounds: the file at most 256 MiB, a line at most 4096 bytes, at most 8,000,000 names.
//
// Errors are one line, "FILE:LINE: MESSAGE" (LINE 1-based; 0 for the file as a whole), with user
// text quoted and cut like the config's. Only the first error is reported.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace passgate {

inline constexpr std::size_t kHostnamesFileMaxBytes = std::size_t{256} << 20;
inline constexpr std::size_t kHostnamesFileMaxLineBytes = 4096;
inline constexpr std::size_t kHostnamesFileMaxNames = 8'000'000;

// Names stored back to back in one buffer (4 bytes of offset per name besides its text), in file
// order, lowercased, validated. Immutable once parsed; shared by snapshots through a shared_ptr.
class HostnameList {
public:
    std::size_t size() const { return ends_.size(); }
    bool empty() const { return ends_.empty(); }
    std::string_view operator[](std::size_t index) const {
        const std::uint32_t begin = index == 0 ? 0 : ends_[index - 1];
        return std::string_view(text_).substr(begin, ends_[index] - begin);
    }
    // Bytes held (text and offsets), for the memory figures.
    std::size_t bytes() const { return text_.capacity() + ends_.capacity() * sizeof(std::uint32_t); }

    void push_back(std::string_view name);
    void shrink_to_fit();

private:
    std::string text_;
    std::vector<std::uint32_t> ends_;  // end offset of each name in text_
};

struct HostnamesFileParse {
    HostnameList names;  // empty when error is set
    std::string error;   // empty on success, else "FILE:LINE: MESSAGE"

    bool ok() const { return error.empty(); }
};

// `source_name` is only used as FILE in error messages (the path, usually).
HostnamesFileParse parse_hostnames_file(std::string_view text, std::string_view source_name);

}  // namespace passgate
