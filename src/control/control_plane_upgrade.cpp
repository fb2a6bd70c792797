// ControlPlane: the binary upgrade (README.md, "Upgrading the binary"; the hand-over protocol is
// in src/control/upgrade.h).
//
// Old process: start_upgrade() starts the new binary with every listening socket and the admin
// socket; the new process validates its config, starts its workers without accepting and, once
// ready, says so; hand_over() then makes it systemd's main process, tells it to go, stops
// accepting and drains. If the new process exits first, or is not ready within upgrade_timeout,
// fail_upgrade() kills it and this process goes on as if nothing happened: it never stopped
// accepting, and the new one never accepted.
//
// New process: on_readiness() says "ready" instead of READY=1; start_serving() on "go".

#include "src/control/control_plane.h"

#include "src/control/inherited_sockets.h"
#include "src/control/sd_notify.h"
#include "src/observe/log.h"
#include "src/observe/version.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace passgate {

std::string ControlPlane::start_upgrade() {
    const std::size_t control = metrics_.control_shard();
    std::string refused;
    if (upgrade_child_)
        refused = "an upgrade is already in progress (new process " + std::to_string(upgrade_child_->pid()) +
                  ", started " + std::to_string(loop_.now() - upgrade_started_) + " ms ago)";
    else if (stopping_)
        refused = handed_over_ ? "this process already handed over to pid " + std::to_string(last_upgrade_pid_) +
                                     " and is draining"
                               : "shutting down";
    else if (!serving_)
        refused = "this process is starting as an upgrade (from pid " + std::to_string(upgraded_from_) +
                  ") and does not serve yet";
    if (!refused.empty()) {
        upgrades_->with({"refused"}).inc(control);
        return refused;
    }
    std::vector<PassedSocket> sockets;
    for (const HeldListener& listener : held_listeners_)
        for (const reactor::Fd& socket : listener.sockets) sockets.push_back(PassedSocket{listener.name, socket.get()});
    sockets.push_back(PassedSocket{admin_socket_name, held_admin_.get()});
    upgrade_failure_.clear();
    try {
        upgrade_child_ = std::make_unique<UpgradeChild>(options_.binary_path, options_.arguments, sockets);
    } catch (const std::runtime_error& error) {
        last_upgrade_pid_ = 0;
        last_upgrade_result_ = "failed";
        last_upgrade_reason_ = std::string("could not start ") + options_.binary_path + ": " + error.what();
        upgrades_->with({"failed"}).inc(control);
        log_line(LogLevel::error, "upgrade failed: " + last_upgrade_reason_ + "; still serving");
        // Reported as started-and-failed: the trigger reads the outcome from GET /upgrade.
        return {};
    }
    upgrade_started_ = loop_.now();
    last_upgrade_pid_ = upgrade_child_->pid();
    last_upgrade_result_.clear();
    last_upgrade_reason_.clear();
    upgrade_channel_watch_.poll(upgrade_child_->channel(), POLLIN, true);
    upgrade_exit_watch_.poll(upgrade_child_->pidfd(), POLLIN, false);
    loop_.arm_timer_after(upgrade_deadline_, current_->runtime.upgrade_timeout.count());
    log_line(LogLevel::info, "upgrade: started " + options_.binary_path + " as pid " +
                                 std::to_string(last_upgrade_pid_) + " with " + std::to_string(sockets.size()) +
                                 " listening sockets; serving until it is ready (upgrade_timeout " +
                                 std::to_string(current_->runtime.upgrade_timeout.count()) + " ms)");
    return {};
}

void ControlPlane::on_upgrade_channel(int) {
    while (upgrade_child_) {
        const std::optional<std::string> message = upgrade_child_->read_message();
        if (!message) return;
        if (message->empty()) {
            // Its end closed: it exited (or is exiting). The pidfd says how.
            upgrade_channel_watch_.stop();
            return;
        }
        if (message->rfind("ready", 0) == 0) {
            const std::string version = message->size() > 6 ? message->substr(6) : std::string("unknown");
            return hand_over(version);
        }
        if (message->rfind("failed ", 0) == 0) upgrade_failure_ = message->substr(7);
    }
}

void ControlPlane::on_upgrade_exit(int) {
    if (!upgrade_child_) return;
    const pid_t pid = upgrade_child_->pid();
    const std::string status = upgrade_child_->reap();
    // A message sent just before exiting may still wait in the channel.
    while (const std::optional<std::string> message = upgrade_child_->read_message()) {
        if (message->empty()) break;
        if (message->rfind("failed ", 0) == 0) upgrade_failure_ = message->substr(7);
    }
    fail_upgrade("failed", "new process " + std::to_string(pid) + " " + status + " before it was ready" +
                               (upgrade_failure_.empty() ? std::string() : ": " + upgrade_failure_));
}

void ControlPlane::on_upgrade_deadline() {
    if (!upgrade_child_) return;
    const pid_t pid = upgrade_child_->pid();
    upgrade_child_->kill_and_reap();
    fail_upgrade("timeout", "new process " + std::to_string(pid) + " was not ready within upgrade_timeout (" +
                                std::to_string(current_->runtime.upgrade_timeout.count()) + " ms): killed");
}

