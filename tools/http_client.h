// One HTTP exchange with libcurl, shared by http.request (tools/http_tool.cpp) and the model
// providers (tools/llm/http_post.cpp). Both get the same floor: http and https only, no
// redirect followed (the caller decides), no .netrc, no signals, the transfer aborted on
// SIGINT/SIGTERM, the response's headers parsed once, its body handed over as it arrives and
// capped. What differs between them is said in the exchange.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tactus::tools {

struct HttpExchange {
  CURLU* url = nullptr;                   // a parsed URL (http.request), or
  std::string url_text;                   // one as text (a provider's endpoint)
  std::string method = "GET";             // GET, HEAD, POST, or any other sent as a custom request
  const std::string* body = nullptr;      // sent when not null
  std::vector<std::string> header_lines;  // "Name: value"; "Name;" sends it empty
  long timeout_ms = 1;
  std::uint64_t max_body = 0;  // a longer body ends the transfer (too_big)
  // Proxies from the environment apply, except to loopback; otherwise none is used.
  bool environment_proxy = false;
  std::string user_agent;  // none when empty
  // Checks each address libcurl is about to connect to (after the resolution that counts, so
  // DNS rebinding is caught): "" allows it, anything else refuses it with that reason. Only
  // IPv4 and IPv6 connections are opened when it is set.
  std::function<std::string(const std::string& address)> check_address;
  std::vector<std::string> pinned;  // CURLOPT_RESOLVE entries ("host:port:address")
};

struct HttpResponse {
  CURLcode code = CURLE_OK;
  std::string error;  // curl's description when code is not CURLE_OK
  long status = 0;    // the HTTP status, once the headers arrived
  // Lowercased names; a repeated header's values joined with ", ".
  std::map<std::string, std::string> headers;
  bool too_big = false;  // more than max_body of body (or what Content-Length announced)
  bool aborted = false;  // the body sink asked to stop
  std::string refused;   // why check_address refused a connect, if it did
  std::string effective_url, redirect_url;  // as libcurl reports them
};

// Called with the status, the headers so far and each piece of the body; false stops.
using HttpBodySink = std::function<bool(long status, const std::map<std::string, std::string>&,
                                        std::string_view piece)>;

HttpResponse http_exchange(const HttpExchange& exchange, const HttpBodySink& on_body);

}  // namespace tactus::tools
