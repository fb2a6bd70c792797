#pragma once
// A blocking HTTP/1.1 client for passgate's own admin server (`passgate upgrade`, `passgate
// status`): one request per connection, bounded in time (a deadline) and in size.

#include "config/address.h"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace passgate {

struct HttpAnswer {
    int status = 0;
    std::string body;
};

// Answers longer than this are cut here (a body cut short fails to parse, it is not trusted).
constexpr std::size_t kMaxAnswerBytes = 16 * 1024 * 1024;

// The admin address to connect to: an unspecified one (0.0.0.0, [::]) means this machine.
config::Address connectable(config::Address address);

// One request, Connection: close, within `deadline`. nullopt (and `error` set) when it fails.
std::optional<HttpAnswer> exchange(const config::Address& admin, const std::string& method, const std::string& path,
                                   std::chrono::steady_clock::time_point deadline, std::string& error);

}  // namespace passgate
