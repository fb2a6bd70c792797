// The documentation checked against the binary: every key the config reader accepts is in
// config/README.md's key tables and in its complete example (which passes --check); every
// "allowed keys" list quoted there is the program's own; its access log examples have the fields
// of real lines; the cardinality formula of metrics/README.md matches a live scrape; the shipped
// examples pass --check.
//
// The keys are taken from the reader itself, as a user meets them: a config with an unknown key
// `zz_unknown` in a table makes `passgate --check` name the table's allowed keys.

#include "tests/support/net.h"
#include "tests/support/passgate.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <cctype>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace integration;

namespace {

std::string source_file(const std::string& relative) {
    return read_file(required_env("PASSGATE_SOURCE_ROOT") + "/" + relative);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
        const auto first = item.find_first_not_of(' ');
        const auto last = item.find_last_not_of(" \r");
        if (first != std::string::npos) items.push_back(item.substr(first, last - first + 1));
    }
    return items;
}

// ---- The keys the reader accepts --------------------------------------------------------------

// A valid config whose pieces a probe extends: `top` before the listener, `listener`, `route`,
// `backend` and `endpoint` inside those tables, `service` inside the service and `after` last
// (sub-tables of the service).
struct ProbeParts {
    std::string top, listener, route, backend, endpoint, service, after;
};

std::string probe_config(const ProbeParts& parts) {
    return parts.top +
           "\n[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:6443\"\n" + parts.listener +
           "\n[[route]]\nname = \"r\"\nlisteners = [\"l\"]\nhostnames = [\"a.example.com\"]\n"
           "backends = [ { service = \"s\"" + parts.backend + " } ]\n" + parts.route +
           "\n[[service]]\nname = \"s\"\n" +
           (parts.service.find("kubernetes") == std::string::npos
                ? "endpoints = [ { address = \"127.0.0.1:8443\"" + parts.endpoint + " } ]\n"
                : std::string()) +
           parts.service + parts.after;
}

// Every table of the config, by the path the docs use, with a probe that puts `zz_unknown` in it.
const std::map<std::string, ProbeParts>& probes() {
    static const std::map<std::string, ProbeParts> table = {
        {"root", {"zz_unknown = 1\n", "", "", "", "", "", ""}},
        {"runtime", {"[runtime]\nzz_unknown = 1\n", "", "", "", "", "", ""}},
        {"admin", {"[admin]\nzz_unknown = 1\n", "", "", "", "", "", ""}},
        {"access_log", {"[access_log]\nzz_unknown = 1\n", "", "", "", "", "", ""}},
        {"dns", {"[dns]\nzz_unknown = 1\n", "", "", "", "", "", ""}},
        {"kubernetes", {"[kubernetes]\nzz_unknown = 1\n", "", "", "", "", "", ""}},
        {"gateway_api", {"[gateway_api]\nzz_unknown = 1\n", "", "", "", "", "", ""}},
        {"listener", {"", "zz_unknown = 1\n", "", "", "", "", ""}},
        {"route", {"", "", "zz_unknown = 1\n", "", "", "", ""}},
        {"route.backends", {"", "", "", ", zz_unknown = 1", "", "", ""}},
        {"service", {"", "", "", "", "", "zz_unknown = 1\n", ""}},
        {"service.endpoints", {"", "", "", "", ", zz_unknown = 1", "", ""}},
        {"service.health_check", {"", "", "", "", "", "", "[service.health_check]\nzz_unknown = 1\n"}},
        {"service.outlier_detection",
         {"", "", "", "", "", "", "[service.outlier_detection]\nzz_unknown = 1\n"}},
        {"service.kubernetes",
         {"[kubernetes]\napi_server = \"https://127.0.0.1:6443\"\n", "", "", "", "",
          "kubernetes = { namespace = \"default\", service = \"s\", port = 443, zz_unknown = 1 }\n", ""}},
    };
    return table;
}

