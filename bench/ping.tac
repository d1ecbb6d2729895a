-- bench/ping.tac: n Host.call("host.ping") round trips, for bench/run.
--   tactus run bench/ping.tac --json --param n=20000
-- The per-call cost is (run_ms(n) - run_ms(0)) / n, so compiling and starting cost nothing.
-- bench/run computes the request/response frame sizes from these exact args: keep them in step.
local n = tonumber(input.n) or 0
local args = { from = "bench" }
local pong
for _ = 1, n do
  pong = Host.call("host.ping", args)
end
return { n = n, last = pong and pong.from }
