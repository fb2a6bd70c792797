#pragma once
// The endpoints file's one safe read (the format and its parser: src/wire/endpoints_file.h).

#include "src/wire/endpoints_file.h"

#include <string>

namespace passgate {

// Reads the file at `path` and parses it; errors name the file ("PATH: ..." or "PATH:LINE: ...").
// Never blocks: the file is opened with O_NONBLOCK and must be a regular file (fstat), so a FIFO,
// socket or device put in its place is refused with an error ("not a regular file") instead of
// hanging the control thread, which also runs /healthz, signals, reloads, DNS and health checks.
// At most kEndpointsFileMaxBytes + 1 bytes are read (one more than the parser accepts, so that an
// oversized file is reported as such).
EndpointsFileParse read_endpoints_file(const std::string& path);

}  // namespace passgate
