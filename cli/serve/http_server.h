// tactus serve's HTTP/1.1 server: one asio loop for every connection, requests parsed by
// Node's http-parser (Debian's libhttp-parser; docs/server.md says why), responses written
// whole or as a server-sent event stream. Everything here runs on the loop's thread; other
// threads reach it with post(). asio stays in http_server.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace tactus::cli::serve {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // "/v1/runs/abc" (no query)
  std::map<std::string, std::string> query;    // decoded; a repeated key keeps its last value
  std::map<std::string, std::string> headers;  // names lower-cased; repeated ones joined by ", "
  std::string body;
  std::string peer;  // "127.0.0.1:54321"
  std::string header(const std::string& lower_name) const;
};

// The answer to one request; used on the loop's thread only. The connection reads its next
// request once this one is answered.
class Responder {
 public:
  virtual ~Responder() = default;
  // The whole response. headers: extra "Name: value" pairs.
  virtual void send(int status, const std::string& body,
                    const std::string& content_type = "application/json",
                    const std::map<std::string, std::string>& headers = {}) = 0;
  // A server-sent event stream: the headers now, then events until close() or the client
  // goes. Each event is written as it comes.
  virtual void start_events() = 0;
  virtual void event(const std::string& text) = 0;  // a whole event, "id: ...\n...\n\n"
  virtual void close() = 0;
  // Whether the client is still there (false once it went, or close() was called).
  virtual bool open() const = 0;
  // Called once when the client goes (or the server drops the connection).
  virtual void on_close(std::function<void()> callback) = 0;
};

using Handler = std::function<void(const HttpRequest&, std::shared_ptr<Responder>)>;

struct HttpLimits {
  std::uint64_t max_body = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;  // the request line and headers together
  std::size_t max_connections = 1024;
  std::chrono::seconds idle = std::chrono::seconds(60);  // keep-alive and slow headers
};

class HttpServer {
 public:
  HttpServer(Handler handler, HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: any free one). false with error.
  bool listen(const std::string& host, int port, std::string& error);
  int port() const;
  // Runs the loop until stop() (from any thread, or a handler).
  void run();
  void stop();
  // No new connection is accepted, and idle keep-alive connections are closed.
  void stop_accepting();
  // Runs f on the loop's thread (from any thread).
  void post(std::function<void()> f);
  // Runs f on the loop's thread after seconds; cancel() before then drops it.
  struct Timer {
    virtual ~Timer() = default;
    virtual void cancel() = 0;
  };
  std::shared_ptr<Timer> after(double seconds, std::function<void()> f);
  // signal (SIGTERM, SIGINT) is delivered as a call to f on the loop, not as an interrupt.
  void on_signal(int signal, std::function<void(int)> f);

  struct Impl;  // http_server.cpp's

 private:
  std::unique_ptr<Impl> impl_;
};

// The reason phrase of an HTTP status ("Not Found").
const char* reason_phrase(int status);

}  // namespace tactus::cli::serve
