#include "tools/http_tool.h"

#include "tools/curl_handles.h"
#include "tools/http_client.h"
#include "tools/lowercase.h"
#include "tools/secret_mask.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace tactus::tools {
namespace {

using protocol::Json;
using Clock = std::chrono::steady_clock;

using Url = CurlUrl;

bool http_scheme(const std::string& url) {
  const std::string l = lower(url.substr(0, 8));
  return l.rfind("http://", 0) == 0 || l.rfind("https://", 0) == 0;
}

std::string url_part(CURLU* u, CURLUPart part) {
  char* p = nullptr;
  if (curl_url_get(u, part, &p, 0) != CURLUE_OK || p == nullptr) return "";
  std::string s(p);
  curl_free(p);
  return s;
}

// Before any parsing or regex: a longer URL or host is refused whole (a 100,000-character host
// once overflowed the stack inside std::regex).
constexpr std::size_t kMaxUrl = 8 * 1024;
constexpr std::size_t kMaxHost = 253;  // the longest DNS name

// An IP literal in the one spelling the policy sees: IPv4 dotted quad (IPv4-mapped IPv6
// "::ffff:7f00:1" becomes "127.0.0.1"), IPv6 in inet_ntop's compressed form. Not an IP literal:
// nothing.
std::optional<std::string> canonical_ip(const std::string& host) {
  char buf[INET6_ADDRSTRLEN];
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return ::inet_ntop(AF_INET, &v4, buf, sizeof buf) ? std::optional<std::string>(buf)
                                                      : std::nullopt;
  in6_addr v6{};
  if (host.find(':') == std::string::npos || ::inet_pton(AF_INET6, host.c_str(), &v6) != 1)
    return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4, &v6.s6_addr[12], 4);
    return ::inet_ntop(AF_INET, &v4, buf, sizeof buf) ? std::optional<std::string>(buf)
                                                      : std::nullopt;
  }
  return ::inet_ntop(AF_INET6, &v6, buf, sizeof buf) ? std::optional<std::string>(buf)
                                                     : std::nullopt;
}

// What the policy sees of a URL's host: lowercased, without IPv6 brackets, zone or trailing
// dots, an IP literal in its canonical spelling. Empty: no usable host.
std::string policy_host(std::string host) {
  host = lower(std::move(host));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (const auto pct = host.find('%'); pct != std::string::npos) host.resize(pct);
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (auto ip = canonical_ip(host)) return *ip;
  return host;
}

// Parses an absolute http(s) URL. On success, host is what the policy sees (policy_host).
bool parse_url(const std::string& text, Url& url, std::string& host, std::string& error) {
  if (text.size() > kMaxUrl) {
    error = "url is " + std::to_string(text.size()) + " bytes, over the limit of " +
            std::to_string(kMaxUrl);
    return false;
  }
  if (!http_scheme(text)) {
    error = "url must be http:// or https://";
    return false;
  }
  url.reset(curl_url());
  if (!url) {
    error = "out of memory";
    return false;
  }
  const CURLUcode rc = curl_url_set(url.get(), CURLUPART_URL, text.c_str(), 0);
  if (rc != CURLUE_OK) {
    error = std::string("invalid url: ") + curl_url_strerror(rc);
    return false;
  }
  const std::string scheme = lower(url_part(url.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    error = "url must be http:// or https://";
    return false;
  }
  const std::string raw = url_part(url.get(), CURLUPART_HOST);
  if (raw.size() > kMaxHost + 2) {  // brackets of an IPv6 literal
    error = "invalid url: the host is " + std::to_string(raw.size()) +
            " bytes, over the limit of " + std::to_string(kMaxHost);
    return false;
  }
  // A name outside ASCII would reach the network as its IDNA form, which the patterns never
  // saw: the procedure writes the xn-- form itself.
  if (std::any_of(raw.begin(), raw.end(), [](unsigned char c) { return c >= 0x80; })) {
    error = "invalid url: the host is not ASCII (write an international name in its xn-- form)";
    return false;
  }
  host = policy_host(raw);
  if (host.empty()) {
    error = "invalid url: no host";
    return false;
  }
  return true;
}

// The origin (scheme, host, port) of a parsed URL: credentials do not cross origins.
std::string origin(CURLU* u) {
  char* p = nullptr;
  std::string port;
  if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK && p) {
    port = p;
    curl_free(p);
  }
  return lower(url_part(u, CURLUPART_SCHEME)) + "://" + lower(url_part(u, CURLUPART_HOST)) + ":" +
         port;
}

