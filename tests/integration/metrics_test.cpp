// /metrics as operators use it (issue 5, "How it is checked"): `promtool check metrics` on a live
// scrape after real traffic, a real Prometheus server whose query API returns the exact number of
// connections the test made per route, counters exact under concurrency across both workers, and
// counters that survive configuration reloads.
//
// Everything talks to the real passgate binary (and /usr/bin/promtool, /usr/bin/prometheus from
// Debian's prometheus package) over sockets and files. Every wait is bounded.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

using namespace integration;

namespace {

using Labels = std::map<std::string, std::string>;
constexpr double missing = std::numeric_limits<double>::quiet_NaN();

const char* const promtool_path = "/usr/bin/promtool";
const char* const prometheus_path = "/usr/bin/prometheus";

// ---- HTTP with request headers (the helpers in process.h send none) ------------------------------

struct HttpReply {
    int status = 0;
    std::string head;  // status line and headers
    std::string body;

    // The value of header `name` (case-insensitive), or empty.
    std::string header(std::string_view name) const {
        std::istringstream in(head);
        std::string line;
        for (int count = 0; count < 1000 && std::getline(in, line); ++count) {
            const std::size_t colon = line.find(':');
            if (colon != name.size()) continue;
            bool same = true;
            for (std::size_t i = 0; i < colon; ++i)
                same = same && std::tolower(static_cast<unsigned char>(line[i])) ==
                                   std::tolower(static_cast<unsigned char>(name[i]));
            if (!same) continue;
            std::string value = line.substr(colon + 1);
            while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
            const std::size_t start = value.find_first_not_of(' ');
            return start == std::string::npos ? std::string() : value.substr(start);
        }
        return {};
    }
};

// Decodes a chunked body; nullopt when malformed.
std::optional<std::string> dechunk(const std::string& raw) {
    std::string body;
    std::size_t at = 0;
    for (int chunks = 0; chunks < 100000; ++chunks) {
        const std::size_t line_end = raw.find("\r\n", at);
        if (line_end == std::string::npos) return std::nullopt;
        std::size_t size = 0;
        const auto parsed = std::from_chars(raw.data() + at, raw.data() + line_end, size, 16);
        if (parsed.ec != std::errc()) return std::nullopt;
        if (size == 0) return body;
        if (line_end + 2 + size > raw.size()) return std::nullopt;
        body.append(raw, line_end + 2, size);
        at = line_end + 2 + size + 2;
    }
    return std::nullopt;
}

// GET http://127.0.0.1:port/path with `headers` and "Connection: close", read until EOF.
std::optional<HttpReply> http_request(std::uint16_t port, const std::string& path,
                                      const std::vector<std::string>& headers = {},
                                      Millis timeout = Millis(5000)) {
    const Deadline deadline = deadline_in(timeout);
    Socket socket = connect_to(port, timeout);
    if (!socket) return std::nullopt;
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (const std::string& header : headers) request += header + "\r\n";
    request += "\r\n";
    if (!send_all(socket.get(), request.data(), request.size(), deadline)) return std::nullopt;
    std::string raw;
    for (int round = 0; round < 100000 && raw.size() < (16u << 20); ++round) {
        char buffer[16 * 1024];
        const std::optional<std::size_t> got = recv_some(socket.get(), buffer, sizeof buffer, deadline);
        if (!got) return std::nullopt;
        if (*got == 0) break;
        raw.append(buffer, *got);
    }
    const std::size_t head_end = raw.find("\r\n\r\n");
    if (raw.compare(0, 5, "HTTP/") != 0 || head_end == std::string::npos) return std::nullopt;
    HttpReply reply;
    reply.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
    reply.head = raw.substr(0, head_end);
    reply.body = raw.substr(head_end + 4);
    if (reply.header("Transfer-Encoding").find("chunked") != std::string::npos) {
        std::optional<std::string> body = dechunk(reply.body);
        if (!body) return std::nullopt;
        reply.body = std::move(*body);
    }
    return reply;
}

std::string url_encode(std::string_view text) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += hex[byte >> 4];
            out += hex[byte & 15];
        }
    }
    return out;
}

// ---- The exposition, parsed (text 0.0.4 and OpenMetrics samples look the same) --------------------

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

std::optional<Sample> parse_sample_line(std::string_view line) {
    Sample sample;
    std::size_t at = line.find_first_of("{ ");
    if (at == std::string_view::npos || at == 0) return std::nullopt;
    sample.name = std::string(line.substr(0, at));
    if (line[at] == '{') {
        ++at;
        bool closed = false;
        for (int label = 0; label < 100 && at < line.size(); ++label) {
            if (line[at] == '}') {
                closed = true;
                ++at;
                break;
            }
            const std::size_t equals = line.find('=', at);
            if (equals == std::string_view::npos || equals + 1 >= line.size() || line[equals + 1] != '"')
                return std::nullopt;
            const std::string key(line.substr(at, equals - at));
            std::string value;
            bool quoted = false;
            for (at = equals + 2; at < line.size();) {
                const char c = line[at++];
                if (c == '"') {
                    quoted = true;
                    break;
                }
                if (c == '\\' && at < line.size()) {
                    const char escaped = line[at++];
                    value += escaped == 'n' ? '\n' : escaped;
                    continue;
                }
                value += c;
            }
            if (!quoted || sample.labels.count(key) != 0) return std::nullopt;
            sample.labels[key] = value;
            if (at < line.size() && line[at] == ',') ++at;
        }
        if (!closed) return std::nullopt;
    }
    if (at >= line.size() || line[at] != ' ') return std::nullopt;
    const std::size_t value_end = line.find(' ', at + 1);
    const std::string token(line.substr(at + 1, value_end == std::string_view::npos
                                                     ? std::string_view::npos
                                                     : value_end - at - 1));
    char* end = nullptr;
    sample.value = std::strtod(token.c_str(), &end);  // also reads +Inf, -Inf, NaN
    if (token.empty() || end != token.c_str() + token.size()) return std::nullopt;
    return sample;
}

struct Exposition {
    int status = 0;
    std::string content_type;
    std::string body;
    std::vector<Sample> samples;
    std::map<std::string, std::string> types;  // "# TYPE" lines: family -> type
    std::vector<std::string> problems;         // lines that did not parse

