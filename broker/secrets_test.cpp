// Secrets: resolution from the environment and from files, masking of values and their
// encodings, and which environment variable names are withheld from jails.
#include "broker/secrets.h"

#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

using tactus::broker::looks_like_secret_env;
using tactus::broker::Redactor;
using tactus::broker::resolve_secret;
using tactus::broker::SecretSource;

namespace {

// A temporary directory, removed with its plain files at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tactus-secrets-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    for (const auto& f : files_) ::unlink(f.c_str());
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ::rmdir(it->c_str());
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& rel, const std::string& content) {
    const std::string p = path_ + "/" + rel;
    std::ofstream(p, std::ios::binary) << content;
    files_.push_back(p);
    return p;
  }
  std::string mkdir(const std::string& rel) {
    const std::string p = path_ + "/" + rel;
    REQUIRE(::mkdir(p.c_str(), 0700) == 0);
    dirs_.push_back(p);
    return p;
  }
  std::string mkfifo(const std::string& rel) {
    const std::string p = path_ + "/" + rel;
    REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
    files_.push_back(p);
    return p;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
  std::vector<std::string> dirs_;
};

// Sets an environment variable for the test's duration, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

SecretSource env_source(const std::string& name, const std::string& var) {
  return SecretSource{name, SecretSource::Kind::env, var};
}
SecretSource file_source(const std::string& name, const std::string& path) {
  return SecretSource{name, SecretSource::Kind::file, path};
}

// A bit-stream base64 encoder, written differently from the one under test.
std::string b64(std::string_view s, bool url, bool pad) {
  const std::string alpha =
      std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") +
      (url ? "-_" : "+/");
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (const unsigned char c : s) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alpha[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += alpha[(buf << (6 - bits)) & 63];
  if (pad)
    while (out.size() % 4 != 0) out += '=';
  return out;
}

// Percent-encodes every byte not in `keep` (besides letters and digits); `plus` writes ' ' as '+'.
std::string pct(std::string_view s, std::string_view keep, bool upper, bool plus = false) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else if (plus && c == ' ') {
      out += '+';
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, upper ? "%%%02X" : "%%%02x", c);
      out += buf;
    }
  }
  return out;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

// --- resolving ----------------------------------------------------------------------------------

TEST_CASE("secrets: an env secret is read from the environment", "[secrets]") {
  ScopedEnv env("TACTUS_TEST_SECRET_VAR", "sk-test-0123456789");
  std::string value, error;
  REQUIRE(resolve_secret(env_source("OPENAI_API_KEY", "TACTUS_TEST_SECRET_VAR"), value, error));
  CHECK(value == "sk-test-0123456789");
  CHECK(error.empty());
}

TEST_CASE("secrets: a missing or empty env variable is an error naming the secret", "[secrets]") {
  std::string value = "untouched", error;
  {
    ScopedEnv env("TACTUS_TEST_SECRET_VAR", nullptr);
    CHECK_FALSE(
        resolve_secret(env_source("OPENAI_API_KEY", "TACTUS_TEST_SECRET_VAR"), value, error));
    CHECK(error == "secret OPENAI_API_KEY: environment variable TACTUS_TEST_SECRET_VAR is not set");
  }
  {
    ScopedEnv env("TACTUS_TEST_SECRET_VAR", "");
    error.clear();
    CHECK_FALSE(
        resolve_secret(env_source("OPENAI_API_KEY", "TACTUS_TEST_SECRET_VAR"), value, error));
    CHECK(error == "secret OPENAI_API_KEY: environment variable TACTUS_TEST_SECRET_VAR is not set");
  }
  CHECK(value == "untouched");
}

TEST_CASE("secrets: a file secret loses one trailing newline", "[secrets]") {
  TempDir dir;
  std::string value, error;
  REQUIRE(resolve_secret(file_source("T", dir.write("lf", "ghp_abc123\n")), value, error));
  CHECK(value == "ghp_abc123");
  REQUIRE(resolve_secret(file_source("T", dir.write("crlf", "ghp_abc123\r\n")), value, error));
  CHECK(value == "ghp_abc123");
  REQUIRE(resolve_secret(file_source("T", dir.write("none", "ghp_abc123")), value, error));
  CHECK(value == "ghp_abc123");
  REQUIRE(resolve_secret(file_source("T", dir.write("two", "ghp_abc123\n\n")), value, error));
  CHECK(value == "ghp_abc123\n");
  REQUIRE(resolve_secret(file_source("T", dir.write("inner", "line1\nline2\n")), value, error));
  CHECK(value == "line1\nline2");
}