// Loopback under any spelling: what the kernel delivers to this machine. The unspecified
// address (0.0.0.0, "0", ::) connects to loopback on Linux; *.localhost is loopback by RFC 6761
// and libcurl resolves it so.
// One of this machine's own interface addresses: a service bound to 0.0.0.0 answers there as
// it does on loopback.
bool own_address(const std::string& ip) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool found = false;
  for (const ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN] = "";
    if (i->ifa_addr->sa_family == AF_INET)
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, buf,
                  sizeof buf);
    else if (i->ifa_addr->sa_family == AF_INET6)
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                  sizeof buf);
    found = buf[0] != '\0' && ip == buf;
  }
  ::freeifaddrs(list);
  return found;
}

}  // namespace

bool loopback_class(const std::string& host) {
  if (host == "localhost" || (host.size() > 10 && host.ends_with(".localhost"))) return true;
  if (host == "0.0.0.0" || host == "::" || host == "::1") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127 || own_address(host);
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && own_address(host);
}

namespace {

// The spellings a deny pattern is tried against: the host, and for loopback in any form the
// usual names of loopback too, so `^127\.` or `^localhost$` denies every way there.
std::vector<std::string> deny_spellings(const std::string& host) {
  std::vector<std::string> out = {host};
  if (loopback_class(host))
    for (const char* alias : {"localhost", "127.0.0.1", "::1"})
      if (host != alias) out.emplace_back(alias);
  return out;
}

// Empty if no deny pattern matches host (in any of its spellings); otherwise the reason. Deny
// patterns match anywhere in the host (std::regex_search): a deny errs on the side of denying.
std::string denied_by(const NetworkPolicy& policy, const std::string& host,
                      const std::string& what) {
  for (const auto& d : policy.deny) {
    try {
      const std::regex re(d, std::regex::ECMAScript);
      for (const auto& spelling : deny_spellings(host))
        if (std::regex_search(spelling, re))
          return what + " is denied by sandbox.network_filter.deny '" + d + "'" +
                 (spelling == host ? "" : " (it is " + spelling + ")");
    } catch (const std::regex_error&) {
      return what + ": invalid regex in sandbox.network_filter.deny '" + d + "'";
    }
  }
  return "";
}

// Empty if the policy allows host; otherwise the reason. An allow pattern must match the whole
// host (std::regex_match): "example\.com" allows example.com, not example.com.evil.test.
std::string check_host(const NetworkPolicy& policy, const std::string& host) {
  if (policy.mode == "host") return "";
  if (policy.mode != "filtered") return "network is " + policy.mode + " (sandbox.network)";
  if (auto why = denied_by(policy, host, "host '" + host + "'"); !why.empty()) return why;
  for (const auto& a : policy.allow) {
    try {
      if (std::regex_match(host, std::regex(a, std::regex::ECMAScript))) return "";
    } catch (const std::regex_error&) {
    }
  }
  return "host '" + host + "' is not allowed by sandbox.network_filter";
}

bool valid_method(const std::string& m) {
  if (m.empty() || m.size() > 32) return false;
  return std::all_of(m.begin(), m.end(),
                     [](unsigned char c) { return std::isupper(c) || c == '-' || c == '_'; });
}

bool valid_header_name(const std::string& n) {
  if (n.empty()) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string::npos;
  });
}

bool valid_header_value(const std::string& v) {
  return v.find_first_of(std::string("\r\n\0", 3)) == std::string::npos;
}

bool has_header(const std::vector<std::pair<std::string, std::string>>& headers,
                const std::string& lowercased) {
  for (const auto& h : headers)
    if (lower(h.first) == lowercased) return true;
  return false;
}

}  // namespace

