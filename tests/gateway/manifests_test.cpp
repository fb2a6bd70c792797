#include "src/gateway/manifests.h"

#include "config/config.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace passgate::gateway_api;
using integration::TempDir;

namespace {

// The guide's manifest (examples/kubernetes/tls-passthrough.yaml): Service, Deployment and the
// v1alpha2 TLSRoute, no namespace written.
constexpr const char* kGuideManifest = R"yaml(apiVersion: v1
kind: Service
metadata:
  name: passthrough-echoserver
  labels:
    run: passthrough-echoserver
spec:
  ports:
    - port: 443
      targetPort: 8443
      protocol: TCP
  selector:
    run: passthrough-echoserver
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: passthrough-echoserver
spec:
  replicas: 1
  selector:
    matchLabels:
      run: passthrough-echoserver
  template:
    metadata:
      labels:
        run: passthrough-echoserver
    spec:
      containers:
        - name: passthrough-echoserver
          image: gcr.io/k8s-staging-ingressconformance/echoserver:v20221109-7ee2f3e
          ports:
            - containerPort: 8443
          env:
            - name: HTTPS_PORT
              value: "8443"
            - name: TLS_SERVER_CERT
              value: /etc/server-certs/tls.crt
            - name: TLS_SERVER_PRIVKEY
              value: /etc/server-certs/tls.key
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
          volumeMounts:
            - name: server-certs
              mountPath: /etc/server-certs
              readOnly: true
      volumes:
        - name: server-certs
          secret:
            secretName: server-certs
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata:
  name: tlsroute
spec:
  parentRefs:
    - name: eg
  hostnames:
    - "passthrough.example.com"
  rules:
    - backendRefs:
        - group: ""
          kind: Service
          name: passthrough-echoserver
          port: 443
          weight: 1
)yaml";

// The quickstart's GatewayClass and Gateway `eg`, with the listener the guide's patch appends.
constexpr const char* kGuideGateway = R"yaml(apiVersion: gateway.networking.k8s.io/v1beta1
kind: GatewayClass
metadata:
  name: eg
spec:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
  name: eg
spec:
  gatewayClassName: eg
  listeners:
    - name: http
      protocol: HTTP
      port: 80
    - name: tls
      protocol: TLS
      hostname: passthrough.example.com
      tls:
        mode: Passthrough
      port: 6443
)yaml";

void write(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

// The message of the ManifestError a load throws.
std::string load_error(const std::vector<std::string>& paths) {
    try {
        load_manifests(paths);
    } catch (const ManifestError& error) {
        return error.what();
    }
    FAIL("load_manifests did not throw");
    return {};
}

}  // namespace

TEST_CASE("manifests: the guide's objects from two files", "[manifests]") {
    TempDir dir;
    write(dir.file("tls-passthrough.yaml"), kGuideManifest);
    write(dir.file("quickstart.yaml"), kGuideGateway);
    const LoadedManifests loaded =
        load_manifests({dir.file("quickstart.yaml"), dir.file("tls-passthrough.yaml")});
    CHECK(loaded.files == std::vector<std::string>{dir.file("quickstart.yaml"), dir.file("tls-passthrough.yaml")});
    CHECK(loaded.ignored == 1);  // the Deployment
    CHECK_FALSE(loaded.objects.complete);

    REQUIRE(loaded.objects.gateway_classes.size() == 1);
    const auto& gateway_class = loaded.objects.gateway_classes[0];
    CHECK(gateway_class.object.metadata.name == "eg");
    CHECK(gateway_class.object.metadata.namespace_name.empty());  // cluster-scoped
    CHECK(gateway_class.object.controller_name == "gateway.envoyproxy.io/gatewayclass-controller");
    CHECK(gateway_class.origin.file == dir.file("quickstart.yaml"));
    CHECK(gateway_class.origin.line == 1);

    REQUIRE(loaded.objects.gateways.size() == 1);
    const auto& gateway = loaded.objects.gateways[0];
    CHECK(gateway.origin.line == 8);
    CHECK(gateway.object.metadata.namespace_name == "default");
    CHECK(gateway.object.gateway_class_name == "eg");
    REQUIRE(gateway.object.listeners.size() == 2);
    CHECK(gateway.object.listeners[1].name == "tls");
    CHECK(gateway.object.listeners[1].protocol == "TLS");
    CHECK(gateway.object.listeners[1].port == 6443);
    CHECK(gateway.object.listeners[1].hostname == "passthrough.example.com");
    CHECK(gateway.object.listeners[1].tls_mode == "Passthrough");

    REQUIRE(loaded.objects.tls_routes.size() == 1);
    const auto& route = loaded.objects.tls_routes[0];
    CHECK(route.origin.file == dir.file("tls-passthrough.yaml"));
    CHECK(route.origin.line == 58);
    CHECK(route.object.metadata.namespace_name == "default");
    CHECK(route.object.metadata.name == "tlsroute");
    CHECK(route.object.parent_refs.at(0).name == "eg");
    CHECK(route.object.hostnames == std::vector<std::string>{"passthrough.example.com"});
    const BackendReference& backend = route.object.rules.at(0).backend_refs.at(0);
    CHECK(backend.kind == "Service");
    CHECK(backend.group.empty());
    CHECK(backend.name == "passthrough-echoserver");
    CHECK(backend.port == 443);
    CHECK(backend.weight == 1);

    REQUIRE(loaded.objects.services.size() == 1);
    const auto& service = loaded.objects.services[0];
    CHECK(service.origin.line == 1);
    CHECK(service.object.metadata.namespace_name == "default");
    CHECK(service.object.metadata.name == "passthrough-echoserver");
    REQUIRE(service.object.ports.size() == 1);
    CHECK(service.object.ports[0].port == 443);
    CHECK(std::get<std::uint16_t>(service.object.ports[0].target_port) == 8443);
}