TEST_CASE("secrets: a leading ~/ in a file path means $HOME", "[secrets]") {
  TempDir dir;
  dir.mkdir(".config");
  dir.write(".config/token", "from-home-dir\n");
  ScopedEnv home("HOME", dir.path().c_str());
  std::string value, error;
  REQUIRE(resolve_secret(file_source("GITHUB_TOKEN", "~/.config/token"), value, error));
  CHECK(value == "from-home-dir");

  CHECK_FALSE(resolve_secret(file_source("GITHUB_TOKEN", "~/.config/absent"), value, error));
  CHECK(error == "secret GITHUB_TOKEN: cannot read " + dir.path() +
                     "/.config/absent: No such file or directory");
}

TEST_CASE("secrets: a missing file is an error naming the secret, the path and the cause",
          "[secrets]") {
  TempDir dir;
  const std::string path = dir.path() + "/github-token";
  std::string value = "untouched", error;
  CHECK_FALSE(resolve_secret(file_source("GITHUB_TOKEN", path), value, error));
  CHECK(error == "secret GITHUB_TOKEN: cannot read " + path + ": No such file or directory");
  CHECK(value == "untouched");
}

TEST_CASE("secrets: a directory, a FIFO, an empty file and a too-large file are refused",
          "[secrets]") {
  TempDir dir;
  std::string value, error;

  const std::string d = dir.mkdir("adir");
  CHECK_FALSE(resolve_secret(file_source("S", d), value, error));
  CHECK(error == "secret S: cannot read " + d + ": not a regular file");

  // Must not hang waiting for a writer.
  const std::string fifo = dir.mkfifo("fifo");
  CHECK_FALSE(resolve_secret(file_source("S", fifo), value, error));
  CHECK(error == "secret S: cannot read " + fifo + ": not a regular file");

  const std::string empty = dir.write("empty", "");
  CHECK_FALSE(resolve_secret(file_source("S", empty), value, error));
  CHECK(error == "secret S: " + empty + " is empty");
  const std::string newline = dir.write("newline", "\n");
  CHECK_FALSE(resolve_secret(file_source("S", newline), value, error));
  CHECK(error == "secret S: " + newline + " is empty");

  const std::string big = dir.write("big", std::string(64 * 1024 + 1, 'a'));
  CHECK_FALSE(resolve_secret(file_source("S", big), value, error));
  CHECK(error == "secret S: cannot read " + big + ": larger than 64 KiB");

  const std::string limit = dir.write("limit", std::string(64 * 1024, 'a'));
  REQUIRE(resolve_secret(file_source("S", limit), value, error));
  CHECK(value.size() == 64 * 1024);
}

// --- redaction ----------------------------------------------------------------------------------

TEST_CASE("secrets: a raw value is masked anywhere in the text, every time", "[secrets]") {
  Redactor r;
  r.add("hunter2-token");
  CHECK_FALSE(r.empty());
  CHECK(r.redact("key=hunter2-token;") == "key=***;");
  CHECK(r.redact("hunter2-token at start") == "*** at start");
  CHECK(r.redact("at end hunter2-token") == "at end ***");
  CHECK(r.redact("hunter2-token") == "***");
  CHECK(r.redact("a hunter2-token b hunter2-tokenhunter2-token c") == "a *** b ****** c");
  CHECK(r.redact("hunter2-toke n") == "hunter2-toke n");

  // A value whose occurrences overlap each other leaves no piece behind.
  Redactor self;
  self.add("abc1abc");
  CHECK(self.redact("<abc1abc1abc>") == "<***>");
  CHECK(r.redact("") == "");
}

TEST_CASE("secrets: a secret containing another, or overlapping it, is masked whole", "[secrets]") {
  Redactor r;
  r.add("secret-token");
  r.add("my-secret-token-1234");
  CHECK(r.redact("x my-secret-token-1234 y") == "x *** y");
  CHECK(r.redact("x secret-token y") == "x *** y");

  Redactor o;
  o.add("abcdefgh1234");
  o.add("1234wxyz5678");
  CHECK(o.redact("[abcdefgh1234wxyz5678]") == "[***]");
  CHECK(o.redact("[1234wxyz5678 abcdefgh1234]") == "[*** ***]");
}