// The "allowed keys: a, b, c" list of the one error line in `text`; empty when there is none.
std::vector<std::string> allowed_keys_in(const std::string& text) {
    const std::string marker = "; allowed keys: ";
    const auto at = text.find(marker);
    if (at == std::string::npos) return {};
    const auto end = text.find('\n', at);
    return split_list(text.substr(at + marker.size(), end == std::string::npos ? end : end - at - marker.size()));
}

// The keys of each table, in the reader's order, from `passgate --check` on each probe.
const std::map<std::string, std::vector<std::string>>& reader_keys() {
    static const std::map<std::string, std::vector<std::string>> keys = [] {
        std::map<std::string, std::vector<std::string>> out;
        TempDir dir;
        for (const auto& [path, parts] : probes()) {
            write_file(dir.file("probe.toml"), probe_config(parts));
            const RunResult check = run({passgate_binary(), "--check", "--config", dir.file("probe.toml")}, dir, "probe");
            INFO("table " << path << "\nconfig:\n" << probe_config(parts) << "\nstderr: " << check.err);
            REQUIRE(check.status == 1);
            // The error names the key in this table (a probe that failed elsewhere would not).
            const std::string error = std::regex_replace(check.err, std::regex(R"(\[\d+\])"), "");
            REQUIRE(error.find(": " + (path == "root" ? std::string() : path + ".") + "zz_unknown: unknown key") !=
                    std::string::npos);
            out[path] = allowed_keys_in(check.err);
            REQUIRE(!out[path].empty());
        }
        return out;
    }();
    return keys;
}

// ---- config/README.md ---------------------------------------------------------------------------

// The key tables of config/README.md: each follows a `<!-- keys: PATH -->` line; the key is the
// first column's backquoted text. Root keys are the sections' headings (`## [x]`, `## [[x]]`).
std::map<std::string, std::vector<std::string>> documented_keys(const std::string& readme) {
    std::map<std::string, std::vector<std::string>> out;
    const std::regex marker(R"(^<!-- keys: ([a-z_.]+) -->\s*$)");
    const std::regex heading(R"(^## `\[\[?([a-z_]+)\]\]?`\s*$)");
    const std::regex row(R"(^\| `([a-z_]+)` \|)");
    std::string current;
    bool in_table = false;
    for (const std::string& line : lines_of(readme)) {
        std::smatch match;
        if (std::regex_match(line, match, heading)) out["root"].push_back(match[1]);
        if (std::regex_match(line, match, marker)) {
            current = match[1];
            REQUIRE(out.count(current) == 0);  // one table per config table
            out[current];
            in_table = false;
            continue;
        }
        if (current.empty()) continue;
        if (line.starts_with("|")) {
            in_table = true;
            if (std::regex_search(line, match, row)) out[current].push_back(match[1]);
        } else if (in_table || !line.empty()) {
            current.clear();  // the table (or the line after the marker) ended
        }
    }
    return out;
}

// Every `| Key |` table in the README has a marker (so none is left unchecked).
int unmarked_key_tables(const std::string& readme) {
    int unmarked = 0;
    std::string previous;
    for (const std::string& line : lines_of(readme)) {
        if (line.starts_with("| Key |") && !previous.starts_with("<!-- keys: ")) ++unmarked;
        previous = line;
    }
    return unmarked;
}

// The first ```toml block after `after` in `text`.
std::string toml_block_after(const std::string& text, const std::string& after) {
    const auto anchor = text.find(after);
    REQUIRE(anchor != std::string::npos);
    const auto start = text.find("```toml\n", anchor);
    REQUIRE(start != std::string::npos);
    const auto body = start + 8;
    const auto end = text.find("\n```", body);
    REQUIRE(end != std::string::npos);
    return text.substr(body, end - body + 1);
}

