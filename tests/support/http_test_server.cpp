#include "tests/support/http_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
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

void send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void reply(int fd, int status, const std::string& body, const std::string& extra = "") {
  send_all(fd, "HTTP/1.1 " + std::to_string(status) +
                   " Test\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\nConnection: close\r\n" + extra + "\r\n" + body);
}

}  // namespace

HttpTestServer::HttpTestServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("HttpTestServer: socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("HttpTestServer: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

HttpTestServer::~HttpTestServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  thread_.join();
  ::close(listen_fd_);
}

std::string HttpTestServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
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

std::vector<std::string> HttpTestServer::targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

void HttpTestServer::serve() {
  while (!stopping_) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) break;
      continue;
    }
    timeval tv{5, 0};  // a client that stalls cannot hold the server
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    handle(fd);
    ::close(fd);
  }
}

void HttpTestServer::handle(int fd) {
  std::string data;
  char buf[4096];
  size_t header_end;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || data.size() > (1 << 20)) return;
    data.append(buf, static_cast<size_t>(n));
  }
  const std::string head = data.substr(0, header_end);
  std::string body = data.substr(header_end + 4);

  const auto line_end = head.find("\r\n");
  const std::string request_line = head.substr(0, line_end);
  const auto sp1 = request_line.find(' ');
  const auto sp2 = request_line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) return reply(fd, 400, "bad request");
  const std::string method = request_line.substr(0, sp1);
  const std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);

  size_t content_length = 0;
  std::string x_test, idempotency_key;
  for (size_t pos = line_end; pos != std::string::npos && pos < head.size();) {
    const auto start = pos + 2;
    const auto end = head.find("\r\n", start);
    const std::string line = head.substr(start, end == std::string::npos ? end : end - start);
    pos = end;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto vstart = line.find_first_not_of(' ', colon + 1);
    const std::string value = vstart == std::string::npos ? "" : line.substr(vstart);
    if (name == "content-length") content_length = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "x-test") x_test = value;
    if (name == "idempotency-key") idempotency_key = value;
  }
  if (content_length > (1 << 20)) return reply(fd, 413, "too large");
  while (body.size() < content_length) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    body.append(buf, static_cast<size_t>(n));
  }
  body.resize(content_length);

  int number;
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets_.push_back(target);
    keys_.push_back(idempotency_key);
    number = static_cast<int>(targets_.size());
  }
  ++requests_;
  if (number == hold_.load()) {
    while (!released_ && !stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
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
    for (int i = 0; i < 60 && !stopping_; ++i)
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
