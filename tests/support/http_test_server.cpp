#include "tests/support/http_test_server.h"

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tactus::test {
namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// The value of ?name=... in a request target, percent-decoded; "" if absent.
std::string query_param(const std::string& target, const std::string& name) {
  const auto q = target.find('?');
  if (q == std::string::npos) return "";
  std::string_view rest(target);
  rest.remove_prefix(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return "";
}

void reply(int fd, int status, const std::string& body, const std::string& extra = "") {
  LoopbackServer::send_all(fd, "HTTP/1.1 " + std::to_string(status) +
                                   " Test\r\nContent-Length: " + std::to_string(body.size()) +
                                   "\r\nConnection: close\r\n" + extra + "\r\n" + body);
}

}  // namespace

HttpTestServer::HttpTestServer()
    : server_("HttpTestServer", 1 << 20,
              [this](int fd, const LoopbackRequest& request) { handle(fd, request); }) {}

HttpTestServer::~HttpTestServer() = default;

std::string HttpTestServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port()) + path;
}

std::vector<std::string> HttpTestServer::idempotency_keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_;
}

void HttpTestServer::hold(int n) {
  released_ = false;
  hold_ = n;
}

void HttpTestServer::release() {
  released_ = true;
}

bool HttpTestServer::wait_for_requests(int n, int timeout_ms) const {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (requests_.load() < n) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

bool HttpTestServer::wait_quiet(int quiet_ms, int timeout_ms) const {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  int seen = requests_.load();
  auto since = Clock::now();
  while (Clock::now() < until) {
    if (server_.busy() || requests_.load() != seen) {
      seen = requests_.load();
      since = Clock::now();
    } else if (Clock::now() - since >= std::chrono::milliseconds(quiet_ms)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::vector<std::string> HttpTestServer::targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

void HttpTestServer::handle(int fd, const LoopbackRequest& request) {
  const std::string& method = request.method;
  const std::string& target = request.target;
  const std::string& body = request.body;
  const auto header = [&](const char* name) {
    const auto it = request.headers.find(name);
    return it == request.headers.end() ? std::string() : it->second;
  };
  const std::string x_test = header("x-test"), idempotency_key = header("idempotency-key");
  int number;
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets_.push_back(target);
    keys_.push_back(idempotency_key);
    number = static_cast<int>(targets_.size());
  }
  ++requests_;
  if (number == hold_.load()) {
    while (!released_ && !server_.stopping())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    hold_ = 0;
  }
  const std::string path = target.substr(0, target.find('?'));
  if (path == "/hello") return reply(fd, 200, "hello", "Content-Type: text/plain\r\n");
  if (path == "/count") return reply(fd, 200, std::to_string(number));
  if (path == "/echo") {
    const nlohmann::json j{{"method", method}, {"x_test", x_test}, {"body", body}};
    return reply(fd, 200, j.dump(), "Content-Type: application/json\r\n");
  }
  if (path == "/redirect")
    return reply(fd, 302, "", "Location: " + query_param(target, "to") + "\r\n");
  if (path == "/loop") return reply(fd, 302, "", "Location: /loop\r\n");
  if (path.rfind("/canned/", 0) == 0) {
    int status;
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      status = canned_status_;
      body = canned_body_;
    }
    return reply(fd, status, body, "Content-Type: text/plain\r\n");
  }
  if (path == "/big") {
    const auto n = std::strtoull(query_param(target, "n").c_str(), nullptr, 10);
    return reply(fd, 200, std::string(std::min<unsigned long long>(n, 64ull << 20), 'x'));
  }
  if (path == "/slow") {
    for (int i = 0; i < 60 && !server_.stopping(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return reply(fd, 200, "slow");
  }
  if (path == "/status") {
    const int code = std::atoi(query_param(target, "code").c_str());
    return reply(fd, code >= 100 && code <= 999 ? code : 400, "status");
  }
  reply(fd, 404, "not found");
}

void HttpTestServer::set_canned(int status, std::string body) {
  std::lock_guard<std::mutex> lock(mu_);
  canned_status_ = status;
  canned_body_ = std::move(body);
}

}  // namespace tactus::test
