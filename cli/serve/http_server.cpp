#include "cli/serve/http_server.h"

#include <asio/write.hpp>

#include "cli/serve/http_connection.h"

namespace tactus::cli::serve {

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string HttpRequest::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding of one query key or value; false on a bad escape.
bool decode_component(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;  // two hex digits must follow
      const int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return true;
}

}  // namespace

bool parse_query(std::string_view q, std::map<std::string, std::string>& out) {
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string k, v;
    if (!decode_component(pair.substr(0, eq), k)) return false;
    if (eq != std::string_view::npos && !decode_component(pair.substr(eq + 1), v)) return false;
    out[k] = v;
  }
  return true;
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](const std::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) or memory: accepting again at once would spin. A short
      // pause lets connections close; the backlog holds the waiting clients meanwhile.
      retry.expires_after(std::chrono::milliseconds(100));
      retry.async_wait([this](const std::error_code& e) {
        if (!e) accept();
      });
      return;
    }
    if (!ec && accepting) {
      std::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (live.size() >= limits.max_connections) {
        // Over the limit: told so, and closed, rather than left waiting unread.
        static const std::string kBusy =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Content-Length: 50\r\nConnection: close\r\n\r\n"
            "{\"error\":{\"message\":\"too many open connections\"}}\n";
        asio::write(socket, asio::buffer(kBusy), ignored);
        socket.close(ignored);
      } else {
        auto c = std::make_shared<Connection>(*this, std::move(socket));
        live.insert(c);
        c->start();
      }
    }
    accept();
  });
}

HttpServer::HttpServer(Handler handler, HttpLimits limits) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->limits = limits;
}

HttpServer::~HttpServer() {
  // Connections hold the loop's objects: they go before it does.
  for (auto c : std::set<std::shared_ptr<Connection>>(impl_->live)) c->shutdown();
}

bool HttpServer::listen(const std::string& host, int port, std::string& error) {
  std::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    error = "'" + host + "' is not an IP address";
    return false;
  }
  const tcp::endpoint ep(address, static_cast<unsigned short>(port));
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
    return false;
  }
  impl_->accept();
  return true;
}

int HttpServer::port() const {
  std::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpServer::run() {
  impl_->io.run();
}

void HttpServer::stop() {
  impl_->io.stop();
}

void HttpServer::stop_accepting() {
  post([this] {
    impl_->accepting = false;
    std::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto c : std::set<std::shared_ptr<Connection>>(impl_->live)) c->close_if_idle();
  });
}

void HttpServer::post(std::function<void()> f) {
  asio::post(impl_->io, std::move(f));
}

namespace {
struct LoopTimer : HttpServer::Timer {
  explicit LoopTimer(asio::io_context& io) : timer(io) {}
  void cancel() override { timer.cancel(); }
  asio::steady_timer timer;
};
}  // namespace

std::shared_ptr<HttpServer::Timer> HttpServer::after(double seconds, std::function<void()> f) {
  auto t = std::make_shared<LoopTimer>(impl_->io);
  t->timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds)));
  t->timer.async_wait([t, f = std::move(f)](const std::error_code& ec) {
    if (!ec) f();
  });
  return t;
}

void HttpServer::on_signal(int signal, std::function<void(int)> f) {
  auto set = std::make_unique<asio::signal_set>(impl_->io, signal);
  auto* raw = set.get();
  struct Rearm {
    asio::signal_set* set;
    std::function<void(int)> f;
    void operator()(const std::error_code& ec, int sig) {
      if (ec) return;
      f(sig);
      set->async_wait(Rearm{set, f});
    }
  };
  raw->async_wait(Rearm{raw, std::move(f)});
  impl_->signals.push_back(std::move(set));
}

}  // namespace tactus::cli::serve