    // The sum of the samples named `name` whose labels include `match`; NaN when there is none.
    double value(const std::string& name, const Labels& match = {}) const {
        double sum = 0;
        bool found = false;
        for (const Sample& sample : samples) {
            if (sample.name != name) continue;
            bool all = true;
            for (const auto& [key, wanted] : match) {
                const auto it = sample.labels.find(key);
                all = all && it != sample.labels.end() && it->second == wanted;
            }
            if (!all) continue;
            sum += sample.value;
            found = true;
        }
        return found ? sum : missing;
    }
    bool has(const std::string& name, const Labels& match = {}) const {
        return !std::isnan(value(name, match));
    }
    // Distinct values of label `key` among the samples named `name`.
    std::set<std::string> label_values(const std::string& name, const std::string& key) const {
        std::set<std::string> values;
        for (const Sample& sample : samples)
            if (sample.name == name && sample.labels.count(key) != 0) values.insert(sample.labels.at(key));
        return values;
    }
    // Samples whose family has no "# TYPE" line (histogram and OpenMetrics counter suffixes
    // resolved to their family).
    std::vector<std::string> untyped_samples() const {
        std::vector<std::string> untyped;
        for (const Sample& sample : samples) {
            if (types.count(sample.name) != 0) continue;
            bool typed = false;
            for (const std::string_view suffix : {"_bucket", "_sum", "_count", "_total"}) {
                if (!sample.name.ends_with(suffix)) continue;
                const auto it = types.find(sample.name.substr(0, sample.name.size() - suffix.size()));
                typed = typed || (it != types.end() &&
                                  (suffix == "_total" ? it->second == "counter" : it->second == "histogram"));
            }
            if (!typed) untyped.push_back(sample.name);
        }
        return untyped;
    }
};

Exposition parse_exposition(const std::string& body) {
    Exposition exposition;
    exposition.body = body;
    std::istringstream in(body);
    std::string line;
    for (int count = 0; count < 1000000 && std::getline(in, line); ++count) {
        if (line.empty()) continue;
        if (line[0] == '#') {
            std::istringstream words(line);
            std::string hash, keyword, family, type;
            words >> hash >> keyword >> family >> type;
            if (keyword == "TYPE") exposition.types[family] = type;
            continue;
        }
        if (std::optional<Sample> sample = parse_sample_line(line))
            exposition.samples.push_back(std::move(*sample));
        else
            exposition.problems.push_back(line);
    }
    return exposition;
}

// GET /metrics from passgate's admin port; status 0 when the request failed.
Exposition scrape(std::uint16_t admin_port, const std::string& accept = {}) {
    std::vector<std::string> headers;
    if (!accept.empty()) headers.push_back("Accept: " + accept);
    const std::optional<HttpReply> reply = http_request(admin_port, "/metrics", headers);
    if (!reply) return {};
    Exposition exposition = parse_exposition(reply->body);
    exposition.status = reply->status;
    exposition.content_type = reply->header("Content-Type");
    return exposition;
}

// ---- A minimal JSON reader for Prometheus's HTTP API answers -------------------------------------

struct Json {
    enum class Kind { null, boolean, number, string, array, object };
    Kind kind = Kind::null;
    bool boolean = false;
    double number = 0;
    std::string text;
    std::vector<Json> items;       // array elements, or object member values
    std::vector<std::string> keys; // object member names, parallel to items

    const Json* member(std::string_view key) const {
        if (kind != Kind::object) return nullptr;
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }
};

class JsonReader {
public:
    explicit JsonReader(std::string_view text) : text_(text) {}

    std::optional<Json> read() {
        Json value;
        if (!value_into(value, 0)) return std::nullopt;
        skip_space();
        if (at_ != text_.size()) return std::nullopt;
        return value;
    }

private:
    void skip_space() {
        while (at_ < text_.size() && std::strchr(" \t\r\n", text_[at_]) != nullptr && text_[at_] != '\0')
            ++at_;
    }
    bool next_is(char c) {
        skip_space();
        return at_ < text_.size() && text_[at_] == c;
    }
    bool word(std::string_view literal) {
        if (text_.substr(at_, literal.size()) != literal) return false;
        at_ += literal.size();
        return true;
    }

    bool value_into(Json& out, int depth) {
        if (depth > 64) return false;
        skip_space();
        if (at_ >= text_.size()) return false;
        const char c = text_[at_];
        if (c == '{') return object_into(out, depth);
        if (c == '[') return array_into(out, depth);
        if (c == '"') {
            out.kind = Json::Kind::string;
            return string_into(out.text);
        }
        if (word("true") || word("false")) {
            out.kind = Json::Kind::boolean;
            out.boolean = c == 't';
            return true;
        }
        if (word("null")) return true;
        const std::size_t start = at_;
        while (at_ < text_.size() && text_[at_] != '\0' && std::strchr("+-.eE0123456789", text_[at_]) != nullptr)
            ++at_;
        const std::string token(text_.substr(start, at_ - start));
        char* end = nullptr;
        out.kind = Json::Kind::number;
        out.number = std::strtod(token.c_str(), &end);
        return !token.empty() && end == token.c_str() + token.size();
    }

    bool string_into(std::string& out) {
        ++at_;  // the opening quote
        while (at_ < text_.size()) {
            const char c = text_[at_++];
            if (c == '"') return true;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_ >= text_.size()) return false;
            const char escaped = text_[at_++];
            switch (escaped) {
                case '"': case '\\': case '/': out += escaped; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned code = 0;
                    if (at_ + 4 > text_.size() ||
                        std::from_chars(text_.data() + at_, text_.data() + at_ + 4, code, 16).ptr !=
                            text_.data() + at_ + 4)
                        return false;
                    at_ += 4;
                    // UTF-8 of a BMP code point (surrogate pairs are not needed here).
                    if (code < 0x80) {
                        out += static_cast<char>(code);
                    } else if (code < 0x800) {
                        out += static_cast<char>(0xc0 | (code >> 6));
                        out += static_cast<char>(0x80 | (code & 0x3f));
                    } else {
                        out += static_cast<char>(0xe0 | (code >> 12));
                        out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
                        out += static_cast<char>(0x80 | (code & 0x3f));
                    }
                    break;
                }
                default: return false;
            }
        }
        return false;
    }

    bool array_into(Json& out, int depth) {
        ++at_;
        out.kind = Json::Kind::array;
        if (next_is(']')) {
            ++at_;
            return true;
        }
        for (int count = 0; count < 1000000; ++count) {
            Json item;
            if (!value_into(item, depth + 1)) return false;
            out.items.push_back(std::move(item));
            if (next_is(',')) {
                ++at_;
                continue;
            }
            if (next_is(']')) {
                ++at_;
                return true;
            }
            return false;
        }
        return false;
    }

    bool object_into(Json& out, int depth) {
        ++at_;
        out.kind = Json::Kind::object;
        if (next_is('}')) {
            ++at_;
            return true;
        }
        for (int count = 0; count < 1000000; ++count) {
            std::string key;
            if (!next_is('"') || !string_into(key) || !next_is(':')) return false;
            ++at_;
            Json item;
            if (!value_into(item, depth + 1)) return false;
            out.keys.push_back(std::move(key));
            out.items.push_back(std::move(item));
            if (next_is(',')) {
                ++at_;
                continue;
            }
            if (next_is('}')) {
                ++at_;
                return true;
            }
            return false;
        }
        return false;
    }

    std::string_view text_;
    std::size_t at_ = 0;
};

