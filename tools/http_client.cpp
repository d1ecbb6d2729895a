#include "tools/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

#include "tools/curl_handles.h"
#include "tools/lowercase.h"

namespace tactus::tools {
namespace {

struct Transfer {
  const HttpExchange* exchange = nullptr;
  const HttpBodySink* sink = nullptr;
  std::uint64_t received = 0;
  HttpResponse* out = nullptr;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  std::string line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a 100 Continue, say): "HTTP/1.1 200 OK".
    const auto sp = line.find(' ');
    t->out->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    t->out->headers.clear();
    return len;
  }
  const auto colon = line.find(':');
  if (colon == std::string::npos) return len;
  const std::string name = lower(line.substr(0, colon));
  const auto start = line.find_first_not_of(" \t", colon + 1);
  const std::string value = start == std::string::npos ? "" : line.substr(start);
  auto [it, fresh] = t->out->headers.emplace(name, value);
  if (!fresh) it->second += ", " + value;
  return len;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  t->received += len;
  if (t->received > t->exchange->max_body) {
    t->out->too_big = true;
    return 0;  // CURLE_WRITE_ERROR ends the transfer
  }
  if (!(*t->sink)(t->out->status, t->out->headers, std::string_view(data, len))) {
    t->out->aborted = true;
    return 0;
  }
  return len;
}

curl_socket_t open_checked_socket(void* user, curlsocktype purpose, curl_sockaddr* a) {
  auto* t = static_cast<Transfer*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  char buf[INET6_ADDRSTRLEN] = "";
  if (a->family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a->addr)->sin_addr, buf,
                sizeof buf);
  else if (a->family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a->addr)->sin6_addr, buf,
                sizeof buf);
  else
    return CURL_SOCKET_BAD;  // http(s) goes over IPv4 or IPv6 only
  if (std::string why = t->exchange->check_address(buf); !why.empty()) {
    t->out->refused = std::move(why);
    return CURL_SOCKET_BAD;
  }
  return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

std::string info_string(CURL* h, CURLINFO what) {
  char* s = nullptr;
  curl_easy_getinfo(h, what, &s);
  return s ? std::string(s) : std::string();
}

}  // namespace

HttpResponse http_exchange(const HttpExchange& x, const HttpBodySink& sink) {
  HttpResponse out;
  CurlEasy easy(curl_easy_init());
  if (!easy) {
    out.code = CURLE_FAILED_INIT;
    out.error = "curl_easy_init failed";
    return out;
  }
  CURL* h = easy.get();
  CurlList headers;
  for (const auto& line : x.header_lines) curl_list_append(headers, line);
  CurlList pinned;
  for (const auto& entry : x.pinned) curl_list_append(pinned, entry);
  Transfer t{&x, &sink, 0, &out};
  char errbuf[CURL_ERROR_SIZE] = {};

  if (x.url)
    curl_easy_setopt(h, CURLOPT_CURLU, x.url);
  else
    curl_easy_setopt(h, CURLOPT_URL, x.url_text.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
#endif
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  abort_on_interrupt(h);
  curl_easy_setopt(h, CURLOPT_NETRC, long{CURL_NETRC_IGNORED});
  if (x.environment_proxy)  // a local server (Ollama, the tests' fake) is reached directly
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  else
    curl_easy_setopt(h, CURLOPT_PROXY, "");
  if (x.check_address) {
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &t);
  }
  if (pinned) curl_easy_setopt(h, CURLOPT_RESOLVE, pinned.get());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, std::max(1L, x.timeout_ms));
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(x.max_body));
  if (!x.user_agent.empty()) curl_easy_setopt(h, CURLOPT_USERAGENT, x.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  if (x.body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(x.body->size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, x.body->data());
    if (x.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x.method.c_str());
  } else if (x.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (x.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x.method.c_str());
  }

  out.code = curl_easy_perform(h);
  if (out.code == CURLE_FILESIZE_EXCEEDED) out.too_big = true;
  if (out.code != CURLE_OK) out.error = errbuf[0] ? errbuf : curl_easy_strerror(out.code);
  long status = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status != 0)
    out.status = status;
  out.effective_url = info_string(h, CURLINFO_EFFECTIVE_URL);
  out.redirect_url = info_string(h, CURLINFO_REDIRECT_URL);
  return out;
}

}  // namespace tactus::tools
