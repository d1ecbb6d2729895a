// `tactus sandbox status` through the real binary: every fact is reported, in text and JSON,
// and the backend comes from an actual trial run of the jail.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

using tactus::test::run_tactus;

namespace {

std::string last_line(const std::string& s) {
  const std::string body = s.empty() || s.back() != '\n' ? s : s.substr(0, s.size() - 1);
  const auto nl = body.rfind('\n');
  return nl == std::string::npos ? body : body.substr(nl + 1);
}

// The value after "key:" and the alignment spaces, or "" when the line is missing.
std::string text_value(const std::string& out, const std::string& key) {
  const std::string start = key + ":";
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(pos, end - pos);
    if (line.rfind(start, 0) == 0) {
      const auto v = line.find_first_not_of(' ', start.size());
      return v == std::string::npos ? "" : line.substr(v);
    }
    pos = end + 1;
  }
  return "";
}

}  // namespace

TEST_CASE("sandbox: status prints one aligned line per fact and 'backend: jail'", "[sandbox]") {
  const auto r = run_tactus({"sandbox", "status"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  std::size_t value_column = 0;
  for (const char* key : {"kernel", "running as", "user namespaces", "unprivileged userns",
                          "userns for the jail", "seccomp filters", "io_uring", "ia32 syscall abi",
                          "x32 syscall abi", "cgroups", "trial run"}) {
    INFO(key);
    const std::string value = text_value(r.out, key);
    CHECK(!value.empty());
    // Aligned: every value starts in the same column.
    const auto line_start = r.out.find(std::string(key) + ":");
    REQUIRE(line_start != std::string::npos);
    const std::size_t column = r.out.find(value, line_start) - line_start;
    if (value_column == 0) value_column = column;
    CHECK(column == value_column);
  }
  CHECK(text_value(r.out, "userns for the jail") == "available");
  CHECK(text_value(r.out, "seccomp filters").rfind("supported (", 0) == 0);
  CHECK(text_value(r.out, "io_uring").find("refuses io_uring_* regardless") != std::string::npos);
  CHECK(text_value(r.out, "ia32 syscall abi").find("traps foreign architectures anyway") !=
        std::string::npos);
  CHECK(text_value(r.out, "trial run").rfind("jail (a whole run of 'return 1' in ", 0) == 0);
  CHECK(last_line(r.out) == "backend: jail");
}

TEST_CASE("sandbox: status --json is one document with the same facts", "[sandbox]") {
  const auto r = run_tactus({"sandbox", "status", "--json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  const auto doc = nlohmann::json::parse(r.out);

  CHECK(doc["backend"] == "jail");
  CHECK(doc["kernel"]["release"].is_string());
  CHECK(doc["kernel"]["machine"].is_string());
  CHECK(doc["root"] == (::geteuid() == 0));
  CHECK(doc["uid"] == ::geteuid());

  const auto& u = doc["user_namespaces"];
  CHECK(u["available"] == true);
  long max_userns = -1;
  std::ifstream("/proc/sys/user/max_user_namespaces") >> max_userns;
  CHECK(u["max_user_namespaces"] == max_userns);
  CHECK(u.contains("unprivileged_userns_clone"));
  CHECK(u["root"] == doc["root"]);
  CHECK(u["outside_uid"] == (::geteuid() == 0 ? 65534u : ::geteuid()));

  const auto& s = doc["seccomp"];
  CHECK(s["supported"] == true);
  CHECK(s["trap"] == true);
  CHECK(s["kill_process"] == true);
  CHECK(s["prctl_get_seccomp"].is_number_integer());
  CHECK(s["status_line"].is_string());

  const auto& io = doc["io_uring"];
  CHECK(io.contains("io_uring_disabled"));
  CHECK(io["state"].is_string());
  CHECK(io["note"] == "the jail's seccomp allowlist refuses io_uring_* regardless");

  for (const char* abi : {"ia32", "x32"}) {
    INFO(abi);
    const std::string a = doc[abi]["available"];
    CHECK((a == "yes" || a == "no" || a == "unknown" || a == "n/a"));
    CHECK(doc[abi]["evidence"].is_array());
    CHECK(doc[abi]["note"] == "the jail's seccomp filter traps foreign architectures anyway");
  }

  const std::string cg = doc["cgroups"]["version"];
  CHECK((cg == "v1" || cg == "v2" || cg == "absent"));
  CHECK(doc["cgroups"]["hybrid"].is_boolean());

  const auto& t = doc["trial"];
  CHECK(t["result"] == "jail");
  CHECK(t["status"] == "ok");
  CHECK(t["total_ms"].get<double>() > 0);
  CHECK(!t.contains("step"));
}

TEST_CASE("sandbox: an unknown subcommand is a usage error, exit 2", "[sandbox]") {
  const auto frob = run_tactus({"sandbox", "frob"});
  CHECK(frob.exit_code == 2);
  CHECK(frob.out.empty());
  CHECK(frob.err == "tactus: unknown argument 'frob' (usage: tactus sandbox status [--json])\n");

  const auto bare = run_tactus({"sandbox"});
  CHECK(bare.exit_code == 2);
  CHECK(bare.err == "tactus: usage: tactus sandbox status [--json]\n");
}
