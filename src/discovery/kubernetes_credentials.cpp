// Kubernetes credentials from [kubernetes]: kubeconfig (yaml-cpp), explicit files, or in-cluster.
// Every certificate and key is parsed with OpenSSL here, so that a bad file is reported at
// start-up, reload and --check rather than at the first request. See kubernetes_credentials.h.

#include "src/discovery/kubernetes_credentials.h"

#include "config/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace passgate {

namespace {

// A kubeconfig, a certificate bundle or a token is far below these; a larger file is a mistake.
constexpr std::size_t kMaxKubeconfigBytes = 4u << 20;
constexpr std::size_t kMaxPemBytes = 4u << 20;
constexpr std::size_t kMaxTokenBytes = 1u << 20;

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

// The whole file, or an error starting with `label` (which names the file), never the content.
std::string read_file(const std::string& path, std::size_t max_bytes, const std::string& label) {
    try {
        return config::read_bounded_file(path, max_bytes, /*nonblocking=*/true);
    } catch (const config::FileReadError& error) {
        fail(label + ": " + error.what());
    }
}

std::string trim(std::string_view text) {
    constexpr std::string_view space = " \t\r\n";
    const std::size_t begin = text.find_first_not_of(space);
    if (begin == std::string_view::npos) return {};
    const std::size_t end = text.find_last_not_of(space);
    return std::string(text.substr(begin, end - begin + 1));
}

std::string read_token_file(const std::string& path, const std::string& what) {
    std::string token = trim(read_file(path, kMaxTokenBytes, what + " " + path));
    if (token.empty()) fail(what + " " + path + ": empty");
    return token;
}

// Standard base64 with padding, as kubeconfig's *-data fields; line breaks are skipped.
// nullopt on anything else.
std::optional<std::string> decode_base64(std::string_view text) {
    std::string clean;
    for (const char c : text)
        if (c != '\n' && c != '\r') clean.push_back(c);
    if (clean.empty() || clean.size() % 4 != 0) return std::nullopt;
    const auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::size_t padding = 0;
    if (clean.back() == '=') ++padding;
    if (clean.size() >= 2 && clean[clean.size() - 2] == '=') ++padding;
    std::string out;
    for (std::size_t i = 0; i < clean.size(); i += 4) {
        std::uint32_t group = 0;
        const bool last = i + 4 == clean.size();
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = clean[i + j];
            int digit = value(c);
            if (digit < 0) {
                // '=' only as the last one or two characters.
                if (!(c == '=' && last && j >= 4 - padding)) return std::nullopt;
                digit = 0;
            }
            group = (group << 6) | static_cast<std::uint32_t>(digit);
        }
        out.push_back(static_cast<char>(group >> 16));
        if (!(last && padding >= 2)) out.push_back(static_cast<char>((group >> 8) & 0xff));
        if (!(last && padding >= 1)) out.push_back(static_cast<char>(group & 0xff));
    }
    return out;
}

struct BioFree {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
    void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, KeyFree>;

// Never asks for a passphrase (OpenSSL's default would prompt on the terminal): an encrypted key
// fails to load.
int no_passphrase(char*, int, int, void*) { return 0; }

Bio memory_bio(const std::string& pem) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) fail("out of memory reading PEM");
    return bio;
}

// The certificates of a PEM bundle (at least one), or empty.
std::vector<Certificate> parse_certificates(const std::string& pem) {
    std::vector<Certificate> certificates;
    if (pem.size() > kMaxPemBytes) return certificates;
    Bio bio = memory_bio(pem);
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr))
        certificates.emplace_back(cert);
    ERR_clear_error();  // the end of the bundle leaves "no start line" queued
    return certificates;
}

PrivateKey parse_private_key(const std::string& pem) {
    if (pem.size() > kMaxPemBytes) return nullptr;
    Bio bio = memory_bio(pem);
    PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    ERR_clear_error();
    return key;
}

