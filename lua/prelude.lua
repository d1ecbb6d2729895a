-- The prelude: runs in every VM after the restricted environment is built and before the
-- procedure. It receives the private primitives table; what it defines as globals is what the
-- procedure sees. Tables listed in sandbox_env.cpp (kFrozenPreludeGlobals) are made read-only.
-- It returns the runner that Vm::run calls with the procedure's chunk and input.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part

local host = require("tactus.host")

-- Host: the one door out. Host.call(name, args) is one broker request; on failure it raises
-- an error whose message starts with the code (denied, invalid_args, not_found, timeout, failed).
-- Under tactus test a mocked tool answers instead (lua/tactus/host.lua).
Host = {
  call = function(name, args)
    return host.call(name, args, true)
  end,
}

-- xpcall: LuaJIT runs a message handler for an error raised in the instruction-count hook while
-- the hook is still marked active, so no hook would fire inside it and an endless handler would
-- run unmetered. Once a limit has tripped, the procedure's handler is skipped and the error
-- passes through. Written in Lua, not C, so coroutines can still yield across xpcall.
do
  local raw_xpcall, tripped = xpcall, P.limit_tripped
  xpcall = function(f, handler, ...)
    return raw_xpcall(f, function(e)
      if tripped() then
        return e
      end
      return handler(e)
    end, ...)
  end
end

local schema = require("tactus.dsl.schema")
local naming = require("tactus.dsl.naming")
local tools = require("tactus.dsl.tools")
local toolsets = require("tactus.dsl.toolsets")
local agents = require("tactus.dsl.agent")
local procs = require("tactus.dsl.procedure")
local specs = require("tactus.dsl.specs")
local dialect = require("tactus.dsl.dialect")
-- The testing runner (lua/tactus/testing/runner.lua), loaded by the VM only when a mode needs
-- it: validate's list of scenarios, tactus test, run --mock. The language never requires it.
local testing = P.testing

-- State: the run's state table; Procedure { state = {...} } declares fields with defaults.
state = {}
local function init_state(decl)
  for k, v in pairs(decl or {}) do
    local f = schema.normalize(v)
    if f then
      if f.default ~= nil and state[k] == nil then
        state[k] = schema.copy(f.default)
      end
    elseif state[k] == nil then
      state[k] = schema.copy(v)
    end
  end