// The keys a TOML text sets, per table path (`[[listener]]` -> "listener", `[service.health_check]`
// -> "service.health_check", the keys of an inline table in key K of table T -> "T.K"). A key in
// a commented-out line (`# api_server = "..."`: an alternative to a key of the same table) counts:
// some keys exclude each other. Good enough for the documentation's own example: one key per line,
// inline tables on the line of their key.
std::map<std::string, std::set<std::string>> keys_in_example(const std::string& toml) {
    std::map<std::string, std::set<std::string>> out;
    const std::regex header(R"(^\[\[?([a-z_.]+)\]\]?\s*(#.*)?$)");
    const std::regex assignment(R"(^(# ?)?([a-z_]+) = (.*)$)");
    const std::regex inline_key(R"([{,] *([a-z_]+) =)");
    std::string table = "root";
    for (const std::string& line : lines_of(toml)) {
        std::smatch match;
        if (std::regex_match(line, match, header)) {
            table = match[1];
            const auto dot = table.rfind('.');
            out[dot == std::string::npos ? "root" : table.substr(0, dot)].insert(
                dot == std::string::npos ? table : table.substr(dot + 1));
            continue;
        }
        if (!std::regex_match(line, match, assignment)) continue;
        const std::string key = match[2];
        const std::string value = match[3];
        out[table].insert(key);
        const std::string inner_table = table + "." + key;
        for (std::sregex_iterator it(value.begin(), value.end(), inline_key), end; it != end; ++it)
            out[inner_table].insert((*it)[1]);
    }
    return out;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

std::set<std::string> as_set(const std::vector<std::string>& items) { return {items.begin(), items.end()}; }

// A kubeconfig that --check accepts (no network: only its files and fields are checked).
const char* const kTestKubeconfig =
    "apiVersion: v1\nkind: Config\n"
    "clusters:\n- name: edge\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n"
    "users:\n- name: passgate\n  user:\n    token: test-token\n"
    "contexts:\n- name: edge\n  context:\n    cluster: edge\n    user: passgate\n"
    "current-context: edge\n";

}  // namespace

TEST_CASE("docs: every key the config reader accepts has a row in config/README.md's table for it, and no other",
          "[integration][docs]") {
    const std::string readme = source_file("config/README.md");
    const auto documented = documented_keys(readme);
    CHECK(unmarked_key_tables(readme) == 0);
    for (const auto& [path, keys] : reader_keys()) {
        INFO("table " << path << "; the reader's keys: " << joined(keys));
        REQUIRE(documented.count(path) == 1);
        CHECK(as_set(documented.at(path)) == as_set(keys));
        CHECK(documented.at(path).size() == keys.size());  // no key in two rows
    }
    for (const auto& [path, keys] : documented) {
        INFO("documented table " << path);
        CHECK(reader_keys().count(path) == 1);
    }
}

TEST_CASE("docs: every \"allowed keys\" list quoted in config/README.md is the program's own",
          "[integration][docs]") {
    const std::regex quoted(R"(: ([a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*)\.[a-z_]+: unknown key)");
    int quoted_lists = 0;
    for (const std::string& line : lines_of(source_file("config/README.md"))) {
        std::smatch match;
        if (line.find("; allowed keys: ") == std::string::npos || !std::regex_search(line, match, quoted)) continue;
        ++quoted_lists;
        const std::string path = std::regex_replace(std::string(match[1]), std::regex(R"(\[\d+\])"), "");
        INFO(line);
        REQUIRE(reader_keys().count(path) == 1);
        CHECK(joined(allowed_keys_in(line)) == joined(reader_keys().at(path)));
    }
    CHECK(quoted_lists >= 1);
}

