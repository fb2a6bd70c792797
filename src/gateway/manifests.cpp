#include "src/gateway/manifests.h"

#include "config/config.h"
#include "config/read_file.h"
#include "src/wire/yaml_document.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace passgate::gateway_api {
namespace {

// kubectl apply puts a namespaced object written without a namespace in "default".
constexpr const char* kDefaultNamespace = "default";

bool is_manifest_name(const std::string& name) {
    auto ends_with = [&](std::string_view suffix) {
        return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return ends_with(".yaml") || ends_with(".yml") || ends_with(".json");
}

// The files one configured path stands for: itself, or a folder's manifest files in name order.
std::vector<std::string> files_of(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        throw ManifestError(path + ": cannot open: " + std::strerror(errno));
    }
    if (!S_ISDIR(info.st_mode)) return {path};
    std::vector<std::string> files;
    std::error_code error;
    std::filesystem::directory_iterator entries(path, error);
    if (error) throw ManifestError(path + ": cannot open: " + error.message());
    for (const auto& entry : entries) {
        const std::string name = entry.path().filename().string();
        if (!is_manifest_name(name)) continue;
        std::error_code type_error;
        if (!entry.is_regular_file(type_error)) continue;  // a symlink to a regular file counts
        files.push_back(entry.path().string());
        if (files.size() > kMaxManifestFiles) break;
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string read_manifest(const std::string& file) {
    struct stat info {};
    if (::stat(file.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
        throw ManifestError(file + ": not a regular file");
    }
    try {
        return config::read_bounded_file(file, kMaxManifestFileBytes);
    } catch (const config::FileReadError& error) {
        throw ManifestError(file + ": " + error.what());
    }
}

bool is_namespaced(const Object& object) {
    return !std::holds_alternative<GatewayClass>(object) && !std::holds_alternative<Namespace>(object) &&
           !std::holds_alternative<Ignored>(object);
}

// "default/name" for a namespaced kind written without a namespace (as the object will be named).
std::string message_name(const DecodedObject& decoded) {
    const bool namespaced = decoded.kind == "Gateway" || decoded.kind == "TLSRoute" ||
                            decoded.kind == "ReferenceGrant" || decoded.kind == "Service";
    if (!namespaced || decoded.name.empty() || decoded.name.find('/') != std::string::npos) return decoded.name;
    return std::string(kDefaultNamespace) + "/" + decoded.name;
}

// FILE:LINE: kind ns/name: field: message
std::string object_error(const std::string& file, const yaml::YamlDocument& document,
                         const DecodedObject& decoded) {
    std::string message = file + ":" + std::to_string(document.line_of(decoded.field)) + ": ";
    const std::string name = message_name(decoded);
    if (!decoded.kind.empty()) {
        message += decoded.kind + (name.empty() ? "" : " " + name) + ": ";
    } else if (!name.empty()) {
        message += name + ": ";
    }
    if (!decoded.field.empty()) message += decoded.field + ": ";
    return message + decoded.error;
}

class Loader {
public:
    void load_file(const std::string& file) {
        const std::string text = read_manifest(file);
        loaded_.files.push_back(file);
        hash_input_ += file;
        hash_input_ += '\0';
        hash_input_ += config::config_hash(text);
        hash_input_ += '\n';
        const yaml::YamlParse parse = yaml::parse_yaml_documents(text);
        if (!parse.ok()) {
            throw ManifestError(file + ":" + std::to_string(parse.error_line) + ": YAML: " + parse.error);
        }
        for (const yaml::YamlDocument& document : parse.documents) {
            if (document.value.is_null()) continue;  // an empty document (`---` twice, comments)
            load_document(file, document);
        }
    }

    LoadedManifests finish() {
        loaded_.hash = config::config_hash(hash_input_);
        return std::move(loaded_);
    }

private:
    void load_document(const std::string& file, const yaml::YamlDocument& document) {
        DecodedObject decoded = decode_object(document.value);
        if (!decoded.ok()) throw ManifestError(object_error(file, document, decoded));
        Object& object = *decoded.value;
        if (std::holds_alternative<Ignored>(object)) {
            ++loaded_.ignored;
            return;
        }
        std::visit(
            [&](auto& value) {
                using T = std::decay_t<decltype(value)>;
                if constexpr (!std::is_same_v<T, Ignored>) {
                    if (is_namespaced(object) && value.metadata.namespace_name.empty()) {
                        value.metadata.namespace_name = kDefaultNamespace;
                    }
                }
            },
            object);
        const Origin origin{file, document.line_of("")};
        remember(object, origin);
        std::visit(
            [&](auto& value) {
                using T = std::decay_t<decltype(value)>;
                if constexpr (std::is_same_v<T, GatewayClass>) {
                    loaded_.objects.gateway_classes.push_back({std::move(value), origin});
                } else if constexpr (std::is_same_v<T, Gateway>) {
                    loaded_.objects.gateways.push_back({std::move(value), origin});
                } else if constexpr (std::is_same_v<T, TLSRoute>) {
                    loaded_.objects.tls_routes.push_back({std::move(value), origin});
                } else if constexpr (std::is_same_v<T, ReferenceGrant>) {
                    loaded_.objects.reference_grants.push_back({std::move(value), origin});
                } else if constexpr (std::is_same_v<T, kubernetes::Service>) {
                    loaded_.objects.services.push_back({std::move(value), origin});
                } else if constexpr (std::is_same_v<T, Namespace>) {
                    loaded_.objects.namespaces.push_back({std::move(value), origin});
                }
            },
            object);
    }

    // One object per kind and name, as in the cluster: a second one is an error naming both.
    void remember(const Object& object, const Origin& origin) {
        const std::string key = kind_of(object) + " " + name_of(object);
        const auto [first, inserted] = seen_.emplace(key, origin);
        if (!inserted) {
            throw ManifestError(origin.prefix() + key + ": defined again (first at " + first->second.file + ":" +
                                std::to_string(first->second.line) + ")");
        }
    }

    LoadedManifests loaded_;
    std::string hash_input_;  // each file's path and the hash of its bytes
    std::map<std::string, Origin> seen_;
};

}  // namespace

LoadedManifests load_manifests(const std::vector<std::string>& paths) {
    Loader loader;
    std::size_t count = 0;
    for (const std::string& path : paths) {
        for (const std::string& file : files_of(path)) {
            if (++count > kMaxManifestFiles) {
                throw ManifestError(file + ": more than " + std::to_string(kMaxManifestFiles) + " manifest files");
            }
            loader.load_file(file);
        }
    }
    return loader.finish();
}

}  // namespace passgate::gateway_api
