// SHA-256 against the FIPS 180-2 test vectors, and against coreutils' sha256sum across the
// block boundaries where padding goes wrong (55, 56, 63, 64 bytes ...).
#include "broker/sha256.h"

#include <catch2/catch.hpp>

#include <string>

#include "broker/journal/journal_test_support.h"
#include "tests/support/cli_runner.h"

using tactus::broker::Sha256;
using tactus::broker::sha256_hex;

TEST_CASE("sha256: FIPS 180-2 test vectors", "[journal][sha256]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: fed in parts, the same digest", "[journal][sha256]") {
  const std::string msg(1000000, 'a');
  for (std::size_t part : {1u, 3u, 63u, 64u, 65u, 1000u}) {
    Sha256 h;
    for (std::size_t i = 0; i < msg.size(); i += part)
      h.update(std::string_view(msg).substr(i, part));
    CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
}

TEST_CASE("sha256: agrees with sha256sum at every length up to 130 bytes", "[journal][sha256]") {
  tactus::journal_test::TempDir dir;
  std::string msg;
  for (int len = 0; len <= 130; ++len) {
    const std::string file = dir / std::to_string(len);
    tactus::journal_test::write_bytes(file, msg);
    const auto r = tactus::test::run_program("/usr/bin/sha256sum", {file});
    REQUIRE(r.exit_code == 0);
    INFO("length " << len);
    CHECK(sha256_hex(msg) == r.out.substr(0, 64));
    msg.push_back(static_cast<char>(len * 37 + 1));  // every byte value pattern, not just text
  }
}
