#pragma once
// Where the Kubernetes API server is and how passgate authenticates to it, from the [kubernetes]
// settings: a kubeconfig file (its current-context, or `context`, and that context's cluster and
// user), explicit files (api_server, ca_file, token_file, client_cert_file/client_key_file), or
// in_cluster (KUBERNETES_SERVICE_HOST/PORT and the service-account files).
//
// Loading checks everything that can be checked without contacting the server: the kubeconfig
// parses, the context, cluster and user exist, the server is an https:// URL, every certificate
// and key (file or embedded *-data) parses and the key matches the certificate, the token file is
// readable and not empty. `passgate --check` runs it; so does start-up and each reload.
//
// Secrets: errors name the file and the key (`kubeconfig /etc/passgate/kubeconfig: users[0].user:
// client-key-data: not a PEM private key`), never a token, a key or certificate bytes.
//
// Relative paths inside a kubeconfig are relative to the kubeconfig's folder (as kubectl reads
// them). Authentication plugins (exec, auth-provider) and username/password are not supported:
// an error says so.

#include "config/config.h"
#include "src/discovery/http_client.h"

#include <string>

namespace passgate {

struct KubernetesCredentials {
    std::string server;  // "https://10.0.0.1:6443" (no trailing '/')
    HttpTls tls;         // CA, client certificate and key (files or embedded PEM)
    std::string token;        // a kubeconfig's inline token (static)
    std::string token_file;   // read again before each request (projected tokens rotate)
    // For logs and --check, without secrets: "kubeconfig /etc/passgate/kubeconfig (context edge:
    // cluster prod, user passgate)", "in-cluster (https://10.96.0.1:443)", "api_server https://...".
    std::string description;

    friend bool operator==(const KubernetesCredentials&, const KubernetesCredentials&) = default;
};

// Throws std::runtime_error (message as above) when anything is missing or does not parse.
KubernetesCredentials load_kubernetes_credentials(const config::Kubernetes& settings);

// The bearer token for the next request: token_file read now (surrounding whitespace trimmed), or
// the inline token. Throws std::runtime_error naming the file when it cannot be read or is empty.
std::string current_bearer_token(const KubernetesCredentials& credentials);

}  // namespace passgate