// ---- A real Prometheus server ----------------------------------------------------------------------

struct PromSample {
    Labels labels;
    double value = 0;
};

// A Prometheus server scraping one target every second, with its data in `dir`.
class PrometheusServer {
public:
    PrometheusServer(const TempDir& dir, std::uint16_t target_port) : port_(free_port()) {
        const std::string config_path = dir.file("prometheus.yml");
        write_file(config_path,
                   "global:\n"
                   "  scrape_interval: 1s\n"
                   "  scrape_timeout: 1s\n"
                   "  evaluation_interval: 1s\n"
                   "scrape_configs:\n"
                   "  - job_name: passgate\n"
                   "    static_configs:\n"
                   "      - targets: [\"127.0.0.1:" + std::to_string(target_port) + "\"]\n");
        SpawnOptions options;
        options.argv = {prometheus_path,
                        "--config.file=" + config_path,
                        "--storage.tsdb.path=" + dir.file("prometheus-data"),
                        "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                        "--log.level=info"};
        options.cwd = dir.path().string();
        options.stdout_path = dir.file("prometheus.out");
        options.stderr_path = dir.file("prometheus.err");
        process_ = std::make_unique<Process>(options);
    }

    std::uint16_t port() const { return port_; }
    Process& process() { return *process_; }
    std::string log_tail() const {
        const std::string log = process_->stderr_text();
        return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
    }

    bool wait_ready(Millis timeout) {
        return wait_until(
                   [this] {
                       if (!process_->running()) return true;
                       const auto reply = http_request(port_, "/-/ready", {}, Millis(1000));
                       return reply && reply->status == 200;
                   },
                   timeout, Millis(100)) &&
               process_->running();
    }

    // An instant query at "now"; nullopt (with `error` set) when it fails or is not a vector.
    std::optional<std::vector<PromSample>> query(const std::string& promql, std::string& error) {
        const auto reply = http_request(port_, "/api/v1/query?query=" + url_encode(promql), {}, Millis(5000));
        if (!reply) {
            error = "no answer from Prometheus";
            return std::nullopt;
        }
        const std::optional<Json> json = JsonReader(reply->body).read();
        const Json* status = json ? json->member("status") : nullptr;
        const Json* data = json ? json->member("data") : nullptr;
        const Json* type = data ? data->member("resultType") : nullptr;
        const Json* result = data ? data->member("result") : nullptr;
        if (reply->status != 200 || !status || status->text != "success" || !type ||
            type->text != "vector" || !result || result->kind != Json::Kind::array) {
            error = "HTTP " + std::to_string(reply->status) + ": " + reply->body.substr(0, 500);
            return std::nullopt;
        }
        std::vector<PromSample> samples;
        for (const Json& item : result->items) {
            const Json* metric = item.member("metric");
            const Json* value = item.member("value");
            if (!metric || metric->kind != Json::Kind::object || !value || value->items.size() != 2 ||
                value->items[1].kind != Json::Kind::string) {
                error = "unexpected result item in " + reply->body.substr(0, 500);
                return std::nullopt;
            }
            PromSample sample;
            for (std::size_t i = 0; i < metric->keys.size(); ++i)
                sample.labels[metric->keys[i]] = metric->items[i].text;
            sample.value = std::strtod(value->items[1].text.c_str(), nullptr);
            samples.push_back(std::move(sample));
        }
        return samples;
    }

    // The query's result as label value -> sample value, keyed by label `key`.
    std::optional<std::map<std::string, double>> query_by(const std::string& promql,
                                                          const std::string& key, std::string& error) {
        const auto samples = query(promql, error);
        if (!samples) return std::nullopt;
        std::map<std::string, double> values;
        for (const PromSample& sample : *samples) {
            const auto it = sample.labels.find(key);
            values[it == sample.labels.end() ? std::string() : it->second] = sample.value;
        }
        return values;
    }

private:
    std::uint16_t port_;
    std::unique_ptr<Process> process_;
};

// The value for `key`, NaN when absent (so that a missing series fails any comparison).
double at(const std::map<std::string, double>& values, const std::string& key) {
    const auto it = values.find(key);
    return it == values.end() ? missing : it->second;
}

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- passgate config and traffic --------------------------------------------------------------------

// Listener "tls" (client_hello_timeout 300ms) with route "alpha" (curl-h2.corpus.test ->
// service svc-a) and/or route "beta" (go.corpus.test -> service svc-b). `admin` is "@ADMIN@" for
// the first start, the real address when the file is rewritten for a reload.
std::string routes_config(const std::string& admin, std::uint16_t listen_port, std::uint16_t alpha_port,
                          std::uint16_t beta_port, bool alpha, bool beta) {
    std::string config =
        "[admin]\naddress = \"" + admin + "\"\n\n"
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" + std::to_string(listen_port) + "\"\n"
        "client_hello_timeout = \"300ms\"\n\n";
    if (alpha)
        config += "[[route]]\nname = \"alpha\"\nlisteners = [\"tls\"]\nhostnames = [\"curl-h2.corpus.test\"]\n"
                  "backends = [ { service = \"svc-a\" } ]\n\n";
    if (beta)
        config += "[[route]]\nname = \"beta\"\nlisteners = [\"tls\"]\nhostnames = [\"go.corpus.test\"]\n"
                  "backends = [ { service = \"svc-b\" } ]\n\n";
    config += "[[service]]\nname = \"svc-a\"\nendpoints = [\"127.0.0.1:" + std::to_string(alpha_port) + "\"]\n\n"
              "[[service]]\nname = \"svc-b\"\nendpoints = [\"127.0.0.1:" + std::to_string(beta_port) + "\"]\n";
    return config;
}

const CapturedHello& alpha_hello() { return captured_hello("curl-h2.bin"); }      // curl-h2.corpus.test
const CapturedHello& beta_hello() { return captured_hello("go-crypto-tls.bin"); }  // go.corpus.test
const CapturedHello& unrouted_hello() { return captured_hello("python3-ssl.bin"); }  // python.corpus.test

// One routed connection through passgate to an EchoBackend: the hello and `payload` more bytes
// out, all of them echoed back, then FIN both ways. Empty on success, else what went wrong.
std::string echo_through(std::uint16_t port, const std::vector<std::uint8_t>& hello,
                         std::size_t payload, std::uint64_t seed) {
    Socket client = connect_to(port);
    if (!client) return "connect to passgate failed";
    std::vector<std::uint8_t> out = hello;
    out.resize(hello.size() + payload);
    ByteStream(seed).fill(out.data() + hello.size(), payload);
    const Deadline deadline = deadline_in(Millis(10000));
    if (!send_all(client.get(), out, deadline)) return std::string("send failed: ") + std::strerror(errno);
    std::vector<std::uint8_t> back(out.size());
    if (!recv_exact(client.get(), back.data(), back.size(), deadline))
        return std::string("echo incomplete: ") + std::strerror(errno);
    if (back != out) return "echo differs: " + byte_difference(back, out);
    if (::shutdown(client.get(), SHUT_WR) != 0) return std::string("shutdown: ") + std::strerror(errno);
    const CloseObservation close = wait_closed(client.get(), Millis(5000));
    if (!close.closed || close.reset || close.bytes != 0) return "no clean close after the echo";
    return {};
}

// A connection passgate must close before routing: `data` out, then the close with nothing back.
std::string rejected_through(std::uint16_t port, const void* data, std::size_t size,
                             Millis timeout = Millis(5000)) {
    Socket client = connect_to(port);
    if (!client) return "connect to passgate failed";
    if (!send_all(client.get(), data, size, deadline_in(Millis(2000)))) return "send failed";
    const CloseObservation close = wait_closed(client.get(), timeout);
    if (!close.closed) return "not closed within " + std::to_string(timeout.count()) + " ms";
    if (close.bytes != 0) return std::to_string(close.bytes) + " bytes came back";
    return {};
}

std::string not_tls_through(std::uint16_t port) {
    const std::string request = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    return rejected_through(port, request.data(), request.size());
}
std::string no_route_through(std::uint16_t port) {
    return rejected_through(port, unrouted_hello().bytes.data(), unrouted_hello().bytes.size());
}
// Half a hello, then silence: closed by client_hello_timeout (300ms).
std::string timeout_through(std::uint16_t port) {
    const CapturedHello& hello = alpha_hello();
    return rejected_through(port, hello.bytes.data(), hello.bytes.size() / 2);
}

// Every connection passgate accepted so far (`total`) has been closed and counted: the closes
// show in passgate_downstream_connections_closed_total and none is active. Counters of a
// connection are final once it is closed, so exact values can be read after this.
bool settled(std::uint16_t admin_port, double total, Millis timeout = Millis(10000)) {
    Exposition last;
    const bool done = wait_until(
        [&] {
            last = scrape(admin_port);
            return last.status == 200 && last.value("passgate_downstream_connections_closed_total") == total &&
                   last.value("passgate_downstream_connections_active") == 0;
        },
        timeout, Millis(20));
    if (!done)
        UNSCOPED_INFO("passgate did not settle at " << total << " closed connections: closed="
                      << last.value("passgate_downstream_connections_closed_total") << " active="
                      << last.value("passgate_downstream_connections_active"));
    return done;
}

// Runs `command` (a shell line) in `dir`; status and combined output.
RunResult shell(const TempDir& dir, const std::string& name, const std::string& command) {
    return run({"/bin/sh", "-c", "exec " + command + " 2>&1"}, dir, name, Millis(30000));
}

// promtool's `check metrics` on `text` (it reads stdin).
RunResult promtool_check(const TempDir& dir, const std::string& name, const std::string& text) {
    write_file(dir.file(name + ".txt"), text);
    return shell(dir, name, std::string(promtool_path) + " check metrics < " + name + ".txt");
}

}  // namespace

