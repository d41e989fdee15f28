// Filled in by the issue 5 work.
#include <catch2/catch.hpp>
