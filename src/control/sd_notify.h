#pragma once
// The systemd notify protocol without libsystemd: one datagram to $NOTIFY_SOCKET (a path, or an
// abstract socket when it starts with '@'). A no-op when NOTIFY_SOCKET is unset.

#include <string_view>

namespace passgate {

// Returns false (and leaves errno) when NOTIFY_SOCKET is set but the datagram could not be sent.
bool sd_notify_state(std::string_view state);

}  // namespace passgate