TEST_CASE("docs: config/README.md's complete config has every key and passes --check", "[integration][docs]") {
    const std::string example = toml_block_after(source_file("config/README.md"), "A complete config with every key");
    const auto present = keys_in_example(example);
    for (const auto& [path, keys] : reader_keys()) {
        for (const std::string& key : keys) {
            INFO("table " << path << ", key " << key);
            CHECK((present.count(path) == 1 && present.at(path).count(key) == 1));
        }
    }
    // Its files, relative to the config's folder as the example writes them.
    TempDir dir;
    write_file(dir.file("passgate.toml"), example);
    write_file(dir.file("kubeconfig"), kTestKubeconfig);
    write_file(dir.file("pool.endpoints"), "127.0.0.1:9443\n");
    write_file(dir.file("tenants.hostnames"), "shop.example.com\n*.customers.example.com\n");
    std::filesystem::create_directory(dir.file("gateway"));
    const RunResult check = run({passgate_binary(), "--check", "--config", dir.file("passgate.toml")}, dir, "check");
    INFO("stdout:\n" << check.out << "\nstderr:\n" << check.err);
    CHECK(check.status == 0);
}

// ---- metrics/README.md's cardinality ------------------------------------------------------------

namespace {

// Evaluates a formula of the README: integers, one-letter variables, `+`, `×` (or `*`) and
// parentheses, e.g. `26 × L` or `2 × (E + S)`. An unknown variable or a stray character fails.
class Formula {
public:
    Formula(std::string text, const std::map<char, long>& variables) : text_(std::move(text)), variables_(variables) {}

    long value() {
        const long result = sum();
        skip_spaces();
        if (at_ != text_.size()) throw std::runtime_error("unexpected text at " + text_.substr(at_));
        return result;
    }

private:
    void skip_spaces() {
        while (at_ < text_.size() && text_[at_] == ' ') ++at_;
    }
    bool take(std::string_view token) {
        skip_spaces();
        if (text_.compare(at_, token.size(), token) != 0) return false;
        at_ += token.size();
        return true;
    }
    long sum() {
        long result = product();
        while (take("+")) result += product();
        return result;
    }
    long product() {
        long result = factor();
        while (take("×") || take("*")) result *= factor();
        return result;
    }
    long factor() {
        skip_spaces();
        if (take("(")) {
            const long result = sum();
            if (!take(")")) throw std::runtime_error("missing ) in " + text_);
            return result;
        }
        if (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) {
            long number = 0;
            while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_])))
                number = number * 10 + (text_[at_++] - '0');
            return number;
        }
        if (at_ < text_.size() && variables_.count(text_[at_]) == 1) return variables_.at(text_[at_++]);
        throw std::runtime_error("unknown term at \"" + text_.substr(at_) + "\" in " + text_);
    }

    std::string text_;
    const std::map<char, long>& variables_;
    std::size_t at_ = 0;
};

// The Cardinality section of metrics/README.md.
std::string cardinality_section() {
    const std::string readme = source_file("metrics/README.md");
    const auto start = readme.find("\n## Cardinality\n");
    REQUIRE(start != std::string::npos);
    const auto end = readme.find("\n## ", start + 1);
    return readme.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Its table: family -> formula (`| `family` | `formula` | ... |`).
std::map<std::string, std::string> cardinality_formulas(const std::string& section) {
    std::map<std::string, std::string> out;
    const std::regex row(R"(^\| `([a-z_]+)` \| `([^`]+)` \|)");
    for (const std::string& line : lines_of(section)) {
        std::smatch match;
        if (std::regex_search(line, match, row)) out[match[1]] = match[2];
    }
    return out;
}

// Samples per family of a text-format scrape: each sample counts for the family of the `# TYPE`
// line before it (a histogram's _bucket, _sum and _count included). Families without samples: 0.
std::map<std::string, long> samples_per_family(const std::string& scrape) {
    std::map<std::string, long> out;
    std::string family;
    for (const std::string& line : lines_of(scrape)) {
        if (line.starts_with("# TYPE ")) {
            family = line.substr(7, line.find(' ', 7) - 7);
            out[family];
            continue;
        }
        if (line.empty() || line.starts_with("#")) continue;
        REQUIRE(!family.empty());
        ++out[family];
    }
    return out;
}

struct CardinalityCase {
    std::string name;
    std::string config;  // "@ADMIN@", "@PORT1@", "@PORT2@" replaced
    std::map<char, long> variables;
};

}  // namespace