TEST_CASE("manifests: a folder gives its .yaml, .yml and .json files in name order, not recursively", "[manifests]") {
    TempDir dir;
    const std::string folder = dir.file("gateway");
    std::filesystem::create_directory(folder);
    write(folder + "/b-route.yml", kGuideManifest);
    write(folder + "/a-gateway.yaml", kGuideGateway);
    write(folder + "/c-namespace.json",
          R"({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "a"}}})");
    write(folder + "/README.md", "not a manifest: {");
    write(folder + "/notes.yaml.bak", "not a manifest: {");
    std::filesystem::create_directory(folder + "/nested.yaml");
    write(folder + "/nested.yaml/inner.yaml", "not a manifest: {");
    const LoadedManifests loaded = load_manifests({folder});
    CHECK(loaded.files ==
          std::vector<std::string>{folder + "/a-gateway.yaml", folder + "/b-route.yml", folder + "/c-namespace.json"});
    CHECK(loaded.objects.gateways.size() == 1);
    CHECK(loaded.objects.tls_routes.size() == 1);
    REQUIRE(loaded.objects.namespaces.size() == 1);
    CHECK(loaded.objects.namespaces[0].object.metadata.name == "team-a");
    CHECK(loaded.objects.namespaces[0].object.metadata.labels.at("team") == "a");
    CHECK(loaded.objects.namespaces[0].origin.line == 1);
}

TEST_CASE("manifests: the hash changes with a file's bytes and with its path", "[manifests]") {
    TempDir dir;
    write(dir.file("a.yaml"), kGuideGateway);
    const std::string first = load_manifests({dir.file("a.yaml")}).hash;
    CHECK(first.size() == 16);
    CHECK(load_manifests({dir.file("a.yaml")}).hash == first);
    write(dir.file("a.yaml"), std::string(kGuideGateway) + "# a comment\n");
    const std::string changed = load_manifests({dir.file("a.yaml")}).hash;
    CHECK(changed != first);
    write(dir.file("b.yaml"), std::string(kGuideGateway) + "# a comment\n");
    CHECK(load_manifests({dir.file("b.yaml")}).hash != changed);
}

TEST_CASE("manifests: an invalid object is FILE:LINE: kind ns/name: field: message", "[manifests]") {
    TempDir dir;
    std::string gateway = kGuideGateway;
    gateway.replace(gateway.find("port: 6443"), 10, "port: 70000");
    write(dir.file("gateway.yaml"), gateway);
    CHECK(load_error({dir.file("gateway.yaml")}) ==
          dir.file("gateway.yaml") + ":23: Gateway default/eg: spec.listeners[1].port: must be 1..65535");

    std::string route = kGuideManifest;
    route.replace(route.find("networking.k8s.io/v1alpha2"), 26, "networking.k8s.io/v1alpha1");
    write(dir.file("route.yaml"), route);
    CHECK(load_error({dir.file("route.yaml")}) ==
          dir.file("route.yaml") + ":58: TLSRoute default/tlsroute: apiVersion: unsupported apiVersion "
                                   "gateway.networking.k8s.io/v1alpha1 for TLSRoute (v1alpha2, v1alpha3, v1)");

    write(dir.file("missing.yaml"), "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
                                    "metadata:\n  name: eg\n  namespace: infra\nspec:\n  listeners: []\n");
    CHECK(load_error({dir.file("missing.yaml")}) ==
          dir.file("missing.yaml") + ":7: Gateway infra/eg: spec.gatewayClassName: required");
}

