#include "src/gateway/manifests.h"

#include <catch2/catch.hpp>
