#pragma once
// Shared by the benchmark tools (loadgen.cpp, backend.cpp): clock, addresses, files, a bounded
// latency histogram, the TLS ClientHello framing check, and /proc readers for CPU and memory.
// Header-only on purpose: two small programs, no library to link.

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace perf {

inline std::uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] inline void die(const std::string& message) {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(2);
}

// "1.2.3.4:5678" (IPv4 only: the benchmark runs on loopback).
inline sockaddr_in parse_ipv4(const std::string& text, bool need_port = true) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    const std::size_t colon = text.rfind(':');
    const std::string host = colon == std::string::npos ? text : text.substr(0, colon);
    if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) die("bad IPv4 address: " + text);
    if (colon != std::string::npos) {
        char* end = nullptr;
        const unsigned long port = std::strtoul(text.c_str() + colon + 1, &end, 10);
        if (*end != '\0' || port == 0 || port > 65535) die("bad port in: " + text);
        address.sin_port = htons(static_cast<std::uint16_t>(port));
    } else if (need_port) {
        die("address needs a port: " + text);
    }
    return address;
}

inline std::vector<std::uint8_t> read_binary_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot read " + path);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::uint64_t parse_u64(const std::string& text, const char* what) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0) die(std::string("bad number for ") + what + ": " + text);
    return value;
}

inline double parse_double(const std::string& text, const char* what) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(value >= 0)) die(std::string("bad number for ") + what + ": " + text);
    return value;
}

inline std::vector<int> parse_pid_list(const std::string& text) {
    std::vector<int> pids;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
        if (!item.empty()) pids.push_back(static_cast<int>(parse_u64(item, "pid")));
    return pids;
}

// ---- TLS ClientHello framing -------------------------------------------------------------------
// The hello is one handshake message carried by one or more TLS records (type 22). Returns the
// number of bytes of the records that carry the whole message once they are all in `data`,
// 0 while more bytes are needed, or -1 when the bytes are not a TLS handshake.
inline long hello_records_length(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t max_record = 16384 + 2048;
    std::size_t offset = 0;
    std::size_t handshake_bytes = 0;  // handshake payload seen so far
    std::uint32_t message_length = 0;
    std::array<std::uint8_t, 4> header{};
    while (offset + 5 <= size) {
        if (data[offset] != 22 || data[offset + 1] != 3) return -1;
        const std::size_t length = (std::size_t{data[offset + 3]} << 8) | data[offset + 4];
        if (length == 0 || length > max_record) return -1;
        if (offset + 5 + length > size) return 0;
        for (std::size_t i = 0; i < length && handshake_bytes + i < 4; ++i)
            header[handshake_bytes + i] = data[offset + 5 + i];
        handshake_bytes += length;
        offset += 5 + length;
        if (handshake_bytes >= 4) {
            if (header[0] != 1) return -1;  // not a ClientHello
            message_length = (std::uint32_t{header[1]} << 16) | (std::uint32_t{header[2]} << 8) | header[3];
            if (handshake_bytes >= 4 + std::size_t{message_length}) return static_cast<long>(offset);
        }
        if (offset > 256 * 1024) return -1;
    }
    return 0;
}

// ---- Latency histogram -------------------------------------------------------------------------
// Log-linear buckets over nanoseconds: 64 sub-buckets per power of two (error < 1.6%), fixed
// size, so recording is O(1) and memory is bounded whatever the run length.
class Histogram {
public:
    static constexpr int sub_bits = 6;
    static constexpr int sub_count = 1 << sub_bits;
    static constexpr int exponents = 40;  // up to 2^40 ns (~18 min)

    void record(std::uint64_t ns) {
        ++counts_[index(ns)];
        ++total_;
    }
    std::uint64_t count() const { return total_; }
    // Value (ns) at quantile q in [0, 1]: the upper edge of the bucket holding that rank.
    double quantile(double q) const {
        if (total_ == 0) return 0;
        const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return static_cast<double>(upper(i));
        }
        return static_cast<double>(upper(counts_.size() - 1));
    }

private:
    static std::size_t index(std::uint64_t ns) {
        if (ns < sub_count) return static_cast<std::size_t>(ns);
        const int top = 63 - __builtin_clzll(ns);  // >= sub_bits
        const int shift = top - sub_bits;
        const std::size_t exponent = static_cast<std::size_t>(shift + 1);
        const std::size_t sub = static_cast<std::size_t>((ns >> shift) & (sub_count - 1));
        const std::size_t i = exponent * sub_count + sub;
        return std::min(i, static_cast<std::size_t>(exponents * sub_count - 1));
    }
    static std::uint64_t upper(std::size_t i) {
        if (i < sub_count) return i;
        const std::size_t exponent = i / sub_count;
        const std::uint64_t sub = i % sub_count;
        const int shift = static_cast<int>(exponent) - 1;
        return ((sub_count + sub + 1) << shift) - 1;
    }
    std::array<std::uint64_t, exponents * sub_count> counts_{};
    std::uint64_t total_ = 0;
};

// ---- /proc -------------------------------------------------------------------------------------

