#include "src/wire/gateway_objects.h"

#include "src/wire/field_path.h"

#include <exception>
#include <limits>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace passgate::gateway_api {
namespace {

using json = nlohmann::json;
using wire::index_path;
using wire::member_path;

constexpr std::size_t kMaxNameBytes = 253;          // names, namespaces, hostnames, kinds
constexpr std::size_t kMaxLabelKeyBytes = 317;      // prefix (253) "/" name (63)
constexpr std::size_t kMaxLabelValueBytes = 63;
constexpr std::size_t kMaxTextBytes = 1024;         // uid, resourceVersion, timestamps, protocol
constexpr std::size_t kMaxSelectorValues = 64;      // values of one matchExpressions term
constexpr std::int64_t kMaxWeight = 1000000;

// Thrown inside the readers only; decode_object turns it into DecodedObject::field and ::error.
struct DecodeError {
    std::string field;
    std::string message;
};

[[noreturn]] void fail(const std::string& field, const std::string& message) {
    throw DecodeError{field, message};
}

const json* optional_member(const json& object, std::string_view key) {
    const auto found = object.find(key);
    if (found == object.end() || found->is_null()) return nullptr;
    return &*found;
}

const json& required_member(const json& object, std::string_view key, const std::string& path) {
    const json* value = optional_member(object, key);
    if (!value) fail(member_path(path, key), "required");
    return *value;
}

const json& expect_object(const json& value, const std::string& path) {
    if (!value.is_object()) fail(path, "not an object");
    return value;
}

std::string read_string(const json& value, const std::string& path, std::size_t max_bytes) {
    if (!value.is_string()) fail(path, "not a string");
    const auto& text = value.get_ref<const std::string&>();
    if (text.size() > max_bytes) {
        fail(path, "longer than " + std::to_string(max_bytes) + " bytes");
    }
    return text;
}

// A required string that may not be empty (a name).
std::string read_name(const json& object, std::string_view key, const std::string& path) {
    const std::string name_path = member_path(path, key);
    std::string name = read_string(required_member(object, key, path), name_path, kMaxNameBytes);
    if (name.empty()) fail(name_path, "must not be empty");
    return name;
}

std::optional<std::string> optional_string(const json& object, std::string_view key,
                                           const std::string& path, std::size_t max_bytes) {
    const json* value = optional_member(object, key);
    if (!value) return std::nullopt;
    return read_string(*value, member_path(path, key), max_bytes);
}

std::optional<std::string> optional_name(const json& object, std::string_view key, const std::string& path) {
    auto name = optional_string(object, key, path, kMaxNameBytes);
    if (name && name->empty()) fail(member_path(path, key), "must not be empty");
    return name;
}

std::int64_t read_integer(const json& value, const std::string& path) {
    if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            fail(path, "integer out of range");
        }
        return static_cast<std::int64_t>(number);
    }
    if (!value.is_number_integer()) fail(path, "not an integer");
    return value.get<std::int64_t>();
}

std::uint16_t read_port(const json& value, const std::string& path) {
    const std::int64_t number = read_integer(value, path);
    if (number < 1 || number > 65535) fail(path, "must be 1..65535");
    return static_cast<std::uint16_t>(number);
}

// An array member (absent or null: nullptr) with at most `max_size` elements.
const json* optional_array(const json& object, std::string_view key, const std::string& path,
                           std::size_t max_size) {
    const json* value = optional_member(object, key);
    if (!value) return nullptr;
    const std::string array_path = member_path(path, key);
    if (!value->is_array()) fail(array_path, "not an array");
    if (value->size() > max_size) {
        fail(array_path, std::to_string(value->size()) + " elements, at most " + std::to_string(max_size));
    }
    return value;
}

// A required array with 1..max_size elements.
const json& required_array(const json& object, std::string_view key, const std::string& path,
                           std::size_t max_size) {
    const json* value = optional_array(object, key, path, max_size);
    if (!value) fail(member_path(path, key), "required");
    if (value->empty()) fail(member_path(path, key), "must have at least one element");
    return *value;
}

