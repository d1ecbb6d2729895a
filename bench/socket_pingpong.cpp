// The raw baseline for the Host.call benchmark: a frame ping-pong over an AF_UNIX SOCK_STREAM
// socketpair between a parent and a forked child, with blocking read/write only (no JSON, no
// event loop). The parent sends a REQ-byte payload framed like the host channel (4-byte
// big-endian length + payload); the child reads it whole and answers with a RESP-byte frame.
//
//   tactus_bench_pingpong REQ_BYTES RESP_BYTES [BATCHES=20] [ROUNDS=2000]
//
// Prints the median over BATCHES of the per-batch mean round trip, in microseconds, on stdout
// (one number); details go to stderr. bench/run passes the exact payload sizes of one
// Host.call("host.ping") request and its response.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/protocol/frame.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "tactus_bench_pingpong: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("write");
    done += static_cast<std::size_t>(n);
  }
}

// Reads one whole frame into buf (a single read() when it fits, as the real channel does).
// Returns false on a clean EOF before any byte.
bool read_frame(int fd, std::vector<char>& buf) {
  std::size_t have = 0, want = tactus::protocol::kFrameHeaderBytes;
  bool header_done = false;
  while (have < want) {
    const ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && have == 0) return false;
    if (n <= 0) die("read");
    have += static_cast<std::size_t>(n);
    if (!header_done && have >= tactus::protocol::kFrameHeaderBytes) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
      want = tactus::protocol::kFrameHeaderBytes + ((std::size_t{p[0]} << 24) |
                                                    (std::size_t{p[1]} << 16) |
                                                    (std::size_t{p[2]} << 8) | std::size_t{p[3]});
      header_done = true;
      if (want > buf.size()) {
        errno = EMSGSIZE;
        die("frame");
      }
    }
  }
  return true;
}

std::string make_frame(std::size_t payload_bytes) {
  std::string out;
  tactus::protocol::append_frame(out, std::string(payload_bytes, 'x'));
  return out;
}

long parse_count(const char* s, const char* what) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v <= 0) {
    std::fprintf(stderr, "tactus_bench_pingpong: %s must be a positive integer, got '%s'\n", what,
                 s);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: %s REQ_BYTES RESP_BYTES [BATCHES=20] [ROUNDS=2000]\n", argv[0]);
    return 2;
  }
  const auto req_bytes = static_cast<std::size_t>(parse_count(argv[1], "REQ_BYTES"));
  const auto resp_bytes = static_cast<std::size_t>(parse_count(argv[2], "RESP_BYTES"));
  const long batches = argc > 3 ? parse_count(argv[3], "BATCHES") : 20;
  const long rounds = argc > 4 ? parse_count(argv[4], "ROUNDS") : 2000;

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  const std::size_t bufsize = 64 * 1024 + std::max(req_bytes, resp_bytes);

  const pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {  // the echo side: read a whole request frame, answer with a RESP-byte frame
    ::close(sv[0]);
    const std::string reply = make_frame(resp_bytes);
    std::vector<char> buf(bufsize);
    while (read_frame(sv[1], buf)) write_all(sv[1], reply);
    ::_exit(0);
  }
  ::close(sv[1]);
  const std::string request = make_frame(req_bytes);
  std::vector<char> buf(bufsize);

  auto batch = [&] {
    const auto t0 = Clock::now();
    for (long i = 0; i < rounds; ++i) {
      write_all(sv[0], request);
      if (!read_frame(sv[0], buf)) {
        errno = EPIPE;
        die("child closed the socket");
      }
    }
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() /
           static_cast<double>(rounds);
  };

  batch();  // warm-up: page in, settle the scheduler
  std::vector<double> means;
  for (long b = 0; b < batches; ++b) means.push_back(batch());
  ::close(sv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  std::vector<double> sorted = means;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t k = sorted.size();
  const double median = k % 2 ? sorted[k / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2;
  std::fprintf(stderr,
               "pingpong: request %zu B, response %zu B (+%zu B header each), %ld batches x %ld "
               "round trips: min %.3f us, median %.3f us, max %.3f us\n",
               req_bytes, resp_bytes, tactus::protocol::kFrameHeaderBytes, batches, rounds,
               sorted.front(), median, sorted.back());
  std::printf("%.4f\n", median);
  return 0;
}
