#include "tools/llm/http_post.h"

#include "tools/http_client.h"
#include "tools/lowercase.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <map>

namespace tactus::tools::llm {
namespace {

std::string header(const std::map<std::string, std::string>& headers, const char* name) {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

}  // namespace

HttpOutcome http_post(const std::string& url, const std::vector<std::string>& headers,
                      const std::string& body, double timeout_seconds, std::uint64_t max_bytes,
                      const BodySink& on_body_sink) {
  HttpExchange x;
  x.url_text = url;
  x.method = "POST";
  x.body = &body;
  x.header_lines = {"Content-Type: application/json", "Accept: text/event-stream, application/json",
                    "Expect:"};  // no 100-continue round trip
  x.header_lines.insert(x.header_lines.end(), headers.begin(), headers.end());
  x.timeout_ms = static_cast<long>(timeout_seconds * 1000);
  x.max_body = max_bytes;
  x.environment_proxy = true;
  x.user_agent = "tactus";
  const HttpResponse r = http_exchange(
      x, [&](long status, const std::map<std::string, std::string>& h, std::string_view piece) {
        return on_body_sink(status, lower(header(h, "content-type")), piece);
      });

  HttpOutcome out;
  out.status = r.status;
  out.content_type = lower(header(r.headers, "content-type"));
  out.retry_after = header(r.headers, "retry-after");
  out.retry_after_ms = header(r.headers, "retry-after-ms");
  const CURLcode rc = r.code;
  if (rc == CURLE_OK) return out;
  out.error = r.error;
  using T = HttpOutcome::Transport;
  if (r.too_big) {
    out.transport = T::too_big;
  } else if (r.aborted) {
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
