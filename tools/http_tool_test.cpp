// http.request against a local test server: the sandbox.network policy (none, filtered, host),
// redirects checked hop by hop, and the limits (redirects, response size, time).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <string>

#include "tests/support/http_test_server.h"
#include "tools/http_tool.h"
#include "tools/registry.h"

using namespace tactus;
using protocol::Json;

namespace {

tools::ToolOutcome request(const tools::NetworkPolicy& policy, const Json& args) {
  tools::ToolContext ctx;
  ctx.network = policy;
  return tools::ToolRegistry(ctx).call("http.request", args);
}

tools::NetworkPolicy host_mode() {
  tools::NetworkPolicy p;
  p.mode = "host";
  return p;
}

tools::NetworkPolicy filtered(std::vector<std::string> allow, std::vector<std::string> deny = {}) {
  tools::NetworkPolicy p;
  p.mode = "filtered";
  p.allow = std::move(allow);
  p.deny = std::move(deny);
  return p;
}

}  // namespace

TEST_CASE("http: network none denies every request", "[http]") {
  test::HttpTestServer server;
  const auto out = request(tools::NetworkPolicy{}, {{"url", server.url("/hello")}});
  CHECK_FALSE(out.ok);
  CHECK(out.code == "denied");
  CHECK(out.message == "network is none (sandbox.network)");
  CHECK(server.requests() == 0);
}

TEST_CASE("http: host mode GET returns status, headers, body and url", "[http]") {
  test::HttpTestServer server;
  REQUIRE(tools::ToolRegistry().has("http.request"));
  const auto out = request(host_mode(), {{"url", server.url("/hello")}});
  REQUIRE(out.ok);
  CHECK(out.result["status"] == 200);
  CHECK(out.result["body"] == "hello");
  CHECK(out.result["headers"]["content-type"] == "text/plain");
  CHECK(out.result["headers"]["content-length"] == "5");
  CHECK(out.result["url"] == server.url("/hello"));
  CHECK(server.requests() == 1);
}

TEST_CASE("http: POST sends method, headers and body", "[http]") {
  test::HttpTestServer server;
  const auto out = request(host_mode(), {{"url", server.url("/echo")},
                                         {"method", "POST"},
                                         {"headers", {{"X-Test", "forty two"}}},
                                         {"body", "{\"a\":1}"}});
  REQUIRE(out.ok);
  CHECK(out.result["status"] == 200);
  const auto echo = Json::parse(out.result["body"].get<std::string>());
  CHECK(echo["method"] == "POST");
  CHECK(echo["x_test"] == "forty two");
  CHECK(echo["body"] == "{\"a\":1}");

  const auto put =
      request(host_mode(), {{"url", server.url("/echo")}, {"method", "put"}, {"body", "x"}});
  REQUIRE(put.ok);
  CHECK(Json::parse(put.result["body"].get<std::string>())["method"] == "PUT");
}

TEST_CASE("http: filtered mode checks the host against allow and deny", "[http]") {
  test::HttpTestServer server;
  const Json args{{"url", server.url("/hello")}};

  const auto allowed = request(filtered({"^127\\.0\\.0\\.1$"}), args);
  REQUIRE(allowed.ok);
  CHECK(allowed.result["body"] == "hello");

  const auto deny_wins = request(filtered({"^127\\.0\\.0\\.1$"}, {"^127\\."}), args);
  CHECK(deny_wins.code == "denied");
  CHECK(deny_wins.message == "host '127.0.0.1' is denied by sandbox.network_filter.deny '^127\\.'");

  const auto not_allowed = request(filtered({"^api\\.example\\.com$"}), args);
  CHECK(not_allowed.code == "denied");
  CHECK(not_allowed.message == "host '127.0.0.1' is not allowed by sandbox.network_filter");

  // The host as libcurl will reach it: numeric forms are normalised, case and the port ignored.
  const auto hex = request(filtered({".*"}, {"^169\\.254\\."}), {{"url", "http://0xA9FEA9FE/"}});
  CHECK(hex.code == "denied");
  CHECK(hex.message.find("'169.254.169.254'") != std::string::npos);
  const auto upper =
      request(filtered({".*"}, {"^evil\\.example$"}), {{"url", "http://EVIL.example.:8080/"}});
  CHECK(upper.code == "denied");
  CHECK(server.requests() == 1);
}

