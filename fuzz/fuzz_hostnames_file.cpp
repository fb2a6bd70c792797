// libFuzzer target for the hostnames file parser: parse_hostnames_file over arbitrary bytes.
// A crash, a hang, an error not shaped "fuzz.txt:LINE: MESSAGE", or an accepted list that breaks
// the format's promises (a name the config would refuse, an uppercase byte) is a bug. An accepted
// list is written back one name a line and parsed again: it must come back the same.

#include "config/hostname.h"
#include "src/wire/hostnames_file.h"

#include "fuzz/line_file_error.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const passgate::HostnamesFileParse result = passgate::parse_hostnames_file(text, "fuzz.txt");
    if (!result.ok()) {
        check(result.names.empty());
        check_line_file_error(result.error, "fuzz.txt", size, passgate::kHostnamesFileMaxBytes);
        return 0;
    }
    check(result.names.size() <= passgate::kHostnamesFileMaxNames);
    std::string written = "# written back\r\n";
    for (std::size_t i = 0; i < result.names.size(); ++i) {
        const std::string_view name = result.names[i];
        check(passgate::config::validate_hostname_pattern(name).empty());
        check(passgate::config::ascii_lower(name) == name);
        written += "  ";
        written += name;
        written += "\t# comment\n";
    }
    const passgate::HostnamesFileParse again = passgate::parse_hostnames_file(written, "fuzz.txt");
    check(again.ok() && again.names.size() == result.names.size());
    for (std::size_t i = 0; i < result.names.size(); ++i) check(again.names[i] == result.names[i]);
    return 0;
}
