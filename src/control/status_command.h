#pragma once
// `passgate status`: fetches the admin server's views (GET /config, /listeners, /endpoints) and
// prints them as tables: the config in use (hash, when loaded), the listeners with their open
// connections and limits, the services and every endpoint's health, ejections, open connections
// and weight. Returns the exit status: 0, or 1 when the admin server cannot be reached or does
// not answer with the views.

#include "config/address.h"

#include <chrono>
#include <string>

namespace passgate {

int run_status_command(const config::Address& admin, std::chrono::milliseconds timeout);

// The tables, from the three views' JSON texts (what run_status_command prints). `now`: unix
// seconds, for the ages. Throws std::runtime_error (from the JSON reader) on a malformed view.
std::string format_status(const std::string& config_view, const std::string& listeners_view,
                          const std::string& endpoints_view, double now);

}  // namespace passgate
