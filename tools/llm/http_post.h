// One HTTP POST to a model provider with libcurl, its body handed over piece by piece as it
// arrives (a streamed reply is read as it is written). No retries and no interpretation of the
// body here: tools/llm/llm_client.cpp does both.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tactus::tools::llm {

struct HttpOutcome {
  enum class Transport {
    ok,       // a whole response was read
    timeout,  // timeout_seconds passed
    connect,  // the server could not be reached, or closed before answering
    broken,   // the connection broke in the middle of the response body
    aborted,  // on_body asked to stop
    too_big,  // more than max_bytes of body
    other,    // TLS, protocol, ... (see error)
  } transport = Transport::ok;
  std::string error;  // curl's description when transport is not ok
  long status = 0;    // the HTTP status, once the headers arrived
  std::string content_type;
  std::string retry_after;     // the Retry-After header, if any
  std::string retry_after_ms;  // OpenAI's retry-after-ms header, if any
};

// Called with the status, the content type and each piece of the body; returns false to stop.
using BodySink =
    std::function<bool(long status, std::string_view content_type, std::string_view piece)>;

// POSTs body (JSON) to url with the given extra header lines. Proxies from the environment
// apply, except to loopback addresses; redirects are not followed; TLS is verified.
HttpOutcome http_post(const std::string& url, const std::vector<std::string>& headers,
                      const std::string& body, double timeout_seconds, std::uint64_t max_bytes,
                      const BodySink& on_body);

// Seconds to wait from a Retry-After value (delta-seconds or an HTTP date) or a retry-after-ms
// value; -1 when there is none or it cannot be read.
double retry_after_seconds(const std::string& retry_after, const std::string& retry_after_ms);

}  // namespace tactus::tools::llm
