// load_kubernetes_credentials against real kubeconfigs and files written here, with certificates
// and keys made by the openssl CLI: every mode ([kubernetes] kubeconfig, api_server, in_cluster),
// every way a kubeconfig gives a CA, token or client certificate, and the errors, which name the
// file and the field and never carry a token, key or certificate bytes.

#include "src/discovery/kubernetes_credentials.h"

#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using passgate::KubernetesCredentials;
using passgate::current_bearer_token;
using passgate::load_kubernetes_credentials;
using passgate::config::Kubernetes;

namespace {

constexpr const char* kToken = "tok-9f8e7d6c5b4a-SECRET";

// Certificates and keys, made once per run: a CA (two certificates, for a bundle), a client
// certificate and its key, and a second key that matches nothing.
const integration::TempDir& pki() {
    static const integration::TempDir dir;
    static const bool made = [] {
        const auto req = [&](const std::string& name) {
            const integration::RunResult result = integration::run(
                {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", dir.file(name + ".key"), "-out", dir.file(name + ".pem"), "-days", "2", "-subj",
                 "/CN=" + name},
                dir, "req-" + name);
            INFO(result.err);
            REQUIRE(result.status == 0);
        };
        req("ca");
        req("ca2");
        req("client");
        req("other");
        return true;
    }();
    REQUIRE(made);
    return dir;
}

std::string pem(const std::string& name) { return integration::read_file(pki().file(name)); }

std::string base64(const std::string& bytes) {
    static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                           (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
        for (int shift : {18, 12, 6, 0}) out.push_back(digits[(v >> shift) & 63]);
    }
    if (i + 1 == bytes.size()) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out += {digits[(v >> 18) & 63], digits[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == bytes.size()) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += {digits[(v >> 18) & 63], digits[(v >> 12) & 63], digits[(v >> 6) & 63], '='};
    }
    return out;
}

// A kubeconfig with two contexts: "edge" (current: cluster prod, user passgate) and "lab"
// (cluster lab, user labuser). `cluster` and `user` are the YAML lines under cluster:/user: of
// prod and passgate, indented by 4.
std::string kubeconfig(const std::string& cluster, const std::string& user,
                       const std::string& current = "edge") {
    return "apiVersion: v1\n"
           "kind: Config\n"
           "current-context: " + current + "\n"
           "clusters:\n"
           "- name: lab\n"
           "  cluster:\n"
           "    server: https://[::1]:7443\n"
           "    insecure-skip-tls-verify: true\n"
           "- name: prod\n"
           "  cluster:\n" + cluster +
           "contexts:\n"
           "- name: lab\n"
           "  context:\n"
           "    cluster: lab\n"
           "    user: labuser\n"
           "- name: edge\n"
           "  context:\n"
           "    cluster: prod\n"
           "    user: passgate\n"
           "    namespace: default\n"
           "users:\n"
           "- name: labuser\n"
           "  user:\n"
           "    token: lab-token\n"
           "- name: passgate\n"
           "  user:\n" + user;
}

const std::string kProdCluster = "    server: https://127.0.0.1:6443\n    certificate-authority: ca.pem\n";
const std::string kTokenUser = std::string("    token: ") + kToken + "\n";

// A kubeconfig written to dir/kubeconfig (pki files copied beside it, so relative paths work).
struct Fixture {
    integration::TempDir dir;
    Fixture() {
        for (const char* name : {"ca.pem", "ca2.pem", "client.pem", "client.key", "other.pem", "other.key"})
            integration::write_file(dir.file(name), pem(name));
    }
    Kubernetes settings(const std::string& text, const std::string& context = "") const {
        integration::write_file(dir.file("kubeconfig"), text);
        Kubernetes kubernetes;
        kubernetes.configured = true;
        kubernetes.kubeconfig = dir.file("kubeconfig");
        kubernetes.context = context;
        return kubernetes;
    }
};

std::string error_of(const Kubernetes& settings) {
    try {
        (void)load_kubernetes_credentials(settings);
    } catch (const std::runtime_error& error) {
        return error.what();
    }
    return "(no error)";
}

// No error may carry a secret: the token, or any line of a key's or certificate's PEM body.
void check_no_secret(const std::string& error) {
    INFO(error);
    CHECK(error.find(kToken) == std::string::npos);
    CHECK(error.find("lab-token") == std::string::npos);
    for (const char* name : {"client.key", "other.key", "client.pem", "ca.pem"}) {
        const std::string text = pem(name);
        const std::size_t body = text.find('\n') + 1;
        const std::string first_line = text.substr(body, 40);
        CHECK(error.find(first_line) == std::string::npos);
        CHECK(error.find(base64(text).substr(0, 40)) == std::string::npos);
    }
}

}  // namespace

