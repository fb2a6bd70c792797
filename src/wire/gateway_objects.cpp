#include "src/wire/gateway_objects.h"

// Implementation lands with issue 16 (placeholder so the layout builds).
