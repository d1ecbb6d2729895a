#include "broker/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

namespace tactus::broker {

namespace {

// --- resolving --------------------------------------------------------------------------------

bool fail(std::string& error, const SecretSource& source, const std::string& what) {
  error = "secret " + source.name + ": " + what;
  return false;
}

bool resolve_env(const SecretSource& source, std::string& value, std::string& error) {
  const char* v = std::getenv(source.ref.c_str());
  if (v == nullptr || *v == '\0') {
    return fail(error, source, "environment variable " + source.ref + " is not set");
  }
  value = v;
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool resolve_file(const SecretSource& source, std::string& value, std::string& error) {
  std::string path = source.ref;
  if (path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return fail(error, source, "cannot expand ~ in " + source.ref + ": HOME is not set");
    }
    std::string base = home;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    path = base + path.substr(1);
  }
  if (path.empty()) return fail(error, source, "no file named");

  // O_NONBLOCK: opening a FIFO must not hang the broker; it is refused just below.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    return fail(error, source, "cannot read " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail(error, source, "cannot read " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(error, source, "cannot read " + path + ": not a regular file");
  }
  const std::string too_large =
      "cannot read " + path + ": larger than " + std::to_string(kMaxSecretFileSize / 1024) + " KiB";
  if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) > kMaxSecretFileSize) {
    return fail(error, source, too_large);
  }
  // Read one byte more than allowed, in case the file grew since fstat.
  std::string data(kMaxSecretFileSize + 1, '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(error, source, "cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > kMaxSecretFileSize) return fail(error, source, too_large);
  data.resize(got);

  if (data.size() >= 2 && data.compare(data.size() - 2, 2, "\r\n") == 0) {
    data.resize(data.size() - 2);
  } else if (!data.empty() && data.back() == '\n') {
    data.pop_back();
  }
  if (data.empty()) return fail(error, source, path + " is empty");
  value = std::move(data);
  return true;
}

// --- encodings --------------------------------------------------------------------------------

constexpr char kBase64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16 |
                       static_cast<unsigned char>(in[i + 1]) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = in.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (rest == 2) out += alphabet[(v >> 6) & 63];
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

// The base64 characters that encode `value` wherever it sits in a longer base64 text, when
// `prefix` (0, 1 or 2) bytes precede it in its 3-byte group. Character i of the encoding covers
// bits [6i, 6i + 6); it depends on the value alone when those bits lie within the value's bits
// [8 * prefix, 8 * (prefix + size)). The characters before that mix in the unknown prefix; those
// after, the unknown suffix.
std::string base64_cut(std::string_view value, std::size_t prefix, const char* alphabet) {
  std::string padded(prefix, '\0');
  padded.append(value);
  const std::string enc = base64(padded, alphabet, false);
  const std::size_t first = (8 * prefix + 5) / 6;
  const std::size_t last = 8 * (prefix + value.size()) / 6;  // one past
  if (last <= first) return {};
  return enc.substr(first, last - first);
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

enum class PercentStyle {
  strict,         // everything but unreserved: curl_easy_escape, Python quote(safe="")
  uri_component,  // also leaves ! ' ( ) * alone: JavaScript encodeURIComponent
  form,           // application/x-www-form-urlencoded: like strict, but a space is '+'
};

std::string percent_encode(std::string_view in, PercentStyle style, bool upper) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 3);
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (style == PercentStyle::uri_component &&
                             (c == '!' || c == '\'' || c == '(' || c == ')' || c == '*'))) {
      out += ch;
    } else if (style == PercentStyle::form && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// As nlohmann::json::dump writes the value inside a JSON string.
std::string json_escape(std::string_view in) {
  std::string out;
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  return out;
}

// Cut base64 forms shorter than this could match unrelated text by chance.
constexpr std::size_t kMinCutLength = 8;

void redact_json(const Redactor& redactor, nlohmann::json& value) {
  if (value.is_string()) {
    auto& s = value.get_ref<std::string&>();
    s = redactor.redact(s);
  } else if (value.is_array()) {
    for (auto& item : value) redact_json(redactor, item);
  } else if (value.is_object()) {
    bool keys_change = false;
    for (auto it = value.begin(); it != value.end(); ++it) {
      redact_json(redactor, it.value());
      if (!keys_change && redactor.redact(it.key()) != it.key()) keys_change = true;
    }
    if (!keys_change) return;
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string key = redactor.redact(it.key());
      std::string unique = key;
      for (int n = 2; out.contains(unique); ++n) unique = key + " (" + std::to_string(n) + ")";
      out[unique] = std::move(it.value());
    }
    value = std::move(out);
  }
}

}  // namespace