TEST_CASE("http: a redirect to a denied host is denied", "[http]") {
  test::HttpTestServer server;
  const std::string target = "http://169.254.169.254/latest/meta-data/";
  const auto out = request(filtered({"^127\\.0\\.0\\.1$"}, {"^169\\.254\\."}),
                           {{"url", server.url("/redirect?to=" + target)}});
  CHECK_FALSE(out.ok);
  CHECK(out.code == "denied");
  CHECK(out.message.find("169.254.169.254") != std::string::npos);
  CHECK(out.message.find("sandbox.network_filter.deny") != std::string::npos);
  CHECK(server.requests() == 1);

  // Not in allow either: also denied, even in filtered mode with no deny list.
  const auto other = request(filtered({"^127\\.0\\.0\\.1$"}),
                             {{"url", server.url("/redirect?to=http://example.com/")}});
  CHECK(other.code == "denied");
  CHECK(other.message.find("'example.com'") != std::string::npos);
}

TEST_CASE("http: redirects are followed, 302 turns POST into GET", "[http]") {
  test::HttpTestServer server;
  const auto out = request(
      host_mode(),
      {{"url", server.url("/redirect?to=%2Fecho")}, {"method", "POST"}, {"body", "payload"}});
  REQUIRE(out.ok);
  CHECK(out.result["status"] == 200);
  CHECK(out.result["url"] == server.url("/echo"));
  const auto echo = Json::parse(out.result["body"].get<std::string>());
  CHECK(echo["method"] == "GET");
  CHECK(echo["body"] == "");
  CHECK(server.targets() == std::vector<std::string>{"/redirect?to=%2Fecho", "/echo"});
}

TEST_CASE("http: a redirect loop over the limit fails", "[http]") {
  test::HttpTestServer server;
  auto policy = host_mode();
  policy.max_redirects = 3;
  const auto out = request(policy, {{"url", server.url("/loop")}});
  CHECK_FALSE(out.ok);
  CHECK(out.code == "failed");
  CHECK(out.message == "too many redirects (more than 3)");
  CHECK(server.requests() == 4);
}

TEST_CASE("http: a response over max_response fails", "[http]") {
  test::HttpTestServer server;
  auto policy = host_mode();
  policy.max_response = 1000;
  const auto ok = request(policy, {{"url", server.url("/big?n=1000")}});
  REQUIRE(ok.ok);
  CHECK(ok.result["body"].get<std::string>().size() == 1000);
  const auto out = request(policy, {{"url", server.url("/big?n=200000")}});
  CHECK_FALSE(out.ok);
  CHECK(out.code == "failed");
  CHECK(out.message == "response larger than 1000 bytes");
}

TEST_CASE("http: a slow server times out", "[http]") {
  test::HttpTestServer server;
  auto policy = host_mode();
  policy.timeout_seconds = 0.5;
  const auto out = request(policy, {{"url", server.url("/slow")}});
  CHECK_FALSE(out.ok);
  CHECK(out.code == "timeout");
}

