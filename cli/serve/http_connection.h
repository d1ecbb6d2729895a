// The inside of cli/serve/http_server.cpp: the server's loop state (HttpServer::Impl) and one
// client connection (Connection): reading, parsing with http-parser, answering, streaming.
// Included by http_server.cpp only (it brings asio).
#pragma once

#include <http_parser.h>
#include <strings.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cctype>
#include <climits>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "cli/serve/http_server.h"

namespace tactus::cli::serve {

using asio::ip::tcp;

// The query string's pairs, decoded (application/x-www-form-urlencoded); false on a bad escape.
bool parse_query(std::string_view query, std::map<std::string, std::string>& out);

struct HttpServer::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  Handler handler;
  HttpLimits limits;
  bool accepting = true;
  std::size_t queued_total = 0;  // bytes waiting to be written, all connections
  std::set<std::shared_ptr<struct Connection>> live;
  std::deque<std::unique_ptr<asio::signal_set>> signals;

  void accept();
};

// One client connection: parses requests one at a time (a pipelined next request waits in the
// buffer, the parser paused), answers each, keeps the connection for the next.
struct Connection : std::enable_shared_from_this<Connection>, Responder {
  Connection(HttpServer::Impl& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(server.io) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    std::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void start() {
    arm_idle();
    read();
  }

  // --- Responder ---
  void send(int status, const std::string& body, const std::string& content_type,
            const std::map<std::string, std::string>& headers) override {
    if (responded_ || closed_) return;
    responded_ = true;
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    if (!keep_alive_) out += "Connection: close\r\n";
    out += "\r\n";
    out += body;
    write(std::move(out));
    after_response();
  }

  void start_events() override {
    if (responded_ || closed_) return;
    responded_ = streaming_ = true;
    keep_alive_ = false;  // the stream ends with the connection
    write(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: close\r\n\r\n");
    heartbeat();
    read();  // notices the client going
  }

  // A comment every 15 s on a quiet stream: proxies keep it open, and a peer that is gone
  // without a word is found by the failed write.
  void heartbeat() {
    timer_.expires_after(std::chrono::seconds(15));
    timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (ec || self->closed_ || self->closing_after_write_) return;
      self->event(": ping\n\n");
      if (!self->closed_) self->heartbeat();
    });
  }

  // A client that does not read its stream is dropped once kMaxQueued bytes wait for it, or
  // once all streams together hold kMaxQueuedTotal, rather than holding events for it.
  void event(const std::string& text) override {
    if (!streaming_ || closed_) return;
    if (queued_bytes_ + text.size() > kMaxQueued ||
        server_.queued_total + text.size() > kMaxQueuedTotal)
      return shutdown();
    write(text);
  }

  void close() override {
    if (streaming_) closing_after_write_ = true;
    if (streaming_ && writing_) return;
    shutdown();
  }

  bool open() const override { return !closed_; }

  void on_close(std::function<void()> callback) override { on_close_ = std::move(callback); }