TEST_CASE("kubeconfig: current-context's cluster and an inline token; relative CA path", "[kubernetes][credentials]") {
    Fixture fixture;
    const KubernetesCredentials credentials = load_kubernetes_credentials(fixture.settings(kubeconfig(kProdCluster, kTokenUser)));
    CHECK(credentials.server == "https://127.0.0.1:6443");
    CHECK(credentials.tls.ca_file == fixture.dir.file("ca.pem"));
    CHECK(credentials.tls.ca_pem.empty());
    CHECK_FALSE(credentials.tls.insecure_skip_verify);
    CHECK(credentials.token == kToken);
    CHECK(credentials.token_file.empty());
    CHECK(current_bearer_token(credentials) == kToken);
    CHECK(credentials.description ==
          "kubeconfig " + fixture.dir.file("kubeconfig") + " (context edge: cluster prod, user passgate)");
    check_no_secret(credentials.description);
}

TEST_CASE("kubeconfig: tokenFile relative to the kubeconfig, read again for each request", "[kubernetes][credentials]") {
    Fixture fixture;
    integration::write_file(fixture.dir.file("token"), "  first-token\n");
    const KubernetesCredentials credentials =
        load_kubernetes_credentials(fixture.settings(kubeconfig(kProdCluster, "    tokenFile: token\n")));
    CHECK(credentials.token.empty());
    CHECK(credentials.token_file == fixture.dir.file("token"));
    CHECK(current_bearer_token(credentials) == "first-token");
    integration::write_file(fixture.dir.file("token"), "rotated-token");
    CHECK(current_bearer_token(credentials) == "rotated-token");
    integration::write_file(fixture.dir.file("token"), "\n \n");
    CHECK_THROWS_WITH(current_bearer_token(credentials), Catch::Contains(fixture.dir.file("token") + ": empty"));
}

TEST_CASE("kubeconfig: client certificate and key files", "[kubernetes][credentials]") {
    Fixture fixture;
    const KubernetesCredentials credentials = load_kubernetes_credentials(fixture.settings(kubeconfig(
        kProdCluster, "    client-certificate: client.pem\n    client-key: " + fixture.dir.file("client.key") + "\n")));
    CHECK(credentials.tls.client_cert_file == fixture.dir.file("client.pem"));
    CHECK(credentials.tls.client_key_file == fixture.dir.file("client.key"));
    CHECK(credentials.token.empty());
    CHECK(current_bearer_token(credentials).empty());
}

TEST_CASE("kubeconfig: embedded *-data (a CA bundle of two certificates)", "[kubernetes][credentials]") {
    Fixture fixture;
    const std::string bundle = pem("ca.pem") + pem("ca2.pem");
    const KubernetesCredentials credentials = load_kubernetes_credentials(fixture.settings(kubeconfig(
        "    server: https://api.example.com:6443/\n    certificate-authority-data: " + base64(bundle) + "\n",
        "    client-certificate-data: " + base64(pem("client.pem")) + "\n    client-key-data: " +
            base64(pem("client.key")) + "\n")));
    CHECK(credentials.server == "https://api.example.com:6443");  // the trailing '/' dropped
    CHECK(credentials.tls.ca_pem == bundle);
    CHECK(credentials.tls.ca_file.empty());
    CHECK(credentials.tls.client_cert_pem == pem("client.pem"));
    CHECK(credentials.tls.client_key_pem == pem("client.key"));
    check_no_secret(credentials.description);
}

