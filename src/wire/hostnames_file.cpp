#include "src/wire/hostnames_file.h"

#include "config/hostname.h"
#include "config/quote.h"
#include "src/wire/text_lines.h"

namespace passgate {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

HostnamesFileParse failure(std::string_view source_name, std::size_t line, std::string_view message) {
    HostnamesFileParse result;
    result.error = std::string(source_name) + ":" + std::to_string(line) + ": " + std::string(message);
    return result;
}

}  // namespace

void HostnameList::push_back(std::string_view name) {
    text_.append(name);
    ends_.push_back(static_cast<std::uint32_t>(text_.size()));
}

void HostnameList::shrink_to_fit() {
    text_.shrink_to_fit();
    ends_.shrink_to_fit();
}

HostnamesFileParse parse_hostnames_file(std::string_view text, std::string_view source_name) {
    // The offsets are 32-bit: the byte bound keeps them in range.
    static_assert(kHostnamesFileMaxBytes < (std::size_t{1} << 32));
    if (text.size() > kHostnamesFileMaxBytes) {
        return failure(source_name, 0,
                       "file is larger than " + std::to_string(kHostnamesFileMaxBytes) + " bytes (" +
                           std::to_string(text.size()) + " bytes)");
    }
    HostnamesFileParse result;
    std::string lowered;  // one buffer for every line: no allocation per name
    TextLines lines(text);
    for (std::string_view line; lines.next(line);) {
        const std::size_t line_number = lines.number();
        if (line.size() > kHostnamesFileMaxLineBytes) {
            return failure(source_name, line_number,
                           "line is longer than " + std::to_string(kHostnamesFileMaxLineBytes) + " bytes");
        }
        line = line.substr(0, line.find('#'));
        while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
        while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
        if (line.empty()) continue;  // blank or comment only
        std::size_t blank = 0;
        while (blank < line.size() && !is_blank(line[blank])) ++blank;
        if (blank != line.size()) {
            return failure(source_name, line_number,
                           "expected one hostname per line, found " + config::quote(line));
        }
        if (result.names.size() == kHostnamesFileMaxNames) {
            return failure(source_name, line_number,
                           "more than " + std::to_string(kHostnamesFileMaxNames) + " hostnames");
        }
        lowered.assign(line);
        for (char& c : lowered) c = config::ascii_lower(c);
        const std::string problem = config::validate_hostname_pattern(lowered);
        if (!problem.empty()) {
            return failure(source_name, line_number, "invalid hostname " + config::quote(line) + ": " + problem);
        }
        result.names.push_back(lowered);
    }
    result.names.shrink_to_fit();
    return result;
}

}  // namespace passgate