// One certificate, CA bundle or key: either a file (`file`) or PEM text already decoded (`pem`).
// `label` names it in errors: "[kubernetes] ca_file /x", "kubeconfig /k: users[0].user: client-key-data".
struct PemSource {
    std::string file;
    std::string pem;
    std::string label;
    bool given() const { return !file.empty() || !pem.empty(); }
    std::string text() const { return file.empty() ? pem : read_file(file, kMaxPemBytes, label); }
};

std::vector<Certificate> check_certificates(const PemSource& source) {
    std::vector<Certificate> certificates = parse_certificates(source.text());
    if (certificates.empty()) fail(source.label + ": not a PEM certificate");
    return certificates;
}

void check_client_pair(const PemSource& cert, const PemSource& key) {
    const std::vector<Certificate> certificates = check_certificates(cert);
    const PrivateKey private_key = parse_private_key(key.text());
    if (!private_key) fail(key.label + ": not a PEM private key (an encrypted key is not supported)");
    const int matches = X509_check_private_key(certificates.front().get(), private_key.get());
    ERR_clear_error();
    if (matches != 1) fail(key.label + ": the key does not match the certificate " + cert.label);
}

// ---------------------------------------------------------------------------------------------
// kubeconfig

class Kubeconfig {
public:
    explicit Kubeconfig(const config::Kubernetes& settings) : settings_(settings), path_(settings.kubeconfig) {
        const std::size_t slash = path_.rfind('/');
        folder_ = slash == std::string::npos ? std::string("./") : path_.substr(0, slash + 1);
        const std::string text = read_file(path_, kMaxKubeconfigBytes, "kubeconfig " + path_);
        try {
            root_ = YAML::Load(text);
        } catch (const YAML::ParserException& error) {
            // yaml-cpp's messages are fixed texts, but keep any that quotes the input out.
            const bool quotes = error.msg.find_first_of("\"'") != std::string::npos;
            fail(prefix() + "YAML syntax error at line " + std::to_string(error.mark.line + 1) + ", column " +
                 std::to_string(error.mark.column + 1) + (quotes ? std::string() : ": " + error.msg));
        } catch (const YAML::Exception&) {
            fail(prefix() + "not a YAML document");
        }
        if (!root_.IsMap()) fail(prefix() + "not a kubeconfig (expected a YAML mapping)");
    }

    KubernetesCredentials load() {
        const std::string context_name = settings_.context.empty()
                                             ? string_at(root_, "current-context", "")
                                             : settings_.context;
        if (context_name.empty())
            fail(prefix() + "no current-context (set one, or [kubernetes] context)");
        const Entry context = find("contexts", "context", context_name);
        const std::string cluster_name = string_at(context.body, "cluster", context.where);
        const std::string user_name = string_at(context.body, "user", context.where);
        if (cluster_name.empty()) fail(prefix() + context.where + ": cluster: missing");
        const Entry cluster = find("clusters", "cluster", cluster_name);

        KubernetesCredentials credentials;
        read_cluster(cluster, credentials);
        if (!user_name.empty()) read_user(find("users", "user", user_name), credentials);
        credentials.description = "kubeconfig " + path_ + " (context " + context_name + ": cluster " +
                                  cluster_name + ", user " + (user_name.empty() ? "(none)" : user_name) + ")";
        if (credentials.tls.insecure_skip_verify)
            credentials.description += "; insecure-skip-tls-verify: the server's certificate is NOT verified";
        return credentials;
    }

private:
    struct Entry {
        YAML::Node body;    // the `cluster:`, `context:` or `user:` mapping
        std::string where;  // "clusters[0].cluster"
    };

    std::string prefix() const { return "kubeconfig " + path_ + ": "; }

    // The string at `map[key]`; "" when absent. Fails when present and not a string.
    std::string string_at(const YAML::Node& map, const char* key, const std::string& where) const {
        const YAML::Node node = map[key];
        if (!node || node.IsNull()) return {};
        if (!node.IsScalar()) fail(prefix() + (where.empty() ? "" : where + ": ") + key + ": expected a string");
        return node.Scalar();
    }

