#include "src/control/check.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

using passgate::config::Config;
using test_config::listener;
using test_config::route;

TEST_CASE("--check summary: a discovered service names its source", "[check]") {
    const Config config = test_config::make_config(
        listener("l", 6443) +
            route("r", {"l"}, {"app.example.com"}, {},
                  "[{ service = \"by-dns\" }, { service = \"by-srv\" }, { service = \"by-file\" }]") +
            "[[service]]\nname = \"by-dns\"\ndns = \"app.internal\"\nport = 8443\n"
            "[[service]]\nname = \"by-srv\"\ndns_srv = \"_https._tcp.app.internal\"\n"
            "[[service]]\nname = \"by-file\"\nendpoints_file = \"/etc/passgate/pool.endpoints\"\n",
        "check_test.toml");
    const std::string described = passgate::describe_config(config);
    INFO(described);
    CHECK(described.find("  by-dns: dns app.internal port 8443\n") != std::string::npos);
    CHECK(described.find("  by-file: endpoints_file /etc/passgate/pool.endpoints\n") != std::string::npos);
}

namespace {
Config kubernetes_config(const std::string& table, const std::string& source = "check_test.toml") {
    return test_config::make_config(
        listener("l", 6443) + route("r", {"l"}, {"passthrough.example.com"}, {}, "[{ service = \"echo\" }]") +
            "[[service]]\nname = \"echo\"\n"
            "kubernetes = { namespace = \"default\", service = \"passthrough-echoserver\", port = 443 }\n" +
            table,
        source);
}
}  // namespace

TEST_CASE("--check summary: a kubernetes service names the Service and its port", "[check][kubernetes]") {
    const std::string described =
        passgate::describe_config(kubernetes_config("[kubernetes]\napi_server = \"https://10.0.0.1:6443\"\n"));
    INFO(described);
    CHECK(described.find("  echo: kubernetes default/passthrough-echoserver port 443\n") != std::string::npos);
}

TEST_CASE("--check of [kubernetes]: credentials loaded without the API server, or the error with the file",
          "[check][kubernetes]") {
    std::ostringstream out;
    std::ostringstream errors;
    // Nothing to read (no CA, no token): loads, and says the server was not asked.
    CHECK(passgate::check_kubernetes(kubernetes_config("[kubernetes]\napi_server = \"https://10.0.0.1:6443\"\n"),
                                     out, errors));
    CHECK(out.str() == "kubernetes: api_server https://10.0.0.1:6443: credentials OK (the API server was not "
                       "contacted)\n");
    CHECK(errors.str().empty());

    out.str("");
    const Config missing = kubernetes_config("[kubernetes]\nkubeconfig = \"/nonexistent/passgate-kubeconfig\"\n");
    CHECK_FALSE(passgate::check_kubernetes(missing, out, errors));
    CHECK(out.str().empty());
    CHECK(errors.str() == missing.source + ":" + std::to_string(missing.kubernetes.line) +
                              ": kubernetes: kubeconfig /nonexistent/passgate-kubeconfig: cannot read: No such file "
                              "or directory\n");

    // Without [kubernetes], nothing is said.
    out.str("");
    errors.str("");
    const Config none = test_config::make_config(listener("l", 6443) + route("r", {"l"}, {"a.example.com"}) +
                                                     "",
                                                 "check_test.toml");
    CHECK(passgate::check_kubernetes(none, out, errors));
    CHECK(out.str().empty());
    CHECK(errors.str().empty());
}
