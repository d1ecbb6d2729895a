// bench/mcp_direct.mjs: the baseline for bench/run's MCP rows. Starts the same server directly
// (node, no jail, no broker), times spawn -> the answer to initialize, then n echo calls one
// after another, and prints {"start_ms": ..., "call_us": median}.
//   node bench/mcp_direct.mjs SERVER_JS N
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const [js, nText] = process.argv.slice(2);
const n = Number(nText || 200);
const t0 = process.hrtime.bigint();
const child = spawn(process.execPath, [js], { stdio: ["pipe", "pipe", "ignore"] });
const lines = createInterface({ input: child.stdout });
const waiting = new Map();
lines.on("line", (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.id !== undefined && waiting.has(m.id)) { waiting.get(m.id)(m); waiting.delete(m.id); }
});
let next = 1;
const ask = (method, params) => new Promise((resolve) => {
  const id = next++;
  waiting.set(id, resolve);
  child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
});
await ask("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench", version: "0" } });
const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
await ask("tools/list", {});
const times = [];
for (let i = 0; i < n; i++) {
  const s = process.hrtime.bigint();
  await ask("tools/call", { name: "echo", arguments: { message: "ping" } });
  times.push(Number(process.hrtime.bigint() - s) / 1e3);
}
times.sort((a, b) => a - b);
child.stdin.end();
console.log(JSON.stringify({ start_ms: startMs, call_us: times[Math.floor(n / 2)] }));
