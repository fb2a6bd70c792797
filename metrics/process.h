#pragma once
// The standard process_* metrics, with the names and help texts the official Prometheus client
// libraries use (client_golang's process collector), read from /proc at scrape time:
//   process_cpu_seconds_total      counter  utime + stime from /proc/self/stat
//   process_open_fds               gauge    entries of /proc/self/fd
//   process_max_fds                gauge    RLIMIT_NOFILE soft limit
//   process_virtual_memory_bytes   gauge    vsize from /proc/self/stat
//   process_resident_memory_bytes  gauge    rss pages * page size
//   process_start_time_seconds     gauge    boot time (/proc/stat btime) + starttime
// A value that cannot be read is reported as NaN rather than failing the scrape.

#include "metrics/registry.h"

#include <cstddef>
#include <optional>
#include <string_view>

namespace passgate::metrics {

// The fields of /proc/self/stat that the process metrics use, already in their units.
struct ProcessStat {
    double cpu_seconds = 0;            // user + system
    double start_time_seconds = 0;     // since the Unix epoch
    double virtual_memory_bytes = 0;
    double resident_memory_bytes = 0;
};

// Parses the text of /proc/<pid>/stat (see proc(5)). The command name (field 2) may contain
// spaces and parentheses, so fields are counted from the last ')'. nullopt if malformed.
std::optional<ProcessStat> parse_proc_pid_stat(std::string_view text, long clock_ticks_per_second,
                                               long page_size, double boot_time_seconds);
// The "btime" line of /proc/stat: boot time in seconds since the epoch.
std::optional<double> parse_boot_time(std::string_view proc_stat_text);

// Readers of the live process (I/O on /proc).
std::optional<ProcessStat> read_process_stat();
std::optional<std::size_t> count_open_fds();
std::optional<double> max_fds();

// Registers the six families above as callback metrics.
void register_process_metrics(Registry& registry);

}  // namespace passgate::metrics
