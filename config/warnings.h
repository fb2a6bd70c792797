#pragma once
// Internal to config/: the warnings of a validated Config (legal, but almost certainly not what
// the operator meant). Each reads "FILE:LINE: message". Listed in config/README.md "Warnings".

#include "config/config.h"

#include <string>
#include <vector>

namespace passgate::config::detail {

// `config` must already be validated (every cross reference resolves).
std::vector<std::string> collect_warnings(const Config& config);

}  // namespace passgate::config::detail