// A map of strings to strings (labels, matchLabels).
std::map<std::string, std::string> read_string_map(const json& value, const std::string& path,
                                                   std::size_t max_size) {
    expect_object(value, path);
    if (value.size() > max_size) {
        fail(path, std::to_string(value.size()) + " entries, at most " + std::to_string(max_size));
    }
    std::map<std::string, std::string> map;
    for (const auto& [key, entry] : value.items()) {
        const std::string entry_path = member_path(path, key);
        if (key.empty() || key.size() > kMaxLabelKeyBytes) {
            fail(entry_path, "key must be 1.." + std::to_string(kMaxLabelKeyBytes) + " bytes");
        }
        map.emplace(key, read_string(entry, entry_path, kMaxLabelValueBytes));
    }
    return map;
}

ObjectMeta read_metadata(const json& document) {
    const json& metadata = expect_object(required_member(document, "metadata", ""), "metadata");
    ObjectMeta meta;
    meta.name = read_name(metadata, "name", "metadata");
    meta.namespace_name = optional_name(metadata, "namespace", "metadata").value_or("");
    meta.uid = optional_string(metadata, "uid", "metadata", kMaxTextBytes).value_or("");
    meta.resource_version = optional_string(metadata, "resourceVersion", "metadata", kMaxTextBytes).value_or("");
    if (const json* generation = optional_member(metadata, "generation")) {
        meta.generation = read_integer(*generation, "metadata.generation");
        if (meta.generation < 0) fail("metadata.generation", "must not be negative");
    }
    meta.creation_timestamp =
        optional_string(metadata, "creationTimestamp", "metadata", kMaxTextBytes).value_or("");
    if (const json* labels = optional_member(metadata, "labels")) {
        meta.labels = read_string_map(*labels, "metadata.labels", kMaxLabels);
    }
    return meta;
}

const json& read_spec(const json& document) {
    return expect_object(required_member(document, "spec", ""), "spec");
}

GatewayClass read_gateway_class(const json& document) {
    GatewayClass gateway_class;
    gateway_class.metadata = read_metadata(document);
    gateway_class.metadata.namespace_name.clear();  // cluster-scoped
    gateway_class.controller_name = read_name(read_spec(document), "controllerName", "spec");
    return gateway_class;
}

LabelSelector read_selector(const json& value, const std::string& path) {
    expect_object(value, path);
    LabelSelector selector;
    if (const json* labels = optional_member(value, "matchLabels")) {
        selector.match_labels = read_string_map(*labels, member_path(path, "matchLabels"), kMaxSelectorTerms);
    }
    if (const json* expressions = optional_array(value, "matchExpressions", path, kMaxSelectorTerms)) {
        const std::string expressions_path = member_path(path, "matchExpressions");
        for (std::size_t i = 0; i < expressions->size(); ++i) {
            const std::string term_path = index_path(expressions_path, i);
            const json& term = expect_object((*expressions)[i], term_path);
            LabelSelector::Expression expression;
            expression.key = read_string(required_member(term, "key", term_path),
                                         member_path(term_path, "key"), kMaxLabelKeyBytes);
            const std::string op_path = member_path(term_path, "operator");
            expression.op = read_string(required_member(term, "operator", term_path), op_path, kMaxNameBytes);
            if (expression.op != "In" && expression.op != "NotIn" && expression.op != "Exists" &&
                expression.op != "DoesNotExist") {
                fail(op_path, "must be In, NotIn, Exists or DoesNotExist");
            }
            if (const json* values = optional_array(term, "values", term_path, kMaxSelectorValues)) {
                const std::string values_path = member_path(term_path, "values");
                for (std::size_t j = 0; j < values->size(); ++j) {
                    expression.values.push_back(
                        read_string((*values)[j], index_path(values_path, j), kMaxLabelValueBytes));
                }
            }
            selector.match_expressions.push_back(std::move(expression));
        }
    }
    if (selector.match_labels.size() + selector.match_expressions.size() > kMaxSelectorTerms) {
        fail(path, "more than " + std::to_string(kMaxSelectorTerms) + " terms");
    }
    return selector;
}

