// read_endpoints_file (src/discovery/endpoints_file_reader.h): the endpoints file's one safe read. Apart from the
// parser, which is pure and fuzzed on its own.
#include "src/discovery/endpoints_file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

EndpointsFileParse read_failure(const std::string& path, const std::string& message) {
    EndpointsFileParse failed;
    failed.error = path + ": " + message;
    return failed;
}

}  // namespace

EndpointsFileParse read_endpoints_file(const std::string& path) {
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
                                      "); an endpoints file must be a regular file");
    }
    // One byte more than the parser accepts, so that it sees (and reports) an oversized file.
    constexpr std::size_t max_read = kEndpointsFileMaxBytes + 1;
    std::string text(max_read, '\0');
    std::size_t got = 0;
    while (got < max_read) {
        const ssize_t n = ::read(fd, text.data() + got, max_read - got);
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
    return parse_endpoints_file(text, path);
}

}  // namespace passgate