  // --- reading and parsing ---
  // One read is always outstanding, also while a request is answered (a long poll, an event
  // stream): a client that goes is noticed at once, and what it sends meanwhile waits in
  // pending_, bounded by one request's size.
  void read() {
    if (closed_ || reading_) return;
    reading_ = true;
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                              self->reading_ = false;
                              if (ec || n == 0) return self->shutdown();
                              if (self->linger_)
                                return self->read();  // after an error: read away, unparsed
                              self->pending_.append(self->buf_.data(), n);
                              const auto& l = self->server_.limits;
                              if (self->pending_.size() > l.max_header_bytes + l.max_body + 4096)
                                return self->shutdown();
                              if (self->waiting_ || self->streaming_) return self->read();
                              self->parse();
                            });
  }

  void parse() {
    while (!closed_ && !waiting_ && !pending_.empty()) {
      const std::size_t used =
          http_parser_execute(&parser_, &kSettings, pending_.data(), pending_.size());
      const auto err = HTTP_PARSER_ERRNO(&parser_);
      if (err == HPE_PAUSED) {
        pending_.erase(0, used);
        http_parser_pause(&parser_, 0);
        dispatch();
        read();  // a client that goes while its answer is made is noticed
        return;
      }
      if (err != HPE_OK || parser_.upgrade) return fail(error_status_ ? error_status_ : 400);
      pending_.erase(0, used);
    }
    if (!waiting_) read();
  }

  void fail(int status) {
    keep_alive_ = false;
    responded_ = false;
    linger_ = true;  // the client may still be sending: read it away before closing
    const std::string body = std::string("{\"error\":{\"message\":\"") +
                             (status == 413   ? "the request body is larger than serve.max_body"
                              : status == 431 ? "the request line and headers are too large"
                                              : "malformed HTTP request") +
                             "\"}}";
    send(status, body, "application/json", {});
  }

  void dispatch() {
    waiting_ = true;
    timer_.cancel();
    req_.peer = peer_;
    keep_alive_ = http_should_keep_alive(&parser_) != 0 && server_.accepting;
    req_.method = http_method_str(static_cast<http_method>(parser_.method));
    if (req_.method == "HEAD") keep_alive_ = false;  // its answer has a body: none may follow
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url_.data(), url_.size(), 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
      return fail(400);
    req_.path = url_.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if (u.field_set & (1 << UF_QUERY) &&
        !parse_query(
            std::string_view(url_).substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len),
            req_.query))
      return fail(400);
    responded_ = false;
    HttpRequest request = std::move(req_);
    reset_request();
    server_.handler(request, shared_from_this());
  }

  void after_response() {
    if (streaming_) return;
    if (!keep_alive_) {
      closing_after_write_ = true;
      if (!writing_) shutdown();
      return;
    }
    // The next pipelined request is parsed once this answer is written: a client that sends
    // requests without reading answers makes the server wait, not buffer.
    if (writing_) {
      parse_after_write_ = true;
      return;
    }
    next_request();
  }

  void next_request() {
    waiting_ = false;
    arm_idle();
    // On the loop's next turn, not inside the handler that answered.
    asio::post(server_.io, [self = shared_from_this()] { self->parse(); });
  }

  void reset_request() {
    req_ = HttpRequest();
    url_.clear();
    field_.clear();
    header_bytes_ = 0;
    in_value_ = false;
    error_status_ = 0;
  }

  // --- writing ---
  void write(std::string data) {
    queued_bytes_ += data.size();
    server_.queued_total += data.size();
    out_.push_back(std::move(data));
    if (!writing_) write_next();
  }

  void write_next() {
    if (out_.empty() || closed_) {
      writing_ = false;
      if (parse_after_write_ && !closed_) {
        parse_after_write_ = false;
        return next_request();
      }
      if (closing_after_write_ && linger_) return drain_then_close();
      if (closing_after_write_) shutdown();
      return;
    }
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                        // Closed meanwhile: shutdown() took the queue off the counts already.
                        if (self->closed_) return self->out_.clear();
                        if (ec) return self->shutdown();
                        self->queued_bytes_ -= self->out_.front().size();
                        self->server_.queued_total -= self->out_.front().size();
                        self->out_.pop_front();
                        self->write_next();
                      });
  }

  // After an error answered while the client still sends (a body too large): our side of the
  // connection is shut, and what arrives is read and dropped for up to 2 s, so that closing
  // with unread data does not reset the connection before the client has read the answer.
  void drain_then_close() {
    std::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    timer_.expires_after(std::chrono::seconds(2));
    timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (!ec) self->shutdown();
    });
    read();
  }

  void arm_idle() {
    timer_.expires_after(server_.limits.idle);
    timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (!ec && !self->waiting_) self->shutdown();
    });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    server_.queued_total -= queued_bytes_;
    queued_bytes_ = 0;
    if (!writing_) out_.clear();  // else the write's handler clears it (it holds the front)
    std::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    if (auto cb = std::move(on_close_)) cb();
    server_.live.erase(shared_from_this());
  }

  // Closes a connection that waits for its next request (SIGTERM: no new work is taken).
  void close_if_idle() {
    if (!waiting_ && !writing_) shutdown();
  }

  // --- http-parser's callbacks ---
  static Connection& self(http_parser* p) { return *static_cast<Connection*>(p->data); }
  bool count_header(std::size_t n) {
    header_bytes_ += n;
    if (header_bytes_ <= server_.limits.max_header_bytes) return true;
    error_status_ = 431;
    return false;
  }
  static int on_url(http_parser* p, const char* at, std::size_t n) {
    auto& c = self(p);
    if (!c.count_header(n)) return 1;
    c.url_.append(at, n);
    return 0;
  }
  static int on_field(http_parser* p, const char* at, std::size_t n) {
    auto& c = self(p);
    if (!c.count_header(n) || c.req_.headers.size() >= 100) return c.error_status_ = 431, 1;
    if (c.in_value_) c.field_.clear();
    c.in_value_ = false;
    for (std::size_t i = 0; i < n; ++i)
      c.field_.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
    return 0;
  }
  static int on_value(http_parser* p, const char* at, std::size_t n) {
    auto& c = self(p);
    if (!c.count_header(n)) return 1;
    std::string& v = c.req_.headers[c.field_];
    if (!c.in_value_ && !v.empty()) v += ", ";  // a repeated header
    c.in_value_ = true;
    v.append(at, n);
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    auto& c = self(p);
    if (p->content_length != ULLONG_MAX && p->content_length > c.server_.limits.max_body) {
      c.error_status_ = 413;
      return 3;  // an error: the body is not read
    }
    // A client that waits to be told to send its body (curl does past 1 KiB) is told at once.
    const auto e = c.req_.headers.find("expect");
    if (e != c.req_.headers.end() && strcasecmp(e->second.c_str(), "100-continue") == 0)
      c.write("HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
  }
  static int on_body(http_parser* p, const char* at, std::size_t n) {
    auto& c = self(p);
    if (c.req_.body.size() + n > c.server_.limits.max_body) {
      c.error_status_ = 413;
      return 1;
    }
    c.req_.body.append(at, n);
    return 0;
  }
  static int on_message_complete(http_parser* p) {
    http_parser_pause(p, 1);  // answered before the next request is parsed
    return 0;
  }
  static constexpr http_parser_settings kSettings = {nullptr,   &on_url,
                                                     nullptr,   &on_field,
                                                     &on_value, &on_headers_complete,
                                                     &on_body,  &on_message_complete,
                                                     nullptr,   nullptr};

  HttpServer::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  http_parser parser_{};
  std::array<char, 16 * 1024> buf_{};
  std::string pending_, url_, field_, peer_;
  HttpRequest req_;
  std::size_t header_bytes_ = 0;
  bool in_value_ = false;
  int error_status_ = 0;
  bool waiting_ = false;  // a request is being answered
  bool responded_ = false, streaming_ = false, keep_alive_ = true;
  bool writing_ = false, closing_after_write_ = false, closed_ = false, linger_ = false;
  bool reading_ = false, parse_after_write_ = false;
  static constexpr std::size_t kMaxQueued = 6u << 20;  // past a run's 4 MiB of kept events
  static constexpr std::size_t kMaxQueuedTotal = 128u << 20;
  std::deque<std::string> out_;
  std::size_t queued_bytes_ = 0;
  std::function<void()> on_close_;
};

}  // namespace tactus::cli::serve