// ---- a. promtool on a live scrape ----------------------------------------------------------------

TEST_CASE("metrics: promtool accepts a live scrape after routed and rejected traffic; OpenMetrics "
          "on request", "[integration][metrics]") {
    INFO("promtool comes with Debian's prometheus package (apt-get install prometheus)");
    REQUIRE(std::filesystem::exists(promtool_path));
    TempDir dir;
    EchoBackend alpha_backend;
    EchoBackend beta_backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {routes_config("@ADMIN@", port, alpha_backend.port(), beta_backend.port(), true, true), {}, 2});
    REQUIRE(passgate.wait_ready());

    // 5 routed to alpha, 3 to beta, 2 not TLS, 2 without a route, 1 hello timeout.
    for (int i = 0; i < 5; ++i) CHECK(echo_through(port, alpha_hello().bytes, 100 * i, i) == "");
    for (int i = 0; i < 3; ++i) CHECK(echo_through(port, beta_hello().bytes, 1000 + i, 100 + i) == "");
    for (int i = 0; i < 2; ++i) CHECK(not_tls_through(port) == "");
    for (int i = 0; i < 2; ++i) CHECK(no_route_through(port) == "");
    CHECK(timeout_through(port) == "");
    REQUIRE(settled(passgate.admin_port(), 13));

    // The text format (what an Accept-less scraper and promtool get).
    const Exposition text = scrape(passgate.admin_port());
    INFO("scrape:\n" << text.body);
    REQUIRE(text.status == 200);
    CHECK(text.content_type.rfind("text/plain; version=0.0.4", 0) == 0);
    CHECK(text.problems.empty());
    CHECK(text.untyped_samples().empty());
    CHECK(text.value("passgate_downstream_connections_total", {{"listener", "tls"}, {"route", "alpha"}}) == 5);
    CHECK(text.value("passgate_downstream_connections_total", {{"listener", "tls"}, {"route", "beta"}}) == 3);
    CHECK(text.value("passgate_client_hello_rejected_total", {{"listener", "tls"}, {"reason", "not_tls"}}) == 2);
    CHECK(text.value("passgate_client_hello_rejected_total", {{"listener", "tls"}, {"reason", "no_route"}}) == 2);
    CHECK(text.value("passgate_client_hello_rejected_total", {{"listener", "tls"}, {"reason", "timeout"}}) == 1);
    CHECK(text.value("passgate_client_hello_rejected_total") == 5);
    for (const char* family : {"passgate_downstream_connections_total", "passgate_downstream_connections_active",
                               "passgate_client_hello_rejected_total", "passgate_client_hello_bytes",
                               "passgate_client_hello_duration_seconds", "passgate_upstream_connections_total",
                               "passgate_upstream_connect_failures_total",
                               "passgate_upstream_connect_duration_seconds", "passgate_bytes_total",
                               "passgate_config_reloads_total",
                               "passgate_config_last_reload_success_timestamp_seconds",
                               "passgate_config_hash_info", "passgate_pipes_in_use", "passgate_pipe_pool_size",
                               "passgate_build_info", "process_cpu_seconds_total", "process_open_fds",
                               "process_resident_memory_bytes"}) {
        INFO("family " << family);
        CHECK(text.types.count(family) == 1);
    }

    const RunResult lint = promtool_check(dir, "promtool-text", text.body);
    {
        INFO("promtool check metrics:\n" << lint.out);
        REQUIRE(lint.status.has_value());
        CHECK(*lint.status == 0);
    }

    // OpenMetrics when asked for, both as a bare type and as Prometheus itself asks.
    for (const std::string& accept :
         {std::string("application/openmetrics-text; version=1.0.0"),
          std::string("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                      "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")}) {
        INFO("Accept: " << accept);
        const Exposition open = scrape(passgate.admin_port(), accept);
        INFO("scrape:\n" << open.body);
        REQUIRE(open.status == 200);
        CHECK(open.content_type.rfind("application/openmetrics-text; version=1.0.0", 0) == 0);
        CHECK(open.body.ends_with("\n# EOF\n"));
        CHECK(open.body.find("# EOF") == open.body.size() - 6);  // once, last
        CHECK(open.problems.empty());
        CHECK(open.untyped_samples().empty());
        // Counter families are named without "_total" on TYPE lines; samples keep it.
        CHECK(open.types.count("passgate_downstream_connections") == 1);
        CHECK(open.types.count("passgate_downstream_connections_total") == 0);
        // Same counters as the text scrape (no traffic in between).
        CHECK(open.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 5);
        CHECK(open.value("passgate_downstream_connections_total", {{"route", "beta"}}) == 3);
        CHECK(open.value("passgate_client_hello_rejected_total", {{"reason", "not_tls"}}) == 2);
        CHECK(open.value("passgate_client_hello_rejected_total", {{"reason", "no_route"}}) == 2);
        CHECK(open.value("passgate_client_hello_rejected_total", {{"reason", "timeout"}}) == 1);
        CHECK(open.value("passgate_bytes_total") == text.value("passgate_bytes_total"));
    }
    // Plain text when the scraper names only the text format.
    CHECK(scrape(passgate.admin_port(), "text/plain;version=0.0.4").content_type.rfind("text/plain", 0) == 0);

    // promtool `check metrics` parses the text format only (2.42 in Debian 12 reports every
    // OpenMetrics counter as "no help text"): probe it with a minimal valid OpenMetrics text and
    // lint the real body only if the probe passes. The OpenMetrics parser of a real Prometheus
    // server checks the body in the next test (Prometheus asks for OpenMetrics first).
    const RunResult probe = promtool_check(dir, "promtool-probe",
                                           "# HELP probe_events Events.\n# TYPE probe_events counter\n"
                                           "probe_events_total 1\n# EOF\n");
    if (probe.status == 0) {
        const Exposition open = scrape(passgate.admin_port(), "application/openmetrics-text; version=1.0.0");
        const RunResult open_lint = promtool_check(dir, "promtool-openmetrics", open.body);
        INFO("promtool check metrics (OpenMetrics):\n" << open_lint.out);
        CHECK(open_lint.status == 0);
    } else {
        WARN("promtool check metrics reads only the text format; OpenMetrics lint skipped (probe: "
             << probe.out << ")");
    }
    stop_and_check(passgate);
}

// ---- b. A real Prometheus server ------------------------------------------------------------------

TEST_CASE("metrics: a real Prometheus server scrapes passgate and its query API returns the "
          "exact connections per route and rejects per reason",
          "[integration][metrics][prometheus]") {
    INFO("prometheus comes with Debian's prometheus package (apt-get install prometheus)");
    REQUIRE(std::filesystem::exists(prometheus_path));
    TempDir dir;
    EchoBackend alpha_backend;
    EchoBackend beta_backend;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {routes_config("@ADMIN@", port, alpha_backend.port(), beta_backend.port(), true, true), {}, 2});
    REQUIRE(passgate.wait_ready());
    PrometheusServer prometheus(dir, passgate.admin_port());
    {
        INFO("prometheus stderr:\n" << prometheus.log_tail());
        REQUIRE(prometheus.wait_ready(Millis(30000)));
    }

    // Prometheus hands static targets to the scrape manager after its discovery delay (~5 s):
    // wait for a successful scrape before any traffic, so the series exist from zero on.
    std::string error;
    const bool scraping = wait_until(
        [&] {
            const auto up = prometheus.query("up{job=\"passgate\"}", error);
            return up && up->size() == 1 && (*up)[0].value == 1;
        },
        Millis(30000), Millis(250));
    {
        INFO("last query error: " << error << "\nprometheus stderr:\n" << prometheus.log_tail());
        REQUIRE(scraping);
    }

    // 37 connections to alpha and 23 to beta, interleaved; then 3 not TLS, 2 without a route and
    // 1 hello timeout. The payload differs per connection so that byte counts are exact sums.
    constexpr int alpha_count = 37;
    constexpr int beta_count = 23;
    std::uint64_t alpha_bytes = 0;
    std::uint64_t beta_bytes = 0;
    int alpha_done = 0;
    int beta_done = 0;
    for (int i = 0; alpha_done < alpha_count || beta_done < beta_count; ++i) {
        const bool to_alpha = alpha_done < alpha_count && (beta_done >= beta_count || i % 3 != 2);
        const CapturedHello& hello = to_alpha ? alpha_hello() : beta_hello();
        const std::size_t payload = 10 + static_cast<std::size_t>(i) * 13;
        INFO("connection " << i << (to_alpha ? " to alpha" : " to beta"));
        REQUIRE(echo_through(port, hello.bytes, payload, 1000 + i) == "");
        (to_alpha ? alpha_bytes : beta_bytes) += hello.bytes.size() + payload;
        ++(to_alpha ? alpha_done : beta_done);
    }
    for (int i = 0; i < 3; ++i) CHECK(not_tls_through(port) == "");
    for (int i = 0; i < 2; ++i) CHECK(no_route_through(port) == "");
    CHECK(timeout_through(port) == "");
    constexpr int total = alpha_count + beta_count + 3 + 2 + 1;
    REQUIRE(settled(passgate.admin_port(), total));
    const double traffic_done = unix_now();

    // Wait until Prometheus has scraped after the traffic (its `up` sample is written after the
    // scrape's samples, with the scrape's start time) and two reads in a row agree.
    const std::string per_route = "sum by (route) (passgate_downstream_connections_total)";
    std::optional<std::map<std::string, double>> routes;
    double last_scrape = 0;
    const bool stable = wait_until(
        [&] {
            const auto stamp = prometheus.query("timestamp(up{job=\"passgate\"})", error);
            if (!stamp || stamp->size() != 1) return false;
            last_scrape = (*stamp)[0].value;
            if (last_scrape <= traffic_done) return false;
            auto now = prometheus.query_by(per_route, "route", error);
            if (!now) return false;
            const bool same = routes && *routes == *now;
            routes = std::move(now);
            return same;
        },
        Millis(30000), Millis(250));
    INFO("last scrape at " << std::fixed << last_scrape << ", traffic done at " << traffic_done
                           << "; last query error: " << error << "\nprometheus stderr:\n"
                           << prometheus.log_tail());
    REQUIRE(stable);
    REQUIRE(routes);
    CHECK(routes->size() == 2);
    CHECK(at(*routes, "alpha") == alpha_count);
    CHECK(at(*routes, "beta") == beta_count);

    const auto rejected = prometheus.query_by("sum by (reason) (passgate_client_hello_rejected_total)", "reason", error);
    REQUIRE(rejected);
    CHECK(at(*rejected, "not_tls") == 3);
    CHECK(at(*rejected, "no_route") == 2);
    CHECK(at(*rejected, "timeout") == 1);
    for (const char* reason : {"malformed", "too_large", "no_sni", "client_closed"}) {
        INFO("reason " << reason);
        CHECK(at(*rejected, reason) == 0);
    }

    const auto services = prometheus.query_by("sum by (service) (passgate_upstream_connections_total)", "service", error);
    REQUIRE(services);
    CHECK(at(*services, "svc-a") == alpha_count);
    CHECK(at(*services, "svc-b") == beta_count);

    // The echo makes both directions equal; the hello counts as client_to_backend.
    for (const char* direction : {"client_to_backend", "backend_to_client"}) {
        INFO("direction " << direction);
        const auto bytes = prometheus.query_by(
            std::string("sum by (route) (passgate_bytes_total{direction=\"") + direction + "\"})", "route", error);
        REQUIRE(bytes);
        CHECK(at(*bytes, "alpha") == static_cast<double>(alpha_bytes));
        CHECK(at(*bytes, "beta") == static_cast<double>(beta_bytes));
    }

    // Both workers took connections (SO_REUSEPORT spreads them), and every one is counted.
    const auto workers = prometheus.query_by("sum by (worker) (passgate_worker_accepted_total)", "worker", error);
    REQUIRE(workers);
    CHECK(workers->size() == 2);
    CHECK(at(*workers, "0") > 0);
    CHECK(at(*workers, "1") > 0);
    CHECK(at(*workers, "0") + at(*workers, "1") == total);

    // The histograms and process metrics made it through Prometheus's parser too.
    const auto connect_count = prometheus.query_by(
        "sum by (service) (passgate_upstream_connect_duration_seconds_count)", "service", error);
    REQUIRE(connect_count);
    CHECK(at(*connect_count, "svc-a") == alpha_count);
    CHECK(at(*connect_count, "svc-b") == beta_count);
    const auto p99 = prometheus.query(
        "histogram_quantile(0.99, sum by (le) (passgate_upstream_connect_duration_seconds_bucket))", error);
    REQUIRE(p99);
    REQUIRE(p99->size() == 1);
    CHECK((*p99)[0].value > 0);
    CHECK((*p99)[0].value <= 10);
    const auto rss = prometheus.query("process_resident_memory_bytes{job=\"passgate\"}", error);
    REQUIRE(rss);
    REQUIRE(rss->size() == 1);
    CHECK((*rss)[0].value > 0);
    const auto up = prometheus.query("up{job=\"passgate\"}", error);
    REQUIRE(up);
    REQUIRE(up->size() == 1);
    CHECK((*up)[0].value == 1);

    const int prometheus_status = prometheus.process().terminate(Millis(15000));
    {
        INFO("prometheus stderr:\n" << prometheus.log_tail());
        CHECK(prometheus_status == 0);
    }
    stop_and_check(passgate);
}