TEST_CASE("kubeconfig: [kubernetes] context picks another context than current-context", "[kubernetes][credentials]") {
    Fixture fixture;
    const KubernetesCredentials credentials =
        load_kubernetes_credentials(fixture.settings(kubeconfig(kProdCluster, kTokenUser), "lab"));
    CHECK(credentials.server == "https://[::1]:7443");
    CHECK(credentials.tls.insecure_skip_verify);
    CHECK(credentials.token == "lab-token");
    CHECK(credentials.description.find("(context lab: cluster lab, user labuser)") != std::string::npos);
    // Said wherever the description goes (--check, the start-up log).
    CHECK(credentials.description.find("insecure-skip-tls-verify: the server's certificate is NOT verified") !=
          std::string::npos);
}

TEST_CASE("kubeconfig: a missing context, cluster or user is named", "[kubernetes][credentials]") {
    Fixture fixture;
    const std::string path = fixture.dir.file("kubeconfig");
    CHECK(error_of(fixture.settings(kubeconfig(kProdCluster, kTokenUser), "nope")) ==
          "kubeconfig " + path + ": context \"nope\" not found in contexts (defined: lab, edge)");
    CHECK(error_of(fixture.settings(kubeconfig(kProdCluster, kTokenUser, "\"\""))) ==
          "kubeconfig " + path + ": no current-context (set one, or [kubernetes] context)");
    std::string text = kubeconfig(kProdCluster, kTokenUser);
    text.replace(text.find("cluster: prod"), 13, "cluster: gone");
    CHECK(error_of(fixture.settings(text)) ==
          "kubeconfig " + path + ": cluster \"gone\" not found in clusters (defined: lab, prod)");
    text = kubeconfig(kProdCluster, kTokenUser);
    text.replace(text.find("user: passgate"), 14, "user: ghost");
    CHECK(error_of(fixture.settings(text)) ==
          "kubeconfig " + path + ": user \"ghost\" not found in users (defined: labuser, passgate)");
    CHECK(error_of(fixture.settings(kubeconfig("    certificate-authority: ca.pem\n", kTokenUser))) ==
          "kubeconfig " + path + ": clusters[1].cluster: server: missing");
    Kubernetes absent;
    absent.configured = true;
    absent.kubeconfig = fixture.dir.file("absent");
    CHECK(error_of(absent) == "kubeconfig " + absent.kubeconfig + ": cannot read: No such file or directory");
}

TEST_CASE("kubeconfig: a server that is not https://host[:port]", "[kubernetes][credentials]") {
    Fixture fixture;
    CHECK(error_of(fixture.settings(kubeconfig("    server: http://127.0.0.1:8080\n", kTokenUser))).find(
              "clusters[1].cluster: server http://127.0.0.1:8080: expected \"https://host[:port]\" (https only)") !=
          std::string::npos);
    CHECK(error_of(fixture.settings(kubeconfig("    server: https://rancher.example.com/k8s/clusters/c-1\n", kTokenUser)))
              .find("without a path") != std::string::npos);
}

TEST_CASE("kubeconfig: bad base64, a certificate that is not PEM, a key that does not match", "[kubernetes][credentials]") {
    Fixture fixture;
    const std::string path = fixture.dir.file("kubeconfig");
    const std::string bad_base64 = error_of(fixture.settings(kubeconfig(
        "    server: https://127.0.0.1:6443\n    certificate-authority-data: bm90*YmFzZTY0\n", kTokenUser)));
    CHECK(bad_base64 == "kubeconfig " + path + ": clusters[1].cluster: certificate-authority-data: not valid base64");
    const std::string not_pem = error_of(fixture.settings(kubeconfig(
        "    server: https://127.0.0.1:6443\n    certificate-authority-data: " + base64("hello, not a certificate") +
            "\n",
        kTokenUser)));
    CHECK(not_pem == "kubeconfig " + path + ": clusters[1].cluster: certificate-authority-data: not a PEM certificate");
    integration::write_file(fixture.dir.file("bad.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    CHECK(error_of(fixture.settings(kubeconfig("    server: https://127.0.0.1:6443\n    certificate-authority: bad.pem\n",
                                               kTokenUser))) ==
          "kubeconfig " + path + ": clusters[1].cluster: certificate-authority " + fixture.dir.file("bad.pem") +
              ": not a PEM certificate");
    // A key given as the certificate, and a key that is not PEM.
    CHECK(error_of(fixture.settings(kubeconfig(
              kProdCluster, "    client-certificate: client.key\n    client-key: client.key\n"))) ==
          "kubeconfig " + path + ": users[1].user: client-certificate " + fixture.dir.file("client.key") +
              ": not a PEM certificate");
    CHECK(error_of(fixture.settings(kubeconfig(
              kProdCluster, "    client-certificate: client.pem\n    client-key-data: " + base64("not a key") + "\n"))) ==
          "kubeconfig " + path +
              ": users[1].user: client-key-data: not a PEM private key (an encrypted key is not supported)");
    const std::string mismatch = error_of(
        fixture.settings(kubeconfig(kProdCluster, "    client-certificate: client.pem\n    client-key: other.key\n")));
    CHECK(mismatch == "kubeconfig " + path + ": users[1].user: client-key " + fixture.dir.file("other.key") +
                          ": the key does not match the certificate kubeconfig " + path +
                          ": users[1].user: client-certificate " + fixture.dir.file("client.pem"));
    CHECK(error_of(fixture.settings(kubeconfig(kProdCluster, "    client-certificate: client.pem\n"))) ==
          "kubeconfig " + path + ": users[1].user: client-certificate needs client-key");
    CHECK(error_of(fixture.settings(kubeconfig(kProdCluster + "    insecure-skip-tls-verify: true\n", kTokenUser))) ==
          "kubeconfig " + path + ": clusters[1].cluster: insecure-skip-tls-verify goes without certificate-authority");
    check_no_secret(bad_base64 + not_pem + mismatch);
}

