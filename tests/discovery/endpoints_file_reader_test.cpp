#include "src/wire/endpoints_file.h"
#include "src/discovery/endpoints_file_reader.h"

#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <optional>
#include <string>

using passgate::DiscoveredEndpoint;
using passgate::EndpointsFileParse;

// ---- read_endpoints_file -------------------------------------------------------------------------

TEST_CASE("endpoints file read: a regular file is read and parsed", "[endpoints_file]") {
    integration::TempDir dir;
    const std::string path = dir.file("pool.endpoints");
    integration::write_file(path, "10.0.0.1:443\n10.0.0.2:443 weight=2\n");
    const EndpointsFileParse result = passgate::read_endpoints_file(path);
    REQUIRE(result.ok());
    CHECK(result.endpoints.size() == 2);

    const EndpointsFileParse missing = passgate::read_endpoints_file(dir.file("missing"));
    CHECK(missing.error == dir.file("missing") + ": cannot open: No such file or directory");
}

TEST_CASE("endpoints file read: a FIFO, a directory or a socket is refused at once", "[endpoints_file]") {
    integration::TempDir dir;
    // A FIFO nobody writes to: opening it for reading without O_NONBLOCK would wait forever.
    const std::string fifo = dir.file("pool.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    EndpointsFileParse result = passgate::read_endpoints_file(fifo);
    CHECK(result.error ==
          fifo + ": not a regular file (a FIFO); an endpoints file must be a regular file");
    CHECK(result.endpoints.empty());

    result = passgate::read_endpoints_file(dir.path().string());
    CHECK(result.error.find(": not a regular file (a directory)") != std::string::npos);

    // A character device: /dev/zero would never end (the read bound would stop it, but it is
    // not a file of endpoints either).
    result = passgate::read_endpoints_file("/dev/zero");
    CHECK(result.error == "/dev/zero: not a regular file (a character device); an endpoints file must be a "
                          "regular file");

    const std::string socket_path = dir.file("pool.sock");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(socket_path.size() < sizeof address.sun_path);
    std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    result = passgate::read_endpoints_file(socket_path);
    ::close(fd);
    // open() of a socket file fails (ENXIO) before fstat can say what it is.
    CHECK_FALSE(result.ok());
}

TEST_CASE("endpoints file read: the read is bounded; a larger file is reported as too large",
          "[endpoints_file]") {
    integration::TempDir dir;
    const std::string path = dir.file("big.endpoints");
    integration::write_file(path, std::string(passgate::kEndpointsFileMaxBytes + 4096, '#'));
    const EndpointsFileParse result = passgate::read_endpoints_file(path);
    CHECK(result.error == path + ":0: file is larger than 1048576 bytes (1048577 bytes)");
}
