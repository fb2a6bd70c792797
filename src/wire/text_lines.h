#pragma once
// The lines of a text file, one at a time, for the line-based parsers of untrusted files
// (endpoints files, hostnames files): a line ends at "\n" or "\r\n"; the last needs no line end.

#include <cstddef>
#include <string_view>

namespace passgate {

class TextLines {
public:
    explicit TextLines(std::string_view text) : text_(text) {}

    // The next line, without its line end, into `line`; false once the text is used up.
    bool next(std::string_view& line) {
        if (position_ >= text_.size()) return false;
        ++number_;
        const std::size_t newline = text_.find('\n', position_);
        const std::size_t end = newline == std::string_view::npos ? text_.size() : newline;
        line = text_.substr(position_, end - position_);
        position_ = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return true;
    }
    // 1-based number of the line next() gave last.
    std::size_t number() const { return number_; }

private:
    std::string_view text_;
    std::size_t position_ = 0;
    std::size_t number_ = 0;
};

}  // namespace passgate
