// The embedded modules tactus.io.file, tactus.io.csv and tactus.io.tsv, run in-process with no
// broker (Vm::create(limits, nullptr, ...)): the pure functions (parse, format, decode, encode)
// in full; the file-backed ones only as far as the broker, which is missing, so they fail with
// "failed: ...".
#include <catch2/catch.hpp>

#include <string>

#include "runtime/protocol/message.h"
#include "runtime/vm/vm.h"

namespace {

using tactus::protocol::Json;
using tactus::vm::RunOutcome;
using tactus::vm::Vm;
using tactus::vm::VmLimits;

// Every chunk starts with the modules as locals (on line 1, so positions are "test.tac:1:").
const std::string kPrefix =
    "local csv, tsv, file = require('tactus.io.csv'), require('tactus.io.tsv'), "
    "require('tactus.io.file') ";

std::string describe(const RunOutcome& o) {
  if (o.ok) return "ok, result = " + tactus::protocol::dump_json(o.result);
  return "failed, kind = " + o.kind + ", message = " + o.message;
}

RunOutcome run_lua(const std::string& source) {
  std::string error;
  auto vm = Vm::create(VmLimits{}, nullptr, error);
  INFO("Vm::create: " << error);
  REQUIRE(vm);
  return vm->run(kPrefix + source, "@test.tac", Json::object());
}

// Runs source, requires it to succeed, returns its result.
Json run_ok(const std::string& source) {
  INFO("source: " << source);
  const RunOutcome o = run_lua(source);
  INFO(describe(o));
  REQUIRE(o.ok);
  return o.result;
}

// Evaluates expr under pcall, requires it to fail, returns the error message.
std::string error_of(const std::string& expr) {
  const Json r = run_ok("local ok, e = pcall(function() local r = " + expr +
                        " return r end) return {ok = ok, e = tostring(e)}");
  INFO("expression: " << expr << "\nresult: " << r);
  REQUIRE(r["ok"] == false);
  return r["e"].get<std::string>();
}

Json parse(const std::string& lua_text, const std::string& module = "csv") {
  return run_ok("return " + module + ".parse(" + lua_text + ")");
}

std::string text_of(const std::string& expr) {
  return run_ok("return " + expr).get<std::string>();
}

}  // namespace

// ---- parse --------------------------------------------------------------------------------

TEST_CASE("io: csv.parse splits fields and records, LF or CRLF", "[io][csv]") {
  const Json expected = Json::parse(R"([["a","b","c"],["1","2","3"]])");
  CHECK(parse(R"("a,b,c\n1,2,3\n")") == expected);
  CHECK(parse(R"("a,b,c\r\n1,2,3\r\n")") == expected);
  CHECK(parse(R"("a,b,c\r\n1,2,3\n")") == expected);
  // No final line break; a final line break does not start another record.
  CHECK(parse(R"("a,b,c\n1,2,3")") == expected);
  CHECK(parse(R"("a\n")") == Json::parse(R"([["a"]])"));
  CHECK(parse(R"("a")") == Json::parse(R"([["a"]])"));
  // No text, no records.
  CHECK(run_ok("return #csv.parse('')") == 0);
  // An empty line is a record of one empty field.
  CHECK(parse(R"("\r\n")") == Json::parse(R"([[""]])"));
  CHECK(parse(R"("a\n\nb\n")") == Json::parse(R"([["a"],[""],["b"]])"));
  CHECK(parse(R"("a\r\n\r\n")") == Json::parse(R"([["a"],[""]])"));
}

TEST_CASE("io: csv.parse keeps empty fields and spaces", "[io][csv]") {
  CHECK(parse(R"("a,,b\n")") == Json::parse(R"([["a","","b"]])"));
  CHECK(parse(R"(",")") == Json::parse(R"([["",""]])"));
  CHECK(parse(R"(",\n,")") == Json::parse(R"([["",""],["",""]])"));
  CHECK(parse(R"("a,")") == Json::parse(R"([["a",""]])"));
  CHECK(parse(R"(" a , b \n")") == Json::parse(R"([[" a "," b "]])"));
  // A lone CR outside quotes is text; only CRLF and LF end a record.
  CHECK(parse(R"("a\rb,c\n")") == Json::parse(R"([["a\rb","c"]])"));
}

