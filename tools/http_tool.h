// The http tool: http.request, the brokered way out to the network, governed by sandbox.network
// and sandbox.network_filter (tools/tool_context.h, NetworkPolicy).
//
// Only http:// and https:// URLs. The host of the URL (lowercased, without port, brackets or a
// trailing dot, as libcurl's URL parser normalises it: "0xa9fea9fe" is "169.254.169.254") is
// checked against the policy before anything is sent, and libcurl is handed that same parsed URL.
// Redirects are followed here, not by libcurl, so that every target is checked again: a
// redirect to a denied host is denied, naming that host. libcurl is limited to http and https,
// ignores proxies from the environment, cookies and .netrc, and does not decompress. Known gaps:
// a permitted name that resolves to a denied address, and IPv4-mapped IPv6 literals, are not
// caught by host regexes.
#pragma once

#include "runtime/protocol/message.h"
#include "tools/registry.h"
#include "tools/tool_context.h"

namespace tactus::tools {

// {url, method? = "GET", headers? = {name: value}, body? = string}
//   → {status, headers: {lowercased name: value}, body, url: the final URL}.
// Any HTTP status is ok (a 404 is a result, not an error). denied: the policy refuses the host
// or a redirect target; invalid_args: not an http(s) URL, a bad method, headers or body;
// timeout: the whole request, redirects included, took over policy.timeout_seconds; failed:
// too many redirects, a body over policy.max_response, or a network error.
ToolOutcome http_request(const NetworkPolicy& policy, const protocol::Json& args);

}  // namespace tactus::tools
