#include "tests/support/serve_client.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "tests/support/cli_runner.h"

namespace tactus::test {
namespace {

using Clock = std::chrono::steady_clock;

int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string request_text(const std::string& method, const std::string& target,
                         const std::string& body,
                         const std::map<std::string, std::string>& headers) {
  std::string out = method + " " + target + " HTTP/1.1\r\nConnection: close\r\n";
  if (!headers.count("Host")) out += "Host: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST")
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return out + "\r\n" + body;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until the peer closes, on_data says stop, or the deadline.
template <class F>
void read_until(int fd, Clock::time_point deadline, F&& on_data) {
  char buf[16384];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    if (!on_data(buf, static_cast<std::size_t>(n))) return;
  }
}

struct ResponseParse {
  HttpReply reply;
  std::string field;
  bool in_value = false, complete = false;
  std::function<void(const char*, std::size_t)> on_body;
};

int on_header_field(http_parser* p, const char* at, std::size_t n) {
  auto& r = *static_cast<ResponseParse*>(p->data);
  if (r.in_value) r.field.clear();
  r.in_value = false;
  for (std::size_t i = 0; i < n; ++i)
    r.field.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
  return 0;
}
int on_header_value(http_parser* p, const char* at, std::size_t n) {
  auto& r = *static_cast<ResponseParse*>(p->data);
  r.in_value = true;
  r.reply.headers[r.field].append(at, n);
  return 0;
}
int on_body(http_parser* p, const char* at, std::size_t n) {
  auto& r = *static_cast<ResponseParse*>(p->data);
  if (r.on_body) r.on_body(at, n);
  r.reply.body.append(at, n);
  return 0;
}
int on_complete(http_parser* p) {
  auto& r = *static_cast<ResponseParse*>(p->data);
  r.complete = true;
  r.reply.status = static_cast<int>(p->status_code);
  return 0;
}
int on_headers(http_parser* p) {
  static_cast<ResponseParse*>(p->data)->reply.status = static_cast<int>(p->status_code);
  return 0;
}
const http_parser_settings kSettings = {nullptr,          nullptr,     nullptr,  &on_header_field,
                                        &on_header_value, &on_headers, &on_body, &on_complete,
                                        nullptr,          nullptr};

// Sends the request and parses the response; on_body sees body bytes as they arrive.
HttpReply exchange(int port, const std::string& text, double timeout_s,
                   std::function<void(const char*, std::size_t)> on_body_cb = nullptr) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  ResponseParse r;
  r.on_body = std::move(on_body_cb);
  http_parser parser;
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &r;
  // A server may answer before it read the whole request (413) and stop reading: its answer is
  // read even when sending fails.
  send_all(fd, text);
  {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(timeout_s));
    read_until(fd, deadline, [&](const char* data, std::size_t n) {
      const std::size_t used = http_parser_execute(&parser, &kSettings, data, n);
      return used == n && !r.complete;
    });
    if (!r.complete) http_parser_execute(&parser, &kSettings, nullptr, 0);  // EOF ends a body
  }
  ::close(fd);
  if (!r.complete && r.on_body == nullptr) r.reply.status = 0;
  return r.reply;
}

}  // namespace

HttpReply http_request(int port, const std::string& method, const std::string& target,
                       const std::string& body, const std::map<std::string, std::string>& headers,
                       double timeout_s) {
  return exchange(port, request_text(method, target, body, headers), timeout_s);
}

std::string raw_exchange(int port, const std::string& bytes, double timeout_s) {
  const int fd = connect_loopback(port);
  if (fd < 0) return "";
  std::string got;
  send_all(fd, bytes);
  read_until(fd,
             Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(timeout_s)),
             [&](const char* data, std::size_t n) {
               got.append(data, n);
               return true;
             });
  ::close(fd);
  return got;
}

HttpReply http_post(int port, const std::string& target, const std::string& json,
                    std::map<std::string, std::string> headers, double timeout_s) {
  headers.emplace("Content-Type", "application/json");
  return http_request(port, "POST", target, json, headers, timeout_s);
}

std::vector<SseEvent> read_events(int port, const std::string& target,
                                  const std::map<std::string, std::string>& headers,
                                  double timeout_s) {
  std::vector<SseEvent> events;
  std::string pending;
  SseEvent current;
  exchange(port, request_text("GET", target, "", headers), timeout_s,
           [&](const char* data, std::size_t n) {
             pending.append(data, n);
             for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
               const std::string line = pending.substr(0, nl);
               pending.erase(0, nl + 1);
               if (line.empty()) {
                 if (!current.event.empty() || !current.data.empty()) events.push_back(current);
                 current = SseEvent();
               } else if (line.rfind("id: ", 0) == 0) {
                 current.id = line.substr(4);
               } else if (line.rfind("event: ", 0) == 0) {
                 current.event = line.substr(7);
               } else if (line.rfind("data: ", 0) == 0) {
                 current.data += line.substr(6);
               }
             }
           });
  return events;
}

ServeProcess::ServeProcess(const std::string& dir, const std::vector<std::string>& env,
                           const std::vector<std::string>& extra_args)
    : dir_(dir) {
  std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = start_tactus(dir, args, env);
  if (pid_ < 0) throw std::runtime_error("tactus serve could not be started");
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    const std::string e = err();
    const auto at = e.find("listening on http://127.0.0.1:");
    if (at != std::string::npos) {
      port_ = std::atoi(e.c_str() + at + std::strlen("listening on http://127.0.0.1:"));
      if (port_ > 0) return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("tactus serve exited at start: " + err());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("tactus serve did not say where it listens: " + err());
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_exit_code(pid_);
  }
}

void ServeProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ServeProcess::wait() {
  const int rc = wait_exit_code(pid_);
  pid_ = -1;
  return rc;
}

std::string ServeProcess::err() const {
  return read_file(dir_ + "/killed.err");
}

}  // namespace tactus::test