TEST_CASE("docs: metrics/README.md's cardinality formula gives each family's samples in a live scrape",
          "[integration][docs]") {
    const std::string section = cardinality_section();
    const auto formulas = cardinality_formulas(section);
    REQUIRE(formulas.size() >= 40);

    // Two fixed configs, different in every variable, so that each coefficient counts.
    const CardinalityCase small{
        "one of each, no access log",
        "[access_log]\nenabled = false\n[admin]\naddress = \"@ADMIN@\"\n"
        "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:@PORT1@\"\n"
        "[[route]]\nname = \"r\"\nlisteners = [\"a\"]\nhostnames = [\"a.example.com\"]\nbackends = [ { service = \"s\" } ]\n"
        "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:1\"]\n",
        {{'L', 1}, {'P', 0}, {'A', 1}, {'R', 1}, {'Q', 0}, {'H', 0}, {'S', 1}, {'D', 0}, {'E', 1}, {'W', 1}, {'G', 0}, {'F', 0}}};
    const CardinalityCase large{
        "three listeners (one behind a PROXY balancer, one QUIC), three routes (one with a hostnames_file), a "
        "static and a file service, access log on",
        "[admin]\naddress = \"@ADMIN@\"\n"
        "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:@PORT1@\"\n"
        "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:@PORT2@\"\naccept_proxy_protocol = true\n"
        "trusted_proxies = [\"127.0.0.1\"]\n"
        "[[listener]]\nname = \"q\"\naddress = \"127.0.0.1:@PORT3@\"\nprotocol = \"quic\"\n"
        "[[route]]\nname = \"both\"\nlisteners = [\"a\", \"b\"]\nhostnames = [\"a.example.com\"]\n"
        "backends = [ { service = \"static\" }, { service = \"file\" } ]\n"
        "[[route]]\nname = \"only-a\"\nlisteners = [\"a\", \"q\"]\nhostnames = [\"b.example.com\"]\nbackends = [ { service = \"static\" } ]\n"
        "[[route]]\nname = \"only-b\"\nlisteners = [\"b\"]\nhostnames = [\"c.example.com\"]\n"
        "hostnames_file = \"only-b.hostnames\"\nbackends = [ { service = \"file\" } ]\n"
        "[[service]]\nname = \"static\"\nendpoints = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n"
        "[[service]]\nname = \"file\"\nendpoints_file = \"file.endpoints\"\n",
        {{'L', 3}, {'P', 1}, {'A', 5}, {'R', 3}, {'Q', 1}, {'H', 1}, {'S', 2}, {'D', 1}, {'E', 5}, {'W', 3}, {'G', 1}, {'F', 1}}};

    for (const CardinalityCase& example : {small, large}) {
        INFO(example.name);
        TempDir dir;
        write_file(dir.file("file.endpoints"), "127.0.0.1:3\n127.0.0.1:4\n127.0.0.1:5 weight=2\n");
        write_file(dir.file("only-b.hostnames"), "d.example.com\n*.e.example.com\n");
        std::string config = example.config;
        for (const auto& [placeholder, port] : {std::pair{std::string("@PORT1@"), free_port()},
                                                std::pair{std::string("@PORT2@"), free_port()},
                                                std::pair{std::string("@PORT3@"), free_port()}})
            config = std::regex_replace(config, std::regex(placeholder), std::to_string(port));
        Passgate passgate(dir, {config, {}, static_cast<unsigned>(example.variables.at('W'))});
        REQUIRE(passgate.wait_ready());
        // The series gauge is set by the control thread's first tick.
        REQUIRE(wait_until([&] { return metric_sample(passgate, "passgate_metric_series").has_value(); },
                           Millis(3000), Millis(50)));
        const auto scrape = http_get(passgate.admin_port(), "/metrics");
        REQUIRE(scrape);
        REQUIRE(scrape->status == 200);
        const auto samples = samples_per_family(scrape->body);

        long documented_total = 0;
        for (const auto& [family, formula] : formulas) {
            INFO("family " << family << ": " << formula);
            const long expected = Formula(formula, example.variables).value();
            documented_total += expected;
            // A documented family this build does not have must be one that shows no sample here.
            CHECK((samples.count(family) == 1 ? samples.at(family) : 0) == expected);
        }
        long scraped_total = 0;
        for (const auto& [family, count] : samples) {
            INFO("family " << family << " is in the scrape but not in the table");
            CHECK(formulas.count(family) == 1);
            scraped_total += count;
        }
        CHECK(scraped_total == documented_total);
        stop_and_check(passgate);
    }
}

