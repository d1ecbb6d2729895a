// A loopback HTTP/1.1 server for tests: 127.0.0.1 on an ephemeral port, one thread, one request
// per connection (Connection: close), a client that stalls for 5 s dropped. It reads each
// request (its head and a body of at most max_body bytes; a longer one gets 413) and hands it
// to the handler, which writes the reply on the connection. Stops in its destructor. Shared by
// the fake model provider (tests/fixtures/) and HttpTestServer; traffic never leaves this host.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <thread>

namespace tactus::test {

struct LoopbackRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // lowercased names; a repeated one: the last
  std::string body;
};

class LoopbackServer {
 public:
  using Handler = std::function<void(int fd, const LoopbackRequest& request)>;
  // Throws std::runtime_error naming who (e.g. "FakeLlmServer") if it cannot listen.
  LoopbackServer(const char* who, std::size_t max_body, Handler handler);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return port_; }
  // True once the destructor began: a handler that waits should give up.
  bool stopping() const { return stopping_.load(); }
  // True while a connection is being read or answered.
  bool busy() const { return busy_.load(); }

  // Writes all of data to fd (gives up on an error: the client went away).
  static void send_all(int fd, const std::string& data);
  // A port on 127.0.0.1 nothing listens on (it was bound and released): connections to it are
  // refused.
  static int closed_port();

 private:
  void serve();
  void handle(int fd);

  std::size_t max_body_;
  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> busy_{false};
  std::thread thread_;
};

}  // namespace tactus::test
