// End to end through the real binary: each limit crossed, with its status word and exit code
// (ok 0, error 1, usage 2, timeout/cpu/memory/output 3, violation/crashed/setup 4), message sizes,
// host.ping, Host.call errors, print ordering and the brokered clock.
#include <catch2/catch.hpp>

#include <time.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/protocol/message.h"
#include "tests/support/cli_runner.h"

namespace {

using tactus::protocol::Json;
using namespace tactus::test;  // tests/support/

// The one JSON document `tactus run --json` prints on stdout.
Json doc_of(const CliRun& r) {
  INFO("exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err.substr(0, 2000));
  Json doc = Json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("status"));
  return doc;
}

std::string message_of(const Json& doc) {
  if (!doc.contains("error") || !doc["error"].is_object() || !doc["error"].contains("message"))
    return "";
  return doc["error"]["message"].get<std::string>();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// ---- each limit through the binary -------------------------------------------------------------

TEST_CASE("cli: --memory 4m ends an allocation loop with status memory, exit 3", "[cli][limits]") {
  const CliRun r = run_source(
      "local t = {} for i = 1, 1e9 do t[#t + 1] = string.rep('x', 1024) .. i end return #t",
      {"--memory", "4m"});
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "memory");
  CHECK(r.exit_code == 3);
  CHECK_THAT(message_of(doc), Catch::Contains("not enough memory"));
  CHECK(doc.contains("peak_rss_kib"));
}

TEST_CASE("cli: --instructions ends an infinite loop with status cpu, exit 3", "[cli][limits]") {
  for (const char* src :
       {"while true do end", "pcall(function() while true do end end) return 'escaped'",
        "local co = coroutine.wrap(function() while true do end end) pcall(co) "
        "return 'escaped'"}) {
    INFO(src);
    const CliRun r = run_source(src, {"--instructions", "100000"});
    const Json doc = doc_of(r);
    INFO(r.out);
    CHECK(doc["status"] == "cpu");
    CHECK(r.exit_code == 3);
    CHECK_THAT(message_of(doc), Catch::Contains("instruction limit exceeded"));
  }
}

TEST_CASE("cli: --output-limit 1k ends a print loop with status output, exit 3", "[cli][limits]") {
  for (const char* src :
       {"for i = 1, 1000 do print(string.rep('y', 99)) end return 'escaped'",
        "for i = 1, 1000 do pcall(print, string.rep('y', 99)) end return 'escaped'"}) {
    INFO(src);
    const CliRun r = run_source(src, {"--output-limit", "1k"});
    const Json doc = doc_of(r);
    INFO(r.out);
    CHECK(doc["status"] == "output");
    CHECK(r.exit_code == 3);
    // With --json the printed lines are on stderr: at most 1 KiB of them got through.
    std::istringstream lines(r.err);
    std::string line;
    std::size_t printed = 0, count = 0;
    while (std::getline(lines, line))
      if (!line.empty() && line.find_first_not_of('y') == std::string::npos) {
        printed += line.size() + 1;
        ++count;
      }
    CHECK(printed <= 1024);
    CHECK(count == 10);
  }
}

TEST_CASE("cli: --timeout 1 ends an unbounded loop with status timeout, exit 3", "[cli][limits]") {
  const auto t0 = std::chrono::steady_clock::now();
  const CliRun r = run_source("while true do end", {"--timeout", "1"});
  const double wall = seconds_since(t0);
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "timeout");
  CHECK(r.exit_code == 3);
  CHECK(wall >= 0.9);
  CHECK(wall < 5);
}

TEST_CASE("cli: --cpu 1 ends an unbounded loop through RLIMIT_CPU with status cpu, exit 3",
          "[cli][limits]") {
  const auto t0 = std::chrono::steady_clock::now();
  const CliRun r = run_source("while true do end", {"--cpu", "1", "--timeout", "10"});
  const double wall = seconds_since(t0);
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "cpu");
  CHECK(r.exit_code == 3);
  CHECK_THAT(message_of(doc), Catch::Contains("CPU time limit"));
  CHECK(wall < 5);
}

// A tail-called pcall leaves no instruction of the chunk to run after the limit trips: the
// run must still end with the limit's status, not "ok".
TEST_CASE("cli: a limit tripped under a tail-called pcall still ends the run", "[cli][limits]") {
  {
    const CliRun r =
        run_source("return pcall(function() while true do end end)", {"--instructions", "100000"});
    const Json doc = doc_of(r);
    INFO(r.out);
    CHECK(doc["status"] == "cpu");
    CHECK(r.exit_code == 3);
  }
  {
    const CliRun r =
        run_source("return pcall(print, string.rep('y', 2000))", {"--output-limit", "1k"});
    const Json doc = doc_of(r);
    INFO(r.out);
    CHECK(doc["status"] == "output");
    CHECK(r.exit_code == 3);
  }
}

