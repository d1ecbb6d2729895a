// Secrets in the journal: stored as placeholders that name them, given back on replay.
//
// The journal is on the host's disk, so no secret may be written there in clear; yet a resumed
// run must see exactly what the first one saw, and a procedure can hold a secret's value when
// its user passed one in (--param token=$KEY, a Human.input answer). So every JSON string the
// journal stores (object keys too) is sealed: each raw occurrence of a secret's value becomes
// "\x01NAME\x02", and a "\x01" already in the text is doubled, so no text a procedure makes can
// pass for a placeholder (a forged one is given back as the text it was). unseal() is the exact
// inverse. What the broker masks besides raw values (base64, percent and JSON-escaped forms) is
// masked as "***" after sealing, as everywhere else. A "\x01" is doubled even when there is no
// secret, so a run whose secrets differ on resume still cannot have text taken for one.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tactus::broker {

class SecretSeal {
 public:
  // Values shorter than 4 bytes are ignored, as the Redactor ignores them.
  void add(std::string name, std::string value);
  bool empty() const { return secrets_.empty(); }

  std::string seal(const std::string& text) const;
  std::string unseal(const std::string& text) const;
  void seal(nlohmann::json& value) const;
  void unseal(nlohmann::json& value) const;

 private:
  std::vector<std::pair<std::string, std::string>> secrets_;  // name, value; longest first
};

}  // namespace tactus::broker