TEST_CASE("manifests: bad YAML and an alias are FILE:LINE: YAML: message", "[manifests]") {
    TempDir dir;
    write(dir.file("bad.yaml"), "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a, b\n");
    const std::string bad = load_error({dir.file("bad.yaml")});
    CHECK(bad.rfind(dir.file("bad.yaml") + ":", 0) == 0);
    CHECK(bad.find(": YAML: ") != std::string::npos);

    std::string aliased = kGuideGateway;
    aliased.replace(aliased.find("    - name: http"), 16, "    - &first\n      name: http");
    aliased += "    - *first\n";
    write(dir.file("alias.yaml"), aliased);
    CHECK(load_error({dir.file("alias.yaml")}) ==
          dir.file("alias.yaml") + ":15: YAML: anchors (&name) are not supported");

    write(dir.file("dup.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n");
    CHECK(load_error({dir.file("dup.yaml")}) ==
          dir.file("dup.yaml") + ":5: YAML: duplicate key metadata.name (first at line 4)");
}

TEST_CASE("manifests: a Secret is skipped and nothing of it is quoted", "[manifests]") {
    TempDir dir;
    const std::string secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: server-certs\ntype: kubernetes.io/tls\n"
                               "data:\n  tls.key: c2VjcmV0LWtleS1ieXRlcw==\n  tls.crt: 12\n";
    write(dir.file("secret.yaml"), secret + "---\n" + kGuideGateway);
    const LoadedManifests loaded = load_manifests({dir.file("secret.yaml")});
    CHECK(loaded.ignored == 1);
    CHECK(loaded.objects.gateways.size() == 1);
    // A Secret whose YAML is broken: the message names the line, never the bytes.
    write(dir.file("broken.yaml"), "apiVersion: v1\nkind: Secret\ndata:\n  tls.key: c2VjcmV0LWtleS1ieXRlcw==\n  - x\n");
    const std::string broken = load_error({dir.file("broken.yaml")});
    CHECK(broken == dir.file("broken.yaml") + ":5: YAML: end of map not found");
    // A Secret that is not even a valid object of its kind is still only skipped.
    write(dir.file("odd.yaml"), "apiVersion: v1\nkind: Secret\nmetadata: c2VjcmV0LWtleS1ieXRlcw==\n");
    CHECK(load_manifests({dir.file("odd.yaml")}).ignored == 1);
}

TEST_CASE("manifests: a missing path, a non-regular file, a file too big, an object twice", "[manifests]") {
    TempDir dir;
    CHECK(load_error({dir.file("absent.yaml")}) ==
          dir.file("absent.yaml") + ": cannot open: No such file or directory");
    REQUIRE(::mkfifo(dir.file("fifo.yaml").c_str(), 0600) == 0);
    CHECK(load_error({dir.file("fifo.yaml")}) == dir.file("fifo.yaml") + ": not a regular file");
    write(dir.file("big.yaml"), std::string(kMaxManifestFileBytes + 1, '#'));
    const std::string big = load_error({dir.file("big.yaml")});
    CHECK(big.rfind(dir.file("big.yaml") + ": ", 0) == 0);
    CHECK(big.find("larger than") != std::string::npos);

    write(dir.file("a.yaml"), kGuideGateway);
    write(dir.file("b.yaml"), std::string("# again\n") + kGuideGateway);
    CHECK(load_error({dir.file("a.yaml"), dir.file("b.yaml")}) ==
          dir.file("b.yaml") + ":2: GatewayClass eg: defined again (first at " + dir.file("a.yaml") + ":1)");
}

TEST_CASE("manifests: empty documents and comment-only files load as nothing", "[manifests]") {
    TempDir dir;
    write(dir.file("empty.yaml"), "# nothing yet\n---\n---\n");
    const LoadedManifests loaded = load_manifests({dir.file("empty.yaml")});
    CHECK(loaded.ignored == 0);
    CHECK(loaded.objects.gateways.empty());
    CHECK(loaded.files.size() == 1);
}
