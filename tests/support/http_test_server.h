// A tiny HTTP/1.1 server for tests only, on the shared loopback server (loopback_server.h):
// 127.0.0.1 on an ephemeral port, one request per connection. Stops in its destructor.
//
// Routes: /hello → 200 "hello"; /echo → 200 {"method", "x_test", "body"} as JSON;
// /redirect?to=URL → 302 to URL (percent-decoded); /loop → 302 to /loop; /big?n=N → 200 with N
// bytes; /slow → 200 after 3 s (cut short when the server stops); /status?code=N → status N;
// /canned/... → the status and body set by set_canned(); /count → 200 with the number of
// requests so far as the body; anything else → 404. hold(n) makes the n-th request wait.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/loopback_server.h"

namespace tactus::test {

class HttpTestServer {
 public:
  HttpTestServer();  // throws std::runtime_error if it cannot listen
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  int port() const { return server_.port(); }
  // "http://127.0.0.1:PORT" + path
  std::string url(const std::string& path) const;
  int requests() const { return requests_.load(); }
  std::vector<std::string> targets() const;  // request targets, in order
  // The Idempotency-Key header of each request, in order ("" where there was none).
  std::vector<std::string> idempotency_keys() const;
  // The n-th request (1-based, counting every request) is held, unanswered, until release()
  // or the server stops; the server serves nothing else meanwhile.
  void hold(int n);
  void release();
  // Waits until n requests have arrived (and been recorded); false after timeout_ms.
  bool wait_for_requests(int n, int timeout_ms) const;
  // Waits until no connection is being served and no request arrived for quiet_ms (what a
  // client killed in the middle had sent is then recorded); false after timeout_ms.
  bool wait_quiet(int quiet_ms, int timeout_ms) const;
  // What every /canned/... request gets from now on (text/plain).
  void set_canned(int status, std::string body);

 private:
  void handle(int fd, const LoopbackRequest& request);

  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::vector<std::string> targets_;
  std::vector<std::string> keys_;
  std::atomic<int> hold_{0};
  std::atomic<bool> released_{false};
  int canned_status_ = 200;
  std::string canned_body_;
  LoopbackServer server_;  // last: stopped before what its handler uses
};

}  // namespace tactus::test