// An xpcall message handler called for the instruction-limit error runs with the count hook
// inactive; an endless handler must still be stopped by the instruction limit, not the timeout.
TEST_CASE("cli: an endless xpcall handler cannot outrun the instruction limit", "[cli][limits]") {
  const auto t0 = std::chrono::steady_clock::now();
  const CliRun r = run_source(
      "xpcall(function() while true do end end, function(e) while true do end end) return 'x'",
      {"--instructions", "100000", "--timeout", "2"});
  const double wall = seconds_since(t0);
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "cpu");
  CHECK(r.exit_code == 3);
  CHECK(wall < 1.5);
}

// ---- message sizes -----------------------------------------------------------------------------

TEST_CASE("cli: a Host.call larger than the message limit raises invalid_args", "[cli][limits]") {
  const CliRun r = run_source(R"lua(
local ok, e = pcall(Host.call, "host.ping", string.rep("x", 5 * 1024 * 1024))
print(e)
return {ok = ok, e = e}
)lua");
  const Json doc = doc_of(r);
  INFO(r.out << "\n" << r.err.substr(0, 2000));
  REQUIRE(doc["status"] == "ok");
  CHECK(r.exit_code == 0);
  CHECK(doc["result"]["ok"] == false);
  CHECK_THAT(doc["result"]["e"].get<std::string>(), Catch::StartsWith("invalid_args:"));
  CHECK_THAT(r.err, Catch::Contains("invalid_args:"));
}

TEST_CASE("cli: --message-limit 64k lets 40k through and refuses 100k", "[cli][limits]") {
  const CliRun r = run_source(R"lua(
local s = string.rep("a", 40 * 1024)
local back = Host.call("host.ping", s)
local ok, e = pcall(Host.call, "host.ping", string.rep("b", 100 * 1024))
return {n = #back, same = back == s, ok = ok, e = tostring(e)}
)lua",
                              {"--message-limit", "64k"});
  const Json doc = doc_of(r);
  INFO(r.out);
  REQUIRE(doc["status"] == "ok");
  CHECK(r.exit_code == 0);
  CHECK(doc["result"]["n"] == 40 * 1024);
  CHECK(doc["result"]["same"] == true);
  CHECK(doc["result"]["ok"] == false);
  CHECK_THAT(doc["result"]["e"].get<std::string>(), Catch::StartsWith("invalid_args:"));
}

TEST_CASE("cli: a result larger than the message limit fails the run cleanly", "[cli][limits]") {
  const CliRun r = run_source("return string.rep('x', 100 * 1024)", {"--message-limit", "64k"});
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "error");
  CHECK(r.exit_code == 1);
  CHECK_THAT(message_of(doc), Catch::Contains("too large"));
}

// ---- Host.call ---------------------------------------------------------------------------------

TEST_CASE("cli: host.ping returns its args unchanged", "[cli]") {
  const CliRun r = run_source(R"lua(
local a = {n = 1.5, i = 42, neg = -7, big = 2^53, s = "h\195\169\n\"q\"\t", e = "", b = true,
           f = false, arr = {1, 2, {x = "y"}, {}}, nested = {a = {b = {c = {d = "deep"}}}}}
local back = Host.call("host.ping", a)
local function eq(x, y)
  if type(x) ~= type(y) then return false end
  if type(x) ~= "table" then return x == y end
  for k, v in pairs(x) do if not eq(v, y[k]) then return false end end
  for k in pairs(y) do if x[k] == nil then return false end end
  return true
end
return {same = eq(a, back), back = back, num = Host.call("host.ping", 3.25),
        str = Host.call("host.ping", "x"), bool = Host.call("host.ping", false),
        none = Host.call("host.ping") == nil}
)lua");
  const Json doc = doc_of(r);
  INFO(r.out);
  REQUIRE(doc["status"] == "ok");
  const Json& res = doc["result"];
  CHECK(res["same"] == true);
  CHECK(res["back"] == Json::parse(R"({"n":1.5,"i":42,"neg":-7,"big":9007199254740992,
      "s":"h\u00e9\n\"q\"\t","e":"","b":true,"f":false,"arr":[1,2,{"x":"y"},{}],
      "nested":{"a":{"b":{"c":{"d":"deep"}}}}})"));
  CHECK(res["num"] == 3.25);
  CHECK(res["str"] == "x");
  CHECK(res["bool"] == false);
  CHECK(res["none"] == true);
}

