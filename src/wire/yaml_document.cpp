#include "src/wire/yaml_document.h"

// Implementation lands with issue 16 (placeholder so the layout builds).