ToolOutcome http_request(const NetworkPolicy& policy, const Json& args) {
  if (!args.is_object()) return tool_failure(ToolError::invalid_args, "args must be an object");
  if (!args.contains("url") || !args["url"].is_string())
    return tool_failure(ToolError::invalid_args, "url must be a string");
  std::string method = "GET";
  if (args.contains("method")) {
    if (!args["method"].is_string())
      return tool_failure(ToolError::invalid_args, "method must be a string");
    method = args["method"].get<std::string>();
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (!valid_method(method))
      return tool_failure(ToolError::invalid_args, "invalid method '" + method + "'");
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (args.contains("headers") && !args["headers"].is_null()) {
    if (!args["headers"].is_object())
      return tool_failure(ToolError::invalid_args, "headers must be an object {name: value}");
    for (const auto& [name, value] : args["headers"].items()) {
      if (!value.is_string())
        return tool_failure(ToolError::invalid_args, "header '" + name + "' must be a string");
      const auto v = value.get<std::string>();
      if (!valid_header_name(name) || !valid_header_value(v))
        return tool_failure(ToolError::invalid_args, "invalid header '" + name + "'");
      headers.emplace_back(name, v);
    }
  }
  bool has_body = false;
  std::string body;
  if (args.contains("body") && !args["body"].is_null()) {
    if (!args["body"].is_string())
      return tool_failure(ToolError::invalid_args, "body must be a string");
    body = args["body"].get<std::string>();
    has_body = true;
  }

  Url url;
  std::string host, error;
  if (!parse_url(args["url"].get<std::string>(), url, host, error))
    return tool_failure(ToolError::invalid_args, error);
  if (auto why = check_host(policy, host); !why.empty())
    return tool_failure(ToolError::denied, why);

  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::max(0.0, policy.timeout_seconds)));
  for (int hop = 0;; ++hop) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return tool_failure(ToolError::timeout, "http.request timed out");

    HttpExchange x;
    x.url = url.get();
    x.method = method;
    x.body = has_body || method == "POST" || method == "PUT" || method == "PATCH" ? &body : nullptr;
    bool has_expect = false;
    for (const auto& [name, value] : headers) {
      // "Name;" sends a header with an empty value; "Name:" would remove it.
      x.header_lines.push_back(value.empty() ? name + ";" : name + ": " + value);
      if (lower(name) == "expect") has_expect = true;
    }
    if (!has_expect) x.header_lines.push_back("Expect:");  // no 100-continue round trip
    // The procedure's own Idempotency-Key wins: it may know the remote's rules better.
    if (!policy.idempotency_key.empty() && !has_header(headers, "idempotency-key"))
      x.header_lines.push_back("Idempotency-Key: " + policy.idempotency_key);
    x.timeout_ms = static_cast<long>(left);
    x.max_body = policy.max_response;
    // The address libcurl is about to connect to, checked against the deny patterns: a
    // permitted name that resolves to a denied address (DNS rebinding included) is refused.
    x.check_address = [&policy, &host](const std::string& connected) -> std::string {
      if (policy.mode != "filtered") return "";
      const std::string address = policy_host(connected);
      return denied_by(policy, address, "host '" + host + "' resolved to " + address + ", which");
    };
    x.pinned = policy.pinned_addresses;
    std::string response_body;
    const HttpResponse r =
        http_exchange(x, [&](long, const std::map<std::string, std::string>&, std::string_view p) {
          response_body.append(p);
          return true;
        });
    const std::string too_big =
        "response larger than " + std::to_string(policy.max_response) + " bytes";
    if (r.too_big) return tool_failure(ToolError::failed, too_big);
    if (!r.refused.empty()) return tool_failure(ToolError::denied, r.refused);
    if (r.code == CURLE_OPERATION_TIMEDOUT)
      return tool_failure(ToolError::timeout, "http.request timed out");
    if (r.code != CURLE_OK)
      return tool_failure(ToolError::failed, std::string("http: ") + curl_easy_strerror(r.code));

    const long status = r.status;
    const bool redirect =
        (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) &&
        !r.redirect_url.empty();
    if (!redirect) {
      ToolOutcome out;
      out.ok = true;
      // The body is kept as a string: invalid UTF-8 is replaced when the answer is serialised.
      // Binary bodies are out of scope for now.
      out.result = Json{{"status", status},
                        {"headers", r.headers},
                        {"body", std::move(response_body)},
                        {"url", r.effective_url}};
      return out;
    }

    if (hop >= policy.max_redirects)
      return tool_failure(ToolError::failed, "too many redirects (more than " +
                                                 std::to_string(policy.max_redirects) + ")");
    const std::string& target = r.redirect_url;
    const std::string shown = excerpt_head(target, 200, policy.mask);
    const std::string from = origin(url.get());
    Url next;
    std::string next_host;
    if (!parse_url(target, next, next_host, error))
      return tool_failure(ToolError::failed, "redirect to '" + shown + "': " + error);
    if (auto why = check_host(policy, next_host); !why.empty())
      return tool_failure(ToolError::denied, "redirect to '" + shown + "': " + why);
    if (origin(next.get()) != from) {
      // Credentials stay with the origin they were given for.
      headers.erase(std::remove_if(headers.begin(), headers.end(),
                                   [](const auto& hv) {
                                     const auto n = lower(hv.first);
                                     return n == "authorization" || n == "cookie" ||
                                            n == "proxy-authorization";
                                   }),
                    headers.end());
    }
    if (status == 301 || status == 302 || status == 303) {
      if (method != "HEAD") method = "GET";
      has_body = false;
      body.clear();
    }
    url = std::move(next);
    host = next_host;
  }
}

}  // namespace tactus::tools
