#include "src/discovery/hostnames_files.h"

#include "config/quote.h"
#include "src/discovery/endpoints_file_reader.h"
#include "src/observe/log.h"

#include <stdexcept>
#include <system_error>
#include <utility>

namespace passgate {

HostnamesFileParse read_hostnames_file(const std::string& path) {
    return read_and_parse(path, kHostnamesFileMaxBytes, "a hostnames file", &parse_hostnames_file);
}

namespace {
// "FILE:LINE: route \"r\": hostnames_file: " (or the route's origin instead of FILE:LINE).
std::string route_place(const config::Config& config, const config::Route& route) {
    return (route.origin.empty() ? config.source + ":" + std::to_string(route.line) : route.origin) + ": route " +
           config::quote(route.name) + ": hostnames_file: ";
}
}  // namespace

HostnameFiles read_hostnames_files(const config::Config& config, std::vector<std::string>& errors) {
    HostnameFiles files(config.routes.size());
    for (std::size_t index = 0; index < config.routes.size(); ++index) {
        const config::Route& route = config.routes[index];
        if (route.hostnames_file.empty()) continue;
        HostnamesFileParse parsed = read_hostnames_file(route.hostnames_file);
        if (!parsed.ok()) {
            errors.push_back(route_place(config, route) + parsed.error);
            continue;
        }
        files[index] = std::make_shared<const HostnameList>(std::move(parsed.names));
    }
    return files;
}

namespace {

std::string route_list(const std::vector<std::string>& routes) {
    std::string out;
    for (const std::string& route : routes) out.append(out.empty() ? "route " : ", route ").append(config::quote(route));
    return out;
}

}  // namespace

HostnamesFiles::HostnamesFiles(reactor::Loop& loop, metrics::Registry& registry, std::size_t shard,
                               std::function<void()> changed)
    : loop_(loop),
      errors_(registry.counter("passgate_hostnames_file_errors_total",
                               "Versions of a route's hostnames_file that could not be read or parsed, and so were "
                               "ignored (the last good version stays).",
                               {"route"})),
      names_(registry.gauge("passgate_hostnames_file_names",
                            "Hostnames in the last good version of a route's hostnames_file.", {"route"})),
      shard_(shard),
      changed_(std::move(changed)) {}

HostnamesFiles::~HostnamesFiles() = default;

std::unique_ptr<HostnamesFiles::Prepared> HostnamesFiles::prepare(const config::Config& config) {
    auto prepared = std::make_unique<Prepared>();
    for (const config::Route& route : config.routes) {
        if (route.hostnames_file.empty()) continue;
        const std::string& path = route.hostnames_file;
        if (files_.count(path) != 0 || prepared->fresh.count(path) != 0) continue;
        const std::string where = route_place(config, route);
        HostnamesFileParse parsed = read_hostnames_file(path);
        if (!parsed.ok()) throw std::runtime_error(where + parsed.error);
        auto file = std::make_unique<File>();
        file->path = path;
        file->names = std::make_shared<const HostnameList>(std::move(parsed.names));
        try {
            file->watch = std::make_unique<reactor::FileWatch>(loop_, path, [this, path] { on_change(path); });
        } catch (const std::exception& error) {
            throw std::runtime_error(where + path + ": cannot watch: " + error.what());
        }
        prepared->fresh.emplace(path, std::move(file));
    }
    return prepared;
}

void HostnamesFiles::commit(std::unique_ptr<Prepared> prepared, const config::Config& config) {
    std::map<std::string, std::unique_ptr<File>> next;
    for (const config::Route& route : config.routes) {
        if (route.hostnames_file.empty()) continue;
        auto& slot = next[route.hostnames_file];
        if (!slot) {
            if (auto kept = files_.find(route.hostnames_file); kept != files_.end()) slot = std::move(kept->second);
            else slot = std::move(prepared->fresh.at(route.hostnames_file));
            slot->routes.clear();
        }
        slot->routes.push_back(route.name);
    }
    // The series of routes that no longer have a file go (their names are no longer served).
    for (const auto& [path, file] : files_)
        if (file)
            for (const std::string& route : file->routes)
                if (const config::Route* now = config.find_route(route); now == nullptr || now->hostnames_file.empty())
                    names_.remove({route});
    files_ = std::move(next);
    for (const auto& [path, file] : files_) show_names(*file);
}

void HostnamesFiles::show_names(const File& file) {
    for (const std::string& route : file.routes) {
        errors_.with({route});  // shown at 0 from the start
        names_.with({route}).set(shard_, static_cast<double>(file.names->size()));
    }
}

HostnameFiles HostnamesFiles::current(const config::Config& config) const {
    HostnameFiles out(config.routes.size());
    for (std::size_t index = 0; index < config.routes.size(); ++index) {
        const std::string& path = config.routes[index].hostnames_file;
        if (path.empty()) continue;
        if (const auto it = files_.find(path); it != files_.end()) out[index] = it->second->names;
    }
    return out;
}

void HostnamesFiles::on_change(const std::string& path) {
    const auto it = files_.find(path);
    if (it == files_.end()) return;  // prepared for a reload that was not installed
    File& file = *it->second;
    HostnamesFileParse parsed = read_hostnames_file(path);
    if (!parsed.ok()) {
        for (const std::string& route : file.routes) errors_.with({route}).inc(shard_);
        log_line(LogLevel::error, route_list(file.routes) + ": hostnames_file: " + parsed.error +
                                      "; keeping the last good version (" + std::to_string(file.names->size()) +
                                      " names)");
        return;
    }
    file.names = std::make_shared<const HostnameList>(std::move(parsed.names));
    ++versions_loaded_;
    show_names(file);
    log_line(LogLevel::info, route_list(file.routes) + ": hostnames_file " + path + ": " +
                                 std::to_string(file.names->size()) + " names loaded");
    changed_();
}

}  // namespace passgate
