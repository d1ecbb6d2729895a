#include <catch2/catch.hpp>

#include "sidecars/units.h"

using namespace tactus::sidecars;

TEST_CASE("units: sizes", "[units]") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("512") == 512u);
  CHECK(parse_size("512k") == 512u * 1024);
  CHECK(parse_size("128m") == 128u << 20);
  CHECK(parse_size("2g") == 2ull << 30);
  CHECK(parse_size("2G") == 2ull << 30);
  CHECK(parse_size("2gb") == 2ull << 30);
  CHECK(parse_size(" 4m ") == 4u << 20);
  CHECK_FALSE(parse_size(""));
  CHECK_FALSE(parse_size("m"));
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("1.5g"));
  CHECK_FALSE(parse_size("2t"));
  CHECK_FALSE(parse_size("99999999999999999999"));
  CHECK_FALSE(parse_size("17179869184g"));  // overflows 64 bits
  CHECK(format_size(2ull << 30) == "2 GiB");
  CHECK(format_size(1536) == "1536 bytes");
  CHECK(format_size(64 * 1024) == "64 KiB");
}

TEST_CASE("units: durations", "[units]") {
  CHECK(parse_duration("30") == 30.0);
  CHECK(parse_duration("30s") == 30.0);
  CHECK(parse_duration("5m") == 300.0);
  CHECK(parse_duration("1h") == 3600.0);
  CHECK(parse_duration("0.5") == 0.5);
  CHECK_FALSE(parse_duration(""));
  CHECK_FALSE(parse_duration("s"));
  CHECK_FALSE(parse_duration("-1"));
  CHECK_FALSE(parse_duration("1d"));
  CHECK_FALSE(parse_duration("nan"));
  CHECK_FALSE(parse_duration("1e12"));
}
