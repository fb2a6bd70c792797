#include "reactor/ring.h"

#include "reactor/system_error.h"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace passgate::reactor {

std::string RingFeatures::describe() const {
    std::string text = "sq=" + std::to_string(sq_entries) + " cq=" + std::to_string(cq_entries);
    if (single_issuer) text += " single_issuer";
    if (defer_taskrun) text += " defer_taskrun";
    if (coop_taskrun) text += " coop_taskrun";
    if (ext_arg) text += " ext_arg";
    text += multishot_accept ? " multishot_accept" : " oneshot_accept";
    if (async_close) text += " async_close";
    if (cqe_skip) text += " cqe_skip";
    if (baseline) text += " (baseline forced by PASSGATE_IO_URING)";
    return text;
}

bool RingOptions::baseline_from_environment() {
    const char* value = std::getenv("PASSGATE_IO_URING");
    if (value == nullptr || *value == '\0') return false;
    if (std::string_view(value) == "baseline") return true;
    throw std::invalid_argument("environment variable PASSGATE_IO_URING=\"" + std::string(value).substr(0, 64) +
                                "\": the only value is \"baseline\"");
}

Ring::Ring(const RingOptions& options) {
    // Most capable first; an older kernel answers EINVAL for flags it does not know.
    const std::uint32_t attempts[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int result = -EINVAL;
    std::uint32_t chosen = 0;
    io_uring_params params{};
    for (std::uint32_t flags : attempts) {
        if (options.baseline && flags != 0) continue;
        params = io_uring_params{};
        params.flags = flags | IORING_SETUP_CQSIZE;
        params.cq_entries = options.cq_entries;
        result = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
        if (result == 0) {
            chosen = flags;
            break;
        }
        if (result != -EINVAL) break;
    }
    if (result < 0) throw_errno("io_uring_queue_init_params", -result);
    features_.single_issuer = (chosen & IORING_SETUP_SINGLE_ISSUER) != 0;
    features_.defer_taskrun = (chosen & IORING_SETUP_DEFER_TASKRUN) != 0;
    features_.coop_taskrun = (chosen & IORING_SETUP_COOP_TASKRUN) != 0;
    features_.ext_arg = (params.features & IORING_FEAT_EXT_ARG) != 0;
    features_.baseline = options.baseline;
    if (options.baseline) features_.multishot_accept = false;
    if (!options.baseline) {
        features_.cqe_skip = (params.features & IORING_FEAT_CQE_SKIP) != 0;
        // io_uring_get_probe_ring fails (nullptr) before 5.6: then every operation stays a
        // system call.
        if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
            features_.async_close = io_uring_opcode_supported(probe, IORING_OP_CLOSE) != 0;
            io_uring_free_probe(probe);
        }
    }
    features_.sq_entries = params.sq_entries;
    features_.cq_entries = params.cq_entries;
    if (!features_.ext_arg) {
        io_uring_queue_exit(&ring_);
        throw_errno("io_uring without IORING_FEAT_EXT_ARG (kernel 5.11+ needed)", ENOSYS);
    }
}

Ring::~Ring() { io_uring_queue_exit(&ring_); }

}  // namespace passgate::reactor
