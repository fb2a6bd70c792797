#include "src/observe/connection_summary.h"

namespace passgate {

namespace {
// The reason's row; a value outside the enum (never made by passgate) gets a row that counts
// nowhere else.
constexpr CloseReasonInfo unknown_reason{.reason = CloseReason::completed, .name = "unknown", .description = ""};
constexpr const CloseReasonInfo& row_of(CloseReason reason) {
    const auto index = static_cast<std::size_t>(reason);
    return index < close_reasons.size() ? close_reasons[index] : unknown_reason;
}

constexpr HelloReject hello_reject_of_class(HelloErrorClass error_class) {
    switch (error_class) {
        case HelloErrorClass::not_tls: return HelloReject::not_tls;
        case HelloErrorClass::too_large: return HelloReject::too_large;
        case HelloErrorClass::malformed: return HelloReject::malformed;
    }
    return HelloReject::malformed;
}
// The class names are labels of the same counter: they must be spelled the same.
static_assert(hello_reject_labels[static_cast<std::size_t>(HelloReject::not_tls)].name ==
              hello_error_class_name(HelloErrorClass::not_tls));
static_assert(hello_reject_labels[static_cast<std::size_t>(HelloReject::too_large)].name ==
              hello_error_class_name(HelloErrorClass::too_large));
static_assert(hello_reject_labels[static_cast<std::size_t>(HelloReject::malformed)].name ==
              hello_error_class_name(HelloErrorClass::malformed));
}  // namespace

std::optional<HelloReject> hello_reject_of(CloseReason reason, HelloError hello_error) {
    const CloseReasonInfo& row = row_of(reason);
    if (row.hello_reject_by_error_class)
        return hello_reject_of_class(static_cast<std::size_t>(hello_error) < hello_errors.size()
                                         ? hello_errors[static_cast<std::size_t>(hello_error)].metric_class
                                         : HelloErrorClass::malformed);
    return row.hello_reject;
}

std::optional<Refusal> refusal_of(CloseReason reason) { return row_of(reason).refusal; }

std::optional<ProxyReject> proxy_reject_of(CloseReason reason) { return row_of(reason).proxy_reject; }

}  // namespace passgate
