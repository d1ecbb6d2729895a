// Secrets in the journal: sealed as placeholders, given back exactly; no forgery.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "broker/journal/journal_secrets.h"

using tactus::broker::SecretSeal;
using Json = nlohmann::json;

TEST_CASE("journal secrets: values are sealed by name and unsealed exactly", "[journal][secrets]") {
  SecretSeal s;
  s.add("API", "sk-live-0123456789");
  s.add("SHORT", "abc");  // too short to mask, as for the Redactor
  const std::string text = "key=sk-live-0123456789; again sk-live-0123456789 abc";
  const std::string sealed = s.seal(text);
  CHECK(sealed.find("sk-live") == std::string::npos);
  CHECK(sealed ==
        "key=\x01"
        "API\x02; again \x01"
        "API\x02 abc");
  CHECK(s.unseal(sealed) == text);

  Json doc = {{"sk-live-0123456789", {"x", "sk-live-0123456789"}}, {"n", 1}};
  const Json before = doc;
  s.seal(doc);
  CHECK(doc.dump().find("sk-live") == std::string::npos);
  s.unseal(doc);
  CHECK(doc == before);
}

TEST_CASE("journal secrets: a procedure cannot forge a placeholder", "[journal][secrets]") {
  SecretSeal s;
  s.add("API", "sk-live-0123456789");
  // A procedure that writes the placeholder's bytes gets them back, not the secret.
  for (const std::string forged : {"\x01"
                                   "API\x02",
                                   "\x01\x01"
                                   "API\x02",
                                   "\x01",
                                   "a\x01"
                                   "b",
                                   "\x01"
                                   "API",
                                   "\x01"
                                   "NOPE\x02"}) {
    const std::string round = s.unseal(s.seal(forged));
    CHECK(round == forged);
    CHECK(round.find("sk-live") == std::string::npos);
  }
}

TEST_CASE("journal secrets: text sealed without a secret is not unsealed into one later",
          "[journal][secrets]") {
  // A run begun when its secret was too short to seal (or unset) and resumed when it is not:
  // the "\x01" the procedure wrote was doubled anyway, so it comes back as written.
  SecretSeal none;
  SecretSeal later;
  later.add("TOK", "longer-secret-value");
  const std::string forged =
      "\x01"
      "TOK\x02";
  Json doc = {{"v", forged}};
  none.seal(doc);
  later.unseal(doc);
  CHECK(doc["v"] == forged);
}
