// An OpenTelemetry collector for tests: OTLP/HTTP with JSON bodies on 127.0.0.1 (the loopback
// server), recording every POST /v1/traces and answering 200 {}. spans() flattens what arrived.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/loopback_server.h"

namespace tactus::test {

class OtlpStub {
 public:
  OtlpStub()
      : server_("OtlpStub", 16 << 20, [this](int fd, const LoopbackRequest& r) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            targets_.push_back(r.method + " " + r.target);
            bodies_.push_back(r.body);
            types_.push_back(r.headers.count("content-type") ? r.headers.at("content-type") : "");
          }
          LoopbackServer::send_all(fd,
                                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
        }) {}

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  std::vector<std::string> targets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }
  std::vector<std::string> content_types() const {
    std::lock_guard<std::mutex> lock(mu_);
    return types_;
  }
  // Every body as it arrived (to look for what must not be there).
  std::string all_bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& b : bodies_) out += b + "\n";
    return out;
  }
  // Every span of every request, with its attributes as {key: value} in "attrs".
  std::vector<nlohmann::json> spans() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<nlohmann::json> out;
    for (const auto& b : bodies_) {
      const auto doc = nlohmann::json::parse(b, nullptr, false);
      if (!doc.is_object()) continue;
      for (const auto& rs : doc.value("resourceSpans", nlohmann::json::array()))
        for (const auto& ss : rs.value("scopeSpans", nlohmann::json::array()))
          for (auto span : ss.value("spans", nlohmann::json::array())) {
            nlohmann::json attrs = nlohmann::json::object();
            for (const auto& a : span.value("attributes", nlohmann::json::array())) {
              const auto& v = a["value"];
              if (v.contains("stringValue"))
                attrs[a["key"].get<std::string>()] = v["stringValue"];
              else if (v.contains("intValue"))
                attrs[a["key"].get<std::string>()] = std::stoll(v["intValue"].get<std::string>());
              else if (v.contains("doubleValue"))
                attrs[a["key"].get<std::string>()] = v["doubleValue"];
              else if (v.contains("boolValue"))
                attrs[a["key"].get<std::string>()] = v["boolValue"];
              else if (v.contains("arrayValue")) {
                nlohmann::json list = nlohmann::json::array();
                for (const auto& item : v["arrayValue"]["values"])
                  list.push_back(item.begin().value());
                attrs[a["key"].get<std::string>()] = list;
              }
            }
            span["attrs"] = attrs;
            out.push_back(span);
          }
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> targets_, bodies_, types_;
  LoopbackServer server_;  // last: stopped before what its handler uses
};

}  // namespace tactus::test
