-- bench/ping.tac: n Host.call("host.ping") round trips, for bench/run.
--   tactus run bench/ping.tac --json --param n=20000
-- The per-call cost is (run_ms(n) - run_ms(0)) / n, so compiling and starting cost nothing.
-- bench/run computes the request/response frame sizes from these exact args: keep them in step.
-- A run is journaled from its first request with an outside effect (docs/durability.md); this
-- notify is one, so every host.ping below is journaled, as in a real agent run.
Human.notify({ message = "ping" })
local n = tonumber(input.n) or 0
local args = { from = "bench" }
local pong
for _ = 1, n do
  pong = Host.call("host.ping", args)
end
return { n = n, last = pong and pong.from }
