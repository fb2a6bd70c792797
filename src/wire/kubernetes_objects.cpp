#include "src/wire/kubernetes_objects.h"

#include "src/wire/field_path.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <utility>

namespace passgate::kubernetes {
namespace {

using json = nlohmann::json;

// Deeper than any object passgate reads (managedFields included); bounds the parser's stack and
// the DOM's destruction before nlohmann sees the bytes.
constexpr int kMaxNestingDepth = 64;
// The longest piece of input an error message quotes.
constexpr std::size_t kMaxQuotedBytes = 64;

// Thrown inside the decoders only; decode() turns it into Decoded::error.
struct DecodeError {
    std::string message;  // "field: what"
    std::string field;    // set by fail(): the field's path
    std::string what;     // set by fail(): what is wrong with it
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw DecodeError{path + ": " + what, path, what};
}

// A short, printable, quoted excerpt of untrusted text for an error message.
std::string excerpt(std::string_view text) {
    const std::string shown = wire::printable(text.substr(0, kMaxQuotedBytes), kMaxQuotedBytes);
    return "\"" + shown + (text.size() > kMaxQuotedBytes ? "\"..." : "\"");
}

std::string index_path(const std::string& path, std::size_t index) {
    return path + "[" + std::to_string(index) + "]";
}

std::string member_path(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// Nesting of [ and { outside strings, so that a depth bomb is rejected in one linear pass.
bool nesting_within_bound(std::string_view text) {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > kMaxNestingDepth) return false;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return true;
}

json parse_document(std::string_view text) {
    if (text.size() > kMaxDocumentBytes) {
        throw DecodeError{"document of " + std::to_string(text.size()) + " bytes, more than " +
                          std::to_string(kMaxDocumentBytes), {}, {}};
    }
    if (!nesting_within_bound(text)) {
        throw DecodeError{"nested deeper than " + std::to_string(kMaxNestingDepth) + " levels", {}, {}};
    }
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::parse_error& error) {
        // Not error.what(): it quotes the last token read, which may be most of the document.
        throw DecodeError{"not JSON: syntax error at byte " + std::to_string(error.byte), {}, {}};
    }
}

const char* type_name(const json& value) {
    switch (value.type()) {
        case json::value_t::null: return "null";
        case json::value_t::object: return "an object";
        case json::value_t::array: return "an array";
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a fraction";
        default: return "not JSON data";
    }
}

const json& expect_object(const json& value, const std::string& path) {
    if (!value.is_object()) fail(path, std::string("not an object (") + type_name(value) + ")");
    return value;
}

// The member `key` of `object`, or nullptr when it is absent or null (an unset optional field:
// Go's encoder writes nil slices and pointers as null).
const json* optional_member(const json& object, std::string_view key) {
    const auto found = object.find(key);
    if (found == object.end() || found->is_null()) return nullptr;
    return &*found;
}

const json& required_member(const json& object, std::string_view key, const std::string& path) {
    const auto found = object.find(key);
    if (found == object.end()) fail(member_path(path, key), "missing");
    return *found;
}

std::string read_string(const json& value, const std::string& path, std::size_t max_bytes) {
    if (!value.is_string()) fail(path, std::string("not a string (") + type_name(value) + ")");
    const auto& text = value.get_ref<const std::string&>();
    if (text.size() > max_bytes) {
        fail(path, excerpt(text) + " is " + std::to_string(text.size()) + " bytes, more than " +
                       std::to_string(max_bytes));
    }
    return text;
}

std::string optional_string(const json& object, std::string_view key, const std::string& path,
                            std::size_t max_bytes) {
    const json* value = optional_member(object, key);
    return value ? read_string(*value, member_path(path, key), max_bytes) : std::string();
}

std::int64_t read_integer(const json& value, const std::string& path) {
    if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            fail(path, "integer out of range");
        }
        return static_cast<std::int64_t>(number);
    }
    if (value.is_number_integer()) return value.get<std::int64_t>();
    fail(path, std::string("not an integer (") + type_name(value) + ")");
}