void ControlPlane::fail_upgrade(const std::string& result, const std::string& reason) {
    upgrade_channel_watch_.stop();
    upgrade_exit_watch_.stop();
    loop_.cancel_timer(upgrade_deadline_);
    upgrade_child_.reset();  // kills and reaps it if it still runs
    last_upgrade_result_ = result;
    last_upgrade_reason_ = reason;
    upgrades_->with({result}).inc(metrics_.control_shard());
    log_line(LogLevel::error, "upgrade failed: " + reason + (stopping_ ? "" : "; still serving"));
}

// The new process is ready: it becomes the service's main process and starts accepting; this
// one stops accepting (a connection already accepted is served) and drains.
void ControlPlane::hand_over(const std::string& version) {
    const pid_t pid = upgrade_child_->pid();
    upgrade_channel_watch_.stop();
    upgrade_exit_watch_.stop();
    loop_.cancel_timer(upgrade_deadline_);
    // systemd first: from here on the new process's notifications (READY=1, STATUS=) are the
    // main process's, and this process's exit does not end the service.
    const std::uint64_t draining = workers_.active_connections();
    if (!sd_notify_state("MAINPID=" + std::to_string(pid) + "\nSTATUS=upgraded: pid " + std::to_string(pid) +
                         " serving; pid " + std::to_string(::getpid()) + " draining " + std::to_string(draining) +
                         " connections"))
        log_line(LogLevel::warning, std::string("upgrade: sd_notify MAINPID= failed: ") + std::strerror(errno));
    if (!upgrade_child_->send_go()) {
        // It is gone between its "ready" and now: nothing was handed over.
        const std::string status = upgrade_child_->kill_and_reap();
        if (!sd_notify_state("MAINPID=" + std::to_string(::getpid())))
            log_line(LogLevel::warning, std::string("upgrade: sd_notify MAINPID= failed: ") + std::strerror(errno));
        return fail_upgrade("failed", "new process " + std::to_string(pid) + " " + status + " as it was told to go");
    }
    upgrade_child_->release();
    upgrade_quic_forward_ = upgrade_child_->take_quic_forward();
    upgrade_child_.reset();
    last_upgrade_result_ = "success";
    last_upgrade_reason_.clear();
    upgrades_->with({"success"}).inc(metrics_.control_shard());
    handed_over_ = true;
    stopping_ = true;
    held_listeners_.clear();
    held_admin_.reset();
    if (admin_) admin_->stop_accepting();
    const reactor::Millis timeout = current_->runtime.shutdown_timeout.count();
    log_line(LogLevel::info, "upgrade: new process " + std::to_string(pid) + " (" + version +
                                 ") is ready and took over; draining " + std::to_string(draining) +
                                 " connections for up to " + std::to_string(timeout) + " ms");
    workers_.send_to_all(
        DrainMessage{.timeout = timeout, .handed_over = true, .quic_forward_fd = upgrade_quic_forward_.get()});
}

void ControlPlane::on_parent_channel(int) {
    if (serving_) return;
    const std::optional<std::string> message = upgrade_parent_->read_message();
    if (!message) return;
    if (message->empty())
        log_line(LogLevel::warning, "upgrade: the old process (pid " + std::to_string(upgraded_from_) +
                                        ") closed the channel without handing over: serving now");
    start_serving();
}

void ControlPlane::start_serving() {
    parent_channel_watch_.stop();
    if (stopping_ || serving_) return;
    serving_ = true;
    workers_.send_to_all(StartAcceptingMessage{.quic_forward_fd = upgrade_parent_ ? upgrade_parent_->quic_forward() : -1});
    start_admin_server();
    upgrades_->with({"success"}).inc(metrics_.control_shard());
    log_line(LogLevel::info, "ready; serving (upgraded from pid " + std::to_string(upgraded_from_) + ")");
    if (!sd_notify_state("READY=1\nSTATUS=serving (upgraded from pid " + std::to_string(upgraded_from_) + ")"))
        log_line(LogLevel::warning, std::string("sd_notify READY=1 failed: ") + std::strerror(errno));
}

std::string ControlPlane::upgrade_status() const {
    std::string status = "pid: " + std::to_string(::getpid()) + "\nversion: " + version() + "\nstate: " +
                         (upgrade_child_ ? "starting" : handed_over_ ? "handing_over" : "idle") + "\n";
    if (upgraded_from_ != 0) status += "upgraded_from: " + std::to_string(upgraded_from_) + "\n";
    if (!last_upgrade_result_.empty() || upgrade_child_) {
        status += "last_new_pid: " + std::to_string(last_upgrade_pid_) + "\n";
        if (!last_upgrade_result_.empty()) status += "last_result: " + last_upgrade_result_ + "\n";
        if (!last_upgrade_reason_.empty()) status += "last_reason: " + last_upgrade_reason_ + "\n";
    }
    return status;
}

}  // namespace passgate
