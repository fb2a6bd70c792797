#include "src/control/check.h"

#include "tests/support/config_builders.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
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

namespace {
// A fresh folder under $TMPDIR (or /tmp), removed with its contents at the end.
class TempFolder {
public:
    TempFolder() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/passgate-check-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempFolder() {
        std::error_code ignored;
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
        std::filesystem::remove_all(path_, ignored);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

Config access_log_config(const std::string& access_log_table) {
    return test_config::make_config(access_log_table + listener("l", 6443) + route("r", {"l"}, {"a.example.com"}),
                                    "check_test.toml");
}

std::string uid_text() { return "checked as uid " + std::to_string(::geteuid()); }
}  // namespace

TEST_CASE("--check of the access log: the file or its folder can be written, without creating it",
          "[check][access_log]") {
    const TempFolder folder;
    SECTION("stderr or disabled: nothing to check") {
        CHECK(passgate::check_access_log(access_log_config("")).ok);
        CHECK(passgate::check_access_log(access_log_config("")).text.empty());
        const auto disabled = passgate::check_access_log(
            access_log_config("[access_log]\nenabled = false\npath = \"/nonexistent/a.log\"\n"));
        CHECK(disabled.ok);
        CHECK(disabled.text.empty());
    }
    SECTION("a new file in a writable folder: OK, and not created") {
        const std::string path = folder.path() + "/access.log";
        const auto checked = passgate::check_access_log(access_log_config("[access_log]\npath = \"" + path + "\"\n"));
        CHECK(checked.ok);
        CHECK(checked.text == "access_log: " + path + ": does not exist yet; its folder " + folder.path() +
                                  " can be written, so start-up can create it (" + uid_text() + ")");
        CHECK_FALSE(std::filesystem::exists(path));
    }
    SECTION("an existing file: OK when it can be written") {
        const std::string path = folder.path() + "/access.log";
        std::ofstream(path) << "";
        const auto checked = passgate::check_access_log(access_log_config("[access_log]\npath = \"" + path + "\"\n"));
        CHECK(checked.ok);
        CHECK(checked.text == "access_log: " + path + ": can be opened for append (" + uid_text() + ")");
    }
    SECTION("a folder that does not exist: the error, at the line of path") {
        const std::string path = folder.path() + "/missing/access.log";
        const auto checked =
            passgate::check_access_log(access_log_config("[access_log]\nformat = \"json\"\npath = \"" + path + "\"\n"));
        CHECK_FALSE(checked.ok);
        CHECK(checked.text == "check_test.toml:3: access_log.path: " + path + ": its folder " + folder.path() +
                                  "/missing does not exist (" + uid_text() + "); start-up opens it for append");
    }
    SECTION("the path is a folder") {
        const auto checked =
            passgate::check_access_log(access_log_config("[access_log]\npath = \"" + folder.path() + "\"\n"));
        CHECK_FALSE(checked.ok);
        CHECK(checked.text == "check_test.toml:2: access_log.path: " + folder.path() + ": is a folder, not a file (" +
                                  uid_text() + "); start-up opens it for append");
    }
    SECTION("a read-only folder: refused, except for root, which start-up would let write it too") {
        const std::string read_only = folder.path() + "/read-only";
        REQUIRE(::mkdir(read_only.c_str(), 0555) == 0);
        REQUIRE(::chmod(read_only.c_str(), 0555) == 0);
        const auto checked = passgate::check_access_log(
            access_log_config("[access_log]\npath = \"" + read_only + "/access.log\"\n"));
        if (::geteuid() == 0) {
            CHECK(checked.ok);
        } else {
            CHECK_FALSE(checked.ok);
            CHECK(checked.text == "check_test.toml:2: access_log.path: " + read_only + "/access.log: cannot be "
                                  "created: its folder " + read_only + " cannot be written: Permission denied (" +
                                  uid_text() + "); start-up opens it for append");
        }
    }
}

TEST_CASE("--check says last what it did not check", "[check]") {
    CHECK(passgate::not_checked_line(access_log_config("")) ==
          "not checked: whether the ports are free (bound at start)");
    const Config dns = test_config::make_config(
        listener("l", 6443) + route("r", {"l"}, {"a.example.com"}) +
            "[[service]]\nname = \"by-dns\"\ndns = \"app.internal\"\nport = 8443\n",
        "check_test.toml");
    CHECK(passgate::not_checked_line(dns) ==
          "not checked: DNS names (resolved at start), whether the ports are free (bound at start)");
    CHECK(passgate::not_checked_line(kubernetes_config("[kubernetes]\napi_server = \"https://10.0.0.1:6443\"\n")) ==
          "not checked: the Kubernetes API server (contacted at start), whether the ports are free (bound at start)");
}

TEST_CASE("--check: OK only when every check passes; else the problems and exit 1", "[check]") {
    std::ostringstream out;
    std::ostringstream errors;
    const TempFolder folder;
    SECTION("a good config: the summary, the access log, and what was not checked, last") {
        const Config good = access_log_config("[access_log]\npath = \"" + folder.path() + "/a.log\"\n");
        CHECK(passgate::run_check(good, "", out, errors) == 0);
        CHECK(errors.str().empty());
        CHECK(out.str().rfind("check_test.toml: OK\n", 0) == 0);
        CHECK_THAT(out.str(), Catch::Matchers::Contains("\naccess_log: " + folder.path() + "/a.log: does not exist"));
        CHECK_THAT(out.str(),
                   Catch::Matchers::EndsWith("\nnot checked: whether the ports are free (bound at start)\n"));
    }
    SECTION("every problem is reported, and OK is not said") {
        const Config bad = test_config::make_config(
            "[access_log]\npath = \"" + folder.path() + "/missing/a.log\"\n" + listener("l", 6443) +
                route("r", {"l"}, {"a.example.com"}, {}, "[{ service = \"s\" }, { service = \"from-file\" }]") +
                "[[service]]\nname = \"from-file\"\nendpoints_file = \"" + folder.path() + "/none.endpoints\"\n",
            "check_test.toml");
        CHECK(passgate::run_check(bad, "", out, errors) == 1);
        CHECK(out.str().empty());
        CHECK(errors.str() == "check_test.toml:11: service \"from-file\": " + folder.path() +
                                  "/none.endpoints: cannot open: No such file or directory\n"
                                  "check_test.toml:2: access_log.path: " + folder.path() + "/missing/a.log: its folder " +
                                  folder.path() + "/missing does not exist (" + uid_text() +
                                  "); start-up opens it for append\n"
                                  "check_test.toml: not OK: start-up would fail (the problems above)\n");
    }
    SECTION("an unused [kubernetes] whose credentials do not load: a warning (start-up does not read them)") {
        const Config unused = access_log_config("[kubernetes]\nkubeconfig = \"/nonexistent/passgate-kubeconfig\"\n");
        CHECK(passgate::run_check(unused, "", out, errors) == 0);
        CHECK_THAT(errors.str(), Catch::Matchers::StartsWith("warning: check_test.toml:1: kubernetes: kubeconfig "
                                                             "/nonexistent/passgate-kubeconfig: cannot read"));
    }
}