    bool bool_at(const YAML::Node& map, const char* key, const std::string& where) const {
        const std::string text = string_at(map, key, where);
        if (text.empty() || text == "false") return false;
        if (text == "true") return true;
        fail(prefix() + where + ": " + key + ": expected true or false");
    }

    // The entry of list `list` named `name`, e.g. contexts[] with name "edge".
    Entry find(const char* list, const char* body_key, const std::string& name) const {
        const YAML::Node items = root_[list];
        if (items && !items.IsNull() && !items.IsSequence()) fail(prefix() + list + ": expected a list");
        std::vector<std::string> names;
        for (std::size_t i = 0; items && items.IsSequence() && i < items.size(); ++i) {
            const YAML::Node item = items[i];
            const std::string where = std::string(list) + "[" + std::to_string(i) + "]";
            if (!item.IsMap()) fail(prefix() + where + ": expected a mapping with name and " + body_key);
            const std::string item_name = string_at(item, "name", where);
            if (item_name != name) {
                names.push_back(item_name);
                continue;
            }
            const YAML::Node body = item[body_key];
            if (!body || !body.IsMap()) fail(prefix() + where + ": " + body_key + ": missing or not a mapping");
            return {body, where + "." + body_key};
        }
        std::string known;
        for (const std::string& known_name : names) known += (known.empty() ? "" : ", ") + known_name;
        fail(prefix() + body_key + " \"" + name + "\" not found in " + list +
             (known.empty() ? std::string(" (none defined)") : " (defined: " + known + ")"));
    }

    std::string resolve(const std::string& path) const { return path.front() == '/' ? path : folder_ + path; }

    // `key` (a path) or `key`-data (base64 PEM) of `entry`; *-data wins when both are given, as
    // kubectl reads them.
    PemSource pem_source(const Entry& entry, const char* key) const {
        const std::string data_key = std::string(key) + "-data";
        PemSource source;
        const std::string data = string_at(entry.body, data_key.c_str(), entry.where);
        if (!data.empty()) {
            std::optional<std::string> decoded = decode_base64(data);
            source.label = prefix() + entry.where + ": " + data_key;
            if (!decoded) fail(source.label + ": not valid base64");
            source.pem = std::move(*decoded);
            return source;
        }
        const std::string file = string_at(entry.body, key, entry.where);
        if (file.empty()) return source;
        source.file = resolve(file);
        source.label = prefix() + entry.where + ": " + key + " " + source.file;
        return source;
    }

    void read_cluster(const Entry& cluster, KubernetesCredentials& credentials) const {
        std::string server = string_at(cluster.body, "server", cluster.where);
        if (server.empty()) fail(prefix() + cluster.where + ": server: missing");
        if (server.size() > 1 && server.back() == '/') server.pop_back();  // kubectl writes some so
        const std::string error = config::check_api_server_url(server);
        if (!error.empty()) fail(prefix() + cluster.where + ": server " + server + ": " + error);
        credentials.server = server;

        credentials.tls.insecure_skip_verify = bool_at(cluster.body, "insecure-skip-tls-verify", cluster.where);
        const PemSource ca = pem_source(cluster, "certificate-authority");
        if (ca.given() && credentials.tls.insecure_skip_verify)
            fail(prefix() + cluster.where + ": insecure-skip-tls-verify goes without certificate-authority");
        if (ca.given()) check_certificates(ca);
        credentials.tls.ca_file = ca.file;
        credentials.tls.ca_pem = ca.pem;
    }

