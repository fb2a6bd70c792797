#pragma once
// `passgate upgrade`: asks the running passgate for a binary upgrade through its admin HTTP
// server (POST /upgrade) and waits for the outcome (GET /upgrade, answered by the new process once
// it serves the admin socket, or by the old one with the failure). Prints one line; returns the
// exit status (0: upgraded; 1: refused, failed, timed out, or the admin cannot be reached).

#include "config/address.h"

#include <chrono>

namespace passgate {

int run_upgrade_command(const config::Address& admin, std::chrono::milliseconds timeout);

}  // namespace passgate
