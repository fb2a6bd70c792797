#pragma once
// A real PROXY protocol reader for the tests: NGINX (Debian's nginx with the stream module) in the
// foreground, listening with `proxy_protocol`, answering every connection with one line:
//   "client=IP:PORT server=IP:PORT\n"
// the client and server addresses it read from the PROXY header it was sent.

#include "tests/support/process.h"

#include <cstdint>
#include <memory>
#include <string>

namespace integration {

class NginxProxyProtocolEcho {
public:
    static constexpr const char* stream_module = "/usr/lib/nginx/modules/ngx_stream_module.so";
    // Starts NGINX with its files in `dir` and waits (bounded) until it accepts.
    explicit NginxProxyProtocolEcho(const TempDir& dir);
    std::uint16_t port() const { return port_; }

private:
    std::uint16_t port_;
    std::unique_ptr<Process> process_;
};

// One line (without its '\n') from `fd`, at most 512 bytes, within 3 s; what arrived on timeout.
std::string read_line(int fd);

}  // namespace integration