TEST_CASE("io: csv.parse quoted fields", "[io][csv]") {
  // The separator, doubled quotes, CRLF and LF inside quotes are text.
  CHECK(parse(R"('"a,b",c')") == Json::parse(R"([["a,b","c"]])"));
  CHECK(parse(R"('"say ""hi""",x')") == Json::parse(R"([["say \"hi\"","x"]])"));
  CHECK(parse(R"('""""')") == Json::parse(R"([["\""]])"));
  CHECK(parse(R"('"line1\r\nline2","b"\r\nc,d\r\n')") ==
        Json::parse(R"([["line1\r\nline2","b"],["c","d"]])"));
  CHECK(parse(R"('"line1\nline2",b\n')") == Json::parse(R"([["line1\nline2","b"]])"));
  // Empty quoted fields; a quoted field last, with or without a line break.
  CHECK(parse(R"('"",""')") == Json::parse(R"([["",""]])"));
  CHECK(parse(R"('a,""\n')") == Json::parse(R"([["a",""]])"));
  CHECK(parse(R"('""\r\n')") == Json::parse(R"([[""]])"));
  CHECK(parse(R"('a,"b"')") == Json::parse(R"([["a","b"]])"));
  CHECK(parse(R"('"a"\r\n"b"\n')") == Json::parse(R"([["a"],["b"]])"));
  // Spaces inside quotes are kept.
  CHECK(parse(R"('" a ",b')") == Json::parse(R"([[" a ","b"]])"));
}

TEST_CASE("io: csv.parse passes bytes through (UTF-8 and others)", "[io][csv]") {
  CHECK(parse(R"("\195\169t\195\169,\230\151\165\230\156\172\n")") ==
        Json::parse("[[\"\xc3\xa9t\xc3\xa9\",\"\xe6\x97\xa5\xe6\x9c\xac\"]]"));
  CHECK(parse(R"('"\226\130\172,x",y')") == Json::parse("[[\"\xe2\x82\xac,x\",\"y\"]]"));
  // Not UTF-8, and a NUL byte: compared inside Lua.
  CHECK(
      run_ok(
          R"(local r = csv.parse("\255\0,\128\n") return r[1][1] == "\255\0" and r[1][2] == "\128")") ==
      true);
}

