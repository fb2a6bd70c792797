#pragma once
// Errors at the edges: a failed system call during setup throws with the call's name and errno.

#include <cerrno>
#include <string>
#include <system_error>

namespace passgate::reactor {

[[noreturn]] inline void throw_errno(const std::string& what, int error = errno) {
    throw std::system_error(error, std::generic_category(), what);
}

}  // namespace passgate::reactor