// ---- c. Exact under concurrency across workers ------------------------------------------------

TEST_CASE("metrics: 400 connections from 8 threads across 2 workers are counted exactly, bytes "
          "each way too", "[integration][metrics]") {
    // The backend answers each connection with a different byte count than it received (2n + 11
    // for n received, hello included), so the two directions cannot be swapped unnoticed.
    const auto reply_size = [](std::uint64_t received) { return 2 * received + 11; };
    TcpServer backend([&](int fd, std::size_t) {
        const Deadline deadline = deadline_in(Millis(60000));
        std::uint64_t received = 0;
        std::vector<std::uint8_t> buffer(64 * 1024);
        for (int round = 0; round < 1000000; ++round) {
            const std::optional<std::size_t> got = recv_some(fd, buffer.data(), buffer.size(), deadline);
            if (!got) return;
            if (*got == 0) break;
            received += *got;
        }
        std::uint64_t left = reply_size(received);
        std::fill(buffer.begin(), buffer.end(), std::uint8_t{0x5a});
        while (left > 0) {
            const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
            if (!send_all(fd, buffer.data(), chunk, deadline)) return;
            left -= chunk;
        }
        ::shutdown(fd, SHUT_WR);
    });
    TempDir dir;
    const std::uint16_t port = free_port();
    Passgate passgate(dir, {routes_config("@ADMIN@", port, backend.port(), backend.port(), true, false), {}, 2});
    REQUIRE(passgate.wait_ready());

    constexpr int threads = 8;
    constexpr int per_thread = 50;
    constexpr int connections = threads * per_thread;
    const std::vector<std::uint8_t>& hello = alpha_hello().bytes;
    std::mutex mutex;
    std::vector<std::string> failures;
    std::uint64_t up_total = 0;
    std::uint64_t down_total = 0;
    std::vector<std::thread> clients;
    for (int t = 0; t < threads; ++t) {
        clients.emplace_back([&, t] {
            std::uint64_t up = 0;
            std::uint64_t down = 0;
            std::vector<std::string> problems;
            for (int i = 0; i < per_thread; ++i) {
                const std::size_t payload = 1 + static_cast<std::size_t>(i * 7919 + t * 104729) % 20000;
                const std::string problem = [&]() -> std::string {
                    Socket client = connect_to(port);
                    if (!client) return "connect failed";
                    std::vector<std::uint8_t> out = hello;
                    out.resize(hello.size() + payload);
                    ByteStream(static_cast<std::uint64_t>(t * 1000 + i)).fill(out.data() + hello.size(), payload);
                    const Deadline deadline = deadline_in(Millis(30000));
                    if (!send_all(client.get(), out, deadline)) return "send failed";
                    if (::shutdown(client.get(), SHUT_WR) != 0) return "shutdown failed";
                    const CloseObservation close = wait_closed(client.get(), Millis(30000));
                    if (!close.closed || close.reset) return "no clean close";
                    if (close.bytes != reply_size(out.size()))
                        return "got " + std::to_string(close.bytes) + " reply bytes, expected " +
                               std::to_string(reply_size(out.size()));
                    up += out.size();
                    down += close.bytes;
                    return {};
                }();
                if (!problem.empty())
                    problems.push_back("thread " + std::to_string(t) + " connection " + std::to_string(i) + ": " + problem);
            }
            std::lock_guard lock(mutex);
            up_total += up;
            down_total += down;
            failures.insert(failures.end(), problems.begin(), problems.end());
        });
    }
    for (std::thread& client : clients) client.join();
    {
        std::ostringstream list;
        for (std::size_t i = 0; i < failures.size() && i < 20; ++i) list << failures[i] << '\n';
        INFO(failures.size() << " failures:\n" << list.str() << "passgate stderr:\n" << passgate.stderr_text());
        REQUIRE(failures.empty());
    }
    REQUIRE(settled(passgate.admin_port(), connections, Millis(20000)));

    const Exposition m = scrape(passgate.admin_port());
    INFO("scrape:\n" << m.body);
    REQUIRE(m.status == 200);
    CHECK(m.value("passgate_downstream_connections_total", {{"listener", "tls"}, {"route", "alpha"}}) == connections);
    CHECK(m.value("passgate_downstream_connections_closed_total", {{"reason", "completed"}}) == connections);
    CHECK(m.value("passgate_client_hello_rejected_total") == 0);
    CHECK(m.value("passgate_bytes_total", {{"route", "alpha"}, {"direction", "client_to_backend"}}) ==
          static_cast<double>(up_total));
    CHECK(m.value("passgate_bytes_total", {{"route", "alpha"}, {"direction", "backend_to_client"}}) ==
          static_cast<double>(down_total));
    const std::string endpoint = "127.0.0.1:" + std::to_string(backend.port());
    CHECK(m.value("passgate_upstream_connections_total", {{"service", "svc-a"}, {"endpoint", endpoint}}) == connections);
    CHECK(m.value("passgate_upstream_connect_failures_total") == 0);
    CHECK(m.value("passgate_upstream_connect_duration_seconds_count", {{"service", "svc-a"}}) == connections);
    CHECK(m.value("passgate_upstream_connect_duration_seconds_bucket", {{"service", "svc-a"}, {"le", "+Inf"}}) == connections);
    CHECK(m.value("passgate_client_hello_bytes_count", {{"listener", "tls"}}) == connections);
    // Every hello is the same single-record capture: the sum is exact.
    CHECK(m.value("passgate_client_hello_bytes_sum", {{"listener", "tls"}}) ==
          static_cast<double>(connections) * static_cast<double>(hello.size()));
    CHECK(m.value("passgate_client_hello_duration_seconds_count", {{"listener", "tls"}}) == connections);
    // Both workers took a share; together they accepted exactly the connections made.
    const double worker0 = m.value("passgate_worker_accepted_total", {{"worker", "0"}});
    const double worker1 = m.value("passgate_worker_accepted_total", {{"worker", "1"}});
    CHECK(worker0 > 0);
    CHECK(worker1 > 0);
    CHECK(worker0 + worker1 == connections);
    CHECK(m.value("passgate_downstream_connections_active", {{"listener", "tls"}}) == 0);
    // Pipes are published by each worker after its batch of events: back to none in use.
    Exposition pipes;
    CHECK(wait_until([&] {
        pipes = scrape(passgate.admin_port());
        return pipes.value("passgate_pipes_in_use") == 0;
    }, Millis(5000), Millis(20)));
    CHECK(pipes.value("passgate_pipe_pool_size") >= 0);
    backend.stop();
    stop_and_check(passgate);
}