    void read_user(const Entry& user, KubernetesCredentials& credentials) const {
        for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
            if (user.body[unsupported])
                fail(prefix() + user.where + ": " + unsupported +
                     ": not supported (authentication plugins and basic auth); use token, tokenFile "
                     "or a client certificate");
        }
        credentials.token = string_at(user.body, "token", user.where);
        if (credentials.token.empty()) {
            const std::string token_file = string_at(user.body, "tokenFile", user.where);
            if (!token_file.empty()) {
                credentials.token_file = resolve(token_file);
                read_token_file(credentials.token_file, prefix() + user.where + ": tokenFile");
            }
        }
        const PemSource cert = pem_source(user, "client-certificate");
        const PemSource key = pem_source(user, "client-key");
        if (cert.given() != key.given())
            fail(prefix() + user.where + ": " + (cert.given() ? "client-certificate needs client-key"
                                                              : "client-key needs client-certificate"));
        if (cert.given()) check_client_pair(cert, key);
        credentials.tls.client_cert_file = cert.file;
        credentials.tls.client_cert_pem = cert.pem;
        credentials.tls.client_key_file = key.file;
        credentials.tls.client_key_pem = key.pem;
    }

    const config::Kubernetes& settings_;
    std::string path_;
    std::string folder_;  // ends with '/'
    YAML::Node root_;
};

// ---------------------------------------------------------------------------------------------
// api_server and in_cluster

KubernetesCredentials load_explicit(const config::Kubernetes& settings) {
    KubernetesCredentials credentials;
    credentials.server = settings.api_server;
    const std::string error = config::check_api_server_url(settings.api_server);
    if (!error.empty()) fail("[kubernetes] api_server " + settings.api_server + ": " + error);
    if (!settings.ca_file.empty()) {
        check_certificates({settings.ca_file, {}, "[kubernetes] ca_file " + settings.ca_file});
        credentials.tls.ca_file = settings.ca_file;
    }
    if (!settings.token_file.empty()) {
        read_token_file(settings.token_file, "[kubernetes] token_file");
        credentials.token_file = settings.token_file;
    }
    if (!settings.client_cert_file.empty() || !settings.client_key_file.empty()) {
        check_client_pair({settings.client_cert_file, {}, "[kubernetes] client_cert_file " + settings.client_cert_file},
                          {settings.client_key_file, {}, "[kubernetes] client_key_file " + settings.client_key_file});
        credentials.tls.client_cert_file = settings.client_cert_file;
        credentials.tls.client_key_file = settings.client_key_file;
    }
    credentials.description = "api_server " + settings.api_server;
    return credentials;
}

KubernetesCredentials load_in_cluster(const config::Kubernetes& settings) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || *host == '\0')
        fail("in-cluster: KUBERNETES_SERVICE_HOST is not set (is passgate running in a pod?)");
    if (port == nullptr || *port == '\0')
        fail("in-cluster: KUBERNETES_SERVICE_PORT is not set (is passgate running in a pod?)");
    const std::string host_text(host);
    const bool ipv6 = host_text.find(':') != std::string::npos;
    KubernetesCredentials credentials;
    credentials.server = "https://" + (ipv6 ? "[" + host_text + "]" : host_text) + ":" + port;
    const std::string error = config::check_api_server_url(credentials.server);
    if (!error.empty())
        fail("in-cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT give " + credentials.server + ": " + error);
    const std::string dir = settings.service_account_dir.empty() || settings.service_account_dir.back() != '/'
                                ? settings.service_account_dir + "/"
                                : settings.service_account_dir;
    credentials.tls.ca_file = dir + "ca.crt";
    check_certificates({credentials.tls.ca_file, {}, "in-cluster: service account CA " + credentials.tls.ca_file});
    credentials.token_file = dir + "token";
    read_token_file(credentials.token_file, "in-cluster: service account token");
    credentials.description = "in-cluster (" + credentials.server + ")";
    return credentials;
}

}  // namespace

KubernetesCredentials load_kubernetes_credentials(const config::Kubernetes& settings) {
    if (!settings.kubeconfig.empty()) return Kubeconfig(settings).load();
    if (!settings.api_server.empty()) return load_explicit(settings);
    if (settings.in_cluster) return load_in_cluster(settings);
    fail("[kubernetes]: none of kubeconfig, api_server or in_cluster = true is set");
}

std::string current_bearer_token(const KubernetesCredentials& credentials) {
    if (!credentials.token_file.empty()) return read_token_file(credentials.token_file, "token file");
    return credentials.token;
}

}  // namespace passgate
