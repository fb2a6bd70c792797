#include "src/control/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <limits>

namespace passgate {

namespace {
// fs.nr_open: setrlimit refuses a limit above it (with an infinite hard limit, say).
std::uint64_t kernel_nr_open() {
    std::ifstream file("/proc/sys/fs/nr_open");
    std::uint64_t value = 0;
    if (file >> value && value > 0) return value;
    return 1024 * 1024;  // the kernel's default
}
}  // namespace

FdLimit raise_fd_limit() {
    FdLimit result;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        result.error = errno;
        return result;
    }
    result.soft_before = result.soft = limit.rlim_cur;
    result.hard = limit.rlim_max;
    rlim_t wanted = limit.rlim_max;
    if (wanted == RLIM_INFINITY) wanted = static_cast<rlim_t>(kernel_nr_open());
    if (wanted <= limit.rlim_cur) return result;
    rlimit raised = limit;
    raised.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        result.error = errno;
        return result;
    }
    result.soft = wanted;
    return result;
}

std::uint32_t derived_worker_connections(std::uint64_t fd_limit, unsigned workers, const FdReserve& reserve) {
    workers = std::max(workers, 1U);
    const std::uint64_t reserved = fd_reserve_base + reserve.admin_connections +
                                   2ull * reserve.pipe_pool_idle * workers;
    const std::uint64_t usable = fd_limit > reserved ? fd_limit - reserved : 0;
    const std::uint64_t per_worker = usable / 2 / workers;
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
        per_worker, min_worker_connections, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace passgate
