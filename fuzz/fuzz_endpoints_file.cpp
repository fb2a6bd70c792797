// libFuzzer target for the endpoints file parser: parse_endpoints_file over arbitrary bytes.
// A crash, a hang, an error not shaped "fuzz.eps:LINE: MESSAGE", or an accepted set that breaks
// the format's promises is a bug. An accepted set is also written back in the file format and
// parsed again: it must come back the same (nothing is accepted that cannot be written down).

#include "src/wire/endpoints_file.h"

#include "fuzz/line_file_error.h"

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

std::string write_back(const passgate::DiscoveredEndpoints& endpoints) {
    std::string text = "# written back\r\n";
    for (const auto& endpoint : endpoints) {
        text += endpoint.address.to_string();
        if (endpoint.weight != 1) text += "\tweight=" + std::to_string(endpoint.weight);
        if (endpoint.max_connections) {
            text += " max_connections=" + std::to_string(*endpoint.max_connections);
        }
        text += "  # comment\n";
    }
    return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const passgate::EndpointsFileParse result = passgate::parse_endpoints_file(text, "fuzz.eps");
    if (!result.ok()) {
        // "fuzz.eps:LINE: MESSAGE": LINE is 0 (the whole file) or 1.., one line of text.
        check(result.endpoints.empty());
        check_line_file_error(result.error, "fuzz.eps", size, passgate::kEndpointsFileMaxBytes);
        return 0;
    }
    check(size <= passgate::kEndpointsFileMaxBytes);
    check(result.endpoints.size() <= passgate::kEndpointsFileMaxEndpoints);
    for (std::size_t i = 0; i < result.endpoints.size(); ++i) {
        const auto& endpoint = result.endpoints[i];
        check(endpoint.address.family() == AF_INET || endpoint.address.family() == AF_INET6);
        check(endpoint.address.port() != 0);
        check(!endpoint.address.is_unspecified());
        check(endpoint.weight <= passgate::kEndpointsFileMaxWeight);
        check(!endpoint.max_connections ||
              (*endpoint.max_connections >= 1 &&
               *endpoint.max_connections <= passgate::kEndpointsFileMaxConnections));
        // Bounded by the 10000 endpoints; only checked on small sets to keep runs fast.
        if (result.endpoints.size() <= 64) {
            for (std::size_t j = 0; j < i; ++j) check(!(result.endpoints[j].address == endpoint.address));
        }
    }
    const passgate::EndpointsFileParse again =
        passgate::parse_endpoints_file(write_back(result.endpoints), "fuzz.eps");
    check(again.ok() && again.endpoints == result.endpoints);
    return 0;
}