TEST_CASE("cli: Host.call errors are coded and catchable", "[cli]") {
  const CliRun r = run_source(R"lua(
local r = {}
local function try(label, ...)
  local ok, e = pcall(Host.call, ...)
  r[label] = {ok = ok, e = tostring(e)}
end
try("denied", "file.read", {})
try("unknown", "no.such.tool", {})
try("noname")
try("empty", "")
try("fn", "host.ping", {f = print})
return r
)lua");
  const Json doc = doc_of(r);
  INFO(r.out);
  REQUIRE(doc["status"] == "ok");
  CHECK(r.exit_code == 0);
  const Json& res = doc["result"];
  for (const char* k : {"denied", "unknown", "noname", "empty", "fn"}) {
    INFO(k << ": " << res[k]);
    CHECK(res[k]["ok"] == false);
  }
  CHECK_THAT(res["denied"]["e"].get<std::string>(), Catch::StartsWith("denied: "));
  CHECK_THAT(res["unknown"]["e"].get<std::string>(),
             Catch::StartsWith("denied: ") || Catch::StartsWith("not_found: "));
  for (const char* k : {"noname", "empty", "fn"}) {
    INFO(k << ": " << res[k]);
    CHECK_THAT(res[k]["e"].get<std::string>(), Catch::StartsWith("invalid_args:"));
  }
}

TEST_CASE("cli: an uncaught Host.call error ends the run with status error, exit 1", "[cli]") {
  const CliRun r = run_source("local x = 1\nHost.call('file.read', {path = '/etc/passwd'})");
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "error");
  CHECK(r.exit_code == 1);
  CHECK_THAT(message_of(doc), Catch::Contains("denied: "));
}

// ---- print and the clock
// -------------------------------------------------------------------------

