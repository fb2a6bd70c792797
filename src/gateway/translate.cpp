// The Gateway API objects into listeners, routes and services (translate.h says the mapping).
//
// Where the spec leaves room, passgate decides (config/README.md, "[gateway_api]", lists these):
// - A namespaced object without metadata.namespace (a manifest) is in "default", as kubectl
//   applies it.
// - Objects are taken oldest first (creationTimestamp compared as RFC 3339 text; an object
//   without one, as in manifests, sorts before every dated one), then by namespace/name; so the
//   output is the same whatever order the objects came in.
// - Two Gateway listeners (or a Gateway listener and a TOML [[listener]]) whose addresses
//   overlap on one port: passgate binds one socket per listener, so the later one is not
//   programmed: Accepted=False PortUnavailable, Conflicted=True (HostnameConflict for the same
//   hostname, else PortUnavailable), Programmed=False Invalid. With a TOML [[listener]] it is
//   also an error naming both places.
// - A TLS listener with tls.mode Terminate: Accepted=False UnsupportedValue (the spec's reason
//   for a value the implementation does not support); another protocol: UnsupportedProtocol.
// - Attachment follows the spec: a conflicted listener still counts the routes that attach to
//   it (attachedRoutes), but serves none since it is not bound.
// - A parentRef to a Gateway that is not in the object set gets no status entry (it may be
//   another controller's; the spec has implementations write status only for their parents);
//   with manifests it is a warning (likely a typo).
// - A route that is invalid on its own (a bad hostname, a backendRef to a Service without a
//   port, no backendRef at all) is an error; its parents' status says Accepted=False
//   UnsupportedValue with the error.
// - With the full object set (watch mode), a backendRef whose Service does not exist or lacks
//   the port is BackendNotFound even when the TOML has a [[service]] of its name.
// - A namespace always carries the label kubernetes.io/metadata.name=<name> (the API server sets
//   it on every namespace), so a selector on it works with manifests that hold no Namespace.
// - A route's ResolvedRefs reason, with several invalid backendRefs, is the first one's.

#include "src/gateway/translate.h"

#include "config/address.h"
#include "config/hostname.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace passgate::gateway_api {

using config::addresses_overlap;

namespace {

constexpr const char* kTLSRouteKind = "TLSRoute";
constexpr const char* kDefaultNamespace = "default";
constexpr const char* kNamespaceNameLabel = "kubernetes.io/metadata.name";

std::string quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string join(const std::vector<std::string>& lines, std::string_view separator) {
    std::string out;
    for (const std::string& line : lines) {
        if (!out.empty()) out += separator;
        out += line;
    }
    return out;
}

Condition condition(std::string type, bool status, std::string reason, std::string message,
                    std::int64_t generation) {
    return Condition{std::move(type), status, std::move(reason), std::move(message), generation};
}

// Objects in the order the translation takes them: oldest first, then namespace/name, then
// where they came from (so that duplicates too have a fixed order).
template <typename T>
std::vector<Sourced<T>> in_order(const std::vector<Sourced<T>>& objects) {
    std::vector<Sourced<T>> out = objects;
    for (Sourced<T>& object : out) {
        if (object.object.metadata.namespace_name.empty()) {
            object.object.metadata.namespace_name = kDefaultNamespace;
        }
    }
    std::sort(out.begin(), out.end(), [](const Sourced<T>& a, const Sourced<T>& b) {
        const ObjectMeta& ma = a.object.metadata;
        const ObjectMeta& mb = b.object.metadata;
        return std::tie(ma.creation_timestamp, ma.namespace_name, ma.name, a.origin.file, a.origin.line) <
               std::tie(mb.creation_timestamp, mb.namespace_name, mb.name, b.origin.file, b.origin.line);
    });
    return out;
}

// Services: namespace defaulted, ordered by namespace/name and origin (a duplicate's first
// copy is the one used, whatever the input order).
std::vector<Sourced<kubernetes::Service>> services_in_order(const std::vector<Sourced<kubernetes::Service>>& objects) {
    std::vector<Sourced<kubernetes::Service>> out = objects;
    for (auto& object : out) {
        if (object.object.metadata.namespace_name.empty()) object.object.metadata.namespace_name = kDefaultNamespace;
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        const auto& ma = a.object.metadata;
        const auto& mb = b.object.metadata;
        return std::tie(ma.namespace_name, ma.name, a.origin.file, a.origin.line) <
               std::tie(mb.namespace_name, mb.name, b.origin.file, b.origin.line);
    });
    return out;
}

std::string ns_name(const ObjectMeta& metadata) { return metadata.namespace_name + "/" + metadata.name; }

// "0.0.0.0" + 6443 -> 0.0.0.0:6443; "::" -> [::]:6443.
std::optional<config::Address> listen_address(const std::string& ip, std::uint16_t port) {
    const bool v6 = ip.find(':') != std::string::npos;
    return config::parse_address((v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port));
}