TEST_CASE("http: invalid arguments", "[http]") {
  const auto policy = host_mode();
  for (const char* url :
       {"file:///etc/passwd", "ftp://127.0.0.1/", "gopher://x/", "/relative", "http://", ""}) {
    INFO(url);
    CHECK(request(policy, {{"url", url}}).code == "invalid_args");
  }
  CHECK(request(policy, Json::object()).code == "invalid_args");
  CHECK(request(policy, {{"url", 42}}).code == "invalid_args");
  const std::string u = "http://127.0.0.1:1/";
  CHECK(request(policy, {{"url", u}, {"body", 42}}).code == "invalid_args");
  CHECK(request(policy, {{"url", u}, {"body", Json::object()}}).code == "invalid_args");
  CHECK(request(policy, {{"url", u}, {"method", 1}}).code == "invalid_args");
  CHECK(request(policy, {{"url", u}, {"method", "GE T"}}).code == "invalid_args");
  CHECK(request(policy, {{"url", u}, {"headers", "X: y"}}).code == "invalid_args");
  CHECK(request(policy, {{"url", u}, {"headers", {{"X", 1}}}}).code == "invalid_args");
  CHECK(request(policy, {{"url", u}, {"headers", {{"X", "a\r\nHost: evil"}}}}).code ==
        "invalid_args");
  CHECK(request(policy, {{"url", u}, {"headers", {{"Bad Name", "v"}}}}).code == "invalid_args");
}

TEST_CASE("http: a 404 is a result, not an error", "[http]") {
  test::HttpTestServer server;
  const auto missing = request(host_mode(), {{"url", server.url("/nope")}});
  REQUIRE(missing.ok);
  CHECK(missing.result["status"] == 404);
  const auto teapot = request(host_mode(), {{"url", server.url("/status?code=418")}});
  REQUIRE(teapot.ok);
  CHECK(teapot.result["status"] == 418);
}

TEST_CASE("http: a connection error fails", "[http]") {
  int port;
  {
    test::HttpTestServer server;
    port = server.port();
  }
  const auto out =
      request(host_mode(), {{"url", "http://127.0.0.1:" + std::to_string(port) + "/"}});
  CHECK_FALSE(out.ok);
  CHECK(out.code == "failed");
}

TEST_CASE("http: loopback under every spelling is denied by the loopback deny rules",
          "[http][network]") {
  test::HttpTestServer server;
  const std::string port = std::to_string(server.port());
  // Each of these reaches the server when nothing denies it (checked at the end).
  const std::vector<std::string> spellings = {
      "http://0.0.0.0:" + port + "/hello",
      "http://0:" + port + "/hello",
      "http://[::ffff:127.0.0.1]:" + port + "/hello",
      "http://[::ffff:7f00:1]:" + port + "/hello",
      "http://foo.localhost:" + port + "/hello",
      "http://FOO.Localhost:" + port + "/hello",
      "http://127.1:" + port + "/hello",
      "http://2130706433:" + port + "/hello",
      "http://rebind.test:" + port + "/hello",
  };
  // And these, which reach it where the resolver knows the name with its trailing dot.
  const std::vector<std::string> dotted = {"http://localhost.:" + port + "/hello",
                                           "http://foo.localhost..:" + port + "/hello"};
  auto policy = filtered({".*"}, {"^127\\.", "^localhost$"});
  policy.pinned_addresses = {"rebind.test:" + port + ":127.0.0.1"};
  auto all = spellings;
  all.insert(all.end(), dotted.begin(), dotted.end());
  for (const auto& url : all) {
    INFO(url);
    const auto out = request(policy, {{"url", url}});
    INFO(out.message);
    CHECK(out.code == "denied");
  }
  CHECK(server.requests() == 0);
  // The name that resolves to loopback passes the name check and is refused at the connect.
  const auto rebound = request(policy, {{"url", "http://rebind.test:" + port + "/hello"}});
  CHECK(rebound.message ==
        "host 'rebind.test' resolved to 127.0.0.1, which is denied by "
        "sandbox.network_filter.deny '^127\\.'");

  // The same spellings do reach the server when nothing denies them: the test is not vacuous.
  auto open = host_mode();
  open.pinned_addresses = policy.pinned_addresses;
  for (const auto& url : spellings) {
    INFO(url);
    const auto out = request(open, {{"url", url}});
    INFO(out.message);
    CHECK(out.ok);
  }
  CHECK(server.requests() == static_cast<int>(spellings.size()));
}