TEST_CASE("kubeconfig: exec, auth-provider and basic auth are refused as not supported", "[kubernetes][credentials]") {
    Fixture fixture;
    const std::string path = fixture.dir.file("kubeconfig");
    const std::string exec = error_of(fixture.settings(kubeconfig(
        kProdCluster, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n")));
    CHECK(exec.rfind("kubeconfig " + path + ": users[1].user: exec: not supported", 0) == 0);
    CHECK(error_of(fixture.settings(kubeconfig(kProdCluster, "    auth-provider:\n      name: gcp\n")))
              .find("users[1].user: auth-provider: not supported") != std::string::npos);
    const std::string basic =
        error_of(fixture.settings(kubeconfig(kProdCluster, "    username: admin\n    password: hunter2-SECRET\n")));
    CHECK(basic.find("users[1].user: username: not supported") != std::string::npos);
    CHECK(basic.find("hunter2") == std::string::npos);
}

TEST_CASE("kubeconfig: a YAML syntax error gives line and column, not the text", "[kubernetes][credentials]") {
    Fixture fixture;
    // An unclosed flow sequence around the token: yaml-cpp's message must not bring it along.
    const std::string error = error_of(fixture.settings(
        std::string("apiVersion: v1\nusers:\n- name: a\n  user:\n    token: [") + kToken + "\n"));
    INFO(error);
    CHECK(error.rfind("kubeconfig " + fixture.dir.file("kubeconfig") + ": YAML syntax error at line ", 0) == 0);
    check_no_secret(error);
    CHECK(error_of(fixture.settings("- just\n- a list\n")).find("not a kubeconfig (expected a YAML mapping)") !=
          std::string::npos);
}

TEST_CASE("no error carries a token, a key or certificate bytes", "[kubernetes][credentials]") {
    Fixture fixture;
    const std::string key_data = base64(pem("client.key"));
    const std::vector<std::string> users = {
        std::string("    token: ") + kToken + "\n    client-certificate: client.pem\n",
        std::string("    token: ") + kToken + "\n    client-certificate-data: " + base64(pem("client.pem")) +
            "\n    client-key-data: " + base64(pem("other.key")) + "\n",
        "    client-certificate-data: " + key_data + "\n    client-key-data: " + key_data + "\n",
        "    client-certificate-data: " + base64(pem("client.pem")) + "\n    client-key-data: " + key_data.substr(1) + "\n",
        std::string("    token: [") + kToken + "]\n",
        std::string("    exec: ") + kToken + "\n",
    };
    for (const std::string& user : users) {
        const std::string error = error_of(fixture.settings(kubeconfig(kProdCluster, user)));
        CHECK(error != "(no error)");
        check_no_secret(error);
    }
    // A token file is named by its path, never by its content.
    integration::write_file(fixture.dir.file("token"), "");
    const std::string empty = error_of(fixture.settings(kubeconfig(kProdCluster, "    tokenFile: token\n")));
    CHECK(empty == "kubeconfig " + fixture.dir.file("kubeconfig") + ": users[1].user: tokenFile " +
                       fixture.dir.file("token") + ": empty");
}

TEST_CASE("api_server: CA, token and client certificate files", "[kubernetes][credentials]") {
    Fixture fixture;
    integration::write_file(fixture.dir.file("token"), std::string(kToken) + "\n");
    Kubernetes settings;
    settings.configured = true;
    settings.api_server = "https://10.0.0.1:6443";
    settings.ca_file = fixture.dir.file("ca.pem");
    settings.token_file = fixture.dir.file("token");
    settings.client_cert_file = fixture.dir.file("client.pem");
    settings.client_key_file = fixture.dir.file("client.key");
    const KubernetesCredentials credentials = load_kubernetes_credentials(settings);
    CHECK(credentials.server == "https://10.0.0.1:6443");
    CHECK(credentials.tls.ca_file == settings.ca_file);
    CHECK(credentials.tls.client_cert_file == settings.client_cert_file);
    CHECK(credentials.tls.client_key_file == settings.client_key_file);
    CHECK(credentials.token_file == settings.token_file);
    CHECK(current_bearer_token(credentials) == kToken);
    CHECK(credentials.description == "api_server https://10.0.0.1:6443");

    Kubernetes mismatch = settings;
    mismatch.client_key_file = fixture.dir.file("other.key");
    const std::string error = error_of(mismatch);
    CHECK(error == "[kubernetes] client_key_file " + mismatch.client_key_file +
                       ": the key does not match the certificate [kubernetes] client_cert_file " +
                       settings.client_cert_file);
    check_no_secret(error);
    Kubernetes bad_ca = settings;
    bad_ca.ca_file = fixture.dir.file("token");
    CHECK(error_of(bad_ca) == "[kubernetes] ca_file " + bad_ca.ca_file + ": not a PEM certificate");
    Kubernetes no_token = settings;
    no_token.token_file = fixture.dir.file("missing-token");
    CHECK(error_of(no_token) ==
          "[kubernetes] token_file " + no_token.token_file + ": cannot read: No such file or directory");
}

namespace {
// Sets (or unsets, for nullptr) an environment variable for one scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value != nullptr) ::setenv(name, value, 1);
        else ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_) ::setenv(name_, old_->c_str(), 1);
        else ::unsetenv(name_);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};
}  // namespace

TEST_CASE("in_cluster: KUBERNETES_SERVICE_HOST/PORT and the service-account files", "[kubernetes][credentials]") {
    Fixture fixture;
    std::filesystem::create_directory(fixture.dir.path() / "sa");
    integration::write_file(fixture.dir.file("sa/ca.crt"), pem("ca.pem") + pem("ca2.pem"));
    integration::write_file(fixture.dir.file("sa/token"), std::string(kToken) + "\n");
    Kubernetes settings;
    settings.configured = true;
    settings.in_cluster = true;
    settings.service_account_dir = fixture.dir.file("sa");
    {
        ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
        ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
        const KubernetesCredentials credentials = load_kubernetes_credentials(settings);
        CHECK(credentials.server == "https://10.96.0.1:443");
        CHECK(credentials.tls.ca_file == fixture.dir.file("sa/ca.crt"));
        CHECK(credentials.token_file == fixture.dir.file("sa/token"));
        CHECK(current_bearer_token(credentials) == kToken);
        CHECK(credentials.description == "in-cluster (https://10.96.0.1:443)");
    }
    {
        ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
        ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
        CHECK(load_kubernetes_credentials(settings).server == "https://[fd00:10:96::1]:6443");
    }
    {
        ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
        ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
        CHECK(error_of(settings) == "in-cluster: KUBERNETES_SERVICE_HOST is not set (is passgate running in a pod?)");
    }
    {
        ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
        ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
        integration::write_file(fixture.dir.file("sa/token"), "");
        CHECK(error_of(settings) == "in-cluster: service account token " + fixture.dir.file("sa/token") + ": empty");
        Kubernetes elsewhere = settings;
        elsewhere.service_account_dir = fixture.dir.file("no-such-dir");
        CHECK(error_of(elsewhere) == "in-cluster: service account CA " + fixture.dir.file("no-such-dir/ca.crt") +
                                         ": cannot read: No such file or directory");
    }
}
