// Catch2's main, in its own file so that editing the tests does not rebuild it.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
