#include "src/gateway/translate.h"

#include <catch2/catch.hpp>
