-- bench/mcp_echo.tac: n calls of mcp.everything.echo, for bench/run (sidecar beside it there).
--   n = 0 starts no server; n = 1 starts it (initialize, tools/list) and calls once; the
--   per-call round trip is (run_ms(n) - run_ms(1)) / (n - 1).
local n = tonumber(input.n) or 0
local last
for i = 1, n do
  last = Host.call("mcp.everything.echo", { message = "ping" })
end
return { n = n, last = last and last.text }