AllowedRoutes read_allowed_routes(const json& value, const std::string& path) {
    expect_object(value, path);
    AllowedRoutes allowed;
    if (const json* namespaces = optional_member(value, "namespaces")) {
        const std::string namespaces_path = member_path(path, "namespaces");
        expect_object(*namespaces, namespaces_path);
        if (const auto from = optional_string(*namespaces, "from", namespaces_path, kMaxNameBytes)) {
            if (*from == "Same") {
                allowed.from = AllowedRoutes::From::same;
            } else if (*from == "All") {
                allowed.from = AllowedRoutes::From::all;
            } else if (*from == "Selector") {
                allowed.from = AllowedRoutes::From::selector;
            } else {
                fail(member_path(namespaces_path, "from"), "must be Same, All or Selector");
            }
        }
        const json* selector = optional_member(*namespaces, "selector");
        if (allowed.from == AllowedRoutes::From::selector) {
            if (!selector) fail(member_path(namespaces_path, "selector"), "required");
            allowed.selector = read_selector(*selector, member_path(namespaces_path, "selector"));
        }
    }
    if (const json* kinds = optional_array(value, "kinds", path, kMaxRouteKinds)) {
        const std::string kinds_path = member_path(path, "kinds");
        for (std::size_t i = 0; i < kinds->size(); ++i) {
            const std::string kind_path = index_path(kinds_path, i);
            const json& entry = expect_object((*kinds)[i], kind_path);
            RouteGroupKind kind;
            if (const auto group = optional_string(entry, "group", kind_path, kMaxNameBytes)) kind.group = *group;
            kind.kind = read_name(entry, "kind", kind_path);
            allowed.kinds.push_back(std::move(kind));
        }
    }
    return allowed;
}

GatewayListener read_listener(const json& value, const std::string& path) {
    expect_object(value, path);
    GatewayListener listener;
    listener.name = read_name(value, "name", path);
    listener.hostname = optional_string(value, "hostname", path, kMaxNameBytes);
    listener.port = read_port(required_member(value, "port", path), member_path(path, "port"));
    listener.protocol = read_name(value, "protocol", path);
    if (const json* tls = optional_member(value, "tls")) {
        const std::string tls_path = member_path(path, "tls");
        expect_object(*tls, tls_path);
        listener.tls_mode = optional_string(*tls, "mode", tls_path, kMaxNameBytes);
        if (listener.tls_mode && *listener.tls_mode != "Passthrough" && *listener.tls_mode != "Terminate") {
            fail(member_path(tls_path, "mode"), "must be Passthrough or Terminate");
        }
    }
    if (const json* allowed = optional_member(value, "allowedRoutes")) {
        listener.allowed_routes = read_allowed_routes(*allowed, member_path(path, "allowedRoutes"));
    }
    return listener;
}

Gateway read_gateway(const json& document) {
    Gateway gateway;
    gateway.metadata = read_metadata(document);
    const json& spec = read_spec(document);
    gateway.gateway_class_name = read_name(spec, "gatewayClassName", "spec");
    const json& listeners = required_array(spec, "listeners", "spec", kMaxListenersPerGateway);
    for (std::size_t i = 0; i < listeners.size(); ++i) {
        gateway.listeners.push_back(read_listener(listeners[i], index_path("spec.listeners", i)));
    }
    return gateway;
}

ParentReference read_parent_ref(const json& value, const std::string& path) {
    expect_object(value, path);
    ParentReference ref;
    if (const auto group = optional_string(value, "group", path, kMaxNameBytes)) ref.group = *group;
    if (const auto kind = optional_name(value, "kind", path)) ref.kind = *kind;
    ref.namespace_name = optional_name(value, "namespace", path);
    ref.name = read_name(value, "name", path);
    ref.section_name = optional_name(value, "sectionName", path);
    if (const json* port = optional_member(value, "port")) ref.port = read_port(*port, member_path(path, "port"));
    return ref;
}

BackendReference read_backend_ref(const json& value, const std::string& path) {
    expect_object(value, path);
    BackendReference ref;
    if (const auto group = optional_string(value, "group", path, kMaxNameBytes)) ref.group = *group;
    if (const auto kind = optional_name(value, "kind", path)) ref.kind = *kind;
    ref.name = read_name(value, "name", path);
    ref.namespace_name = optional_name(value, "namespace", path);
    if (const json* port = optional_member(value, "port")) ref.port = read_port(*port, member_path(path, "port"));
    if (const json* weight = optional_member(value, "weight")) {
        const std::string weight_path = member_path(path, "weight");
        const std::int64_t number = read_integer(*weight, weight_path);
        if (number < 0 || number > kMaxWeight) fail(weight_path, "must be 0..1000000");
        ref.weight = static_cast<std::uint32_t>(number);
    }
    return ref;
}

