#pragma once
// The Gateway API objects one translation reads: every object of the kinds passgate uses, with
// where each came from. Made by the manifest loader (manifests.h) or the watch (gateway_watch.h).

#include "src/wire/gateway_objects.h"

#include <string>
#include <vector>

namespace passgate::gateway_api {

// Where an object came from: a manifest document ("gateway.yaml", its line) or the API server
// (file empty). Used in messages and in the origin of what the translation makes.
struct Origin {
    std::string file;
    int line = 0;
    // "gateway.yaml:12: " or "" (API server): the prefix of an error or warning about it.
    std::string prefix() const { return file.empty() ? "" : file + ":" + std::to_string(line) + ": "; }
};

template <typename T>
struct Sourced {
    T object;
    Origin origin;
};

struct ObjectSet {
    std::vector<Sourced<GatewayClass>> gateway_classes;
    std::vector<Sourced<Gateway>> gateways;
    std::vector<Sourced<TLSRoute>> tls_routes;
    std::vector<Sourced<ReferenceGrant>> reference_grants;
    std::vector<Sourced<kubernetes::Service>> services;
    std::vector<Sourced<Namespace>> namespaces;
    // true (watch mode): `services` and `namespaces` are every one that exists, so a backendRef
    // to a Service not in it is BackendNotFound, and a namespace not in it has no labels. false
    // (manifests): they hold only what the files carry; a Service not among them is looked for in
    // the TOML's [[service]] tables, then left to Kubernetes discovery when [kubernetes] is set.
    bool complete = false;
};

}  // namespace passgate::gateway_api
