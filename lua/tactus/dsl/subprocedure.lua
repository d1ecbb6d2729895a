-- Procedure.run("helpers/sum.tac", input): a sub-procedure from another file, as Python Tactus
-- runs one. The broker serves the file from beneath the project (never above it, never
-- .tactus/); it runs nested in this VM, under this run's limits, with globals of its own
-- (procedure, main, input, state, output) over the run's, its input and output validated
-- against its own declarations, at most max_depth deep.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")
local procs = require("tactus.dsl.procedure")
local dialect = require("tactus.dsl.dialect")
local agents = require("tactus.dsl.agent")
local naming = require("tactus.dsl.naming")
local tools = require("tactus.dsl.tools")

local sub = {}
local depth = 0
local declared_tools = {} -- "path\0name" -> the tool a sub-procedure file declared

local function run_in(path, input, level)
  local main, named, script_output = nil, {}, nil
  local state = {}
  local env = {}
  -- A named procedure of the file, run in the file's own globals.
  local function run_named(name, arg)
    local result
    if named[name] then
      result = procs.run_record(named[name], name, arg, 2, env)
    elseif type(name) == "string" and name:match("%.tac$") then
      result = sub.run(name, arg, 2)
    else
      result = procs.Procedure.run(name, arg)
    end
    return result -- not a tail call: error levels count this frame
  end
  env.procedure = function(a, b, c)
    local name, p = procs.parse_legacy(a, b, c, 2)
    if name == nil or name == "main" then
      if main then
        error("a main procedure is already declared in " .. path, 2)
      end
      main = p
    else
      named[name] = p
    end
    return setmetatable({ name = name or "main" }, {
      __call = function(_, arg)
        return run_named(name or "main", arg)
      end,
      __metatable = false,
    })
  end
  -- A file run again (a loop, a recursion) declares its tools again: the same ones.
  env.tool = function(name, spec, fn)
    local key = path .. "\0" .. tostring(name)
    if not declared_tools[key] then
      declared_tools[key] = tools.declare_tool(name, spec, fn, 2)
    end
    return declared_tools[key]
  end
  env.state = state
  env.input = procs.make_input(schema.copy(input))
  env.output = function(fields)
    script_output = schema.fields(fields, "output", 2)
  end
  -- Procedure {...} and Procedure "name" {...} declare the sub's own; Procedure.run is the run's.
  env.Procedure = setmetatable({ run = run_named }, {
    __call = function(_, arg)
      if type(arg) == "string" then
        return function(spec)
          local p = procs.make(spec, 2)
          named[arg] = p
          return p
        end
      end
      if main then
        error("a main procedure is already declared in " .. path, 2)
      end
      main = procs.make(arg, 2)
      return main
    end,
    __metatable = false,
  })
  -- Its agents are its own globals; its tests are its own file's, not the caller's.
  local function prompt_env()
    return { input = env.input, state = state }
  end
  env.agent = function(name, spec)
    if type(name) ~= "string" then
      error('agent("name", {...}) needs a name', 2)
    end
    local a = agents.new(spec, prompt_env, 2, name, env)
    rawset(env, name, a)
    agents.alias(name, a, env)
    return a
  end
  env.Agent = function(spec)
    local a = agents.new(spec, prompt_env, 2, nil, env)
    return a
  end
  local ignored = function() end
  for _, k in ipairs({ "Specification", "specifications", "Mocks", "Evaluation", "evaluation", "evaluations", "step" }) do
    env[k] = ignored
  end
  env.Step = setmetatable({ checkpoint = Step.checkpoint }, { __call = ignored })
  setmetatable(env, {
    __index = _G,
    __newindex = function(t, k, v)
      if type(k) == "string" then
        naming.assigned(k, v) -- greeter = Agent {...} names the agent, as at the top level
      end
      rawset(t, k, v)
    end,
  })
  local chunk = P.load_procedure(path, env)
  local result = chunk(env.input)
  if not main and type(rawget(env, "main")) == "function" then
    main = { input = {}, fn = rawget(env, "main") }
  end
  local function fail(err)
    error("Procedure.run('" .. path .. "'): " .. tostring(err), level + 1)
  end
  if main then
    local checked, err = schema.validate_input(main.input, env.input)
    if not checked then
      fail(err)
    end
    for k, v in pairs(main.state or {}) do
      local f = schema.normalize(v)
      if f and f.default ~= nil and state[k] == nil then
        state[k] = schema.copy(f.default)
      end
    end
    procs.refill(env.input, checked)
    result = main.fn(main.legacy and env.input or checked)
    if main.output then
      local out, oerr = procs.check_output(main, result)
      if not out then
        fail(oerr)
      end
      result = out
    end
  elseif script_output then
    local out, oerr = schema.validate_output(script_output, result)
    if not out then
      fail(oerr)
    end
    result = out
  end
  return result
end

function sub.run(path, input, level)
  if input ~= nil and type(input) ~= "table" then
    error("Procedure.run('" .. path .. "', input): the input must be a table", level + 1)
  end
  if P.mode() == "validate" then
    error("validate: Procedure.run is not run during validation", 0)
  end
  local max = dialect.settings.max_depth
  if depth >= max then
    error("Procedure.run('" .. path .. "'): sub-procedures nest deeper than max_depth (" .. max .. ")", level + 1)
  end
  depth = depth + 1
  local ok, result = pcall(run_in, path, input or {}, level + 2)
  depth = depth - 1
  if not ok then
    error(result, 0)
  end
  return result
end

return sub
