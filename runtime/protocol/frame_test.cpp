#include <catch2/catch.hpp>

#include "runtime/protocol/frame.h"

using namespace tactus::protocol;

TEST_CASE("protocol: frames round-trip, whole and split byte by byte", "[protocol]") {
  std::string wire;
  append_frame(wire, "{\"a\":1}");
  append_frame(wire, "x");
  FrameDecoder whole(1024);
  REQUIRE(whole.feed(wire.data(), wire.size()));
  std::string out;
  REQUIRE(whole.next(out));
  CHECK(out == "{\"a\":1}");
  REQUIRE(whole.next(out));
  CHECK(out == "x");
  CHECK_FALSE(whole.next(out));
  CHECK_FALSE(whole.has_partial());

  FrameDecoder split(1024);
  std::vector<std::string> got;
  for (char c : wire) {
    REQUIRE(split.feed(&c, 1));
    while (split.next(out)) got.push_back(out);
  }
  CHECK(got == std::vector<std::string>{"{\"a\":1}", "x"});
}

TEST_CASE("protocol: an oversized frame is refused from its header alone", "[protocol]") {
  FrameDecoder d(16);
  const char header[4] = {0, 0, 0, 17};
  CHECK_FALSE(d.feed(header, 4));
  CHECK(d.error() == FrameError::oversized_frame);
  CHECK(d.declared_length() == 17);
  std::string out;
  CHECK_FALSE(d.next(out));
  // A huge declared length is refused the same way, without buffering anything.
  FrameDecoder big(1 << 20);
  const char huge[4] = {'\x7f', '\xff', '\xff', '\xff'};
  CHECK_FALSE(big.feed(huge, 4));
  CHECK(big.error() == FrameError::oversized_frame);
}

TEST_CASE("protocol: a frame exactly at the limit is accepted", "[protocol]") {
  std::string wire;
  append_frame(wire, std::string(16, 'a'));
  FrameDecoder d(16);
  REQUIRE(d.feed(wire.data(), wire.size()));
  std::string out;
  REQUIRE(d.next(out));
  CHECK(out.size() == 16);
}

TEST_CASE("protocol: an empty frame is refused", "[protocol]") {
  FrameDecoder d(16);
  const char header[4] = {0, 0, 0, 0};
  CHECK_FALSE(d.feed(header, 4));
  CHECK(d.error() == FrameError::empty_frame);
}

TEST_CASE("protocol: a bad header after a good frame is caught", "[protocol]") {
  std::string wire;
  append_frame(wire, "ok");
  wire += std::string("\0\0\0\0", 4);
  FrameDecoder d(16);
  d.feed(wire.data(), wire.size());
  std::string out;
  REQUIRE(d.next(out));
  CHECK(out == "ok");
  CHECK_FALSE(d.next(out));
  CHECK(d.error() == FrameError::empty_frame);
}

TEST_CASE("protocol: a truncated frame is visible as a partial", "[protocol]") {
  std::string wire;
  append_frame(wire, "hello");
  FrameDecoder d(16);
  d.feed(wire.data(), wire.size() - 1);
  std::string out;
  CHECK_FALSE(d.next(out));
  CHECK(d.error() == FrameError::none);
  CHECK(d.has_partial());
}
