#include "tools/human.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>

#include "tools/interrupt.h"
#include "tools/lowercase.h"
#include "tools/terminal_text.h"

namespace tactus::tools {
namespace {

using protocol::Json;

void write_err(const std::string& s) {
  std::fputs(s.c_str(), stderr);
  std::fflush(stderr);
}

// The options of a Human.select/input request as {label, value} pairs.
std::vector<std::pair<std::string, Json>> options_of(const Json& params) {
  std::vector<std::pair<std::string, Json>> out;
  const Json opts = params.value("options", Json::array());
  if (!opts.is_array()) return out;
  for (const auto& o : opts) {
    if (o.is_object()) {
      const Json v = o.contains("value") ? o["value"] : o.value("label", Json());
      const Json l = o.value("label", v);
      out.emplace_back(l.is_string() ? l.get<std::string>() : protocol::dump_json(l), v);
    } else {
      out.emplace_back(o.is_string() ? o.get<std::string>() : protocol::dump_json(o), o);
    }
  }
  return out;
}

}  // namespace

std::string human_request_error(const std::string& kind, const Json& params) {
  if (!params.is_object() || !params.value("message", Json()).is_string())
    return "Human." + kind + " needs a message";
  return "";
}

bool human_timeout_passed(const Json& params, double asked_at, double now) {
  return params.contains("default") && params.value("timeout", Json()).is_number() &&
         now - asked_at >= params["timeout"].get<double>();
}

std::optional<Json> parse_answer(const std::string& kind, const Json& params,
                                 const std::string& text, std::string& error) {
  const std::string t = lower(text);
  if (kind == "approve") {
    if (t == "y" || t == "yes" || t == "true" || t == "1" || t == "approve" || t == "approved")
      return Json(true);
    if (t == "n" || t == "no" || t == "false" || t == "0" || t == "reject" || t == "rejected")
      return Json(false);
    error = "Human.approve takes yes or no (got '" + text + "')";
    return std::nullopt;
  }
  if (kind == "select" || (kind == "input" && params.contains("options"))) {
    const auto opts = options_of(params);
    for (std::size_t i = 0; i < opts.size(); ++i) {
      const auto& [label, value] = opts[i];
      const std::string v =
          value.is_string() ? value.get<std::string>() : protocol::dump_json(value);
      if (text == label || text == v || text == std::to_string(i + 1)) return value;
    }
    if (kind == "input") return Json(text);
    std::string names;
    for (const auto& [label, value] : opts) names += (names.empty() ? "" : ", ") + label;
    error = "Human.select takes one of: " + names + " (or its number; got '" + text + "')";
    return std::nullopt;
  }
  if (kind == "review") {
    const Json j = Json::parse(text, nullptr, false);
    if (j.is_object() && j.value("decision", Json()).is_string())
      return Json{{"decision", j["decision"]}, {"feedback", j.value("feedback", Json(""))}};
    const auto colon = text.find(':');
    std::string decision = lower(text.substr(0, colon));
    const std::string feedback = colon == std::string::npos ? "" : text.substr(colon + 1);
    if (decision == "approve" || decision == "approved" || decision == "yes")
      decision = "approved";
    else if (decision == "reject" || decision == "rejected" || decision == "no")
      decision = "rejected";
    else if (decision == "revise" || decision == "changes")
      decision = "revise";
    else {
      error = "Human.review takes approve, reject or revise, optionally with ': feedback' (got '" +
              text + "')";
      return std::nullopt;
    }
    size_t f = feedback.find_first_not_of(' ');
    return Json{{"decision", decision},
                {"feedback", f == std::string::npos ? "" : feedback.substr(f)}};
  }
  if (kind == "escalate") return Json();  // resolved
  return Json(text);                      // input
}

std::optional<Json> ask_at_terminal(const std::string& kind, const Json& params) {
  if (!::isatty(0) || !::isatty(2)) return std::nullopt;
  // The question a person answers is the procedure's text: inert always, so it cannot be
  // redrawn (\r, cursor moves) into a different one (tools/terminal_text.h).
  const std::string message = tools::inert_text(params.value("message", ""));
  std::string prompt = "\n[" + kind + "] " + message + "\n";
  if (kind == "approve") prompt += "approve? [y/n]";
  if (kind == "select" || params.contains("options")) {
    const auto opts = options_of(params);
    for (std::size_t i = 0; i < opts.size(); ++i)
      prompt += "  " + std::to_string(i + 1) + ". " + tools::inert_text(opts[i].first) + "\n";
    prompt += "choose";
  }
  if (kind == "review")
    prompt += "artifact:\n" +
              tools::inert_text(params["artifact"].is_string()
                                    ? params["artifact"].get<std::string>()
                                    : protocol::dump_json(params["artifact"], 2)) +
              "\napprove, reject or revise (': feedback' optional)";
  if (kind == "escalate") prompt += "press Enter when it is resolved";
  if (kind == "input")
    prompt += tools::inert_text(params.value("placeholder", std::string("answer")));
  if (params.contains("default"))
    prompt += " (default " + tools::inert_text(protocol::dump_json(params["default"])) + ")";
  const double timeout =
      params.value("timeout", Json()).is_number() ? params["timeout"].get<double>() : -1;
  for (;;) {
    write_err(prompt + ": ");
    if (timeout >= 0) {
      pollfd p{0, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(timeout * 1000));
      if (ready < 0) return std::nullopt;  // interrupted (SIGINT): the session stops the run
      if (ready == 0) {
        write_err("\n(no answer within " + std::to_string(static_cast<long>(timeout)) +
                  " s: the default)\n");
        return params.value("default", Json());
      }
    }
    std::string line;
    // End of input: suspend instead; an interrupted read: the session ends the run.
    if (!std::getline(std::cin, line) || tools::interrupted()) return std::nullopt;
    if (line.empty() && params.contains("default")) return params["default"];
    std::string error;
    if (auto v = parse_answer(kind, params, line, error)) return v;
    write_err(error + "\n");
  }
}

}  // namespace tactus::tools