bool resolve_secret(const SecretSource& source, std::string& value, std::string& error) {
  switch (source.kind) {
    case SecretSource::Kind::env:
      return resolve_env(source, value, error);
    case SecretSource::Kind::file:
      return resolve_file(source, value, error);
  }
  return fail(error, source, "unknown source kind");
}

// --- Redactor ---------------------------------------------------------------------------------

void Redactor::add(std::string_view value) {
  if (value.size() < kMinSecretLength) return;
  std::vector<std::string> forms;
  forms.emplace_back(value);
  for (const char* alphabet : {kBase64Std, kBase64Url}) {
    forms.push_back(base64(value, alphabet, true));
    forms.push_back(base64(value, alphabet, false));
    for (std::size_t prefix = 0; prefix < 3; ++prefix) {
      std::string cut = base64_cut(value, prefix, alphabet);
      if (cut.size() >= kMinCutLength) forms.push_back(std::move(cut));
    }
  }
  for (const auto style : {PercentStyle::strict, PercentStyle::uri_component, PercentStyle::form}) {
    forms.push_back(percent_encode(value, style, true));
    forms.push_back(percent_encode(value, style, false));
  }
  forms.push_back(json_escape(value));

  for (auto& f : forms) patterns_.push_back(std::move(f));
  std::sort(patterns_.begin(), patterns_.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  patterns_.erase(std::unique(patterns_.begin(), patterns_.end()), patterns_.end());
}

std::string Redactor::redact(std::string_view text) const {
  if (patterns_.empty()) return std::string(text);

  // Every match of every pattern, overlapping ones included; then overlapping spans merge into
  // one "***", so neither a longer secret containing a shorter one nor two secrets that overlap
  // leave a piece of either behind.
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end)
  for (const auto& p : patterns_) {
    if (p.size() > text.size()) continue;
    for (auto pos = text.find(p); pos != std::string_view::npos; pos = text.find(p, pos + 1)) {
      spans.emplace_back(pos, pos + p.size());
    }
  }
  if (spans.empty()) return std::string(text);
  std::sort(spans.begin(), spans.end());

  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  std::size_t i = 0;
  while (i < spans.size()) {
    const std::size_t begin = spans[i].first;
    std::size_t end = spans[i].second;
    for (++i; i < spans.size() && spans[i].first < end; ++i) end = std::max(end, spans[i].second);
    out.append(text.substr(copied, begin - copied));
    out.append("***");
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

void Redactor::redact_in_place(nlohmann::json& value) const {
  if (patterns_.empty()) return;
  redact_json(*this, value);
}

// --- environment ------------------------------------------------------------------------------

bool looks_like_secret_env(std::string_view name) {
  std::string upper(name);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static constexpr std::string_view kWellKnown[] = {
      "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN",
  };
  for (const auto w : kWellKnown) {
    if (upper == w) return true;
  }
  static constexpr std::string_view kParts[] = {
      "KEY",        "TOKEN", "SECRET", "PASSWORD", "PASSWD",
      "CREDENTIAL", "AUTH",  "COOKIE", "SESSION",  "PRIVATE",
  };
  for (const auto part : kParts) {
    if (upper.find(part) != std::string::npos) return true;
  }
  const std::string_view u = upper;
  for (const std::string_view suffix : {std::string_view("_PAT"), std::string_view("_PWD")}) {
    if (u.size() >= suffix.size() && u.substr(u.size() - suffix.size()) == suffix) return true;
  }
  return false;
}

}  // namespace tactus::broker