TEST_CASE("cli: print reaches stdout in order, before the result", "[cli]") {
  TempTac tac("print('one') print('two', 3, nil, true) for i = 1, 3 do print(i) end return 'done'");
  const CliRun r = run_tactus({"run", tac.path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "one\ntwo\t3\tnil\ttrue\n1\n2\n3\n\"done\"\n");
}

TEST_CASE("cli: with --json printed lines go to stderr and stdout is one JSON document", "[cli]") {
  const CliRun r = run_source("print('hello') return {a = 1}");
  const Json doc = doc_of(r);
  CHECK(doc["status"] == "ok");
  CHECK(doc["result"] == Json{{"a", 1}});
  CHECK(doc.contains("run_id"));
  CHECK(doc.contains("timings"));
  CHECK(doc.contains("peak_rss_kib"));
  CHECK_THAT(r.err, Catch::Contains("hello\n"));
  CHECK(r.out.find("hello") == std::string::npos);
}

TEST_CASE("cli: os.time and os.date come from the broker's clock", "[cli]") {
  const CliRun r =
      run_source("return {t = os.time(), y = os.date('!%Y'), d = os.date('!*t').year}");
  const Json doc = doc_of(r);
  INFO(r.out);
  REQUIRE(doc["status"] == "ok");
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  const std::string year = std::to_string(utc.tm_year + 1900);
  REQUIRE(doc["result"]["t"].is_number());
  CHECK(std::abs(doc["result"]["t"].get<double>() - static_cast<double>(now)) < 60);
  CHECK(doc["result"]["y"] == year);
  CHECK(doc["result"]["d"] == utc.tm_year + 1900);
}

// ---- what the binary refuses before running -----------------------------------------------------

TEST_CASE("cli: a precompiled (binary) chunk is refused as a usage error, exit 2", "[cli]") {
  const CliRun r = run_source(std::string("\x1bLJ\x02\x00", 5) + "junk");
  const Json doc = doc_of(r);
  INFO(r.out);
  CHECK(doc["status"] == "usage");
  CHECK(r.exit_code == 2);
  CHECK_THAT(message_of(doc), Catch::Contains("binary"));
}

TEST_CASE("cli: the restricted environment is the same through the binary", "[cli]") {
  const CliRun r = run_source(R"lua(
local found = {}
for _, name in ipairs({"io", "debug", "ffi", "jit", "package", "load", "loadstring", "dofile",
                       "loadfile", "getfenv", "setfenv", "newproxy", "module"}) do
  if _G[name] ~= nil then found[#found + 1] = name end
end
local ok = pcall(require, "ffi")
local w = pcall(function() string.upper = nil end)
return {found = table.concat(found, ","), require_ffi = ok, write = w, exec = os.execute == nil}
)lua");
  const Json doc = doc_of(r);
  INFO(r.out);
  REQUIRE(doc["status"] == "ok");
  CHECK(doc["result"]["found"] == "");
  CHECK(doc["result"]["require_ffi"] == false);
  CHECK(doc["result"]["write"] == false);
  CHECK(doc["result"]["exec"] == true);
}

TEST_CASE("vm: tostring, %s, print and errors show per-run ids, never heap addresses",
          "[vm][cli][sandbox]") {
  const CliRun r = run_source(R"(
local t, u = {}, setmetatable({}, { __tostring = function() return "custom" end })
local co = coroutine.create(function() end)
print(t, print, co)
local ok, e = pcall(function() return t .. "x" end)
return {
  tostring(t), tostring(t), tostring({}), string.format("%s|%5s|%%s|%d", t, print, 7),
  ("%s"):format(co), tostring(u), tostring(12), string.format("%s", "text"),
  tostring(tostring), e,
}
)");
  INFO(r.out << r.err);
  const Json doc = doc_of(r);
  REQUIRE(doc["status"] == "ok");
  const Json& v = doc["result"];
  CHECK(v[0] == "table: #1");
  CHECK(v[1] == "table: #1");
  CHECK(v[2] == "table: #4");  // print and co were given #2 and #3 by print
  CHECK(v[3] == "table: #1|function: #2|%s|7");
  CHECK(v[4] == "thread: #3");
  CHECK(v[5] == "custom");
  CHECK(v[6] == "12");
  CHECK(v[7] == "text");
  CHECK(v[8].get<std::string>().rfind("function: #", 0) == 0);
  CHECK(r.err.find("table: #1\tfunction: #2\tthread: #3") != std::string::npos);
  for (const auto& s : v) CHECK(s.get<std::string>().find("0x") == std::string::npos);
  CHECK(r.err.find("0x") == std::string::npos);
}

TEST_CASE("vm: %p, %q and a __tostring that returns no string give out no address",
          "[vm][cli][sandbox]") {
  const CliRun r = run_source(R"(
local out = {}
local function try(f) local ok, e = pcall(f) out[#out + 1] = tostring(e) end
try(function() return string.format("%p", {}) end)
try(function() return string.format("%q", {}) end)
local odd = setmetatable({}, { __tostring = function() return {} end })
try(function() return string.format("%s", odd) end)
try(function() return tostring(odd) end)
return out
)");
  INFO(r.out << r.err);
  const Json doc = doc_of(r);
  REQUIRE(doc["status"] == "ok");
  const Json& v = doc["result"];
  CHECK(v[0].get<std::string>().find("%p is not available in tactus") != std::string::npos);
  CHECK(v[1] == "\"table: #1\"");
  CHECK(v[2].get<std::string>().find("'__tostring' must return a string") != std::string::npos);
  CHECK(v[3].get<std::string>().find("'__tostring' must return a string") != std::string::npos);
  CHECK(r.out.find("0x") == std::string::npos);
  // An uncaught error's traceback names no C function by its address.
  TempTac tac("string.format('%d', 'x')\n");
  const auto e = run_tactus({"run", tac.path()});
  INFO(e.err);
  CHECK(e.exit_code == 1);
  CHECK(e.err.find("0x") == std::string::npos);
}

TEST_CASE("vm: C functions nested through Lua callbacks stop with a catchable stack overflow",
          "[vm][cli][sandbox]") {
  const CliRun r = run_source(R"(
local out = {}
local function try(f) local ok, e = pcall(f) out[#out + 1] = tostring(e) end
local function g(n) return (("x"):gsub("x", function() return g(n + 1) end)) end
try(function() return g(1) end)
local t = setmetatable({}, { __tostring = function(s) return tostring(s) end })
try(function() return tostring(t) end)
local function cmp(a, b) table.sort({ 2, 1 }, cmp) return a < b end
try(function() table.sort({ 3, 1, 2 }, cmp) end)
local f = function() end
for i = 1, 100000 do local h = f f = coroutine.wrap(function() return h() end) end
try(f)
-- Nesting below the bound still works.
local function depth(n) if n == 0 then return 0 end return (("x"):gsub("x", function() return depth(n - 1) end)) end
out[#out + 1] = depth(100)
return out
)");
  INFO(r.out << r.err);
  const Json doc = doc_of(r);
  REQUIRE(doc["status"] == "ok");
  const Json& v = doc["result"];
  for (int i = 0; i < 3; ++i)
    CHECK(v[i].get<std::string>().find("stack overflow (C calls nested more than 200 deep)") !=
          std::string::npos);
  CHECK(v[3].get<std::string>().find("stack overflow (coroutines nested more than 200 deep)") !=
        std::string::npos);
  CHECK(v[4] == "0");
}
