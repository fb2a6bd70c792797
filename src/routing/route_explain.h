#pragma once
// `passgate route --config FILE --sni NAME [--alpn P]...`: which route and service a ClientHello
// with this SNI and ALPN would take on every listener, and why. Pure: reads the config only.

#include "config/config.h"

#include <string>
#include <string_view>
#include <vector>

namespace passgate {

// `sni` as a client would send it (any case, optionally one trailing dot; empty: no SNI);
// `alpn`: offered protocols in the client's order. The SNI and ALPN are judged by the data
// path's own ClientHello parser, so a name it would reject (an IP literal, a bad label) is
// reported as rejected before routing. Then, per listener in config order: the decision
// (route and the rule that chose it, or the rejection), every other attached route whose
// hostnames match and why it lost, the routes that do not match or do not attach there, and the
// chosen route's backends with their weights and endpoints. Deterministic text, ends in '\n'.
std::string explain_route(const config::Config& config, std::string_view sni,
                          const std::vector<std::string>& alpn);

}  // namespace passgate