bool is_wildcard_ip(const std::string& ip) {
    const std::optional<config::Address> address = listen_address(ip, 1);
    return address && address->is_unspecified();
}

bool selector_matches(const LabelSelector& selector, const std::map<std::string, std::string>& labels) {
    for (const auto& [key, value] : selector.match_labels) {
        const auto it = labels.find(key);
        if (it == labels.end() || it->second != value) return false;
    }
    for (const LabelSelector::Expression& expression : selector.match_expressions) {
        const auto it = labels.find(expression.key);
        const bool has = it != labels.end();
        const bool listed = has && std::find(expression.values.begin(), expression.values.end(),
                                             it->second) != expression.values.end();
        if (expression.op == "In" && !listed) return false;
        if (expression.op == "NotIn" && listed) return false;
        if (expression.op == "Exists" && !has) return false;
        if (expression.op == "DoesNotExist" && has) return false;
        if (expression.op != "In" && expression.op != "NotIn" && expression.op != "Exists" &&
            expression.op != "DoesNotExist") {
            return false;  // an operator metav1 does not know selects nothing
        }
    }
    return true;
}

bool is_tls_route_kind(const RouteGroupKind& kind) { return kind.group == kGroup && kind.kind == kTLSRouteKind; }

// ---------------------------------------------------------------------------------------------
// Gateways.

struct ListenerState {
    const GatewayListener* spec = nullptr;
    std::string name;                      // passgate's: "ns/gateway/listener"
    std::optional<std::string> hostname;   // validated, lowercased
    std::optional<config::Address> address;
    // Accepted=False: reason and message; empty reason when accepted.
    std::string not_accepted_reason;
    std::string not_accepted_message;
    std::string conflict_reason;           // Conflicted=True with this reason; empty: no conflict
    std::string conflict_message;
    std::vector<RouteGroupKind> supported_kinds;
    std::string invalid_kinds_message;     // ResolvedRefs=False InvalidRouteKinds when set
    std::uint32_t attached_routes = 0;
    std::string field;                     // "spec.listeners[2]", for errors

    // TLS Passthrough: routes may attach (spec: listener status does not decide attachment).
    bool passthrough = false;
    bool programmed() const { return passthrough && not_accepted_reason.empty(); }
    bool allows_tls_routes() const {
        return passthrough && std::any_of(supported_kinds.begin(), supported_kinds.end(), is_tls_route_kind);
    }
};

struct GatewayState {
    const Sourced<Gateway>* source = nullptr;
    std::string invalid;  // the Gateway is left out: why (Accepted=False Invalid)
    std::vector<ListenerState> listeners;

    const Gateway& gateway() const { return source->object; }
};

class Translator {
public:
    Translator(const config::Config& base, const ObjectSet& objects)
        : base_(base), objects_(objects) {}

    Translation run() {
        gateways_in_order_ = in_order(objects_.gateways);
        routes_in_order_ = in_order(objects_.tls_routes);
        grants_ = in_order(objects_.reference_grants);
        services_ = services_in_order(objects_.services);
        read_namespaces();
        translate_classes();
        translate_gateways();
        translate_routes();
        write_gateway_statuses();
        finish_services();
        return std::move(out_);
    }

private:
    const config::Config& base_;
    const ObjectSet& objects_;
    Translation out_;
    std::vector<Sourced<Gateway>> gateways_in_order_;
    std::vector<Sourced<TLSRoute>> routes_in_order_;
    std::vector<Sourced<ReferenceGrant>> grants_;
    std::vector<Sourced<kubernetes::Service>> services_;
    std::map<std::string, std::map<std::string, std::string>> namespace_labels_;
    std::vector<GatewayState> gateways_;  // of our classes, in order; duplicates left out
    std::map<std::string, config::Service> made_services_;

    void error(const Origin& origin, const std::string& kind, const std::string& name,
               const std::string& field, const std::string& message) {
        out_.errors.push_back(origin.prefix() + kind + " " + name + ": " +
                              (field.empty() ? "" : field + ": ") + message);
    }
    void warn(const Origin& origin, const std::string& what, const std::string& message) {
        out_.warnings.push_back(origin.prefix() + what + ": " + message);
    }

    bool is_our_class(const std::string& name) const {
        const auto& classes = base_.gateway_api.gateway_classes;
        return std::find(classes.begin(), classes.end(), name) != classes.end();
    }