end
State = {
  get = function(k)
    return state[k]
  end,
  set = function(k, v)
    state[k] = v
    return v
  end,
  increment = function(k, n)
    local v = (tonumber(state[k]) or 0) + (n or 1)
    state[k] = v
    return v
  end,
  append = function(k, v)
    local list = state[k]
    if type(list) ~= "table" then
      list = {}
      state[k] = list
    end
    list[#list + 1] = v
    return list
  end,
}

-- Log.debug/info/warn/error(message[, fields]): structured events, written by the broker.
Log = {}
for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  Log[level] = function(message, fields)
    if fields ~= nil and type(fields) ~= "table" then
      error("Log." .. level .. ": fields must be a table", 2)
    end
    if P.mode() == "validate" then
      error("validate: stopped at Log." .. level, 0) -- validate runs no body
    end
    P.log(level, message, fields)
  end
end

field = schema.field
Procedure = procs.Procedure
procedure = procs.legacy
output = procs.output
Tool = tools.Tool
-- Toolset "name" {...}, and Toolset.get(name): the tools of a named toolset, as a list.
Toolset = setmetatable({
  get = function(name)
    local list = toolsets.resolve(name, P.mode() == "validate")
    if not list then
      return nil
    end
    local out = {}
    for i, t in ipairs(list) do
      out[i] = t.handle or t.name
    end
    return out
  end,
}, {
  __call = function(_, name)
    return tools.Toolset(name)
  end,
  __newindex = function()
    error("Toolset is read-only", 2)
  end,
  __metatable = false,
})
-- Python Tactus's declarations: tool("name", {...}, fn), toolset("name", {...}), stages,
-- Stage, Iterations, MessageHistory, python.iter, default_model() ... (lua/tactus/dsl/dialect.lua).
tool = function(name, spec, fn)
  local h = tools.declare_tool(name, spec, fn, 2)
  return h -- not a tail call: error levels count this frame
end
toolset = function(name, spec)
  local set = toolsets.declare(name, spec, 2)
  return set
end
for k, v in pairs(dialect.globals()) do
  rawset(_G, k, v)
end
for k, v in pairs(require("tactus.dsl.stdlib").globals()) do
  rawset(_G, k, v)
end

local current_input = {}
local function prompt_env()
  return { input = current_input, state = state }
end

Agent = function(spec)
  if type(spec) == "string" then
    error('Agent "' .. spec .. '" {...} is not supported: write ' .. spec .. " = Agent {...}", 2)
  end
  local a = agents.new(spec, prompt_env, 2) -- not a tail call: error levels count this frame
  return a
end

-- Legacy: agent("name", {...}) declares the global name (and Name.turn()).
agent = function(name, spec)
  if type(name) ~= "string" then
    error('agent("name", {...}) needs a name', 2)
  end
  local a = agents.new(spec, prompt_env, 2, name)
  rawset(_G, name, a)
  agents.alias(name, a)
  return a
end

-- Step.checkpoint(fn) / Step.checkpoint("label", fn) / checkpoint(fn): runs fn once. The
-- broker journals its result by position; a resumed run gets it back without running fn.
-- Step("text", fn) declares a specification step (docs/testing.md).
local function run_checkpoint(label, fn)
  if type(label) == "function" then
    label, fn = nil, label
  end
  if type(fn) ~= "function" then
    error("checkpoint needs a function: Step.checkpoint(function() ... end)", 3)
  end
  if P.mode() == "validate" then
    error("validate: checkpoints are not run during validation", 0)
  end
  local r = P.checkpoint("checkpoint", { label = label })
  if r.replayed then
    return r.value
  end
  local value = fn()
  P.checkpoint("checkpoint.result", { label = label, value = value })
  return value
end
step = function(text, fn)
  specs.step(text, fn, 2)
end
Step = setmetatable({
  checkpoint = function(label, fn)
    return run_checkpoint(label, fn)
  end,
}, {
  __call = function(_, text, fn)
    specs.step(text, fn, 2)
  end,
})
checkpoint = function(label, fn)
  return run_checkpoint(label, fn)
end

-- Testing declarations: `tactus test` and `tactus eval` run them (docs/testing.md).
Specification = function(text)
  specs.specification(text, 2)
end
specifications = Specification
Mocks = function(t)
  specs.mocks(t, 2)
end
Evaluation = function(t)
  specs.evaluation(t, 2)
end
evaluation = Evaluation
-- evaluations({dataset = {...}, evaluators = {...}, thresholds = {...}}): `tactus eval` runs
-- the procedure on each case and scores it (lua/tactus/testing/evaluators.lua).
evaluations = function(t)
  specs.evaluations(t, 2)
end

-- Human.*: each is one broker request, answered at the terminal when there is one, otherwise
-- the run suspends until `tactus answer RUN_ID --value V` (docs/durability.md).
local function ask(kind, args, level)
  if type(args) == "string" then
    args = { message = args }
  end
  if type(args) ~= "table" or type(args.message) ~= "string" then
    error("Human." .. kind .. " needs a table with a message: Human." .. kind .. '{ message = "..." }', level + 1)
  end
  return host.human(kind, args) -- under tactus test, a scenario's answer: nobody is asked
end
Human = {
  approve = function(args)
    return ask("approve", args, 2) == true
  end,
  input = function(args)
    local v = ask("input", args, 2)
    return v ~= nil and tostring(v) or nil
  end,
  review = function(args)
    if type(args) == "table" and args.artifact == nil then
      error("Human.review needs an artifact", 2)
    end
    return ask("review", args, 2)
  end,
  select = function(args)
    if type(args) ~= "table" or type(args.options) ~= "table" or #args.options == 0 then
      error("Human.select needs options: Human.select{ message = ..., options = {...} }", 2)
    end
    return ask("select", args, 2)
  end,
  notify = function(args)
    ask("notify", args, 2)
  end,
  escalate = function(args)
    ask("escalate", args, 2)
  end,
}

-- Names from assignments (lookup = Tool {...}); set last, after the prelude's own globals.
setmetatable(_G, {
  __newindex = function(t, k, v)
    if type(k) == "string" then
      naming.assigned(k, v)
    end
    rawset(t, k, v)
  end,
  __metatable = false,
})

local mode = P.mode

-- What the testing runner needs of the language to run a scenario or an evaluation case.
local runner_env = {
  make_input = function(values)
    current_input = procs.make_input(values)
    return current_input
  end,
  run_main = procs.run_main,
  init_state = init_state,
  has_main = function()
    return procs.main_name() ~= nil or type(rawget(_G, "main")) == "function"
  end,
  check_script_output = procs.check_script_output,
}

return function(chunk, raw_input, options)
  raw_input = type(raw_input) == "table" and raw_input or {}
  options = type(options) == "table" and options or {}
  -- The configuration's agent defaults and toolsets (trusted: the broker sends them).
  if type(options.dialect) == "table" then
    dialect.configure(options.dialect)
    toolsets.configure(options.dialect)
  end
  if mode() == "test" then -- an evaluation case (options.case) or a scenario
    local run = options.case and testing().run_case or testing().run_scenario
    return run(chunk, raw_input, options, runner_env)
  end
  if options.mock then
    testing().mock_run(options.mock_config) -- tactus run --mock: Mocks {...}, --mock-config, defaults
  end
  host.seal() -- no mocks from here on: the procedure runs
  current_input = procs.make_input(raw_input)
  rawset(_G, "input", current_input)
  if mode() == "validate" and options.quick then
    return { quick = true } -- validate --quick: the chunk compiled; nothing of it runs
  end
  if mode() == "validate" then
    -- Declarations only: a script's body stops at its first effect or input read (print, Log,
    -- Host.call, an agent turn, input.x), none of which runs.
    rawset(_G, "print", function()
      error("validate: stopped at print", 0)
    end)
    current_input = procs.validate_input_proxy()
    rawset(_G, "input", current_input)
    local ok, err = pcall(chunk, current_input)
    local stopped_at
    if not ok then
      if type(err) == "string" and err:find("validate: ", 1, true) then
        stopped_at = err:match("validate: stopped at (.+)$") or (err:find("Host.call", 1, true) and "Host.call") or "effect"
      else
        error(err, 0)
      end
    end
    local summary = procs.summary()
    summary.agents = agents.names()
    summary.tools = tools.names()
    summary.notes = agents.check_all() -- raises for an agent whose model or tools do not resolve
    for _, n in ipairs(toolsets.notes()) do
      summary.notes[#summary.notes + 1] = n
    end
    if #summary.notes == 0 then
      summary.notes = nil
    end
    summary.script_stopped_at_host_call = stopped_at ~= nil or nil
    summary.script_stopped_at = stopped_at
    summary.specification = (#specs.texts() > 0 or specs.evaluation_set()) and testing().list() or nil
    return summary
  end
  local result = chunk(current_input)
  local found, main_result = procs.run_main(current_input, rawget(_G, "main"), init_state)
  P.sync_state() -- the state the run ends with is journaled too (docs/durability.md)
  if found then
    return main_result
  end
  return procs.check_script_output(result)
end
