#include "src/gateway/translate.h"

// Implementation lands with issue 16 (placeholder so the layout builds).