std::uint16_t read_port_number(const json& value, const std::string& path) {
    const std::int64_t number = read_integer(value, path);
    if (number < 1 || number > 65535) fail(path, std::to_string(number) + " is not in 1..65535");
    return static_cast<std::uint16_t>(number);
}

std::optional<bool> optional_bool(const json& object, std::string_view key,
                                  const std::string& path) {
    const json* value = optional_member(object, key);
    if (!value) return std::nullopt;
    if (!value->is_boolean()) {
        fail(member_path(path, key), std::string("not a boolean (") + type_name(*value) + ")");
    }
    return value->get<bool>();
}

// An array member that may be absent or null (then empty), with at most `max_size` elements.
const json* optional_array(const json& object, std::string_view key, const std::string& path,
                           std::size_t max_size) {
    const json* value = optional_member(object, key);
    if (!value) return nullptr;
    const std::string array_path = member_path(path, key);
    if (!value->is_array()) fail(array_path, std::string("not an array (") + type_name(*value) + ")");
    if (value->size() > max_size) {
        fail(array_path, std::to_string(value->size()) + " elements, more than " +
                             std::to_string(max_size));
    }
    return value;
}

ObjectMeta read_metadata(const json& object, const std::string& path) {
    ObjectMeta metadata;
    const json* value = optional_member(object, "metadata");
    if (!value) return metadata;
    const std::string meta_path = member_path(path, "metadata");
    expect_object(*value, meta_path);
    metadata.name = optional_string(*value, "name", meta_path, kMaxNameBytes);
    metadata.namespace_name = optional_string(*value, "namespace", meta_path, kMaxNameBytes);
    metadata.resource_version =
        optional_string(*value, "resourceVersion", meta_path, kMaxResourceVersionBytes);
    metadata.uid = optional_string(*value, "uid", meta_path, kMaxNameBytes);
    if (const json* labels = optional_member(*value, "labels")) {
        const std::string labels_path = member_path(meta_path, "labels");
        expect_object(*labels, labels_path);
        if (const json* service_name = optional_member(*labels, "kubernetes.io/service-name")) {
            metadata.service_name_label = read_string(
                *service_name, labels_path + "[\"kubernetes.io/service-name\"]", kMaxNameBytes);
        }
    }
    return metadata;
}

// An object of the API (not a bookmark): its name is what the watch keys it by.
ObjectMeta read_named_metadata(const json& object, const std::string& path) {
    ObjectMeta metadata = read_metadata(object, path);
    if (metadata.name.empty()) fail(member_path(path, "metadata.name"), "missing or empty");
    return metadata;
}

std::string read_protocol(const json& object, const std::string& path) {
    std::string protocol = optional_string(object, "protocol", path, kMaxNameBytes);
    return protocol.empty() ? std::string("TCP") : protocol;
}

ServicePort read_service_port(const json& value, const std::string& path) {
    expect_object(value, path);
    ServicePort port;
    port.name = optional_string(value, "name", path, kMaxNameBytes);
    port.protocol = read_protocol(value, path);
    port.port = read_port_number(required_member(value, "port", path), member_path(path, "port"));
    if (const json* target = optional_member(value, "targetPort")) {
        const std::string target_path = member_path(path, "targetPort");
        if (target->is_string()) {
            port.target_port = read_string(*target, target_path, kMaxNameBytes);
        } else if (target->is_number()) {
            port.target_port = read_port_number(*target, target_path);
        } else {
            fail(target_path,
                 std::string("not an integer or a string (") + type_name(*target) + ")");
        }
    }
    return port;
}

Service read_service(const json& value, const std::string& path) {
    expect_object(value, path.empty() ? std::string("document") : path);
    Service service;
    service.metadata = read_named_metadata(value, path);
    if (const json* spec = optional_member(value, "spec")) {
        const std::string spec_path = member_path(path, "spec");
        expect_object(*spec, spec_path);
        if (const json* ports = optional_array(*spec, "ports", spec_path, kMaxPortsPerObject)) {
            const std::string ports_path = member_path(spec_path, "ports");
            for (std::size_t i = 0; i < ports->size(); ++i) {
                service.ports.push_back(read_service_port((*ports)[i], index_path(ports_path, i)));
            }
        }
    }
    return service;
}

