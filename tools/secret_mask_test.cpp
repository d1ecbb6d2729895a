// Excerpts never show a fragment of a secret: masked before the cut, a margin dropped at it,
// and the same output whatever an attacker positions at the cut.
#include <catch2/catch.hpp>

#include <string>

#include "broker/secrets.h"
#include "tests/support/http_test_server.h"
#include "tests/support/llm_test_support.h"
#include "tools/registry.h"
#include "tools/secret_mask.h"

using namespace tactus;
using protocol::Json;

namespace {

const std::string kSecret = "Q7rT9wZ2mK4pV8nB";

// The first 4-or-more-character piece of kSecret found in text, or "".
std::string fragment_in(const std::string& text) {
  for (std::size_t len = kSecret.size(); len >= 4; --len)
    for (std::size_t i = 0; i + len <= kSecret.size(); ++i)
      if (text.find(kSecret.substr(i, len)) != std::string::npos) return kSecret.substr(i, len);
  return "";
}

broker::Redactor redactor() {
  broker::Redactor r;
  r.add(kSecret);
  return r;
}

}  // namespace

TEST_CASE("secret cut: an excerpt shows no fragment wherever the cut falls", "[secrets][cut]") {
  const auto r = redactor();
  REQUIRE(r.margin() >= kSecret.size() - 1);
  for (std::size_t n = 0; n < 260; ++n) {
    const std::string text = std::string(n, 'y') + kSecret + std::string(100, 'z');
    INFO(n);
    CHECK(fragment_in(tools::excerpt_head(text, 200, &r)) == "");
    CHECK(fragment_in(tools::excerpt_tail(text, 200, &r)) == "");
    // A rolling buffer that lost its start: a piece of the secret may begin it.
    const std::string rolled = text.substr(std::min(n + 3, text.size()));
    CHECK(fragment_in(tools::excerpt_tail(rolled, 200, &r, true)) == "");
  }
  // No secret: nothing is dropped.
  CHECK(tools::excerpt_head(std::string(300, 'a'), 200, nullptr) == std::string(200, 'a') + "...");
  CHECK(tools::excerpt_head("short", 200, &r) == "short");
}

TEST_CASE("secret cut: what sits at the cut does not change the excerpt (no oracle)",
          "[secrets][cut]") {
  const auto r = redactor();
  const std::string pad(195, 'y');
  for (std::size_t len = 4; len <= 8; ++len) {
    const std::string right = pad + kSecret.substr(0, len) + std::string(50, 'z');
    const std::string wrong = pad + std::string(len, 'W') + std::string(50, 'z');
    CHECK(tools::excerpt_head(right, 200, &r) == tools::excerpt_head(wrong, 200, &r));
    const std::string tail_right =
        std::string(50, 'z') + kSecret.substr(kSecret.size() - len) + pad;
    const std::string tail_wrong = std::string(50, 'z') + std::string(len, 'W') + pad;
    CHECK(tools::excerpt_tail(tail_right, 200, &r) == tools::excerpt_tail(tail_wrong, 200, &r));
  }
}

TEST_CASE("secret cut: host.ping masks an echoed secret whole, and a fragment not at all",
          "[secrets][cut]") {
  const auto r = redactor();
  tools::ToolContext ctx;
  ctx.mask = &r;
  const tools::ToolRegistry reg(ctx);
  // The broker masks every answer whole (broker/run_session.cpp answer()): what host.ping
  // returns for a guess of the whole value is "***", for a guess of a piece the piece itself,
  // so a guess cannot be grown one character at a time.
  Json whole = reg.call("host.ping", {{"v", kSecret}}).result;
  r.redact_in_place(whole);
  CHECK(whole["v"] == "***");
  Json piece = reg.call("host.ping", {{"v", kSecret.substr(0, 6)}}).result;
  r.redact_in_place(piece);
  CHECK(piece["v"] == kSecret.substr(0, 6));
}

TEST_CASE("secret cut: a provider's error body positioned around the cut shows no fragment",
          "[secrets][cut][llm]") {
  test::HttpTestServer server;
  const auto r = redactor();
  tools::ToolContext ctx;
  ctx.mask = &r;
  ctx.llm.providers["fake"] =
      test::llm_provider("fake", "openai", server.url("/canned/v1"), "key-1234", "");
  ctx.llm.retries = 0;
  ctx.llm.timeout_seconds = 10;
  const tools::ToolRegistry reg(ctx);
  for (std::size_t n = 200 - kSecret.size() - 4; n <= 204; ++n) {
    server.set_canned(400, std::string(n, 'y') + kSecret + " trailing words");
    const auto out = reg.llm_chat(test::chat_params());
    INFO(n << ": " << out.message);
    REQUIRE_FALSE(out.ok);
    CHECK(out.message.find("HTTP 400") != std::string::npos);
    CHECK(fragment_in(out.message) == "");
    // And as a body that is not JSON in a 200 answer.
    server.set_canned(200, std::string(n > 120 ? n - 100 : n, 'y') + kSecret + " trailing");
    const auto bad = reg.llm_chat(test::chat_params());
    INFO(bad.message);
    CHECK(fragment_in(bad.message) == "");
  }
}
