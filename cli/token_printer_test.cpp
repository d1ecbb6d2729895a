// The live printer of streamed replies (cli::TokenPrinter), which must mask a secret however
// the tokens cut it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "broker/secrets.h"
#include "cli/token_printer.h"

using namespace tactus;

namespace {

// Reads everything written to a pipe so far.
std::string drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

}  // namespace

TEST_CASE("token printer: whole lines, masked, even when a secret is split across tokens",
          "[llm]") {
  int p[2];
  REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
  auto redactor = std::make_shared<broker::Redactor>();
  redactor->add("sk-split-secret-42");
  {
    cli::TokenPrinter printer(p[1], redactor);
    printer.token("Your key: sk-sp");
    printer.token("lit-sec");
    CHECK(drain(p[0]).empty());  // nothing until the line is complete
    printer.token("ret-42 is set.\nNext line, sk-split");
    CHECK(drain(p[0]) == "Your key: *** is set.\n");
    printer.token("-secret-42");
    printer.end();
    CHECK(drain(p[0]) == "Next line, ***\n");
    printer.end();  // nothing held back: nothing written
    CHECK(drain(p[0]).empty());
  }
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("token printer: not for secrets that span lines", "[llm]") {
  CHECK_FALSE(cli::multiline_secret({{"A", "one-line"}}));
  CHECK(cli::multiline_secret({{"A", "one-line"}, {"PEM", "-----BEGIN\nabc"}}));
  CHECK(cli::multiline_secret({{"B", "x\ry"}}));
}
