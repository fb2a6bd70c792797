// read_endpoints_file (src/discovery/endpoints_file_reader.h): the endpoints file's one safe read. Apart from the
// parser, which is pure and fuzzed on its own.
#include "src/discovery/endpoints_file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace passgate {

namespace {

// What kind of non-regular file `mode` is, for the error message.
std::string file_kind(mode_t mode) {
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISDIR(mode)) return "a directory";
    return "not a regular file";
}

WatchedFileRead read_failure(const std::string& path, const std::string& message) {
    WatchedFileRead failed;
    failed.error = path + ": " + message;
    return failed;
}

}  // namespace

WatchedFileRead read_watched_file(const std::string& path, std::size_t max_bytes, std::string_view role) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (forever).
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return read_failure(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        const int error = errno;
        ::close(fd);
        return read_failure(path, std::string("cannot stat: ") + std::strerror(error));
    }
    if (!S_ISREG(status.st_mode)) {
        ::close(fd);
        return read_failure(path, "not a regular file (" + file_kind(status.st_mode) +
                                      "); " + std::string(role) + " must be a regular file");
    }
    // One byte more than the parser accepts, so that it sees (and reports) an oversized file.
    const std::size_t max_read = max_bytes + 1;
    // Sized by fstat (a hostnames file may be allowed 256 MiB but hold 20), grown if the file
    // grows while it is read.
    std::string text(std::min(max_read, static_cast<std::size_t>(status.st_size) + 1), '\0');
    std::size_t got = 0;
    while (got < max_read) {
        if (got == text.size()) text.resize(std::min(max_read, text.size() * 2));
        const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int error = errno;
            ::close(fd);
            return read_failure(path, std::string("read error: ") + std::strerror(error));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    text.resize(got);
    return WatchedFileRead{std::move(text), {}};
}

EndpointsFileParse read_endpoints_file(const std::string& path) {
    return read_and_parse(path, kEndpointsFileMaxBytes, "an endpoints file", &parse_endpoints_file);
}

}  // namespace passgate
