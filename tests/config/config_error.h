#pragma once
// The config tests' way to see a refusal: the ConfigError message ("FILE:LINE: key: message") of
// parsing `text` as "t.toml", or "(no error)".

#include "config/config.h"

#include <string>

namespace passgate::config::testing {

inline std::string error_of(const std::string& text) {
    try {
        (void)parse_config(text, "t.toml");
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "(no error)";
}

}  // namespace passgate::config::testing
