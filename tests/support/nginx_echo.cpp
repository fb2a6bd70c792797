#include "tests/support/nginx_echo.h"

#include "tests/support/net.h"

#include <catch2/catch.hpp>

namespace integration {

NginxProxyProtocolEcho::NginxProxyProtocolEcho(const TempDir& dir) : port_(free_port()) {
    const std::string config =
        "load_module " + std::string(stream_module) + ";\n"
        "daemon off;\nmaster_process off;\nworker_processes 1;\n"
        "pid " + dir.file("nginx.pid") + ";\nerror_log " + dir.file("nginx-error.log") + " info;\n"
        "events { worker_connections 64; }\n"
        "stream {\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) + " proxy_protocol;\n"
        "    return \"client=$proxy_protocol_addr:$proxy_protocol_port "
        "server=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n\";\n  }\n}\n";
    write_file(dir.file("nginx.conf"), config);
    process_ = std::make_unique<Process>(SpawnOptions{
        {"nginx", "-c", dir.file("nginx.conf"), "-p", dir.path().string(), "-e", dir.file("nginx-error.log")},
        dir.file("nginx.out"), dir.file("nginx.err"), dir.path().string()});
    REQUIRE(wait_until([&] { return port_accepts(port_); }, Millis(5000)));
}

std::string read_line(int fd) {
    std::string line;
    char c = 0;
    while (line.size() < 512 && recv_exact(fd, &c, 1, deadline_in(Millis(3000))) && c != '\n') line += c;
    return line;
}

}  // namespace integration
