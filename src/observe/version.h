#pragma once
#include <string>

namespace passgate {
// "passgate VERSION (liburing X.Y, kernel R)"
std::string version_text();
std::string version();
std::string liburing_version();
std::string kernel_release();
}  // namespace passgate