TEST_CASE("docs: metrics/README.md's worked cardinality example adds up", "[integration][docs]") {
    const std::string section = cardinality_section();
    const auto formulas = cardinality_formulas(section);
    // "... (A=10, L=1, ...) ... **N samples** ..."
    const std::regex example(R"(\(([A-Z]=\d+(?:, [A-Z]=\d+)+)\)[^*]*\*\*([\d,]+) samples\*\*)");
    std::smatch match;
    std::string flat = std::regex_replace(section, std::regex("\n"), " ");
    REQUIRE(std::regex_search(flat, match, example));
    std::map<char, long> variables;
    for (const std::string& item : split_list(match[1])) variables[item[0]] = std::stol(item.substr(2));
    long total = 0;
    for (const auto& [family, formula] : formulas) total += Formula(formula, variables).value();
    CHECK(total == std::stol(std::regex_replace(std::string(match[2]), std::regex(","), "")));
    // The sum written as one formula ("In all: `...` samples") is the table's sum too.
    std::smatch in_all;
    REQUIRE(std::regex_search(flat, in_all, std::regex(R"(In all: `([^`]+)` samples)")));
    CHECK(Formula(in_all[1], variables).value() == total);
}

// ---- examples/ -------------------------------------------------------------------------------

TEST_CASE("docs: examples/edge-node.toml passes --check (its DNS name not resolved)", "[integration][docs]") {
    std::string config = source_file("examples/edge-node.toml");
    TempDir dir;
    // The access log's folder is the edge node's (/var/log/passgate, see the example's comments);
    // here a folder of the test's own, so that the check does not depend on this machine's /var/log.
    const std::string log_path = "\"/var/log/passgate/access.log\"";
    REQUIRE(config.find(log_path) != std::string::npos);
    config.replace(config.find(log_path), log_path.size(), "\"" + dir.file("access.log") + "\"");
    write_file(dir.file("passgate.toml"), config);
    write_file(dir.file("edge-node.endpoints"), source_file("examples/edge-node.endpoints"));
    const RunResult check = run({passgate_binary(), "--check", "--config", dir.file("passgate.toml")}, dir, "check");
    INFO("stdout:\n" << check.out << "\nstderr:\n" << check.err);
    CHECK(check.status == 0);
    CHECK(check.err.find("warning") == std::string::npos);
    // What it is meant to show: port 443, a DNS service, an endpoints file service.
    CHECK(check.out.find("edge [::]:443") != std::string::npos);
    CHECK(check.out.find("api: dns api.internal.example.com port 8443") != std::string::npos);
    CHECK(check.out.find("app: endpoints_file ") != std::string::npos);
}

TEST_CASE("docs: examples/passgate.toml (installed as /etc/passgate/passgate.toml) passes --check",
          "[integration][docs]") {
    TempDir dir;
    const RunResult check = run({passgate_binary(), "--check", "--config",
                                 required_env("PASSGATE_SOURCE_ROOT") + "/examples/passgate.toml"}, dir, "check");
    INFO("stdout:\n" << check.out << "\nstderr:\n" << check.err);
    CHECK(check.status == 0);
}

