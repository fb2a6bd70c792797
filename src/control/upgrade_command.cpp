#include "src/control/upgrade_command.h"

#include "src/control/admin_client.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>

namespace passgate {

namespace {

using Clock = std::chrono::steady_clock;

// GET /upgrade's "key: value" lines.
std::map<std::string, std::string> fields_of(const std::string& body) {
    std::map<std::string, std::string> fields;
    std::size_t start = 0;
    while (start < body.size()) {
        std::size_t end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        const std::string line = body.substr(start, end - start);
        const std::size_t colon = line.find(": ");
        if (colon != std::string::npos) fields[line.substr(0, colon)] = line.substr(colon + 2);
        start = end + 1;
    }
    return fields;
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

}  // namespace

int run_upgrade_command(const config::Address& configured, std::chrono::milliseconds timeout) {
    const config::Address admin = connectable(configured);
    const Clock::time_point deadline = Clock::now() + timeout;
    std::string error;
    const std::optional<HttpAnswer> before = exchange(admin, "GET", "/upgrade", deadline, error);
    if (!before || before->status != 200) {
        std::fprintf(stderr, "passgate upgrade: cannot reach passgate's admin server at %s: %s\n",
                     admin.to_string().c_str(), before ? ("status " + std::to_string(before->status)).c_str() : error.c_str());
        return 1;
    }
    const std::string old_pid = fields_of(before->body)["pid"];
    const std::optional<HttpAnswer> started = exchange(admin, "POST", "/upgrade", deadline, error);
    if (!started) {
        std::fprintf(stderr, "passgate upgrade: POST /upgrade to %s: %s\n", admin.to_string().c_str(), error.c_str());
        return 1;
    }
    if (started->status != 202) {
        std::fprintf(stderr, "passgate upgrade: %s\n", trimmed(started->body).c_str());
        return 1;
    }
    const std::string prefix = "upgrade started: new process ";
    const std::string new_pid = started->body.rfind(prefix, 0) == 0 ? trimmed(started->body.substr(prefix.size())) : "";
    std::string last_seen = "no answer yet";
    while (Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const std::optional<HttpAnswer> answer = exchange(admin, "GET", "/upgrade", deadline, error);
        if (!answer) {
            last_seen = error;
            continue;
        }
        std::map<std::string, std::string> fields = fields_of(answer->body);
        if (!new_pid.empty() && new_pid != "0" && fields["pid"] == new_pid) {
            std::printf("upgraded: pid %s -> %s (%s)\n", old_pid.c_str(), new_pid.c_str(), fields["version"].c_str());
            return 0;
        }
        if (fields["pid"] == old_pid && fields["last_new_pid"] == new_pid &&
            (fields["last_result"] == "failed" || fields["last_result"] == "timeout")) {
            std::fprintf(stderr, "passgate upgrade: upgrade failed: %s; pid %s still serving\n",
                         fields["last_reason"].c_str(), old_pid.c_str());
            return 1;
        }
        last_seen = "state " + fields["state"] + " (pid " + fields["pid"] + ")";
    }
    std::fprintf(stderr, "passgate upgrade: no outcome within %lld ms (last seen: %s); see passgate's log\n",
                 static_cast<long long>(timeout.count()), last_seen.c_str());
    return 1;
}

}  // namespace passgate
