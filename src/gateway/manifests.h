#pragma once
// [gateway_api] manifests: files or folders of multi-document YAML into an ObjectSet. A folder
// contributes its regular files ending in .yaml, .yml or .json (not recursive), in name order;
// files in the order the config lists them. Documents of other kinds are skipped (counted in
// `ignored`).
//
// Errors (any one fails the load, since the manifests are configuration like the TOML):
//   FILE:LINE: kind ns/name: field: message     (an object that does not decode)
//   FILE:LINE: YAML: message                    (text that does not parse)
//   FILE: cannot open ... / not a regular file / over N bytes
// Secrets: a manifest may hold a Secret; it is skipped like any other kind and its content
// never appears in a message (messages quote field paths, never values of other kinds).

#include "src/gateway/gateway_objects_set.h"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace passgate::gateway_api {

inline constexpr std::size_t kMaxManifestFiles = 1000;   // over all folders
inline constexpr std::size_t kMaxManifestFileBytes = 16u << 20;

struct ManifestError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct LoadedManifests {
    ObjectSet objects;
    std::vector<std::string> files;  // every file read, in order
    std::size_t ignored = 0;         // documents of kinds passgate does not use
    // FNV-1a over every file's path and bytes (config::config_hash form): a reload compares it.
    std::string hash;
};

// Throws ManifestError (its what() is the message above).
LoadedManifests load_manifests(const std::vector<std::string>& paths);

}  // namespace passgate::gateway_api
