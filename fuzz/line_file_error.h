#pragma once
// What the fuzz targets of the line-based file parsers (endpoints files, hostnames files) check of
// an error: "FILE:LINE: MESSAGE" on one line, LINE without leading zeros, and line 0 (the whole
// file) only for a file over its size bound. Aborts otherwise.

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>

inline void check_line_file_error(const std::string& error, std::string_view file, std::size_t size,
                                  std::size_t max_bytes) {
    auto check = [](bool condition) {
        if (!condition) std::abort();
    };
    const std::size_t start = file.size() + 1;  // after "FILE:"
    check(error.compare(0, file.size(), file) == 0 && error.size() > start && error[file.size()] == ':');
    std::size_t position = start;
    while (position < error.size() && error[position] >= '0' && error[position] <= '9') ++position;
    check(position > start && error.compare(position, 2, ": ") == 0);
    check(error[start] != '0' || position == start + 1);  // no leading zeros
    check(error[start] != '0' || size > max_bytes);
    check(error.find('\n') == std::string::npos && error.find('\r') == std::string::npos);
}