// ---- The access log's documented lines -------------------------------------------------------

namespace {

// One connection with curl's captured hello (SNI curl-h2.corpus.test, ALPN h2 and http/1.1)
// through a passgate whose access log, in `format`, goes to a file; returns that line.
std::string live_access_line(const std::string& format) {
    TempDir dir;
    EchoBackend backend;
    const std::string log_path = dir.file("access.log");
    Passgate passgate(dir, {"[admin]\naddress = \"@ADMIN@\"\n[access_log]\nformat = \"" + format +
                                "\"\npath = \"" + log_path + "\"\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:" +
                                std::to_string(free_port()) + "\"\n" +
                                "[[route]]\nname = \"corpus\"\nlisteners = [\"tls\"]\nhostnames = [\"*.corpus.test\"]\n"
                                "backends = [ { service = \"echo\" } ]\n"
                                "[[service]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:" +
                                std::to_string(backend.port()) + "\"]\n",
                            {}, 1});
    REQUIRE(passgate.wait_ready());
    const std::string config = read_file(passgate.config_path());
    const std::uint16_t port = static_cast<std::uint16_t>(
        std::stoi(config.substr(config.find("127.0.0.1:", config.find("[[listener]]")) + 10)));
    {
        const CapturedHello& hello = captured_hello("curl-h2.bin");
        Socket client = connect_to(port);
        REQUIRE(client);
        REQUIRE(send_all(client.get(), hello.bytes, deadline_in(Millis(2000))));
        std::vector<std::uint8_t> echoed(hello.bytes.size());
        REQUIRE(recv_exact(client.get(), echoed.data(), echoed.size(), deadline_in(Millis(3000))));
    }  // closed: the line is written
    std::string line;
    REQUIRE(wait_until([&] {
        const std::string text = read_file(log_path);
        if (text.find('\n') == std::string::npos) return false;
        line = text.substr(0, text.find('\n'));
        return true;
    }, Millis(3000), Millis(20)));
    stop_and_check(passgate);
    return line;
}

// The line of config/README.md that starts with `start`.
std::string readme_line_starting(const std::string& start) {
    for (const std::string& line : lines_of(source_file("config/README.md")))
        if (line.starts_with(start)) return line;
    FAIL("no line of config/README.md starts with " << start);
    return {};
}

// "key=value key=value ..." -> the keys, in order (values of the example and of passgate's lines
// have no quoted spaces before the last field).
std::vector<std::string> logfmt_keys(const std::string& line) {
    std::vector<std::string> keys;
    const std::regex key(R"((?:^| )([a-z_]+)=)");
    for (std::sregex_iterator it(line.begin(), line.end(), key), end; it != end; ++it) keys.push_back((*it)[1]);
    return keys;
}

// Each field's name and JSON type, in order.
std::vector<std::string> json_shape(const std::string& line) {
    std::vector<std::string> shape;
    const nlohmann::ordered_json object = nlohmann::ordered_json::parse(line);
    for (const auto& [key, value] : object.items()) shape.push_back(key + ":" + value.type_name());
    return shape;
}

}  // namespace

TEST_CASE("docs: config/README.md's access log lines have the fields, order and types of real ones; alpn as documented",
          "[integration][docs]") {
    SECTION("logfmt: alpn joined with ','") {
        const std::string live = live_access_line("logfmt");
        INFO("live: " << live);
        CHECK(joined(logfmt_keys(readme_line_starting("time="))) == joined(logfmt_keys(live)));
        CHECK(live.find(" alpn=h2,http/1.1 ") != std::string::npos);
    }
    SECTION("json: alpn an array") {
        const std::string live = live_access_line("json");
        INFO("live: " << live);
        CHECK(joined(json_shape(readme_line_starting("{\"time\":"))) == joined(json_shape(live)));
        CHECK(nlohmann::json::parse(live).at("alpn") == nlohmann::json::array({"h2", "http/1.1"}));
    }
}

