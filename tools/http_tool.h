// The http tool: http.request, the brokered way out to the network, governed by sandbox.network
// and sandbox.network_filter (tools/tool_context.h, NetworkPolicy).
//
// Only http:// and https:// URLs, at most 8 KiB, with an ASCII host of at most 253 bytes. The
// host of the URL is normalised before the policy sees it: lowercased, without port, brackets,
// zone or trailing dots, an IP literal in one spelling (libcurl's parser turns "0xa9fea9fe"
// into "169.254.169.254"; IPv4-mapped IPv6 becomes IPv4). Loopback in any spelling is also
// tried against the deny patterns under its usual names (loopback_class). libcurl is handed the
// same parsed URL, and the address it connects to is checked against the deny patterns again,
// so a permitted name that resolves to a denied address (DNS rebinding included) is refused.
// Redirects are followed here, not by libcurl, so that every target is checked again: a
// redirect to a denied host is denied, naming that host. libcurl is limited to http and https,
// ignores proxies from the environment, cookies and .netrc, and does not decompress.
#pragma once

#include <string>

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

// Whether host (as the policy sees it: lowercased, an IP literal in canonical form) reaches
// this machine: localhost and *.localhost, 127/8, ::1, the unspecified 0.0.0.0 and ::, and the
// machine's own interface addresses. Such a host is also tried against the deny patterns as
// localhost, 127.0.0.1 and ::1.
bool loopback_class(const std::string& host);

}  // namespace tactus::tools