TEST_CASE("secrets: base64 of a value is masked, standard and URL-safe, padded or not",
          "[secrets]") {
  // Bytes chosen so the standard and URL-safe encodings differ and padding is needed.
  const std::string secret = "tok\xfb\xff\xbf-pass\xfe!";
  const std::string std_pad = b64(secret, false, true);
  const std::string std_nopad = b64(secret, false, false);
  const std::string url_pad = b64(secret, true, true);
  const std::string url_nopad = b64(secret, true, false);
  REQUIRE(std_pad != url_pad);
  REQUIRE(std_pad != std_nopad);
  REQUIRE(std_pad.back() == '=');

  Redactor r;
  r.add(secret);
  for (const auto& enc : {std_pad, std_nopad, url_pad, url_nopad}) {
    CAPTURE(enc);
    const std::string out = r.redact("Authorization: Basic " + enc + " end");
    CHECK_FALSE(contains(out, enc));
    CHECK(out == "Authorization: Basic *** end");
  }
}

// In a longer base64 text the value's characters depend on how many bytes precede it in its
// 3-byte group. The part that depends on the value alone is found independently here: the
// characters that stay the same whatever the bytes around the value are.
TEST_CASE("secrets: a value base64-encoded inside a longer blob is masked at every alignment",
          "[secrets]") {
  // Lengths 0, 1 and 2 mod 3, each in a redactor of its own; the last has bytes whose standard
  // and URL-safe encodings differ.
  for (const std::string secret :
       {"correct-horse-9", "battery-staple-1", "Tr0ub4dor&3-xkcd!", "tok\xfb\xff\xbf-pass\xfe!"}) {
    Redactor r;
    r.add(secret);
    for (std::size_t prefix = 0; prefix < 3; ++prefix) {
      for (std::size_t suffix = 0; suffix < 3; ++suffix) {
        for (const bool url : {false, true}) {
          CAPTURE(secret, prefix, suffix, url);
          const std::string blob =
              b64(std::string(prefix, 'x') + secret + std::string(suffix, 'y'), url, true);
          const std::string other =
              b64(std::string(prefix, '\xff') + secret + std::string(suffix, '\xff'), url, true);
          const std::string zero =
              b64(std::string(prefix, '\0') + secret + std::string(suffix, '\0'), url, true);
          REQUIRE(blob.size() == other.size());
          // The longest run of positions where all three encodings agree: the value's own part.
          std::size_t best_begin = 0, best_len = 0;
          for (std::size_t i = 0; i < blob.size();) {
            std::size_t j = i;
            while (j < blob.size() && blob[j] == other[j] && blob[j] == zero[j]) ++j;
            if (j - i > best_len) {
              best_begin = i;
              best_len = j - i;
            }
            i = j + 1;
          }
          const std::string middle = blob.substr(best_begin, best_len);
          REQUIRE(middle.size() >= 8);

          const std::string text = "data:" + blob + ";";
          const std::string out = r.redact(text);
          CHECK(out != text);
          CHECK_FALSE(contains(out, middle));
          CHECK(contains(out, "***"));
          // And as a piece of a still longer base64 text.
          const std::string long_blob = b64("header bytes " + std::string(prefix, 'q') + secret +
                                                " trailing bytes of the payload",
                                            url, false);
          const std::string long_out = r.redact(long_blob);
          CHECK(long_out != long_blob);
          CHECK(contains(long_out, "***"));
        }
      }
    }
  }
}

TEST_CASE("secrets: base64 cut forms are not used for values too short to cut safely",
          "[secrets]") {
  // 5 bytes: the cut forms are under 8 characters, so only whole encodings are masked.
  Redactor r;
  r.add("abcde");
  const std::string inside = b64("x" + std::string("abcde") + "y", false, true);
  CHECK(r.redact(inside) == inside);
  CHECK(r.redact(b64("abcde", false, true)) == "***");
}

TEST_CASE("secrets: percent-encoded forms are masked, upper and lower case hex", "[secrets]") {
  const std::string secret = "p@ss w/rd:!x*(1)'~";
  Redactor r;
  r.add(secret);
  const std::vector<std::string> forms = {
      pct(secret, "-._~", true),         // curl_easy_escape
      pct(secret, "-._~", false),        // the same, lowercase hex
      pct(secret, "-_.!~*'()", true),    // encodeURIComponent
      pct(secret, "-_.!~*'()", false),   //
      pct(secret, "-._~", true, true),   // form encoding
      pct(secret, "-._~", false, true),  //
  };
  REQUIRE(forms[0] != forms[1]);
  REQUIRE(forms[0] != forms[2]);
  REQUIRE(forms[0] != forms[4]);
  for (const auto& enc : forms) {
    CAPTURE(enc);
    const std::string text = "https://example.com/?password=" + enc + "&next=1";
    const std::string out = r.redact(text);
    CHECK_FALSE(contains(out, enc));
    CHECK(out == "https://example.com/?password=***&next=1");
  }
}

