#pragma once
// User text inside one-line error messages (the config's, an endpoints file's).

#include <string>
#include <string_view>

namespace passgate::config {

// `text` in double quotes with control characters, quotes and backslashes escaped, cut after
// 100 bytes: safe to put any user string into a one-line message.
std::string quote(std::string_view text);

}  // namespace passgate::config
