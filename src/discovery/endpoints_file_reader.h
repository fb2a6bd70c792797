#pragma once
// The endpoints file's one safe read (the format and its parser: src/wire/endpoints_file.h).

#include "src/wire/endpoints_file.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace passgate {

// The one safe read of a watched file (endpoints files, hostnames files): the bytes of the
// regular file at `path`, at most `max_bytes` + 1 of them (one more than the parser accepts, so
// that it sees and reports an oversized file). Never blocks: opened with O_NONBLOCK and refused
// unless fstat says it is a regular file ("PATH: not a regular file (a FIFO); `role` must be a
// regular file"). On failure `error` is "PATH: message" and `text` is empty.
struct WatchedFileRead {
    std::string text;
    std::string error;
};
WatchedFileRead read_watched_file(const std::string& path, std::size_t max_bytes, std::string_view role);

// read_watched_file, then `parse(text, path)`; a read error becomes the Parse's error.
template <typename Parse>
Parse read_and_parse(const std::string& path, std::size_t max_bytes, std::string_view role,
                     Parse (*parse)(std::string_view, std::string_view)) {
    WatchedFileRead read = read_watched_file(path, max_bytes, role);
    if (read.error.empty()) return parse(read.text, path);
    Parse failed;
    failed.error = std::move(read.error);
    return failed;
}

// Reads the file at `path` and parses it; errors name the file ("PATH: ..." or "PATH:LINE: ...").
// Never blocks: the file is opened with O_NONBLOCK and must be a regular file (fstat), so a FIFO,
// socket or device put in its place is refused with an error ("not a regular file") instead of
// hanging the control thread, which also runs /healthz, signals, reloads, DNS and health checks.
// At most kEndpointsFileMaxBytes + 1 bytes are read (one more than the parser accepts, so that an
// oversized file is reported as such).
EndpointsFileParse read_endpoints_file(const std::string& path);

}  // namespace passgate