TEST_CASE("http: an allow pattern matches the whole host, a deny pattern any part",
          "[http][network]") {
  test::HttpTestServer server;
  const std::string port = std::to_string(server.port());
  auto policy = filtered({"example\\.com"});
  policy.pinned_addresses = {"example.com.evil.test:" + port + ":127.0.0.1",
                             "example.com:" + port + ":127.0.0.1"};
  const auto suffix = request(policy, {{"url", "http://example.com.evil.test:" + port + "/"}});
  CHECK(suffix.code == "denied");
  CHECK(suffix.message == "host 'example.com.evil.test' is not allowed by sandbox.network_filter");
  const auto exact = request(policy, {{"url", "http://example.com:" + port + "/hello"}});
  CHECK(exact.ok);
  policy.deny = {"evil"};
  const auto deny = request(policy, {{"url", "http://example.com.evil.test:" + port + "/"}});
  CHECK(deny.message ==
        "host 'example.com.evil.test' is denied by sandbox.network_filter.deny 'evil'");
}

TEST_CASE("http: a huge host or URL is refused before any regex runs", "[http][network]") {
  const auto policy = filtered({"^(a|aa)+$"}, {"(x+x+)+y"});
  const std::string host(100000, 'a');
  const auto out = request(policy, {{"url", "http://" + host + "/"}});
  CHECK(out.code == "invalid_args");
  CHECK(out.message == "url is 100008 bytes, over the limit of 8192");
  const auto h = request(policy, {{"url", "http://" + std::string(300, 'a') + "/"}});
  CHECK(h.code == "invalid_args");
  CHECK(h.message == "invalid url: the host is 300 bytes, over the limit of 253");
  // 253 bytes is a host the policy looks at (and, here, does not allow).
  CHECK(request(filtered({"^b$"}), {{"url", "http://" + std::string(253, 'a') + "/"}}).code ==
        "denied");
}

TEST_CASE("http: this machine's own addresses and non-ASCII hosts", "[http][network]") {
  // Every address of this machine's interfaces counts as loopback: a service bound to 0.0.0.0
  // answers there. Checked without sending anything.
  ifaddrs* list = nullptr;
  REQUIRE(::getifaddrs(&list) == 0);
  int seen = 0;
  for (const ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, buf,
                sizeof buf);
    INFO(buf);
    CHECK(tools::loopback_class(buf));
    ++seen;
  }
  ::freeifaddrs(list);
  CHECK(seen >= 1);
  CHECK(tools::loopback_class("127.9.9.9"));
  CHECK(tools::loopback_class("a.b.localhost"));
  CHECK_FALSE(tools::loopback_class("192.0.2.77"));  // TEST-NET-1: no machine has it
  CHECK_FALSE(tools::loopback_class("localhost.example"));

  const auto idn = request(filtered({".*"}, {"^secret\\.localhost$"}), {{"url",
                                                                         "http://\xef\xbd\x93"
                                                                         "ecret.localhost/"}});
  CHECK(idn.code == "invalid_args");
  CHECK(idn.message.find("not ASCII") != std::string::npos);
}

TEST_CASE("http: Idempotency-Key is sent only when configured, and the procedure's own wins",
          "[http]") {
  test::HttpTestServer server;
  tools::ToolContext ctx;
  ctx.network = host_mode();
  const tools::CallContext call{"tactus-0123456789abcdef"};
  const Json post = {{"url", server.url("/hello")}, {"method", "POST"}, {"body", "x"}};
  // Not configured: the call's key stays with the broker.
  CHECK(tools::ToolRegistry(ctx).call("http.request", post, call).ok);
  ctx.network.send_idempotency_key = true;
  CHECK(tools::ToolRegistry(ctx).call("http.request", post, call).ok);
  Json own = post;
  own["headers"] = {{"idempotency-key", "mine"}};
  CHECK(tools::ToolRegistry(ctx).call("http.request", own, call).ok);
  CHECK(server.idempotency_keys() ==
        std::vector<std::string>{"", "tactus-0123456789abcdef", "mine"});
}
