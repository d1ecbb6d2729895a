#include "tools/llm/http_post.h"

#include "tools/curl_handles.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <memory>

namespace tactus::tools::llm {
namespace {

struct Transfer {
  const BodySink* sink = nullptr;
  std::uint64_t max_bytes = 0;
  std::uint64_t received = 0;
  bool too_big = false, aborted = false;
  HttpOutcome* out = nullptr;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  std::string line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a 100 Continue, say): "HTTP/1.1 200 OK".
    const auto sp = line.find(' ');
    t->out->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    t->out->content_type.clear();
    t->out->retry_after.clear();
    t->out->retry_after_ms.clear();
    return len;
  }
  const auto colon = line.find(':');
  if (colon == std::string::npos) return len;
  const std::string name = lower(line.substr(0, colon));
  const auto start = line.find_first_not_of(" \t", colon + 1);
  const std::string value = start == std::string::npos ? "" : line.substr(start);
  if (name == "content-type") t->out->content_type = lower(value);
  if (name == "retry-after") t->out->retry_after = value;
  if (name == "retry-after-ms") t->out->retry_after_ms = value;
  return len;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  t->received += len;
  if (t->received > t->max_bytes) {
    t->too_big = true;
    return 0;  // CURLE_WRITE_ERROR ends the transfer
  }
  if (!(*t->sink)(t->out->status, t->out->content_type, std::string_view(data, len))) {
    t->aborted = true;
    return 0;
  }
  return len;
}

}  // namespace

HttpOutcome http_post(const std::string& url, const std::vector<std::string>& headers,
                      const std::string& body, double timeout_seconds, std::uint64_t max_bytes,
                      const BodySink& on_body_sink) {
  HttpOutcome out;
  CurlEasy easy(curl_easy_init());
  if (!easy) {
    out.transport = HttpOutcome::Transport::other;
    out.error = "curl_easy_init failed";
    return out;
  }
  CURL* h = easy.get();
  CurlList list;
  const auto add = [&](const std::string& line) { curl_list_append(list, line); };
  add("Content-Type: application/json");
  add("Accept: text/event-stream, application/json");
  add("Expect:");  // no 100-continue round trip
  for (const auto& line : headers) add(line);

  Transfer t;
  t.sink = &on_body_sink;
  t.max_bytes = max_bytes;
  t.out = &out;
  char errbuf[CURL_ERROR_SIZE] = {};
  const long timeout_ms = std::max(1L, static_cast<long>(timeout_seconds * 1000));

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
#endif
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  abort_on_interrupt(h);
  curl_easy_setopt(h, CURLOPT_NETRC, long{CURL_NETRC_IGNORED});
  // A local server (Ollama, the tests' fake) is reached directly whatever *_proxy says.
  curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "tactus");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);

  const CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) return out;
  out.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  using T = HttpOutcome::Transport;
  if (t.too_big) {
    out.transport = T::too_big;
  } else if (t.aborted) {
    out.transport = T::aborted;
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    out.transport = T::timeout;
  } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
             rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_GOT_NOTHING ||
             (rc == CURLE_SEND_ERROR && out.status == 0) ||
             (rc == CURLE_RECV_ERROR && out.status == 0)) {
    out.transport = T::connect;
  } else if (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) {
    out.transport = T::broken;
  } else {
    out.transport = T::other;
  }
  return out;
}

double retry_after_seconds(const std::string& retry_after, const std::string& retry_after_ms) {
  if (!retry_after_ms.empty()) {
    char* end = nullptr;
    const double ms = std::strtod(retry_after_ms.c_str(), &end);
    if (end != retry_after_ms.c_str() && *end == '\0' && ms >= 0) return ms / 1000;
  }
  if (retry_after.empty()) return -1;
  char* end = nullptr;
  const double s = std::strtod(retry_after.c_str(), &end);
  if (end != retry_after.c_str() && *end == '\0') return s >= 0 ? s : -1;
  const time_t when = curl_getdate(retry_after.c_str(), nullptr);
  if (when < 0) return -1;
  return std::max(0.0, std::difftime(when, std::time(nullptr)));
}

}  // namespace tactus::tools::llm