    // A namespace listed twice: the first by origin counts, whatever the input order.
    void read_namespaces() {
        std::vector<Sourced<Namespace>> namespaces = objects_.namespaces;
        std::sort(namespaces.begin(), namespaces.end(), [](const auto& a, const auto& b) {
            return std::tie(a.object.metadata.name, a.origin.file, a.origin.line) <
                   std::tie(b.object.metadata.name, b.origin.file, b.origin.line);
        });
        for (const Sourced<Namespace>& ns : namespaces) {
            namespace_labels_.try_emplace(ns.object.metadata.name, ns.object.metadata.labels);
        }
    }
    std::map<std::string, std::string> labels_of_namespace(const std::string& name) const {
        const auto it = namespace_labels_.find(name);
        std::map<std::string, std::string> labels =
            it == namespace_labels_.end() ? std::map<std::string, std::string>{} : it->second;
        labels[kNamespaceNameLabel] = name;
        return labels;
    }

    // -- GatewayClasses ------------------------------------------------------------------------

    void translate_classes() {
        std::set<std::string> done;
        std::vector<Sourced<GatewayClass>> classes = objects_.gateway_classes;
        std::sort(classes.begin(), classes.end(), [](const auto& a, const auto& b) {
            return std::tie(a.object.metadata.name, a.origin.file, a.origin.line) <
                   std::tie(b.object.metadata.name, b.origin.file, b.origin.line);
        });
        for (const Sourced<GatewayClass>& gateway_class : classes) {
            const ObjectMeta& metadata = gateway_class.object.metadata;
            if (!is_our_class(metadata.name) || !done.insert(metadata.name).second) continue;
            out_.statuses.gateway_classes.push_back(GatewayClassStatus{
                metadata.name,
                {condition("Accepted", true, "Accepted", "served by passgate", metadata.generation)}});
        }
    }

    // -- Gateways ------------------------------------------------------------------------------

    void translate_gateways() {
        std::map<std::string, const Sourced<Gateway>*> seen;
        for (const Sourced<Gateway>& source : gateways_in_order_) {
            const Gateway& gateway = source.object;
            if (!is_our_class(gateway.gateway_class_name)) continue;
            const std::string name = ns_name(gateway.metadata);
            if (const auto [it, fresh] = seen.emplace(name, &source); !fresh) {
                error(source.origin, "Gateway", name, "",
                      "defined twice (first: " + it->second->origin.prefix() + "Gateway " + name + ")");
                continue;
            }
            GatewayState& state = gateways_.emplace_back();
            state.source = &source;
            state.invalid = check_gateway(source);
            if (!state.invalid.empty()) continue;
            // One at a time: each listener's conflicts are checked against those before it,
            // this Gateway's included.
            for (std::size_t i = 0; i < gateway.listeners.size(); ++i) {
                ListenerState read = read_listener(source, i);
                gateways_.back().listeners.push_back(std::move(read));
            }
        }
    }

    // Errors of a Gateway on its own (any one leaves it out); the first one's message.
    std::string check_gateway(const Sourced<Gateway>& source) {
        const Gateway& gateway = source.object;
        const std::string name = ns_name(gateway.metadata);
        std::string first;
        const auto fail = [&](const std::string& field, const std::string& message) {
            error(source.origin, "Gateway", name, field, message);
            if (first.empty()) first = field + ": " + message;
        };
        std::set<std::string> listener_names;
        for (std::size_t i = 0; i < gateway.listeners.size(); ++i) {
            const GatewayListener& listener = gateway.listeners[i];
            const std::string field = "spec.listeners[" + std::to_string(i) + "]";
            if (listener.name.empty()) fail(field + ".name", "required");
            if (!listener_names.insert(listener.name).second) {
                fail(field + ".name", quote(listener.name) + " is used by another listener of this Gateway");
            }
            if (listener.port == 0) fail(field + ".port", "must be 1..65535");
            if (listener.hostname) {
                const std::string problem = config::validate_hostname_pattern(config::ascii_lower(*listener.hostname));
                if (!problem.empty()) {
                    fail(field + ".hostname", "invalid hostname " + quote(*listener.hostname) + ": " + problem);
                }
            }
        }
        return first;
    }

    ListenerState read_listener(const Sourced<Gateway>& source, std::size_t index) {
        const Gateway& gateway = source.object;
        const GatewayListener& listener = gateway.listeners[index];
        ListenerState state;
        state.field = "spec.listeners[" + std::to_string(index) + "]";
        state.spec = &listener;
        state.name = ns_name(gateway.metadata) + "/" + listener.name;
        if (listener.hostname) state.hostname = config::ascii_lower(*listener.hostname);
        if (listener.protocol != "TLS") {
            state.not_accepted_reason = "UnsupportedProtocol";
            state.not_accepted_message = "protocol " + listener.protocol +
                                         " is not served by passgate (TLS with tls.mode Passthrough only)";
            return state;
        }
        if (listener.tls_mode.value_or("Terminate") != "Passthrough") {
            state.not_accepted_reason = "UnsupportedValue";
            state.not_accepted_message = "tls.mode " + listener.tls_mode.value_or("Terminate") +
                                         " is not supported: passgate passes TLS through (tls.mode Passthrough)";
            return state;
        }
        state.passthrough = true;
        read_kinds(listener, state);
        state.address = listen_address(base_.gateway_api.listen_address, listener.port);
        if (!state.address) {
            // [gateway_api] listen_address is validated with the TOML; this is a safety net.
            state.not_accepted_reason = "PortUnavailable";
            state.not_accepted_message = "listen_address " + quote(base_.gateway_api.listen_address) +
                                         " is not an IP address";
            error(source.origin, "Gateway", ns_name(gateway.metadata), state.field, state.not_accepted_message);
            return state;
        }
        check_conflicts(source, state);
        return state;
    }