TLSRoute read_tls_route(const json& document, const std::string& api_version) {
    TLSRoute route;
    route.api_version = api_version;
    route.metadata = read_metadata(document);
    const json& spec = read_spec(document);
    if (const json* parents = optional_array(spec, "parentRefs", "spec", kMaxParentRefs)) {
        for (std::size_t i = 0; i < parents->size(); ++i) {
            route.parent_refs.push_back(read_parent_ref((*parents)[i], index_path("spec.parentRefs", i)));
        }
    }
    // v1alpha3 made hostnames required (v1 kept it); v1alpha2 allowed a route without them.
    const json* hostnames = api_version == std::string(kGroup) + "/v1alpha2"
                                ? optional_array(spec, "hostnames", "spec", kMaxHostnames)
                                : &required_array(spec, "hostnames", "spec", kMaxHostnames);
    if (hostnames) {
        for (std::size_t i = 0; i < hostnames->size(); ++i) {
            const std::string hostname_path = index_path("spec.hostnames", i);
            route.hostnames.push_back(read_string((*hostnames)[i], hostname_path, kMaxNameBytes));
            if (route.hostnames.back().empty()) fail(hostname_path, "must not be empty");
        }
    }
    const json& rules = required_array(spec, "rules", "spec", kMaxRules);
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const std::string rule_path = index_path("spec.rules", i);
        const json& rule = expect_object(rules[i], rule_path);
        TLSRoute::Rule decoded;
        if (const json* backends = optional_array(rule, "backendRefs", rule_path, kMaxBackendRefs)) {
            const std::string backends_path = member_path(rule_path, "backendRefs");
            for (std::size_t j = 0; j < backends->size(); ++j) {
                decoded.backend_refs.push_back(read_backend_ref((*backends)[j], index_path(backends_path, j)));
            }
        }
        route.rules.push_back(std::move(decoded));
    }
    return route;
}

ReferenceGrant read_reference_grant(const json& document) {
    ReferenceGrant grant;
    grant.metadata = read_metadata(document);
    const json& spec = read_spec(document);
    const json& from = required_array(spec, "from", "spec", kMaxGrantEntries);
    for (std::size_t i = 0; i < from.size(); ++i) {
        const std::string path = index_path("spec.from", i);
        const json& entry = expect_object(from[i], path);
        ReferenceGrant::From decoded;
        decoded.group = read_string(required_member(entry, "group", path), member_path(path, "group"), kMaxNameBytes);
        decoded.kind = read_name(entry, "kind", path);
        decoded.namespace_name = read_name(entry, "namespace", path);
        grant.from.push_back(std::move(decoded));
    }
    const json& to = required_array(spec, "to", "spec", kMaxGrantEntries);
    for (std::size_t i = 0; i < to.size(); ++i) {
        const std::string path = index_path("spec.to", i);
        const json& entry = expect_object(to[i], path);
        ReferenceGrant::To decoded;
        decoded.group = read_string(required_member(entry, "group", path), member_path(path, "group"), kMaxNameBytes);
        decoded.kind = read_name(entry, "kind", path);
        decoded.name = optional_name(entry, "name", path);
        grant.to.push_back(std::move(decoded));
    }
    return grant;
}

Namespace read_namespace(const json& document) {
    Namespace decoded;
    decoded.metadata = read_metadata(document);
    decoded.metadata.namespace_name.clear();  // cluster-scoped
    return decoded;
}

kubernetes::Service read_service(const json& document) {
    kubernetes::ServiceValue service = kubernetes::decode_service_value(document);
    if (!service.ok()) fail(service.field == "document" ? std::string() : service.field, service.message);
    // The fields of ObjectMeta that decode_service_value does not check, with this file's rules.
    read_metadata(document);
    return std::move(*service.value);
}

struct KindVersions {
    const char* kind;
    std::vector<std::string_view> versions;
};

// The versions accepted per Gateway API kind (gateway_objects.h).
const std::vector<KindVersions>& gateway_kinds() {
    static const std::vector<KindVersions> kinds = {
        {"GatewayClass", {"v1beta1", "v1"}},
        {"Gateway", {"v1beta1", "v1"}},
        {"TLSRoute", {"v1alpha2", "v1alpha3", "v1"}},
        {"ReferenceGrant", {"v1alpha2", "v1beta1", "v1"}},
    };
    return kinds;
}