inline std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// utime + stime in clock ticks of one process (all its threads, live and exited); `system`, if
// given, gets stime alone (time in the kernel: system calls, and on loopback the receiving side's
// softirq work that a send runs in the sender's context).
inline std::optional<std::uint64_t> process_cpu_ticks(int pid, std::uint64_t* system = nullptr) {
    const std::optional<std::string> text = read_text("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    const std::size_t paren = text->rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    std::stringstream in(text->substr(paren + 2));
    std::string field;
    std::uint64_t utime = 0, stime = 0;
    // After "(comm) ": field 3 is state; utime is field 14, stime field 15.
    for (int number = 3; number <= 15 && in >> field; ++number) {
        if (number == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (number == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    if (system) *system += stime;
    return utime + stime;
}

// Sum over processes, in seconds; processes that vanished count as 0 (reported via `missing`).
inline double cpu_seconds(const std::vector<int>& pids, int* missing = nullptr,
                          double* system_seconds = nullptr) {
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::uint64_t ticks = 0, system = 0;
    for (int pid : pids) {
        if (const auto value = process_cpu_ticks(pid, &system)) ticks += *value;
        else if (missing) ++*missing;
    }
    if (system_seconds) *system_seconds = static_cast<double>(system) / hz;
    return static_cast<double>(ticks) / hz;
}

// CPU seconds of a process and all its descendants, the live ones and those already reaped:
// utime+stime of every live process of the tree plus its cutime+cstime (children it has waited
// for). A proxy that forks workers on reload and reaps the old ones (HAProxy -W, NGINX) is thus
// counted whole across a window. A child reaped between the reads of it and of its parent can be
// missed or counted twice (one process's CPU at most). `processes` gets the live tree's size.
inline double tree_cpu_seconds(int root, int* processes = nullptr, double* system_seconds = nullptr) {
    struct Entry {
        int pid;
        int ppid;
        std::uint64_t ticks;   // utime + stime + cutime + cstime
        std::uint64_t system;  // stime + cstime
    };
    std::vector<Entry> all;
    if (auto* dir = ::opendir("/proc")) {
        while (const dirent* entry = ::readdir(dir)) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
            const std::optional<std::string> text = read_text(std::string("/proc/") + entry->d_name + "/stat");
            if (!text) continue;
            const std::size_t paren = text->rfind(')');
            if (paren == std::string::npos) continue;
            std::stringstream in(text->substr(paren + 2));
            std::string field;
            Entry item{std::atoi(entry->d_name), 0, 0, 0};
            for (int number = 3; number <= 17 && in >> field; ++number) {
                if (number == 4) item.ppid = std::atoi(field.c_str());
                const std::uint64_t value = number >= 14 ? std::strtoull(field.c_str(), nullptr, 10) : 0;
                item.ticks += value;
                if (number == 15 || number == 17) item.system += value;
            }
            all.push_back(item);
        }
        ::closedir(dir);
    }
    std::vector<int> tree{root};
    std::uint64_t ticks = 0, system = 0;
    int count = 0;
    for (std::size_t next = 0; next < tree.size(); ++next) {
        for (const Entry& item : all) {
            if (item.pid == tree[next]) {
                ticks += item.ticks;
                system += item.system;
                ++count;
            } else if (item.ppid == tree[next] && tree.size() < 4096) {
                tree.push_back(item.pid);
            }
        }
    }
    if (processes) *processes = count;
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    if (system_seconds) *system_seconds = static_cast<double>(system) / hz;
    return static_cast<double>(ticks) / hz;
}

// Per CPU (cpu0, cpu1, ...): jiffies busy (everything but idle and iowait) and in total, from
// /proc/stat. Shows how much else ran on a CPU during a window (the machine is shared).
// machine_busy is the same from the all-CPU "cpu" line: every CPU time the machine spent on
// anything, the proxy's softirq on other CPUs and kworkers included, which per-process CPU misses.
struct CpuTimes {
    std::vector<std::uint64_t> busy;
    std::vector<std::uint64_t> total;
    std::uint64_t machine_busy = 0;
    std::uint64_t machine_total = 0;
};

inline CpuTimes cpu_times() {
    CpuTimes times;
    const std::optional<std::string> text = read_text("/proc/stat");
    if (!text) return times;
    std::stringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("cpu", 0) != 0 || line.size() < 4) continue;
        const bool all = line[3] == ' ';
        if (!all && (line[3] < '0' || line[3] > '9')) continue;
        std::stringstream fields(line.substr(line.find(' ')));
        std::uint64_t value = 0, busy = 0, total = 0;
        // user nice system idle iowait irq softirq steal; guest and guest_nice (columns 9 and 10)
        // are already counted in user and nice.
        for (int column = 0; column < 8 && fields >> value; ++column) {
            total += value;
            if (column != 3 && column != 4) busy += value;  // not idle, not iowait
        }
        if (all) {
            times.machine_busy = busy;
            times.machine_total = total;
        } else {
            times.busy.push_back(busy);
            times.total.push_back(total);
        }
    }
    return times;
}

// Jiffies (clock ticks) to seconds.
inline double ticks_to_seconds(std::uint64_t ticks) {
    return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct Memory {
    std::uint64_t rss_kib = 0;
    std::uint64_t pss_kib = 0;
};

// Rss and Pss from /proc/PID/smaps_rollup, summed over processes.
inline Memory memory_of(const std::vector<int>& pids) {
    Memory total;
    for (int pid : pids) {
        const std::optional<std::string> text = read_text("/proc/" + std::to_string(pid) + "/smaps_rollup");
        if (!text) continue;
        std::stringstream in(*text);
        std::string line;
        while (std::getline(in, line)) {
            auto value = [&](std::string_view key) -> std::optional<std::uint64_t> {
                if (line.rfind(key, 0) != 0) return std::nullopt;
                return std::strtoull(line.c_str() + key.size(), nullptr, 10);
            };
            if (auto rss = value("Rss:")) total.rss_kib += *rss;
            else if (auto pss = value("Pss:")) total.pss_kib += *pss;
        }
    }
    return total;
}

}  // namespace perf
