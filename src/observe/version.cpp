#include "src/observe/version.h"

#include <sys/utsname.h>

namespace passgate {

std::string version() { return PASSGATE_VERSION; }

// liburing 2.3 has no version macros: meson passes the version pkg-config reported.
std::string liburing_version() { return PASSGATE_LIBURING_VERSION; }

std::string kernel_release() {
    utsname name{};
    if (uname(&name) != 0) return "unknown";
    return name.release;
}

std::string version_text() {
    return "passgate " + version() + " (liburing " + liburing_version() + ", kernel " +
           kernel_release() + ")";
}

}  // namespace passgate