// Fails unless `version` is one passgate reads for the Gateway API kind `kind`; false when the
// kind is not one of them.
bool check_gateway_version(const std::string& kind, const std::string& api_version, std::string_view version) {
    for (const KindVersions& entry : gateway_kinds()) {
        if (kind != entry.kind) continue;
        std::string list;
        for (const std::string_view accepted : entry.versions) {
            if (version == accepted) return true;
            list += (list.empty() ? "" : ", ") + std::string(accepted);
        }
        fail("apiVersion", "unsupported apiVersion " + wire::printable(api_version, kMaxNameBytes) + " for " +
                               kind + " (" + list + ")");
    }
    return false;
}

Object read_object(const json& document, const std::string& api_version, const std::string& kind) {
    const std::string_view group_prefix = kGroup;
    const std::string_view version(api_version);
    if (version.size() > group_prefix.size() + 1 && version.substr(0, group_prefix.size()) == group_prefix &&
        version[group_prefix.size()] == '/') {
        if (check_gateway_version(kind, api_version, version.substr(group_prefix.size() + 1))) {
            if (kind == "GatewayClass") return read_gateway_class(document);
            if (kind == "Gateway") return read_gateway(document);
            if (kind == "TLSRoute") return read_tls_route(document, api_version);
            return read_reference_grant(document);
        }
    } else if (api_version == "v1" && kind == "Service") {
        return read_service(document);
    } else if (api_version == "v1" && kind == "Namespace") {
        return read_namespace(document);
    }
    Ignored ignored;
    ignored.api_version = api_version;
    ignored.kind = kind;
    return ignored;
}

// The document's "ns/name" or "name" when readable, for messages (also when it does not decode).
std::string readable_name(const json& document) {
    const json* metadata = optional_member(document, "metadata");
    if (!metadata || !metadata->is_object()) return {};
    const json* name = optional_member(*metadata, "name");
    if (!name || !name->is_string() || name->get_ref<const std::string&>().size() > kMaxNameBytes) return {};
    const json* namespace_name = optional_member(*metadata, "namespace");
    if (namespace_name && namespace_name->is_string() && !namespace_name->get_ref<const std::string&>().empty() &&
        namespace_name->get_ref<const std::string&>().size() <= kMaxNameBytes) {
        return namespace_name->get<std::string>() + "/" + name->get<std::string>();
    }
    return name->get<std::string>();
}

template <typename T>
std::string qualified_name(const T& object) {
    return object.metadata.namespace_name.empty() ? object.metadata.name
                                                  : object.metadata.namespace_name + "/" + object.metadata.name;
}

}  // namespace

DecodedObject decode_object(const nlohmann::json& document) {
    DecodedObject result;
    try {
        expect_object(document, "");
        result.name = wire::printable(readable_name(document), 2 * kMaxNameBytes + 1);
        const std::string api_version = read_name(document, "apiVersion", "");
        result.kind = wire::printable(read_name(document, "kind", ""), kMaxNameBytes);
        Object object = read_object(document, api_version, result.kind);
        if (auto* ignored = std::get_if<Ignored>(&object)) ignored->name = result.name;
        result.value = std::move(object);
    } catch (const DecodeError& error) {
        result.field = error.field;
        result.error = error.message;
    } catch (const std::bad_alloc&) {
        result.error = "out of memory";
    } catch (const std::exception&) {
        result.error = "malformed document";  // nlohmann's type errors: the checks above leave none
    }
    if (!result.error.empty()) result.value.reset();
    return result;
}

std::string kind_of(const Object& object) {
    return std::visit(
        [](const auto& value) -> std::string {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, GatewayClass>) return "GatewayClass";
            if constexpr (std::is_same_v<T, Gateway>) return "Gateway";
            if constexpr (std::is_same_v<T, TLSRoute>) return "TLSRoute";
            if constexpr (std::is_same_v<T, ReferenceGrant>) return "ReferenceGrant";
            if constexpr (std::is_same_v<T, kubernetes::Service>) return "Service";
            if constexpr (std::is_same_v<T, Namespace>) return "Namespace";
            if constexpr (std::is_same_v<T, Ignored>) return value.kind;
        },
        object);
}

std::string name_of(const Object& object) {
    return std::visit(
        [](const auto& value) -> std::string {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, Ignored>) {
                return value.name;
            } else {
                return qualified_name(value);
            }
        },
        object);
}

}  // namespace passgate::gateway_api
