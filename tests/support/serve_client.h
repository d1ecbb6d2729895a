// For tactus serve's tests: the server started as a real process in a project directory, and a
// small HTTP/1.1 client (responses parsed by the same http-parser the server uses) with a
// server-sent events reader. Traffic is loopback only.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace tactus::test {

struct HttpReply {
  int status = 0;                              // 0: no answer (refused, timed out, malformed)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// One request on a new connection to 127.0.0.1:port; waits at most timeout_s.
HttpReply http_request(int port, const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {},
                       double timeout_s = 10);
// POST with Content-Type: application/json.
HttpReply http_post(int port, const std::string& target, const std::string& json,
                    std::map<std::string, std::string> headers = {}, double timeout_s = 10);

// Sends bytes as they are on one connection and returns all that comes back until the server
// closes it (or timeout_s): for pipelining and malformed requests.
std::string raw_exchange(int port, const std::string& bytes, double timeout_s = 10);

struct SseEvent {
  std::string id, event, data;
};
// GET target as an event stream; events until the server ends the stream, or timeout_s.
std::vector<SseEvent> read_events(int port, const std::string& target,
                                  const std::map<std::string, std::string>& headers = {},
                                  double timeout_s = 10);

// `tactus serve --listen 127.0.0.1:0` in dir (its project), with env; killed (SIGKILL) at
// destruction if still running. Throws std::runtime_error, with its stderr, if it does not
// say where it listens within 10 s.
class ServeProcess {
 public:
  ServeProcess(const std::string& dir, const std::vector<std::string>& env = {},
               const std::vector<std::string>& extra_args = {});
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  void signal(int sig);
  int wait();               // its exit code, or 128 + signal
  std::string err() const;  // its stderr so far

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace tactus::test
