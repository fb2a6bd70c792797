#include "metrics/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <limits>
#include <string>
#include <vector>

namespace passgate::metrics {

namespace {

constexpr double unavailable = std::numeric_limits<double>::quiet_NaN();

// Whole contents of a small /proc file (their st_size is 0, so read until EOF).
std::optional<std::string> read_proc_file(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

std::vector<std::string_view> split_on_spaces(std::string_view text) {
    std::vector<std::string_view> fields;
    std::size_t position = 0;
    while (position < text.size()) {
        const std::size_t start = text.find_first_not_of(" \n", position);
        if (start == std::string_view::npos) break;
        std::size_t end = text.find_first_of(" \n", start);
        if (end == std::string_view::npos) end = text.size();
        fields.push_back(text.substr(start, end - start));
        position = end;
    }
    return fields;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
    std::uint64_t value = 0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

std::optional<ProcessStat> parse_proc_pid_stat(std::string_view text, long clock_ticks_per_second,
                                               long page_size, double boot_time_seconds) {
    const std::size_t comm_end = text.rfind(')');
    if (comm_end == std::string_view::npos || clock_ticks_per_second <= 0) return std::nullopt;
    // fields[0] is field 3 of proc(5) ("state"), so field N is fields[N - 3].
    const std::vector<std::string_view> fields = split_on_spaces(text.substr(comm_end + 1));
    const auto field = [&fields](std::size_t number) -> std::optional<std::uint64_t> {
        if (number - 3 >= fields.size()) return std::nullopt;
        return parse_unsigned(fields[number - 3]);
    };
    const auto utime = field(14), stime = field(15), starttime = field(22), vsize = field(23),
               rss = field(24);
    if (!utime || !stime || !starttime || !vsize || !rss) return std::nullopt;
    const double ticks = static_cast<double>(clock_ticks_per_second);
    ProcessStat stat;
    stat.cpu_seconds = static_cast<double>(*utime + *stime) / ticks;
    stat.start_time_seconds = boot_time_seconds + static_cast<double>(*starttime) / ticks;
    stat.virtual_memory_bytes = static_cast<double>(*vsize);
    stat.resident_memory_bytes = static_cast<double>(*rss) * static_cast<double>(page_size);
    return stat;
}

std::optional<double> parse_boot_time(std::string_view proc_stat_text) {
    std::size_t position = 0;
    while (position < proc_stat_text.size()) {
        std::size_t end = proc_stat_text.find('\n', position);
        if (end == std::string_view::npos) end = proc_stat_text.size();
        const std::string_view line = proc_stat_text.substr(position, end - position);
        if (line.starts_with("btime ")) {
            const auto seconds = parse_unsigned(line.substr(6));
            if (!seconds) return std::nullopt;
            return static_cast<double>(*seconds);
        }
        position = end + 1;
    }
    return std::nullopt;
}

std::optional<ProcessStat> read_process_stat() {
    // Boot time does not change: read /proc/stat (several KiB on big machines) once.
    static const std::optional<double> boot_time = [] {
        const auto text = read_proc_file("/proc/stat");
        return text ? parse_boot_time(*text) : std::nullopt;
    }();
    const auto text = read_proc_file("/proc/self/stat");
    if (!text || !boot_time) return std::nullopt;
    return parse_proc_pid_stat(*text, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE), *boot_time);
}

std::optional<std::size_t> count_open_fds() {
    DIR* directory = ::opendir("/proc/self/fd");
    if (directory == nullptr) return std::nullopt;
    const std::string own_fd = std::to_string(::dirfd(directory));
    std::size_t count = 0;
    while (const dirent* entry = ::readdir(directory)) {
        const std::string_view name = entry->d_name;
        // Skip ".", ".." and the descriptor this listing itself holds open.
        if (name == "." || name == ".." || name == own_fd) continue;
        ++count;
    }
    ::closedir(directory);
    return count;
}

std::optional<double> max_fds() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::nullopt;
    if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<double>::infinity();
    return static_cast<double>(limit.rlim_cur);
}

void register_process_metrics(Registry& registry) {
    // Each callback rereads /proc: a scrape every few seconds makes that negligible, and it
    // keeps the callbacks independent of each other.
    registry.callback_counter("process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds.", [] {
                                  const auto stat = read_process_stat();
                                  return stat ? stat->cpu_seconds : unavailable;
                              });
    registry.callback_gauge("process_open_fds", "Number of open file descriptors.", [] {
        const auto count = count_open_fds();
        return count ? static_cast<double>(*count) : unavailable;
    });
    registry.callback_gauge("process_max_fds", "Maximum number of open file descriptors.", [] {
        return max_fds().value_or(unavailable);
    });
    registry.callback_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [] {
        const auto stat = read_process_stat();
        return stat ? stat->virtual_memory_bytes : unavailable;
    });
    registry.callback_gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [] {
        const auto stat = read_process_stat();
        return stat ? stat->resident_memory_bytes : unavailable;
    });
    registry.callback_gauge("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.", [] {
                                const auto stat = read_process_stat();
                                return stat ? stat->start_time_seconds : unavailable;
                            });
}

}  // namespace passgate::metrics