    static void read_kinds(const GatewayListener& listener, ListenerState& state) {
        const std::vector<RouteGroupKind>& kinds = listener.allowed_routes.kinds;
        if (kinds.empty()) {
            state.supported_kinds.push_back(RouteGroupKind{kGroup, kTLSRouteKind});
            return;
        }
        std::vector<std::string> unsupported;
        for (const RouteGroupKind& kind : kinds) {
            if (is_tls_route_kind(kind)) {
                if (state.supported_kinds.empty()) state.supported_kinds.push_back(kind);
            } else {
                unsupported.push_back((kind.group.empty() ? "core" : kind.group) + "/" + kind.kind);
            }
        }
        if (!unsupported.empty()) {
            state.invalid_kinds_message = "route kinds not supported on a TLS Passthrough listener: " +
                                          join(unsupported, ", ") + " (TLSRoute only)";
        }
    }

    // Against the TOML's listeners and admin address (an error as well) and the Gateway
    // listeners programmed before this one.
    void check_conflicts(const Sourced<Gateway>& source, ListenerState& state) {
        const std::string gateway_name = ns_name(source.object.metadata);
        const auto conflict = [&](std::string reason, std::string message) {
            state.not_accepted_reason = "PortUnavailable";
            state.not_accepted_message = message;
            state.conflict_reason = std::move(reason);
            state.conflict_message = std::move(message);
        };
        for (const config::Listener& toml : base_.listeners) {
            if (!addresses_overlap(toml.address, *state.address)) continue;
            const std::string message = "address " + state.address->to_string() + " overlaps " +
                                        toml.address.to_string() + " of [[listener]] " + quote(toml.name) +
                                        " at " + base_.source + ":" + std::to_string(toml.line);
            error(source.origin, "Gateway", gateway_name, state.field + ".port", message);
            conflict("PortUnavailable", message);
            return;
        }
        if (addresses_overlap(base_.admin.address, *state.address)) {
            const std::string message = "address " + state.address->to_string() +
                                        " overlaps the admin address " + base_.admin.address.to_string() +
                                        " (" + base_.source + ")";
            error(source.origin, "Gateway", gateway_name, state.field + ".port", message);
            conflict("PortUnavailable", message);
            return;
        }
        const auto check_against = [&](const ListenerState& earlier) {
            if (!earlier.programmed() || !addresses_overlap(*earlier.address, *state.address)) return false;
            const bool same_hostname = earlier.hostname == state.hostname;
            conflict(same_hostname ? "HostnameConflict" : "PortUnavailable",
                     "port " + std::to_string(state.spec->port) + " is already used by listener " +
                         earlier.name + (same_hostname ? " with the same hostname" : "") +
                         " (passgate binds one socket per listener)");
            return true;
        };
        for (const GatewayState& gateway : gateways_) {
            for (const ListenerState& earlier : gateway.listeners) {
                if (check_against(earlier)) return;
            }
        }
    }

    // -- TLSRoutes -----------------------------------------------------------------------------

    struct ResolvedBackends {
        std::vector<config::BackendRef> backends;
        std::vector<std::string> problems;  // "spec.rules[0].backendRefs[1]: BackendNotFound: ..."
        std::string first_reason;           // empty: all resolved
    };

    void translate_routes() {
        std::map<std::string, const Sourced<TLSRoute>*> seen;
        for (const Sourced<TLSRoute>& source : routes_in_order_) {
            const std::string name = ns_name(source.object.metadata);
            if (const auto [it, fresh] = seen.emplace(name, &source); !fresh) {
                error(source.origin, "TLSRoute", name, "",
                      "defined twice (first: " + it->second->origin.prefix() + "TLSRoute " + name + ")");
                continue;
            }
            translate_route(source);
        }
    }

