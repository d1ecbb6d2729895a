// tactus serve's /metrics: Prometheus text exposition of runs by status, active and queued
// runs, jail start and run duration histograms, tool calls by tool and outcome, and model
// tokens by provider, model and type. Label values a procedure chooses (tool and model names)
// are bounded: at most kMaxSeries series per family, the rest counted under "(other)".
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

namespace tactus::cli::serve {

class Histogram {
 public:
  static constexpr std::array<double, 15> kBounds = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60};
  void observe(double seconds);
  std::string text(const std::string& name, const std::string& help) const;

 private:
  std::array<std::uint64_t, kBounds.size()> counts_{};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  static constexpr std::size_t kMaxSeries = 500;
  void run_ended(const std::string& status, double seconds);
  void jail_started(double seconds);
  void tool_call(const std::string& tool, const std::string& outcome);
  void tokens(const std::string& model, const std::string& type, double n);
  std::string text(std::size_t active, std::size_t queued, std::size_t pool_idle) const;

 private:
  std::map<std::string, std::uint64_t> runs_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> tools_;
  std::map<std::tuple<std::string, std::string, std::string>, double> tokens_;
  Histogram jail_, duration_;
};

// A label value as Prometheus reads it: \, " and line breaks escaped.
std::string label_value(const std::string& v);

}  // namespace tactus::cli::serve
