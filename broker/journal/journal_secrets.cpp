#include "broker/journal/journal_secrets.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace tactus::broker {
namespace {

constexpr char kOpen = '\x01';
constexpr char kClose = '\x02';

template <class F>
void each_string(nlohmann::json& value, const F& f) {
  if (value.is_string()) {
    auto& s = value.get_ref<std::string&>();
    s = f(s);
  } else if (value.is_array()) {
    for (auto& item : value) each_string(item, f);
  } else if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      each_string(it.value(), f);
      out[f(it.key())] = std::move(it.value());
    }
    value = std::move(out);
  }
}

}  // namespace

void SecretSeal::add(std::string name, std::string value) {
  if (value.size() < 4 || value.find(kOpen) != std::string::npos) return;
  secrets_.emplace_back(std::move(name), std::move(value));
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
}

std::string SecretSeal::seal(const std::string& text) const {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == kOpen) {
      out += kOpen;
      out += kOpen;
      ++i;
      continue;
    }
    bool matched = false;
    for (const auto& [name, value] : secrets_) {
      if (text.compare(i, value.size(), value) != 0) continue;
      out += kOpen;
      out += name;
      out += kClose;
      i += value.size();
      matched = true;
      break;
    }
    if (!matched) out += text[i++];
  }
  return out;
}

std::string SecretSeal::unseal(const std::string& text) const {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != kOpen) {
      out += text[i++];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == kOpen) {
      out += kOpen;
      i += 2;
      continue;
    }
    const auto close = text.find(kClose, i + 1);
    const std::string name =
        close == std::string::npos ? std::string() : text.substr(i + 1, close - i - 1);
    const auto it = std::find_if(secrets_.begin(), secrets_.end(),
                                 [&](const auto& s) { return s.first == name; });
    if (close == std::string::npos || it == secrets_.end()) {
      out += text[i++];  // not a placeholder of this run: kept as it is
      continue;
    }
    out += it->second;
    i = close + 1;
  }
  return out;
}

void SecretSeal::seal(nlohmann::json& value) const {
  each_string(value, [this](const std::string& s) { return seal(s); });
}

void SecretSeal::unseal(nlohmann::json& value) const {
  each_string(value, [this](const std::string& s) { return unseal(s); });
}

}  // namespace tactus::broker