    // Errors of a route on its own; the first one's message, empty when valid.
    std::string check_route(const Sourced<TLSRoute>& source, std::vector<std::string>& hostnames) {
        const TLSRoute& route = source.object;
        const std::string name = ns_name(route.metadata);
        std::string first;
        const auto fail = [&](const std::string& field, const std::string& message) {
            error(source.origin, "TLSRoute", name, field, message);
            if (first.empty()) first = field + ": " + message;
        };
        for (std::size_t i = 0; i < route.hostnames.size(); ++i) {
            const std::string hostname = config::ascii_lower(route.hostnames[i]);
            const std::string problem = config::validate_hostname_pattern(hostname);
            if (!problem.empty()) {
                fail("spec.hostnames[" + std::to_string(i) + "]",
                     "invalid hostname " + quote(route.hostnames[i]) + ": " + problem);
            } else {
                hostnames.push_back(hostname);
            }
        }
        bool any_backend = false;
        for (std::size_t r = 0; r < route.rules.size(); ++r) {
            const auto& refs = route.rules[r].backend_refs;
            for (std::size_t b = 0; b < refs.size(); ++b) {
                any_backend = true;
                if (refs[b].group.empty() && refs[b].kind == "Service" && !refs[b].port) {
                    fail(backend_field(r, b) + ".port", "required for a Service");
                }
            }
        }
        if (!any_backend) fail("spec.rules", "at least one backendRef is required");
        return first;
    }

    static std::string backend_field(std::size_t rule, std::size_t backend) {
        return "spec.rules[" + std::to_string(rule) + "].backendRefs[" + std::to_string(backend) + "]";
    }

    GatewayState* find_gateway(const std::string& ns, const std::string& name) {
        for (GatewayState& gateway : gateways_) {
            if (gateway.gateway().metadata.namespace_name == ns && gateway.gateway().metadata.name == name) {
                return &gateway;
            }
        }
        return nullptr;
    }
    bool gateway_exists(const std::string& ns, const std::string& name) const {
        return std::any_of(gateways_in_order_.begin(), gateways_in_order_.end(), [&](const auto& g) {
            return g.object.metadata.namespace_name == ns && g.object.metadata.name == name;
        });
    }

    bool namespace_allowed(const GatewayState& gateway, const ListenerState& listener,
                           const std::string& route_ns) const {
        const AllowedRoutes& allowed = listener.spec->allowed_routes;
        switch (allowed.from) {
            case AllowedRoutes::From::same: return route_ns == gateway.gateway().metadata.namespace_name;
            case AllowedRoutes::From::all: return true;
            case AllowedRoutes::From::selector: return selector_matches(allowed.selector, labels_of_namespace(route_ns));
        }
        return false;
    }

    void translate_route(const Sourced<TLSRoute>& source) {
        const TLSRoute& route = source.object;
        const std::string name = ns_name(route.metadata);
        const std::int64_t generation = route.metadata.generation;
        std::vector<std::string> hostnames;
        const std::string invalid = check_route(source, hostnames);
        const ResolvedBackends resolved = resolve_backends(source);

        TLSRouteStatus status{route.metadata.namespace_name, route.metadata.name, {}};
        std::vector<ListenerState*> attached;  // over all parentRefs, Accepted there
        for (std::size_t i = 0; i < route.parent_refs.size(); ++i) {
            ParentReference ref = route.parent_refs[i];
            if (ref.group != kGroup || ref.kind != "Gateway") continue;  // not a parent of ours
            if (!ref.namespace_name) ref.namespace_name = route.metadata.namespace_name;
            const std::string parent = "parentRef " + std::to_string(i) + " (Gateway " + *ref.namespace_name +
                                       "/" + ref.name + ")";
            GatewayState* gateway = find_gateway(*ref.namespace_name, ref.name);
            if (gateway == nullptr) {
                if (!objects_.complete && !gateway_exists(*ref.namespace_name, ref.name)) {
                    warn(source.origin, "TLSRoute " + name, parent + ": no such Gateway in the manifests");
                }
                continue;  // another class's Gateway, or none: not ours to report on
            }
            RouteParentStatus parent_status{ref, {}};
            Condition accepted;
            if (!invalid.empty()) {
                accepted = condition("Accepted", false, "UnsupportedValue", invalid, generation);
            } else {
                accepted = attach(*gateway, ref, route.metadata.namespace_name, hostnames, attached, generation);
            }
            if (!accepted.status) {
                warn(source.origin, "TLSRoute " + name, parent + ": " + accepted.reason + ": " + accepted.message);
            }
            parent_status.conditions.push_back(std::move(accepted));
            parent_status.conditions.push_back(
                resolved.first_reason.empty()
                    ? condition("ResolvedRefs", true, "ResolvedRefs", "every backendRef resolved", generation)
                    : condition("ResolvedRefs", false, resolved.first_reason, join(resolved.problems, "; "),
                                generation));
            status.parents.push_back(std::move(parent_status));
        }
        if (status.parents.empty()) return;  // no parent of ours: not ours at all
        for (const std::string& problem : resolved.problems) warn(source.origin, "TLSRoute " + name, problem);
        out_.statuses.tls_routes.push_back(std::move(status));

        // The route serves on the programmed listeners it attached to, in listener order.
        std::sort(attached.begin(), attached.end());
        attached.erase(std::unique(attached.begin(), attached.end()), attached.end());
        for (ListenerState* listener : attached) ++listener->attached_routes;
        config::Route out;
        out.name = name;
        for (const GatewayState& gateway : gateways_) {
            for (const ListenerState& listener : gateway.listeners) {
                if (listener.programmed() &&
                    std::find(attached.begin(), attached.end(), &listener) != attached.end()) {
                    out.listeners.push_back(listener.name);
                }
            }
        }
        if (out.listeners.empty()) return;
        out.hostnames = std::move(hostnames);
        out.backends = resolved.backends;
        out.origin = source.origin.prefix() + "TLSRoute " + name;
        use_services(source, out.backends);
        out_.routes.push_back(std::move(out));
    }

