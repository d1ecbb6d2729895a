// Secrets: resolved in the broker only (the `secrets:` section of the config), never passed into
// a jail, and masked in everything the broker writes (output, audit log, journal).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tools/secret_mask.h"

namespace tactus::broker {

// Where one named secret comes from: `NAME: {env: VAR}` or `NAME: {file: PATH}`.
struct SecretSource {
  std::string name;
  enum class Kind { env, file } kind = Kind::env;
  std::string ref;  // the environment variable's name, or a file path (a leading ~/ means $HOME)
};

// Secret files larger than this are refused: a token, a key or a password is far smaller.
inline constexpr std::size_t kMaxSecretFileSize = 64 * 1024;

// Reads the secret's value. env: the variable must be set and non-empty. file: a regular file of
// at most kMaxSecretFileSize bytes, read whole, with one trailing "\n" or "\r\n" removed; what
// remains must be non-empty. On success sets value and returns true; on failure leaves value
// alone, sets error to a message naming the secret (never containing its value) and returns
// false.
bool resolve_secret(const SecretSource& source, std::string& value, std::string& error);

// Replaces every occurrence of a known secret value, and of its usual encodings, with "***".
//
// For each value added, the patterns masked are:
//  - the value itself;
//  - base64, standard and URL-safe alphabets, each with and without '=' padding;
//  - base64 of the value inside a longer base64 text (both alphabets): there the characters
//    depend on how many bytes precede the value in its 3-byte group (0, 1 or 2), so for each of
//    those three alignments we mask the run of characters whose 6 bits all come from the value,
//    dropping the leading ones that mix in bits of the unknown prefix and the trailing ones that
//    mix in bits of the unknown suffix (or are padding). Such a cut form is masked only when at
//    least 8 characters long (a value of 6 bytes or more), so it cannot match by chance;
//  - percent-encoding, with uppercase and with lowercase hex digits, in each of the forms common
//    encoders produce: every byte but the RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~) encoded
//    (curl_easy_escape, Python quote(safe="")); JavaScript encodeURIComponent, which also leaves
//    ! ' ( ) * alone; and HTML form encoding, which writes a space as '+';
//  - the value as escaped inside a JSON string (for text that is serialized JSON).
// Base64 wrapped across lines (MIME, PEM) and double encodings are not recognised.
//
// Values shorter than kMinSecretLength bytes are ignored: masking every "abc" or "42" in the
// output would destroy it, and so short a value protects nothing anyway.
//
// Overlapping matches merge into one "***", so a value that contains another (or overlaps it) is
// masked whole rather than leaving a piece of the longer one behind.
//
// As a tools::SecretMask it also tells the tools how to cut text safely (tools/secret_mask.h).
class Redactor : public tools::SecretMask {
 public:
  static constexpr std::size_t kMinSecretLength = 4;

  void add(std::string_view value);
  bool empty() const { return patterns_.empty(); }

  std::string redact(std::string_view text) const;
  std::string mask(std::string_view text) const override { return redact(text); }
  std::size_t margin() const override {
    return patterns_.empty() ? 0 : patterns_.front().size() - 1;  // longest first
  }
  // Redacts every string in the document, recursively, object keys included. Should two keys
  // of one object become equal, the later one gets a suffix " (2)", " (3)", ... so no member
  // is lost.
  void redact_in_place(nlohmann::json& value) const;

 private:
  std::vector<std::string> patterns_;  // deduplicated, longest first
};

// True for environment variable names that look like credentials; such variables are never
// passed into a jail, whatever the config says. Matches, ignoring case, names that contain KEY,
// TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL, AUTH, COOKIE, SESSION or PRIVATE, or that end in
// _PAT (a personal access token) or _PWD (as MYSQL_PWD; PWD itself, the working directory, is
// not one); and the well-known AWS_ACCESS_KEY_ID, GITHUB_TOKEN, OPENAI_API_KEY,
// ANTHROPIC_API_KEY and HF_TOKEN. Errs on the side of withholding: SSH_AUTH_SOCK or
// XDG_SESSION_ID match too.
bool looks_like_secret_env(std::string_view name);

}  // namespace tactus::broker
