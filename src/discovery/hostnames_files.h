#pragma once
// The routes' hostnames files (`hostnames_file` in a [[route]], src/wire/hostnames_file.h), read
// and watched on the control thread like endpoints files (reactor/file_watch.h: inotify on the
// folder, atomic renames). A new version is read, parsed and, when good, handed on (`changed`):
// the control plane builds the route tables of a new snapshot from it off the worker threads and
// publishes it like a reload's, without re-reading the config. A version that cannot be read or
// parsed is logged with FILE:LINE, counted (passgate_hostnames_file_errors_total{route}) and
// ignored: the last good version stays. Several routes may name one file: it is read once.

#include "config/config.h"
#include "metrics/registry.h"
#include "reactor/file_watch.h"
#include "reactor/loop.h"
#include "src/routing/routing.h"
#include "src/wire/hostnames_file.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace passgate {

// Reads and parses the hostnames file at `path` (never blocks: a FIFO is refused); errors name
// the file ("PATH: ..." or "PATH:LINE: ...").
HostnamesFileParse read_hostnames_file(const std::string& path);
// Every route's hostnames file of `config`, read once now (--check, `passgate route`), by route
// index. A file that cannot be read or parsed adds "FILE:LINE: route \"r\": hostnames_file:
// ERROR" (the route's place in the config) to `errors`, and its route gets no names.
HostnameFiles read_hostnames_files(const config::Config& config, std::vector<std::string>& errors);

class HostnamesFiles {
public:
    // `changed`: a followed file has a new good version; current() has it.
    HostnamesFiles(reactor::Loop& loop, metrics::Registry& registry, std::size_t shard, std::function<void()> changed);
    HostnamesFiles(const HostnamesFiles&) = delete;
    HostnamesFiles& operator=(const HostnamesFiles&) = delete;
    ~HostnamesFiles();

    // The files `config`'s routes name, made ready without changing what is followed: a file
    // followed already keeps its last good version, a new one is read and watched now. Throws
    // std::runtime_error ("FILE:LINE: route \"r\": hostnames_file: PATH:LINE: ...") when a new
    // file cannot be read or parsed (there is no last good version to keep), or its folder
    // cannot be watched.
    struct File {
        std::string path;
        std::shared_ptr<const HostnameList> names;  // the last good version
        std::vector<std::string> routes;            // the routes naming it, for metrics and logs
        std::unique_ptr<reactor::FileWatch> watch;
    };
    struct Prepared {
        std::map<std::string, std::unique_ptr<File>> fresh;  // read now: not followed before
    };
    std::unique_ptr<Prepared> prepare(const config::Config& config);
    // Follows exactly the prepared files from now on (files no route names any more are dropped).
    void commit(std::unique_ptr<Prepared> prepared, const config::Config& config);

    // The last good names of each route's file, by route index of `config` (the committed one).
    HostnameFiles current(const config::Config& config) const;

    std::uint64_t versions_loaded() const { return versions_loaded_; }  // good versions read by watches

private:
    void on_change(const std::string& path);
    void show_names(const File& file);

    reactor::Loop& loop_;
    metrics::CounterFamily& errors_;
    metrics::GaugeFamily& names_;
    std::size_t shard_;
    std::function<void()> changed_;
    std::map<std::string, std::unique_ptr<File>> files_;  // by path
    std::uint64_t versions_loaded_ = 0;
};

}  // namespace passgate