    // One parentRef to one of our Gateways: Accepted, and the listeners it attaches to.
    Condition attach(GatewayState& gateway, const ParentReference& ref, const std::string& route_ns,
                     const std::vector<std::string>& hostnames, std::vector<ListenerState*>& attached,
                     std::int64_t generation) {
        const std::string gateway_name = ns_name(gateway.gateway().metadata);
        if (!gateway.invalid.empty()) {
            return condition("Accepted", false, "NoMatchingParent",
                             "Gateway " + gateway_name + " is invalid: " + gateway.invalid, generation);
        }
        std::vector<ListenerState*> named;  // by sectionName and port
        for (ListenerState& listener : gateway.listeners) {
            if (ref.section_name && listener.spec->name != *ref.section_name) continue;
            if (ref.port && listener.spec->port != *ref.port) continue;
            named.push_back(&listener);
        }
        if (named.empty()) {
            std::string what = ref.section_name ? "sectionName " + quote(*ref.section_name) : std::string();
            if (ref.port) what += (what.empty() ? "" : " and ") + std::string("port ") + std::to_string(*ref.port);
            return condition("Accepted", false, "NoMatchingParent",
                             "Gateway " + gateway_name + " has no listener with " + what, generation);
        }
        std::vector<ListenerState*> allowing;
        for (ListenerState* listener : named) {
            if (listener->allows_tls_routes() && namespace_allowed(gateway, *listener, route_ns)) {
                allowing.push_back(listener);
            }
        }
        if (allowing.empty()) {
            return condition("Accepted", false, "NotAllowedByListeners",
                             "no listener of Gateway " + gateway_name +
                                 " that the parentRef names allows TLSRoutes from namespace " + route_ns,
                             generation);
        }
        std::size_t matched = 0;
        for (ListenerState* listener : allowing) {
            if (config::effective_hostnames(listener->hostname, hostnames).empty()) continue;
            attached.push_back(listener);
            ++matched;
        }
        if (matched == 0) {
            return condition("Accepted", false, "NoMatchingListenerHostname",
                             "no hostname of the route intersects the hostname of a listener of Gateway " +
                                 gateway_name,
                             generation);
        }
        return condition("Accepted", true, "Accepted", "attached to Gateway " + gateway_name, generation);
    }

    // -- backendRefs ---------------------------------------------------------------------------

    const kubernetes::Service* find_service(const std::string& ns, const std::string& name) const {
        for (const auto& service : services_) {
            if (service.object.metadata.namespace_name == ns && service.object.metadata.name == name) {
                return &service.object;
            }
        }
        return nullptr;
    }

    bool reference_permitted(const std::string& route_ns, const std::string& target_ns,
                             const std::string& service) const {
        for (const auto& grant : grants_) {
            if (grant.object.metadata.namespace_name != target_ns) continue;
            const bool from = std::any_of(grant.object.from.begin(), grant.object.from.end(), [&](const auto& f) {
                return f.group == kGroup && f.kind == kTLSRouteKind && f.namespace_name == route_ns;
            });
            const bool to = std::any_of(grant.object.to.begin(), grant.object.to.end(), [&](const auto& t) {
                return t.group.empty() && t.kind == "Service" && (!t.name || *t.name == service);
            });
            if (from && to) return true;
        }
        return false;
    }

