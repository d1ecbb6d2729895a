#include <catch2/catch.hpp>

#include "runtime/protocol/message.h"

using namespace tactus::protocol;

namespace {
std::optional<Message> parse(const std::string& s) {
  std::string reason;
  return parse_message(s, reason);
}
std::string why(const std::string& s) {
  std::string reason;
  parse_message(s, reason);
  return reason;
}
}  // namespace

TEST_CASE("protocol: each message kind round-trips", "[protocol]") {
  auto req = parse(make_request(7, "host.call", Json{{"name", "host.ping"}, {"args", {1, 2}}}));
  REQUIRE(req);
  CHECK(req->kind == MessageKind::request);
  CHECK(req->id == 7);
  CHECK(req->method == "host.call");
  CHECK(req->params["args"] == Json({1, 2}));

  auto note = parse(make_notification("print", Json{{"text", "hi"}}));
  REQUIRE(note);
  CHECK(note->kind == MessageKind::notification);
  CHECK(note->params["text"] == "hi");

  auto res = parse(make_result(7, Json{{"x", nullptr}}));
  REQUIRE(res);
  CHECK(res->kind == MessageKind::response);
  CHECK_FALSE(res->error);
  CHECK(res->result == Json{{"x", nullptr}});

  auto err = parse(make_error(7, "denied", "no"));
  REQUIRE(err);
  REQUIRE(err->error);
  CHECK(err->error->code == "denied");
  CHECK(err->error->message == "no");
}

TEST_CASE("protocol: params default to an empty object", "[protocol]") {
  auto m = parse(R"({"method":"ready"})");
  REQUIRE(m);
  CHECK(m->params.is_object());
  CHECK(m->params.empty());
}

TEST_CASE("protocol: every class of malformed message is refused with a reason", "[protocol]") {
  CHECK(why("") == "not valid JSON");
  CHECK(why("{") == "not valid JSON");
  CHECK(why("nul") == "not valid JSON");
  CHECK(why("[]") == "message is not a JSON object");
  CHECK(why("42") == "message is not a JSON object");
  CHECK(why(R"({"method":"x","extra":1})") == "unknown member \"extra\"");
  CHECK(why(R"({"jsonrpc":"2.0","method":"x"})") == "unknown member \"jsonrpc\"");
  CHECK(why(R"({})") == "message has neither \"method\" nor \"id\"");
  CHECK(why(R"({"id":-1,"result":1})") == "\"id\" is not a non-negative integer");
  CHECK(why(R"({"id":1.5,"result":1})") == "\"id\" is not a non-negative integer");
  CHECK(why(R"({"id":"1","result":1})") == "\"id\" is not a non-negative integer");
  CHECK(why(R"({"id":9007199254740993,"result":1})") == "\"id\" is not a non-negative integer");
  CHECK(why(R"({"method":5})") == "\"method\" is not a short string");
  CHECK(why(R"({"method":""})") == "\"method\" is not a short string");
  CHECK(why(R"({"method":")" + std::string(129, 'm') + R"("})") ==
        "\"method\" is not a short string");
  CHECK(why(R"({"method":"x","params":[1]})") == "\"params\" is not an object");
  CHECK(why(R"({"method":"x","result":1})") == "a message with a method has no result/error");
  CHECK(why(R"({"id":1})") == "a response has exactly one of result/error");
  CHECK(why(R"({"id":1,"result":1,"error":{"code":"a","message":"b"}})") ==
        "a response has exactly one of result/error");
  CHECK(why(R"({"id":1,"params":{},"result":1})") == "a response has no \"params\"");
  CHECK(why(R"({"id":1,"error":"bad"})") == "\"error\" is not {code: string, message: string}");
  CHECK(why(R"({"id":1,"error":{"code":1,"message":"m"}})") ==
        "\"error\" is not {code: string, message: string}");
  CHECK(why(R"({"id":1,"error":{"code":"c","message":"m","data":1}})") ==
        "\"error\" is not {code: string, message: string}");
}

TEST_CASE("protocol: nesting is limited before parsing", "[protocol]") {
  const std::string ok =
      R"({"method":"x","params":{"a":)" + std::string(100, '[') + std::string(100, ']') + "}}";
  CHECK(parse(ok));
  const std::string deep =
      R"({"method":"x","params":{"a":)" + std::string(200, '[') + std::string(200, ']') + "}}";
  CHECK(why(deep) == "nesting deeper than 128");
  // Brackets inside strings do not count.
  CHECK(json_depth(R"({"a":"[[[[[[[[\"[[["})") == 1);
}

TEST_CASE("protocol: invalid UTF-8 is refused on input and replaced on output", "[protocol]") {
  CHECK(why("{\"method\":\"x\",\"params\":{\"t\":\"\xff\"}}") == "not valid JSON");
  const std::string text = make_notification("print", Json{{"text", std::string("a\xff")}});
  CHECK(parse(text));
}
