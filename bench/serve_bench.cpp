// tactus_bench_serve: runs of one procedure through tactus serve's API, timed from the POST
// being sent to the run's result being read, on keep-alive connections. Prints one JSON line:
// runs, seconds, runs per second and the p50/p99 latency in ms.
//
//   tactus_bench_serve PORT PROCEDURE RUNS CLIENTS [one|two]
//
// one (the default): POST /v1/runs?wait=30, whose answer carries the result. two: POST
// /v1/runs, then GET /v1/runs/ID?wait=30. CLIENTS connections work at once (1: the latency of
// one run alone). Exits 1 if a run fails or the server does not answer.
#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Reply {
  int status = 0;
  std::string body;
  bool complete = false;
};

int on_body(http_parser* p, const char* at, std::size_t n) {
  static_cast<Reply*>(p->data)->body.append(at, n);
  return 0;
}
int on_complete(http_parser* p) {
  auto* r = static_cast<Reply*>(p->data);
  r->status = static_cast<int>(p->status_code);
  r->complete = true;
  return 0;
}
const http_parser_settings kSettings = {nullptr, nullptr,  nullptr,      nullptr, nullptr,
                                        nullptr, &on_body, &on_complete, nullptr, nullptr};

class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { ::close(fd_); }
  bool ok() const { return ok_; }

  Reply request(const std::string& method, const std::string& target, const std::string& body) {
    std::string text = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (method == "POST")
      text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\n";
    text += "\r\n" + body;
    Reply r;
    if (::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
      return r;
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &r;
    char buf[16384];
    while (!r.complete) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return r;
      http_parser_execute(&parser, &kSettings, buf, static_cast<std::size_t>(n));
      if (HTTP_PARSER_ERRNO(&parser) != HPE_OK) return r;
    }
    return r;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// The value of "key":"..." in a compact JSON text ("" if absent).
std::string string_field(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto at = json.find(k);
  if (at == std::string::npos) return "";
  const auto end = json.find('"', at + k.size());
  return json.substr(at + k.size(), end - at - k.size());
}

}  // namespace

int main(int argc, char** argv) {
  const bool two = argc == 6 && std::string(argv[5]) == "two";
  if ((argc != 5 && argc != 6) || (argc == 6 && !two && std::string(argv[5]) != "one")) {
    std::fprintf(stderr, "usage: tactus_bench_serve PORT PROCEDURE RUNS CLIENTS [one|two]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const std::string post = std::string("{\"procedure\":\"") + argv[2] + "\"}";
  const int runs = std::atoi(argv[3]), clients = std::atoi(argv[4]);
  std::vector<double> ms(static_cast<std::size_t>(runs));
  std::atomic<int> next{0}, failed{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      Client client(port);
      if (!client.ok()) return void(++failed);
      for (int i = next++; i < runs; i = next++) {
        const auto a = Clock::now();
        const Reply created = client.request("POST", two ? "/v1/runs" : "/v1/runs?wait=30", post);
        const std::string id = string_field(created.body, "run_id");
        if (created.status != 201 || id.empty()) {
          std::fprintf(stderr, "POST: %d %s\n", created.status, created.body.c_str());
          return void(++failed);
        }
        const Reply done = two ? client.request("GET", "/v1/runs/" + id + "?wait=30", "") : created;
        if ((two && done.status != 200) || string_field(done.body, "status") != "completed") {
          std::fprintf(stderr, "GET: %d %s\n", done.status, done.body.substr(0, 300).c_str());
          return void(++failed);
        }
        ms[static_cast<std::size_t>(i)] =
            std::chrono::duration<double, std::milli>(Clock::now() - a).count();
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (failed) return 1;
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) {
    return ms[std::min(ms.size() - 1,
                       static_cast<std::size_t>(q * static_cast<double>(ms.size())))];
  };
  std::printf(
      "{\"runs\":%d,\"clients\":%d,\"seconds\":%.6f,\"rps\":%.3f,\"p50_ms\":%.4f,\"p99_ms\":%.4f}"
      "\n",
      runs, clients, seconds, runs / seconds, at(0.5), at(0.99));
  return 0;
}
