#pragma once
// Reads a whole file with a size bound: for config files and the files they name (kubeconfigs,
// certificates, tokens). The error says what went wrong, never what the file holds.

#include <cstddef>
#include <stdexcept>
#include <string>

namespace passgate::config {

struct FileReadError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The file's bytes. Throws FileReadError: "cannot read: <strerror>" or "larger than N bytes" (the
// caller prefixes the file's name and role). `nonblocking`: a FIFO without a writer reads as empty
// instead of waiting for one (the config file itself may be a FIFO a deploy tool writes into).
std::string read_bounded_file(const std::string& path, std::size_t max_bytes, bool nonblocking = false);

}  // namespace passgate::config