// ---- d. Reloads keep counters ------------------------------------------------------------------

TEST_CASE("metrics: a reload (SIGHUP) keeps counters; success and failure are counted; a bad "
          "config keeps the old one serving", "[integration][metrics][reload]") {
    TempDir dir;
    EchoBackend alpha_backend;
    EchoBackend beta_backend;
    const std::uint16_t port = free_port();
    const auto config = [&](const std::string& admin, bool alpha, bool beta) {
        return routes_config(admin, port, alpha_backend.port(), beta_backend.port(), alpha, beta);
    };
    Passgate passgate(dir, {config("@ADMIN@", true, false), {}, 2});
    REQUIRE(passgate.wait_ready());
    const std::string admin = "127.0.0.1:" + std::to_string(passgate.admin_port());
    int closed = 0;  // connections made so far (all are counted as closed at the end)

    for (int i = 0; i < 10; ++i, ++closed) CHECK(echo_through(port, alpha_hello().bytes, 50, i) == "");
    REQUIRE(settled(passgate.admin_port(), closed));
    const Exposition before = scrape(passgate.admin_port());
    REQUIRE(before.status == 200);
    CHECK(before.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 10);
    CHECK_FALSE(before.has("passgate_downstream_connections_total", {{"route", "beta"}}));
    CHECK(before.value("passgate_config_reloads_total", {{"result", "success"}}) == 0);
    CHECK(before.value("passgate_config_reloads_total", {{"result", "failure"}}) == 0);
    const double started_at = before.value("passgate_config_last_reload_success_timestamp_seconds");
    CHECK(started_at > 1e9);
    const std::set<std::string> first_hash = before.label_values("passgate_config_hash_info", "hash");
    CHECK(first_hash.size() == 1);
    const double alpha_bytes_before = before.value("passgate_bytes_total", {{"route", "alpha"}});

    // Reads /metrics until `predicate` holds (bounded).
    const auto wait_metrics = [&](const std::function<bool(const Exposition&)>& predicate) {
        Exposition last;
        const bool ok = wait_until([&] {
            last = scrape(passgate.admin_port());
            return last.status == 200 && predicate(last);
        }, Millis(5000), Millis(20));
        if (!ok) UNSCOPED_INFO("last scrape:\n" << last.body);
        return ok;
    };
    const auto reloads = [](const Exposition& m, const char* result) {
        return m.value("passgate_config_reloads_total", {{"result", result}});
    };

    // 1. A reload that adds route beta.
    std::this_thread::sleep_for(Millis(1100));  // so that a new success timestamp differs
    write_file(passgate.config_path(), config(admin, true, true));
    passgate.process().send_signal(SIGHUP);
    REQUIRE(wait_metrics([&](const Exposition& m) { return reloads(m, "success") == 1; }));
    CHECK(passgate.wait_for_log("configuration reloaded"));
    const Exposition reloaded = scrape(passgate.admin_port());
    CHECK(reloaded.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 10);
    CHECK(reloaded.value("passgate_downstream_connections_total", {{"route", "beta"}}) == 0);
    CHECK(reloaded.value("passgate_bytes_total", {{"route", "alpha"}}) == alpha_bytes_before);
    CHECK(reloads(reloaded, "failure") == 0);
    CHECK(reloaded.value("passgate_config_last_reload_success_timestamp_seconds") > started_at);
    const std::set<std::string> second_hash = reloaded.label_values("passgate_config_hash_info", "hash");
    CHECK(second_hash.size() == 1);
    CHECK(second_hash != first_hash);

    // The workers switch to the new snapshot asynchronously: a beta connection that still met
    // the old config is closed as no_route. Count both outcomes until 5 in a row are routed.
    int beta_routed = 0;
    int beta_unrouted = 0;
    int streak = 0;
    for (int probe = 0; probe < 200 && streak < 5; ++probe, ++closed) {
        if (echo_through(port, beta_hello().bytes, 20, 500 + probe).empty()) {
            ++beta_routed;
            ++streak;
        } else {
            ++beta_unrouted;
            streak = 0;
        }
    }
    REQUIRE(streak == 5);
    for (int i = 0; i < 7; ++i, ++closed) CHECK(echo_through(port, alpha_hello().bytes, 50, 100 + i) == "");
    REQUIRE(settled(passgate.admin_port(), closed));
    const Exposition after = scrape(passgate.admin_port());
    INFO("beta probes: " << beta_routed << " routed, " << beta_unrouted << " unrouted");
    CHECK(after.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 17);
    CHECK(after.value("passgate_downstream_connections_total", {{"route", "beta"}}) == beta_routed);
    CHECK(after.value("passgate_client_hello_rejected_total", {{"reason", "no_route"}}) == beta_unrouted);
    CHECK(after.value("passgate_upstream_connections_total", {{"service", "svc-b"}}) == beta_routed);

    // 2. A bad config: counted as a failure, nothing else changes, the old config keeps serving.
    const double success_time = after.value("passgate_config_last_reload_success_timestamp_seconds");
    write_file(passgate.config_path(), "[[listener]\nthis is not TOML\n");
    passgate.process().send_signal(SIGHUP);
    REQUIRE(wait_metrics([&](const Exposition& m) { return reloads(m, "failure") == 1; }));
    CHECK(passgate.wait_for_log("configuration reload rejected"));
    for (int i = 0; i < 4; ++i, ++closed) CHECK(echo_through(port, alpha_hello().bytes, 30, 200 + i) == "");
    for (int i = 0; i < 3; ++i, ++closed) CHECK(echo_through(port, beta_hello().bytes, 30, 300 + i) == "");
    REQUIRE(settled(passgate.admin_port(), closed));
    const Exposition failed = scrape(passgate.admin_port());
    CHECK(reloads(failed, "success") == 1);
    CHECK(reloads(failed, "failure") == 1);
    CHECK(failed.value("passgate_config_last_reload_success_timestamp_seconds") == success_time);
    CHECK(failed.label_values("passgate_config_hash_info", "hash") == second_hash);
    CHECK(failed.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 21);
    CHECK(failed.value("passgate_downstream_connections_total", {{"route", "beta"}}) == beta_routed + 3);

    // 3. Route alpha removed, then added back: its series may be hidden meanwhile, but its
    // counter never goes backwards.
    write_file(passgate.config_path(), config(admin, false, true));
    passgate.process().send_signal(SIGHUP);
    REQUIRE(wait_metrics([&](const Exposition& m) { return reloads(m, "success") == 2; }));
    const Exposition removed = scrape(passgate.admin_port());
    if (removed.has("passgate_downstream_connections_total", {{"route", "alpha"}}))
        CHECK(removed.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 21);
    write_file(passgate.config_path(), config(admin, true, true));
    passgate.process().send_signal(SIGHUP);
    REQUIRE(wait_metrics([&](const Exposition& m) { return reloads(m, "success") == 3; }));
    // Route alpha is back once a connection is routed by it again (workers switch shortly after).
    int alpha_routed = 0;
    int alpha_unrouted = 0;
    for (int probe = 0; probe < 200 && alpha_routed < 3; ++probe, ++closed)
        ++(echo_through(port, alpha_hello().bytes, 10, 700 + probe).empty() ? alpha_routed : alpha_unrouted);
    REQUIRE(alpha_routed == 3);
    REQUIRE(settled(passgate.admin_port(), closed));
    const Exposition back = scrape(passgate.admin_port());
    CHECK(back.value("passgate_downstream_connections_total", {{"route", "alpha"}}) == 21 + alpha_routed);
    CHECK(back.value("passgate_client_hello_rejected_total", {{"reason", "no_route"}}) ==
          beta_unrouted + alpha_unrouted);
    CHECK(reloads(back, "failure") == 1);
    stop_and_check(passgate);
}
