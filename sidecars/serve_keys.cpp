// serve: tactus serve's settings (docs/server.md). Each has a range: a server told to keep
// 100,000 warm jails, or to take a 10 GB body, is a configuration error, not an outage.
#include "sidecars/layer_reader.h"

namespace tactus::sidecars {

bool LayerReader::serve(const YAML::Node& n) {
  ServeSettings& s = cfg_.serve;
  return each(n, "serve",
              {"pool", "max_concurrent", "queue", "tokens", "drain_timeout", "max_body"},
              [&](const std::string& k, const YAML::Node& v) {
                if (k == "pool") return count(v, "serve.pool", 64, s.pool);
                if (k == "max_concurrent") {
                  if (!count(v, "serve.max_concurrent", 256, s.max_concurrent)) return false;
                  if (s.max_concurrent.value == 0)
                    return fail(v, "serve.max_concurrent", "must be at least 1");
                  return true;
                }
                if (k == "queue") return count(v, "serve.queue", 100000, s.queue);
                if (k == "drain_timeout")
                  return duration(v, "serve.drain_timeout", 0.001, s.drain_timeout);
                if (k == "max_body")
                  return size(v, "serve.max_body", 1ull << 10, 64ull << 20, s.max_body);
                if (!strings(v, "serve.tokens", s.tokens.value)) return false;
                s.tokens.origin = origin(v);
                return true;
              });
}

}  // namespace tactus::sidecars