TEST_CASE("io: csv.parse errors name the record and field", "[io][csv]") {
  CHECK(error_of(R"(csv.parse('h1,h2\nx,y\na,b"c\n'))") ==
        "csv: record 3, field 2: unexpected quote");
  CHECK(error_of(R"(csv.parse('a"'))") == "csv: record 1, field 1: unexpected quote");
  CHECK(error_of(R"(csv.parse('a,b\nc,d""\n'))") == "csv: record 2, field 2: unexpected quote");
  CHECK(error_of(R"(csv.parse('"a"b,c'))") ==
        "csv: record 1, field 1: text after the closing quote");
  CHECK(error_of(R"(csv.parse('x,"a" ,c'))") ==
        "csv: record 1, field 2: text after the closing quote");
  CHECK(error_of(R"(csv.parse('x,"a"\r'))") ==
        "csv: record 1, field 2: text after the closing quote");
  // Unterminated: where the quoted field started (a record may span lines).
  CHECK(error_of(R"(csv.parse('a,b\n1,"open\nmore'))") ==
        "csv: record 2, field 2: quoted field starting on line 2 is not closed");
  CHECK(error_of(R"(csv.parse('"x\ny",z\r\n"open'))") ==
        "csv: record 2, field 1: quoted field starting on line 3 is not closed");
  CHECK(error_of(R"(csv.parse('"'))") ==
        "csv: record 1, field 1: quoted field starting on line 1 is not closed");
  CHECK(error_of(R"(csv.parse('"a""'))") ==
        "csv: record 1, field 1: quoted field starting on line 1 is not closed");
}

TEST_CASE("io: csv separator option", "[io][csv]") {
  CHECK(run_ok(R"(return csv.parse('a;"b;c";d,e', {separator = ';'}))") ==
        Json::parse(R"([["a","b;c","d,e"]])"));
  CHECK(text_of(R"(csv.format({{"a;b", "c,d"}}, {separator = ";"}))") == "\"a;b\";c,d\r\n");
  CHECK(run_ok(R"(return csv.parse('a|b', {separator = '|'}))") == Json::parse(R"([["a","b"]])"));
  CHECK(run_ok(R"(return csv.parse('a.b', {separator = '.'}))") == Json::parse(R"([["a","b"]])"));
  for (const char* sep : {"';;'", "''", "'\"'", "'\\n'", "'\\r'", "1"}) {
    INFO("separator " << sep);
    CHECK(error_of(std::string("csv.parse('a', {separator = ") + sep + "})") ==
          "csv: the separator must be one character other than a quote, CR or LF");
  }
}

TEST_CASE("io: csv argument errors point at the caller", "[io][csv]") {
  CHECK(error_of("csv.parse(42)") == "test.tac:1: tactus.io.csv.parse: text must be a string");
  CHECK(error_of("csv.decode(nil)") == "test.tac:1: tactus.io.csv.decode: text must be a string");
  CHECK(error_of("csv.format('x')") == "test.tac:1: tactus.io.csv.format: records must be a table");
  CHECK(error_of("csv.encode('x')") == "test.tac:1: tactus.io.csv.encode: rows must be a table");
  CHECK(error_of("csv.parse('a', 'x')") ==
        "test.tac:1: tactus.io.csv.parse: options must be a table");
  CHECK(error_of("csv.encode({}, {headers = 'a'})") ==
        "test.tac:1: tactus.io.csv.encode: headers must be a table (an array of names)");
  CHECK(error_of("tsv.parse(true)") == "test.tac:1: tactus.io.tsv.parse: text must be a string");
}

// ---- decode -------------------------------------------------------------------------------

TEST_CASE("io: csv.decode keys rows by the header", "[io][csv]") {
  CHECK(run_ok(R"(return csv.decode('name,age\r\nAda,36\r\n"Lovelace, A",\r\n'))") ==
        Json::parse(R"([{"name":"Ada","age":"36"},{"name":"Lovelace, A","age":""}])"));
  CHECK(run_ok(R"(return csv.decode('x\n1\n\n'))") == Json::parse(R"([{"x":"1"},{"x":""}])"));
  // Only a header, or nothing: no rows.
  CHECK(run_ok("return #csv.decode('a,b\\r\\n') + #csv.decode('')") == 0);
  // Values stay strings.
  CHECK(run_ok("return type(csv.decode('n\\n1\\n')[1].n)") == "string");
}

TEST_CASE("io: csv.decode header errors", "[io][csv]") {
  CHECK(error_of(R"(csv.decode('a,b,a\n1,2,3\n'))") ==
        "csv: record 1, field 3: duplicate header \"a\"");
  CHECK(error_of(R"(csv.decode('a,,b\n'))") == "csv: record 1, field 2: empty header");
  CHECK(error_of(R"(csv.decode('a,""\n'))") == "csv: record 1, field 2: empty header");
  CHECK(error_of(R"(csv.decode('\n1\n'))") == "csv: record 1, field 1: empty header");
  CHECK(error_of(R"(csv.decode('a,b\n1,2\n3\n'))") ==
        "csv: record 3 has 1 field, the header has 2");
  CHECK(error_of(R"(csv.decode('a,b\n1,2,3'))") == "csv: record 2 has 3 fields, the header has 2");
  CHECK(error_of(R"(csv.decode('a,b\n1,2\n\n'))") == "csv: record 3 has 1 field, the header has 2");
  // Parse errors come through decode unchanged.
  CHECK(error_of(R"(csv.decode('a\n"x'))") ==
        "csv: record 2, field 1: quoted field starting on line 2 is not closed");
}

// ---- encode and format --------------------------------------------------------------------

TEST_CASE("io: csv.encode headers: sorted union of keys, or opts.headers", "[io][csv]") {
  CHECK(text_of(R"(csv.encode({{b = "1", a = "2"}, {c = "3"}}))") == "a,b,c\r\n2,1,\r\n,,3\r\n");
  // opts.headers: their order; keys not listed are left out; missing values are empty.
  CHECK(text_of(R"(csv.encode({{b = "1", a = "2", z = "x"}, {}}, {headers = {"b", "a", "c"}}))") ==
        "b,a,c\r\n1,2,\r\n,,\r\n");
  // No rows: only the header record, or nothing when there are no headers either.
  CHECK(text_of(R"(csv.encode({}, {headers = {"x", "y"}}))") == "x,y\r\n");
  CHECK(text_of("csv.encode({})") == "");
  // A single column with empty values: each record is "" so that it is not an empty line.
  CHECK(text_of(R"(csv.encode({{a = ""}, {}}))") == "a\r\n\"\"\r\n\"\"\r\n");
}

TEST_CASE("io: csv.encode values: numbers, booleans, nil", "[io][csv]") {
  CHECK(text_of(R"(csv.encode({{a = 1, b = 1.5, c = -3, d = 0, e = 1e15, f = 0.1, g = -2.25}}))") ==
        "a,b,c,d,e,f,g\r\n1,1.5,-3,0,1000000000000000,0.1,-2.25\r\n");
  // Numbers read back exactly.
  CHECK(run_ok(R"(
local vs = {1/3, 0.1 + 0.2, 2^53 + 2, 1e300, -1e-300, 123456789.125}
local rows = {}
for i, v in ipairs(vs) do rows[i] = {v = v} end
local back = csv.decode(csv.encode(rows))
for i, v in ipairs(vs) do
  if tonumber(back[i].v) ~= v then return back[i].v end
end
return true)") == true);
  CHECK(text_of(R"(csv.encode({{t = true, f = false, s = "x"}}))") == "f,s,t\r\nfalse,x,true\r\n");
  CHECK(text_of(R"(csv.encode({{a = 1}, {b = 2}}, {headers = {"a", "b"}}))") ==
        "a,b\r\n1,\r\n,2\r\n");
  CHECK(text_of(R"(csv.format({{1, 2.5, true, false, "s"}}))") == "1,2.5,true,false,s\r\n");
}

TEST_CASE("io: csv.encode quoting", "[io][csv]") {
  CHECK(
      text_of(
          R"(csv.format({{"a,b", 'say "hi"', "l1\r\nl2", "l1\nl2", "cr\r", " lead", "trail ", "in side", ""}}))") ==
      "\"a,b\",\"say \"\"hi\"\"\",\"l1\r\nl2\",\"l1\nl2\",\"cr\r\",\" lead\",\"trail \",in "
      "side,\r\n");
  CHECK(text_of(R"(csv.encode({{["a,b"] = 'x"y'}}))") == "\"a,b\"\r\n\"x\"\"y\"\r\n");
  CHECK(text_of(R"(csv.format({{""}, {"", ""}}))") == "\"\"\r\n,\r\n");
  CHECK(text_of("csv.format({})") == "");
}

TEST_CASE("io: csv.encode and csv.format errors", "[io][csv]") {
  CHECK(error_of(R"(csv.encode({{a = 1}, {b = {}}}))") ==
        "csv: row 2, field \"b\": a table cannot be a field value");
  CHECK(error_of(R"(csv.encode({{a = print}}))") ==
        "csv: row 1, field \"a\": a function cannot be a field value");
  CHECK(error_of(R"(csv.encode({{a = 1}, "x"}))") == "csv: row 2 is not a table");
  CHECK(error_of(R"(csv.encode({{a = 1}, {"x"}}))") ==
        "csv: row 2: key 1 is not a string, so it cannot be a header");
  CHECK(error_of(R"(csv.encode({{}, {}}))") == "csv: no headers (the rows have no keys)");
  CHECK(error_of(R"(csv.encode({}, {headers = {"a", "a"}}))") ==
        "csv: headers[2]: duplicate header \"a\"");
  CHECK(error_of(R"(csv.encode({}, {headers = {"a", ""}}))") == "csv: headers[2]: empty header");
  CHECK(error_of(R"(csv.encode({}, {headers = {1}}))") ==
        "csv: headers[1]: a header must be a string, not a number");
  CHECK(error_of(R"(csv.format({{"a", {}}}))") ==
        "csv: record 1, field 2: a table cannot be a field value");
  CHECK(error_of(R"(csv.format({{"a"}, 3}))") == "csv: record 2 is not a table");
  CHECK(error_of(R"(csv.format({{"a"}, {}}))") == "csv: record 2 has no fields");
}

// ---- round trips --------------------------------------------------------------------------

TEST_CASE("io: csv round trips: format -> parse and encode -> decode", "[io][csv]") {
  const char* tricky = R"(
local values = {"", " ", "a,b", '"', '""', 'x"y"z', "\r\n", "\n", "\r", "a\r\nb\nc\rd",
                " pad ", "\t", "\195\169\0\255", ",", ",,", '","', "plain"}
)";
  CHECK(run_ok(std::string(tricky) + R"(
local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if #a[i] ~= #b[i] then return false end
    for j = 1, #a[i] do if a[i][j] ~= b[i][j] then return false end end
  end
  return true
end
-- every value alone, every pair, and all in one record
for _, m in ipairs({csv, tsv}) do
  for _, v in ipairs(values) do
    local recs = {{v}, {v, v}, {"x", v}, {v, "x"}}
    if not same(m.parse(m.format(recs)), recs) then return "value " .. string.format("%q", v) end
  end
  if not same(m.parse(m.format({values, values})), {values, values}) then return "all" end
end
return true)") == true);
  CHECK(run_ok(std::string(tricky) + R"(
for _, m in ipairs({csv, tsv}) do
  local rows = {}
  for i, v in ipairs(values) do rows[i] = {["k" .. i] = v, k0 = v, ["a,\"b\"\n"] = v} end
  local back = m.decode(m.encode(rows))
  if #back ~= #rows then return "count" end
  for i, row in ipairs(rows) do
    for k, v in pairs(row) do if back[i][k] ~= v then return "row " .. i .. " " .. k end end
    for k, v in pairs(back[i]) do if row[k] == nil and v ~= "" then return "extra " .. k end end
  end
end
return true)") == true);
  // Many rows.
  CHECK(run_ok(R"(
local rows = {}
for i = 1, 2000 do rows[i] = {n = i, s = "v" .. i .. ',"q"'} end
local back = csv.decode(csv.encode(rows))
if #back ~= 2000 then return #back end
for i = 1, 2000 do
  if back[i].n ~= tostring(i) or back[i].s ~= "v" .. i .. ',"q"' then return i end
end
return true)") == true);
}

// ---- tsv ----------------------------------------------------------------------------------

TEST_CASE("io: tsv uses tabs, with the csv quoting rules", "[io][tsv]") {
  CHECK(parse(R"("a\tb,c\n1\t2\n")", "tsv") == Json::parse(R"([["a","b,c"],["1","2"]])"));
  CHECK(parse(R"('"x\ty"\t"say ""hi"""\r\n')", "tsv") == Json::parse(R"([["x\ty","say \"hi\""]])"));
  CHECK(text_of(R"(tsv.format({{"a\tb", "c,d", 'e"f', "g h"}}))") ==
        "\"a\tb\"\tc,d\t\"e\"\"f\"\tg h\r\n");
  CHECK(run_ok(R"(return tsv.decode('name\tnote\nAda\t"tab\there"\n'))") ==
        Json::parse(R"([{"name":"Ada","note":"tab\there"}])"));
  CHECK(text_of(R"(tsv.encode({{b = 1, a = "x,y"}}))") == "a\tb\r\nx,y\t1\r\n");
  // Errors say tsv.
  CHECK(error_of(R"(tsv.parse('a\tb"'))") == "tsv: record 1, field 2: unexpected quote");
  CHECK(error_of(R"(tsv.decode('a\ta\n'))") == "tsv: record 1, field 2: duplicate header \"a\"");
  CHECK(error_of(R"(tsv.encode({{a = {}}}))") ==
        "tsv: row 1, field \"a\": a table cannot be a field value");
  // Leading and trailing tabs quoted too (a tab is the separator here).
  CHECK(text_of(R"(tsv.format({{"\tx", "y\t"}}))") == "\"\tx\"\t\"y\t\"\r\n");
}

TEST_CASE("io: csv.with_separator makes the same API for another separator", "[io][csv]") {
  CHECK(run_ok(R"(
local ssv = csv.with_separator(";")
return {ssv.parse('a;"b;c"'), ssv.format({{"x;y", "z"}})})") ==
        Json::parse(R"([[["a","b;c"]], "\"x;y\";z\r\n"])"));
  CHECK(error_of(R"(csv.with_separator(";", "my.ssv").parse('"'))") ==
        "ssv: record 1, field 1: quoted field starting on line 1 is not closed");
  CHECK(error_of(R"(csv.with_separator(";;"))") ==
        "csv: the separator must be one character other than a quote, CR or LF");
  CHECK(error_of("csv.with_separator()") ==
        "test.tac:1: tactus.io.csv.with_separator: the separator is missing");
}

TEST_CASE("io: the modules are read-only tables of functions", "[io]") {
  const Json r = run_ok(R"(
local names = {
  csv = {"parse", "format", "decode", "encode", "read", "write", "with_separator"},
  tsv = {"parse", "format", "decode", "encode", "read", "write"},
  file = {"read", "write", "append", "exists", "list"},
}
local mods = {csv = csv, tsv = tsv, file = file}
for m, fns in pairs(names) do
  for _, f in ipairs(fns) do
    if type(mods[m][f]) ~= "function" then return m .. "." .. f end
  end
  if pcall(function() mods[m].parse = nil end) then return m .. " is writable" end
end
return true)");
  CHECK(r == true);
}

// ---- file-backed functions: no broker here ------------------------------------------------

TEST_CASE("io: file-backed functions reach the broker (none here: failed)", "[io][file]") {
  for (const char* expr :
       {"file.read('a.txt')", "file.write('a.txt', 'x')", "file.append('a.txt', 'x')",
        "file.exists('a.txt')", "file.list('.')", "file.list()", "csv.read('a.csv')",
        "csv.write('a.csv', {{a = 1}})", "tsv.read('a.tsv')", "tsv.write('a.tsv', {})"}) {
    INFO(expr);
    // The broker's error comes through unchanged: no position, the code first.
    CHECK(error_of(expr) == "failed: no broker connection");
  }
}

TEST_CASE("io: file.write and file.append take only a string", "[io][file]") {
  CHECK(error_of("file.write('a.txt', 42)") ==
        "test.tac:1: tactus.io.file.write: text must be a string");
  CHECK(error_of("file.write('a.txt')") ==
        "test.tac:1: tactus.io.file.write: text must be a string");
  CHECK(error_of("file.append('a.txt', {})") ==
        "test.tac:1: tactus.io.file.append: text must be a string");
  // csv.write checks its rows before it calls the broker.
  CHECK(error_of("csv.write('a.csv', {{a = {}}})") ==
        "csv: row 1, field \"a\": a table cannot be a field value");
  CHECK(error_of("csv.write('a.csv', 'x')") ==
        "test.tac:1: tactus.io.csv.write: rows must be a table");
}
