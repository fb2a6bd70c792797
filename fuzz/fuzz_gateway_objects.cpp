// libFuzzer target for the manifest path of the Gateway API objects: YAML text through
// parse_yaml_documents (src/wire/yaml_document.cpp, on yaml-cpp), then every document through
// decode_object (src/wire/gateway_objects.cpp, with kubernetes_objects.cpp for Services).
// A crash, a hang, an exception, an error that is empty, long or holds a control character, a
// line outside the text, or a decoded value beyond the header's bounds is a bug.

#include "src/wire/gateway_objects.h"
#include "src/wire/yaml_document.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace gw = passgate::gateway_api;
namespace yaml = passgate::yaml;

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

void check_message(const std::string& message, std::size_t max_bytes) {
    check(message.size() <= max_bytes);
    for (const char c : message) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
}

void check_meta(const gw::ObjectMeta& metadata) {
    check(!metadata.name.empty() && metadata.name.size() <= 253);
    check(metadata.namespace_name.size() <= 253);
    check(metadata.generation >= 0);
    check(metadata.labels.size() <= gw::kMaxLabels);
}

void check_object(const gw::Object& object) {
    check(!gw::kind_of(object).empty() || std::holds_alternative<gw::Ignored>(object));
    if (const auto* gateway = std::get_if<gw::Gateway>(&object)) {
        check_meta(gateway->metadata);
        check(!gateway->listeners.empty() && gateway->listeners.size() <= gw::kMaxListenersPerGateway);
        for (const auto& listener : gateway->listeners) {
            check(listener.port != 0 && !listener.name.empty() && !listener.protocol.empty());
            check(!listener.tls_mode || *listener.tls_mode == "Passthrough" || *listener.tls_mode == "Terminate");
            check(listener.allowed_routes.kinds.size() <= gw::kMaxRouteKinds);
        }
    } else if (const auto* route = std::get_if<gw::TLSRoute>(&object)) {
        check_meta(route->metadata);
        check(route->parent_refs.size() <= gw::kMaxParentRefs);
        check(route->hostnames.size() <= gw::kMaxHostnames);
        check(!route->rules.empty() && route->rules.size() <= gw::kMaxRules);
        for (const auto& rule : route->rules) {
            check(rule.backend_refs.size() <= gw::kMaxBackendRefs);
            for (const auto& backend : rule.backend_refs) {
                check(backend.weight <= 1000000 && !backend.name.empty());
                check(!backend.port || *backend.port != 0);
            }
        }
        for (const auto& parent : route->parent_refs) check(!parent.port || *parent.port != 0);
    } else if (const auto* grant = std::get_if<gw::ReferenceGrant>(&object)) {
        check_meta(grant->metadata);
        check(!grant->from.empty() && grant->from.size() <= gw::kMaxGrantEntries);
        check(!grant->to.empty() && grant->to.size() <= gw::kMaxGrantEntries);
    } else if (const auto* gateway_class = std::get_if<gw::GatewayClass>(&object)) {
        check_meta(gateway_class->metadata);
        check(gateway_class->metadata.namespace_name.empty() && !gateway_class->controller_name.empty());
    } else if (const auto* ns = std::get_if<gw::Namespace>(&object)) {
        check_meta(ns->metadata);
        check(ns->metadata.namespace_name.empty());
    } else if (const auto* service = std::get_if<passgate::kubernetes::Service>(&object)) {
        check(!service->metadata.name.empty());
        for (const auto& port : service->ports) check(port.port != 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;

    const yaml::YamlParse parse = yaml::parse_yaml_documents(text);
    check(parse.ok() == parse.error.empty());
    if (!parse.ok()) {
        check_message(parse.error, 200);
        check(parse.error_line >= 0 && parse.error_line <= lines);
        check(parse.documents.empty());
        return 0;
    }
    check(parse.documents.size() <= yaml::kMaxYamlDocuments);
    for (const yaml::YamlDocument& document : parse.documents) {
        check(document.line >= 1 && document.line <= lines);
        for (const auto& [path, line] : document.lines) check(line >= 1 && line <= lines);
        const gw::DecodedObject decoded = gw::decode_object(document.value);
        check(decoded.ok() == decoded.error.empty());
        if (decoded.ok()) {
            check_object(*decoded.value);
            continue;
        }
        check_message(decoded.error, 400);
        check_message(decoded.field, 1000);
        const int line = document.line_of(decoded.field);
        check(line >= 1 && line <= lines);
    }
    return 0;
}