    // One backendRef: the service name, or why it is invalid ("Reason: message").
    std::pair<std::string, std::string> resolve(const std::string& route_ns, const BackendReference& ref) const {
        const std::string ns = ref.namespace_name.value_or(route_ns);
        if (!ref.group.empty() || ref.kind != "Service") {
            return {"InvalidKind", (ref.group.empty() ? "core" : ref.group) + "/" + ref.kind + " " + ns + "/" +
                                       ref.name + " is not a core Service"};
        }
        const std::string what = "Service " + ns + "/" + ref.name + (ref.port ? " port " + std::to_string(*ref.port) : "");
        if (ns != route_ns && !reference_permitted(route_ns, ns, ref.name)) {
            return {"RefNotPermitted", what + ": no ReferenceGrant in namespace " + ns +
                                           " lets TLSRoutes of namespace " + route_ns + " refer to it"};
        }
        if (!ref.port) return {"BackendNotFound", what + ": no port"};
        const kubernetes::Service* service = find_service(ns, ref.name);
        if (service != nullptr) {
            const bool has_port = std::any_of(service->ports.begin(), service->ports.end(),
                                              [&](const kubernetes::ServicePort& p) { return p.port == *ref.port; });
            if (!has_port) return {"BackendNotFound", what + ": the Service has no such port"};
        } else if (objects_.complete) {
            return {"BackendNotFound", what + ": no such Service"};
        }
        const std::string service_name = ns + "/" + ref.name + ":" + std::to_string(*ref.port);
        if (base_.find_service(service_name) != nullptr || base_.kubernetes.configured) return {service_name, ""};
        return {"BackendNotFound", what + ": no [[service]] " + quote(service_name) +
                                       " in the TOML and no [kubernetes] to discover its endpoints"};
    }

    ResolvedBackends resolve_backends(const Sourced<TLSRoute>& source) const {
        ResolvedBackends out;
        const TLSRoute& route = source.object;
        for (std::size_t r = 0; r < route.rules.size(); ++r) {
            const auto& refs = route.rules[r].backend_refs;
            for (std::size_t b = 0; b < refs.size(); ++b) {
                auto [first, second] = resolve(route.metadata.namespace_name, refs[b]);
                config::BackendRef backend;
                backend.weight = refs[b].weight;
                if (second.empty()) {
                    backend.service = std::move(first);
                } else {
                    backend.invalid = first + ": " + second;
                    out.problems.push_back(backend_field(r, b) + ": " + backend.invalid);
                    if (out.first_reason.empty()) out.first_reason = first;
                }
                out.backends.push_back(std::move(backend));
            }
        }
        return out;
    }

    // Services for the valid backends that the TOML does not define: Kubernetes discovery.
    void use_services(const Sourced<TLSRoute>& source, const std::vector<config::BackendRef>& backends) {
        const TLSRoute& route = source.object;
        std::size_t index = 0;
        for (const auto& rule : route.rules) {
            for (const BackendReference& ref : rule.backend_refs) {
                const config::BackendRef& backend = backends[index++];
                if (backend.service.empty() || base_.find_service(backend.service) != nullptr ||
                    made_services_.count(backend.service) != 0) {
                    continue;
                }
                config::Service service;
                service.name = backend.service;
                service.discovery = config::Discovery::kubernetes;
                service.kubernetes = config::KubernetesBackend{
                    ref.namespace_name.value_or(route.metadata.namespace_name), ref.name, *ref.port};
                service.origin = source.origin.prefix() + "TLSRoute " + ns_name(route.metadata) +
                                 " backendRef " + backend.service;
                made_services_.emplace(backend.service, std::move(service));
            }
        }
    }

    void finish_services() {
        for (auto& [name, service] : made_services_) out_.services.push_back(std::move(service));
    }

    // -- Gateway status and listeners ----------------------------------------------------------

    std::vector<std::string> status_addresses() const {
        const config::GatewayApi& api = base_.gateway_api;
        if (api.status_address) return {*api.status_address};
        if (is_wildcard_ip(api.listen_address)) return {};
        return {api.listen_address};
    }

    void write_gateway_statuses() {
        std::vector<GatewayStatus> statuses;
        for (const GatewayState& gateway : gateways_) {
            const ObjectMeta& metadata = gateway.gateway().metadata;
            const std::int64_t generation = metadata.generation;
            GatewayStatus status{metadata.namespace_name, metadata.name, {}, {}, {}};
            if (!gateway.invalid.empty()) {
                status.conditions.push_back(condition("Accepted", false, "Invalid", gateway.invalid, generation));
                status.conditions.push_back(condition("Programmed", false, "Invalid", gateway.invalid, generation));
                statuses.push_back(std::move(status));
                continue;
            }
            std::size_t accepted = 0;
            std::size_t programmed = 0;
            for (const ListenerState& listener : gateway.listeners) {
                if (listener.not_accepted_reason.empty()) ++accepted;
                if (listener.programmed()) {
                    ++programmed;
                    config::Listener out;
                    out.name = listener.name;
                    out.address = *listener.address;
                    out.hostname = listener.hostname;
                    out.origin = gateway.source->origin.prefix() + "Gateway " + ns_name(metadata) +
                                 " listener " + listener.spec->name;
                    out_.listeners.push_back(std::move(out));
                } else {
                    warn(gateway.source->origin, "Gateway " + ns_name(metadata),
                         "listener " + listener.spec->name + ": " + listener.not_accepted_reason + ": " +
                             listener.not_accepted_message);
                }
                status.listeners.push_back(listener_status(listener, generation));
            }
            const std::size_t total = gateway.listeners.size();
            status.conditions.push_back(
                accepted == total ? condition("Accepted", true, "Accepted", "", generation)
                                  : condition("Accepted", accepted > 0, "ListenersNotValid",
                                              std::to_string(total - accepted) + " of " + std::to_string(total) +
                                                  " listeners not accepted",
                                              generation));
            status.conditions.push_back(
                programmed > 0 ? condition("Programmed", true, "Programmed", "", generation)
                               : condition("Programmed", false, "Invalid", "no listener programmed", generation));
            if (programmed > 0) status.addresses = status_addresses();
            statuses.push_back(std::move(status));
        }
        std::sort(statuses.begin(), statuses.end(), [](const GatewayStatus& a, const GatewayStatus& b) {
            return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
        });
        out_.statuses.gateways = std::move(statuses);
        std::sort(out_.statuses.tls_routes.begin(), out_.statuses.tls_routes.end(),
                  [](const TLSRouteStatus& a, const TLSRouteStatus& b) {
                      return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
                  });
    }