TEST_CASE("secrets: a value escaped inside a JSON string is masked", "[secrets]") {
  const std::string secret = "quote\"back\\slash\nnl";
  Redactor r;
  r.add(secret);
  const std::string dumped = nlohmann::json{{"v", secret}}.dump();
  CHECK(r.redact(dumped) == R"({"v":"***"})");
}

TEST_CASE("secrets: every string in a JSON document is redacted, keys too", "[secrets]") {
  Redactor r;
  r.add("s3cr3t-value");
  nlohmann::json doc = {
      {"plain", "nothing here"},
      {"n", 42},
      {"nested", {{"list", {"a s3cr3t-value b", 1, nullptr, {{"deep", "s3cr3t-value"}}}}}},
      {"s3cr3t-value", "as a key"},
      {"k-s3cr3t-value", {{"x", "y"}}},
      {"***", "a key that already reads ***"},
  };
  r.redact_in_place(doc);
  const nlohmann::json expected = {
      {"plain", "nothing here"},
      {"n", 42},
      {"nested", {{"list", {"a *** b", 1, nullptr, {{"deep", "***"}}}}}},
      {"***", "a key that already reads ***"},
      {"*** (2)", "as a key"},
      {"k-***", {{"x", "y"}}},
  };
  CHECK(doc == expected);
  CHECK(doc.dump().find("s3cr3t") == std::string::npos);

  nlohmann::json str = "s3cr3t-value";
  r.redact_in_place(str);
  CHECK(str == "***");
}

TEST_CASE("secrets: values shorter than four bytes are ignored", "[secrets]") {
  Redactor r;
  r.add("");
  r.add("abc");
  CHECK(r.empty());
  CHECK(r.redact("abc abc") == "abc abc");
  r.add("abcd");
  CHECK_FALSE(r.empty());
  CHECK(r.redact("abc abcd") == "abc ***");
}

TEST_CASE("secrets: an empty redactor changes nothing", "[secrets]") {
  Redactor r;
  CHECK(r.empty());
  CHECK(r.redact("anything at all, *** included") == "anything at all, *** included");
  nlohmann::json doc = {{"k", "v"}, {"a", {1, "two"}}};
  const nlohmann::json before = doc;
  r.redact_in_place(doc);
  CHECK(doc == before);
}

TEST_CASE("secrets: a redactor leaves text without secrets alone", "[secrets]") {
  Redactor r;
  r.add("correct-horse-battery-staple");
  const std::string text = "an ordinary line, with base64 aGVsbG8gd29ybGQ= and %41%42";
  CHECK(r.redact(text) == text);
}

// --- environment --------------------------------------------------------------------------------

TEST_CASE("secrets: credential-like environment variable names are recognised", "[secrets]") {
  for (const char* name : {"AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY",
                           "AWS_SESSION_TOKEN",
                           "GITHUB_TOKEN",
                           "OPENAI_API_KEY",
                           "ANTHROPIC_API_KEY",
                           "HF_TOKEN",
                           "github_token",
                           "Api_Key",
                           "DB_PASSWORD",
                           "PGPASSWORD",
                           "SMTP_PASSWD",
                           "GOOGLE_APPLICATION_CREDENTIALS",
                           "HTTP_AUTHORIZATION",
                           "HTTP_COOKIE",
                           "PRIVATE_PEM",
                           "NPM_TOKEN",
                           "GH_PAT",
                           "MYSQL_PWD",
                           "CLIENT_SECRET",
                           "XDG_SESSION_ID",
                           "SSH_AUTH_SOCK"}) {
    CAPTURE(name);
    CHECK(looks_like_secret_env(name));
  }
}

TEST_CASE("secrets: ordinary environment variable names are not secrets", "[secrets]") {
  for (const char* name : {"PATH", "HOME", "LANG", "TERM", "USER", "SHELL", "PWD", "OLDPWD",
                           "LC_ALL", "TZ", "TMPDIR", "PATHEXT", "EDITOR", "PAGER", "PATTERN", ""}) {
    CAPTURE(name);
    CHECK_FALSE(looks_like_secret_env(name));
  }
}