// ---- Warnings ---------------------------------------------------------------------------------

TEST_CASE("docs: every config warning is in config/README.md's table, printed by --check as documented",
          "[integration][docs]") {
    // The Warnings table's messages, with their placeholders ("R", "L", ...) as patterns.
    const std::string readme = source_file("config/README.md");
    const auto start = readme.find("\n## Warnings\n");
    REQUIRE(start != std::string::npos);
    std::vector<std::pair<std::string, std::regex>> documented;
    const std::regex row(R"(^\| `([^`]+)` \|)");
    const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    for (const std::string& line : lines_of(readme.substr(start, readme.find("\n| Prefix |", start) - start))) {
        std::smatch match;
        if (!std::regex_search(line, match, row)) continue;
        std::string pattern = std::regex_replace(std::string(match[1]), special, "\\$&");
        pattern = std::regex_replace(pattern, std::regex(R"("[A-Z]")"), R"("[^"]*")");
        documented.emplace_back(match[1], std::regex(pattern));
    }
    REQUIRE(documented.size() >= 5);

    // One config that draws each of them.
    TempDir dir;
    write_file(dir.file("warned.toml"),
               "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:6443\"\nhostname = \"*.a.example.com\"\n"
               "[[listener]]\nname = \"idle\"\naddress = \"127.0.0.1:6444\"\n"
               "[[route]]\nname = \"first\"\nlisteners = [\"a\"]\nhostnames = [\"x.a.example.com\"]\nbackends = [ { service = \"s\" } ]\n"
               "[[route]]\nname = \"second\"\nlisteners = [\"a\"]\nhostnames = [\"x.a.example.com\"]\nbackends = [ { service = \"s\" } ]\n"
               "[[route]]\nname = \"elsewhere\"\nlisteners = [\"a\"]\nhostnames = [\"b.example.com\"]\nbackends = [ { service = \"drained\" } ]\n"
               "[[service]]\nname = \"s\"\nendpoints = [\"127.0.0.1:8443\"]\n"
               "[[service]]\nname = \"drained\"\nendpoints = [ { address = \"127.0.0.1:8444\", weight = 0 } ]\n"
               "[[service]]\nname = \"unused\"\nendpoints = [\"127.0.0.1:8445\"]\n");
    const RunResult check = run({passgate_binary(), "--check", "--config", dir.file("warned.toml")}, dir, "check");
    INFO("stderr:\n" << check.err);
    CHECK(check.status == 0);
    // How --check prints them, as the README says: "... prints each on stderr as `FORM`".
    std::smatch form;
    const std::string flat = std::regex_replace(readme.substr(start), std::regex("\n"), " ");
    REQUIRE(std::regex_search(flat, form, std::regex(R"(`passgate --check` prints each on stderr as `([^`]+)`)")));
    std::string printed_pattern = std::regex_replace(std::string(form[1]), special, "\\$&");
    printed_pattern = std::regex_replace(printed_pattern, std::regex("FILE"), "[^:]+");
    printed_pattern = std::regex_replace(printed_pattern, std::regex("LINE"), "\\d+");
    printed_pattern = std::regex_replace(printed_pattern, std::regex("MESSAGE"), "(.*)");
    const std::regex printed(printed_pattern);
    std::set<std::string> matched;
    int warnings = 0;
    for (const std::string& line : lines_of(check.err)) {
        std::smatch match;
        if (!line.starts_with("warning")) continue;
        ++warnings;
        INFO(line);
        REQUIRE(std::regex_match(line, match, printed));
        const std::string message = match[1];
        bool found = false;
        for (const auto& [text, pattern] : documented) {
            if (std::regex_match(message, pattern)) {
                matched.insert(text);
                found = true;
            }
        }
        CHECK(found);
    }
    CHECK(warnings == 5);
    CHECK(matched.size() == documented.size());  // each documented warning drawn once
}