    static ListenerStatus listener_status(const ListenerState& listener, std::int64_t generation) {
        ListenerStatus status;
        status.name = listener.spec->name;
        status.attached_routes = listener.attached_routes;
        status.supported_kinds = listener.supported_kinds;
        auto& c = status.conditions;
        if (listener.not_accepted_reason.empty()) {
            c.push_back(condition("Accepted", true, "Accepted", "", generation));
            c.push_back(condition("Programmed", true, "Programmed", "", generation));
        } else {
            c.push_back(condition("Accepted", false, listener.not_accepted_reason, listener.not_accepted_message,
                                  generation));
            c.push_back(condition("Programmed", false, "Invalid", listener.not_accepted_message, generation));
        }
        c.push_back(listener.invalid_kinds_message.empty()
                        ? condition("ResolvedRefs", true, "ResolvedRefs", "", generation)
                        : condition("ResolvedRefs", false, "InvalidRouteKinds", listener.invalid_kinds_message,
                                    generation));
        if (!listener.conflict_reason.empty()) {
            c.push_back(condition("Conflicted", true, listener.conflict_reason, listener.conflict_message,
                                  generation));
        }
        return status;
    }
};

}  // namespace

Translation translate(const config::Config& base, const ObjectSet& objects) {
    return Translator(base, objects).run();
}

// ---------------------------------------------------------------------------------------------
// Merge.

namespace {

std::string toml_place(const config::Config& base, int line) { return base.source + ":" + std::to_string(line); }

}  // namespace

config::Config merge_gateway_config(config::Config base, const Translation& translation) {
    if (!translation.errors.empty()) throw config::ConfigError(join(translation.errors, "\n"));
    std::vector<std::string> problems;
    for (const config::Listener& listener : translation.listeners) {
        for (const config::Listener& toml : base.listeners) {
            if (toml.name == listener.name) {
                problems.push_back(listener.origin + ": listener name " + quote(listener.name) +
                                   " is also the [[listener]] at " + toml_place(base, toml.line));
            } else if (addresses_overlap(toml.address, listener.address)) {
                problems.push_back(listener.origin + ": address " + listener.address.to_string() +
                                   " overlaps " + toml.address.to_string() + " of [[listener]] " +
                                   quote(toml.name) + " at " + toml_place(base, toml.line));
            }
        }
        if (addresses_overlap(base.admin.address, listener.address)) {
            problems.push_back(listener.origin + ": address " + listener.address.to_string() +
                               " overlaps the admin address " + base.admin.address.to_string());
        }
    }
    for (const config::Route& route : translation.routes) {
        if (const config::Route* toml = base.find_route(route.name)) {
            problems.push_back(route.origin + ": route name " + quote(route.name) +
                               " is also the [[route]] at " + toml_place(base, toml->line));
        }
    }
    for (const config::Service& service : translation.services) {
        if (const config::Service* toml = base.find_service(service.name)) {
            problems.push_back(service.origin + ": service name " + quote(service.name) +
                               " is also the [[service]] at " + toml_place(base, toml->line));
        }
    }
    if (!problems.empty()) throw config::ConfigError(join(problems, "\n"));
    base.listeners.insert(base.listeners.end(), translation.listeners.begin(), translation.listeners.end());
    base.routes.insert(base.routes.end(), translation.routes.begin(), translation.routes.end());
    base.services.insert(base.services.end(), translation.services.begin(), translation.services.end());
    // The TOML's warnings again, now that the objects' routes may use its services and
    // listeners; then the translation's own.
    base.warnings = config::config_warnings(base);
    base.warnings.insert(base.warnings.end(), translation.warnings.begin(), translation.warnings.end());
    return base;
}

}  // namespace passgate::gateway_api