EndpointPort read_endpoint_port(const json& value, const std::string& path) {
    expect_object(value, path);
    EndpointPort port;
    port.name = optional_string(value, "name", path, kMaxNameBytes);
    port.protocol = read_protocol(value, path);
    if (const json* number = optional_member(value, "port")) {
        port.port = read_port_number(*number, member_path(path, "port"));
    }
    return port;
}

Endpoint read_endpoint(const json& value, const std::string& path) {
    expect_object(value, path);
    Endpoint endpoint;
    const std::string addresses_path = member_path(path, "addresses");
    const json& addresses = required_member(value, "addresses", path);
    if (!addresses.is_array()) {
        fail(addresses_path, std::string("not an array (") + type_name(addresses) + ")");
    }
    if (addresses.size() > kMaxAddressesPerEndpoint) {
        fail(addresses_path, std::to_string(addresses.size()) + " elements, more than " +
                                 std::to_string(kMaxAddressesPerEndpoint));
    }
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        endpoint.addresses.push_back(
            read_string(addresses[i], index_path(addresses_path, i), kMaxNameBytes));
    }
    if (const json* conditions = optional_member(value, "conditions")) {
        const std::string conditions_path = member_path(path, "conditions");
        expect_object(*conditions, conditions_path);
        endpoint.conditions.ready = optional_bool(*conditions, "ready", conditions_path);
        endpoint.conditions.serving = optional_bool(*conditions, "serving", conditions_path);
        endpoint.conditions.terminating = optional_bool(*conditions, "terminating", conditions_path);
    }
    if (const json* target_ref = optional_member(value, "targetRef")) {
        const std::string target_ref_path = member_path(path, "targetRef");
        expect_object(*target_ref, target_ref_path);
        endpoint.target_ref_name = optional_string(*target_ref, "name", target_ref_path, kMaxNameBytes);
    }
    endpoint.node_name = optional_string(value, "nodeName", path, kMaxNameBytes);
    return endpoint;
}

EndpointSlice read_endpoint_slice(const json& value, const std::string& path) {
    expect_object(value, path.empty() ? std::string("document") : path);
    EndpointSlice slice;
    slice.metadata = read_named_metadata(value, path);
    slice.address_type = read_string(required_member(value, "addressType", path),
                                     member_path(path, "addressType"), kMaxNameBytes);
    if (const json* ports = optional_array(value, "ports", path, kMaxPortsPerObject)) {
        const std::string ports_path = member_path(path, "ports");
        for (std::size_t i = 0; i < ports->size(); ++i) {
            slice.ports.push_back(read_endpoint_port((*ports)[i], index_path(ports_path, i)));
        }
    }
    if (const json* endpoints = optional_array(value, "endpoints", path, kMaxEndpointsPerSlice)) {
        const std::string endpoints_path = member_path(path, "endpoints");
        for (std::size_t i = 0; i < endpoints->size(); ++i) {
            slice.endpoints.push_back(read_endpoint((*endpoints)[i], index_path(endpoints_path, i)));
        }
    }
    return slice;
}

template <typename Object, typename ReadObject>
List<Object> read_list(const json& document, ReadObject read_object) {
    expect_object(document, "document");
    List<Object> list;
    if (const json* metadata = optional_member(document, "metadata")) {
        expect_object(*metadata, "metadata");
        list.resource_version =
            optional_string(*metadata, "resourceVersion", "metadata", kMaxResourceVersionBytes);
        list.continue_token =
            optional_string(*metadata, "continue", "metadata", kMaxContinueTokenBytes);
    }
    const json& items = required_member(document, "items", "");
    if (!items.is_null()) {  // Go writes an empty list's nil slice as null
        if (!items.is_array()) fail("items", std::string("not an array (") + type_name(items) + ")");
        if (items.size() > kMaxItems) {
            fail("items", std::to_string(items.size()) + " elements, more than " +
                              std::to_string(kMaxItems));
        }
        list.items.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            list.items.push_back(read_object(items[i], index_path("items", i)));
        }
    }
    return list;
}

