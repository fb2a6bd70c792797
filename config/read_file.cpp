#include "config/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace passgate::config {

std::string read_bounded_file(const std::string& path, std::size_t max_bytes, bool nonblocking) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0));
    if (fd < 0) throw FileReadError(std::string("cannot read: ") + std::strerror(errno));
    std::string text;
    char buffer[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int saved = errno;
            ::close(fd);
            throw FileReadError(std::string("cannot read: ") + std::strerror(saved));
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_bytes) {
            ::close(fd);
            throw FileReadError("larger than " + std::to_string(max_bytes) + " bytes");
        }
    }
    ::close(fd);
    return text;
}

}  // namespace passgate::config
