#pragma once
// YAML text (one file, possibly several documents separated by `---`) into JSON values, with the
// line of every value, so that the decoders of gateway_objects.h serve manifests and API answers
// alike and a manifest error can name its FILE:LINE. yaml-cpp (Debian's libyaml-cpp-dev) parses;
// scalars are typed the way Kubernetes reads YAML (YAML 1.2 core schema, as sigs.k8s.io/yaml
// does): a plain scalar that reads as null, a boolean (true/false), an integer or a float becomes
// one; a quoted scalar is always a string. Anchors and aliases are refused (they amplify a small
// file into a large tree); so are tags other than the standard ones.
//
// Bounds: kMaxYamlBytes of text, kMaxYamlDocuments documents, kMaxYamlDepth nesting, kMaxYamlNodes
// values per document.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace passgate::yaml {

inline constexpr std::size_t kMaxYamlBytes = 16u << 20;
inline constexpr std::size_t kMaxYamlDocuments = 10000;
inline constexpr std::size_t kMaxYamlDepth = 64;
inline constexpr std::size_t kMaxYamlNodes = 1u << 20;

struct YamlDocument {
    nlohmann::json value;  // an empty document (only comments, or `---` twice) is null
    int line = 0;          // 1-based line where the document's content starts
    // 1-based line of each value by its field path ("spec.listeners[1].port"; "" = the root), as
    // decode_object names fields.
    std::map<std::string, int> lines;
    // The line of `field`, or of its nearest ancestor that has one (the document's line at worst).
    int line_of(const std::string& field) const;
};

struct YamlParse {
    std::vector<YamlDocument> documents;  // in file order; empty documents included as null
    std::string error;                    // "" on success; else what and where
    int error_line = 0;                   // 1-based, when known
    bool ok() const { return error.empty(); }
};

// Never throws.
YamlParse parse_yaml_documents(std::string_view text);

}  // namespace passgate::yaml