std::string read_status_text(const json& object, std::string_view key, const std::string& path) {
    const json* value = optional_member(object, key);
    if (!value) return {};
    const std::string text_path = member_path(path, key);
    if (!value->is_string()) fail(text_path, std::string("not a string (") + type_name(*value) + ")");
    std::string text = value->get<std::string>();
    if (text.size() > kMaxStatusTextBytes) {
        // Cut on a UTF-8 character boundary (nlohmann checked the text is valid UTF-8).
        std::size_t end = kMaxStatusTextBytes;
        while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
        text.resize(end);
        text += "...";
    }
    return text;
}

Status read_status(const json& value, const std::string& path) {
    expect_object(value, path.empty() ? std::string("document") : path);
    Status status;
    if (const json* code = optional_member(value, "code")) {
        const std::string code_path = member_path(path, "code");
        const std::int64_t number = read_integer(*code, code_path);
        if (number < 0 || number > 999) fail(code_path, std::to_string(number) + " is not in 0..999");
        status.code = static_cast<int>(number);
    }
    status.reason = read_status_text(value, "reason", path);
    status.message = read_status_text(value, "message", path);
    return status;
}

EventType read_event_type(const json& document) {
    const std::string type = read_string(required_member(document, "type", ""), "type", 16);
    if (type == "ADDED") return EventType::added;
    if (type == "MODIFIED") return EventType::modified;
    if (type == "DELETED") return EventType::deleted;
    if (type == "BOOKMARK") return EventType::bookmark;
    if (type == "ERROR") return EventType::error;
    fail("type", "unknown event type " + excerpt(type));
}

template <typename Object, typename ReadObject>
WatchEvent<Object> read_event(const json& document, ReadObject read_object) {
    expect_object(document, "document");
    WatchEvent<Object> event;
    event.type = read_event_type(document);
    const json& object = required_member(document, "object", "");
    if (event.type == EventType::error) {
        event.object = read_status(object, "object");
        return event;
    }
    if (event.type == EventType::bookmark) {
        // The server sends an otherwise empty object ("addressType": "", "endpoints": null):
        // only the resourceVersion is read.
        expect_object(object, "object");
        Object bookmark{};
        bookmark.metadata.resource_version =
            read_metadata(object, "object").resource_version;
        if (bookmark.metadata.resource_version.empty()) {
            fail("object.metadata.resourceVersion", "missing or empty in a BOOKMARK");
        }
        event.resource_version = bookmark.metadata.resource_version;
        event.object = std::move(bookmark);
        return event;
    }
    Object decoded = read_object(object, "object");
    event.resource_version = decoded.metadata.resource_version;
    event.object = std::move(decoded);
    return event;
}

// The edge: nothing thrown inside gets out of a decoder.
template <typename T, typename Read>
Decoded<T> decode(std::string_view text, Read read) {
    Decoded<T> result;
    try {
        const json document = parse_document(text);
        result.value = read(document);
    } catch (const DecodeError& error) {
        result.error = error.message;
    } catch (const std::bad_alloc&) {
        result.error = "out of memory decoding a document of " + std::to_string(text.size()) + " bytes";
    } catch (const std::exception&) {
        // nlohmann's type and range errors: the checks above should leave none.
        result.error = "malformed document";
    }
    if (!result.error.empty()) result.value.reset();
    return result;
}

JsonObject read_json_object(const json& value, const std::string& path) {
    expect_object(value, path.empty() ? std::string("document") : path);
    JsonObject object;
    object.metadata = read_named_metadata(value, path);
    object.json = value;
    return object;
}

// An already parsed object: the edge, as decode() is for text.
template <typename T, typename Read>
Decoded<T> decode_parsed(const json& document, Read read) {
    Decoded<T> result;
    try {
        result.value = read(document);
    } catch (const DecodeError& error) {
        result.error = error.message;
    } catch (const std::bad_alloc&) {
        result.error = "out of memory decoding an object";
    } catch (const std::exception&) {
        result.error = "malformed object";
    }
    if (!result.error.empty()) result.value.reset();
    return result;
}

}  // namespace

Decoded<JsonObject> decode_json_object(std::string_view json_text) {
    return decode<JsonObject>(json_text, [](const json& document) { return read_json_object(document, ""); });
}

