#include "src/gateway/manifests.h"

// Implementation lands with issue 16 (placeholder so the layout builds).