Decoded<List<JsonObject>> decode_json_object_list(std::string_view json_text) {
    return decode<List<JsonObject>>(json_text, [](const json& document) {
        return read_list<JsonObject>(document, read_json_object);
    });
}

Decoded<WatchEvent<JsonObject>> decode_json_object_event(std::string_view line) {
    return decode<WatchEvent<JsonObject>>(line, [](const json& document) {
        return read_event<JsonObject>(document, read_json_object);
    });
}

namespace {

constexpr std::size_t kMaxDiscoveryEntries = 1000;  // versions of a group, resources of a version

// The string member `key` of every element of document[array_key].
std::vector<std::string> read_discovery_names(const json& document, std::string_view array_key,
                                              std::string_view key) {
    expect_object(document, "document");
    std::vector<std::string> names;
    const json* entries = optional_array(document, array_key, "", kMaxDiscoveryEntries);
    if (!entries) return names;
    for (std::size_t i = 0; i < entries->size(); ++i) {
        const std::string path = index_path(std::string(array_key), i);
        expect_object((*entries)[i], path);
        names.push_back(read_string(required_member((*entries)[i], key, path), member_path(path, key), kMaxNameBytes));
    }
    return names;
}

}  // namespace

Decoded<std::vector<std::string>> decode_api_group_versions(std::string_view json_text) {
    return decode<std::vector<std::string>>(json_text, [](const json& document) {
        return read_discovery_names(document, "versions", "version");
    });
}

Decoded<std::vector<std::string>> decode_api_resource_names(std::string_view json_text) {
    return decode<std::vector<std::string>>(json_text, [](const json& document) {
        return read_discovery_names(document, "resources", "name");
    });
}

Decoded<Service> decode_service_object(const nlohmann::json& object) {
    return decode_parsed<Service>(object, [](const json& document) { return read_service(document, ""); });
}

Decoded<EndpointSlice> decode_endpoint_slice_object(const nlohmann::json& object) {
    return decode_parsed<EndpointSlice>(object, [](const json& document) { return read_endpoint_slice(document, ""); });
}

ServiceValue decode_service_value(const nlohmann::json& document) {
    ServiceValue result;
    try {
        result.value = read_service(document, "");
    } catch (const DecodeError& error) {
        result.field = error.field;
        result.message = error.field.empty() && error.what.empty() ? error.message : error.what;
    } catch (const std::bad_alloc&) {
        result.message = "out of memory decoding a Service";
    } catch (const std::exception&) {
        result.message = "malformed document";
    }
    if (!result.message.empty()) result.value.reset();
    return result;
}

Decoded<Service> decode_service(std::string_view json_text) {
    return decode<Service>(json_text, [](const json& document) { return read_service(document, ""); });
}

Decoded<List<EndpointSlice>> decode_endpoint_slice_list(std::string_view json_text) {
    return decode<List<EndpointSlice>>(json_text, [](const json& document) {
        return read_list<EndpointSlice>(document, read_endpoint_slice);
    });
}

Decoded<List<Service>> decode_service_list(std::string_view json_text) {
    return decode<List<Service>>(json_text, [](const json& document) {
        return read_list<Service>(document, read_service);
    });
}

Decoded<WatchEvent<EndpointSlice>> decode_endpoint_slice_event(std::string_view line) {
    return decode<WatchEvent<EndpointSlice>>(line, [](const json& document) {
        return read_event<EndpointSlice>(document, read_endpoint_slice);
    });
}

Decoded<WatchEvent<Service>> decode_service_event(std::string_view line) {
    return decode<WatchEvent<Service>>(line, [](const json& document) {
        return read_event<Service>(document, read_service);
    });
}

Decoded<Status> decode_status(std::string_view json_text) {
    return decode<Status>(json_text, [](const json& document) {
        expect_object(document, "document");
        const json* kind = optional_member(document, "kind");
        if (!kind || !kind->is_string() || kind->get_ref<const std::string&>() != "Status") {
            fail("kind", "not \"Status\"");
        }
        return read_status(document, "");
    });
}

}  // namespace passgate::kubernetes
