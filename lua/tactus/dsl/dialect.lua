-- Python Tactus's settings and small primitives (docs/language.md, "Coming from Python
-- Tactus"): the agent defaults (default_model, default_provider, default_toolsets from the
-- trusted configuration, default_model()/default_provider() from the procedure), stages and
-- Stage, Iterations, MessageHistory, python.iter, and the declarations recorded for where this
-- runtime has the concept (prompts, return/error/status prompts, max_turns, max_depth).
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")

local dialect = {}

-- Read by lua/tactus/dsl/agent.lua when an agent names no model, provider or toolsets.
dialect.settings = {
  default_model = nil,
  default_provider = nil,
  default_toolsets = nil,
  max_depth = 5, -- Procedure.run nesting (Python Tactus's default); at most kMaxDepth
}
local kMaxDepth = 16

local recorded = { prompts = {}, models = {} } -- declarations kept for validate and the runtime

-- The configuration's dialect keys (options.dialect, trusted). The procedure's own
-- default_model()/default_provider() declarations come later and win, as a procedure's
-- settings do in Python Tactus.
function dialect.configure(d)
  if type(d) ~= "table" then
    return
  end
  local s = dialect.settings
  s.default_model = type(d.default_model) == "string" and d.default_model or nil
  s.default_provider = type(d.default_provider) == "string" and d.default_provider or nil
  s.default_toolsets = type(d.default_toolsets) == "table" and d.default_toolsets or nil
end

local function text_setting(name, key)
  return function(value)
    if type(value) ~= "string" or value == "" then
      error(name .. '("...") needs a non-empty string', 2)
    end
    dialect.settings[key] = value
  end
end

-- Stages: stages({"a", "b"}) or stages("a", "b") declares them; Stage.set(name) moves on
-- (a name not declared is an error when stages were declared); the history is what the
-- "stage should transition" steps read.
local declared_stages, stage_history, current_stage = nil, {}, nil

local function stages(...)
  local list = select("#", ...) == 1 and type((...)) == "table" and (...) or { ... }
  declared_stages = {}
  for i, name in ipairs(list) do
    if type(name) ~= "string" then
      error("stages: entry " .. i .. " must be a name", 2)
    end
    declared_stages[#declared_stages + 1] = name
    declared_stages[name] = true
  end
end

local Stage = {
  set = function(name)
    if type(name) ~= "string" then
      error("Stage.set needs a stage's name", 2)
    end
    if declared_stages and not declared_stages[name] then
      error("Stage.set: '" .. name .. "' is not a declared stage (stages: " .. table.concat(declared_stages, ", ") .. ")", 2)
    end
    current_stage = name
    stage_history[#stage_history + 1] = name
  end,
  current = function()
    return current_stage
  end,
  is = function(name)
    return current_stage == name
  end,
  history = function()
    return schema.copy(stage_history)
  end,
}

function dialect.stage_history()
  return stage_history
end
function dialect.current_stage()
  return current_stage
end

-- Iterations: the agent turns taken so far in this run.
local turns = 0
function dialect.count_turn()
  turns = turns + 1
end
local Iterations = {
  current = function()
    return turns
  end,
  exceeded = function(n)
    if type(n) ~= "number" then
      error("Iterations.exceeded needs a number", 2)
    end
    return turns >= n
  end,
  increment = function()
    turns = turns + 1
    return turns
  end,
  reset = function()
    turns = 0
  end,
}

-- MessageHistory: messages the procedure adds (append, inject_system) join the conversation of
-- the next agent to take a turn; get() is that agent's conversation afterwards (or what is
-- waiting); clear() forgets both.
local pending, last_history = {}, nil
local function message_of(m, level)
  if type(m) ~= "table" or type(m.content) ~= "string" then
    error("MessageHistory.append needs {role = ..., content = \"...\"}", level + 1)
  end
  local role = m.role or "user"
  if role ~= "user" and role ~= "assistant" and role ~= "system" then
    error("MessageHistory.append: role must be user, assistant or system", level + 1)
  end
  return { role = role, content = m.content }
end
local MessageHistory = {
  append = function(m)
    pending[#pending + 1] = message_of(m, 2)
  end,
  inject_system = function(text)
    if type(text) ~= "string" then
      error("MessageHistory.inject_system needs a string", 2)
    end
    pending[#pending + 1] = { role = "system", content = text }
  end,
  get = function()
    local out = schema.copy(last_history and last_history() or {})
    for _, m in ipairs(pending) do
      out[#out + 1] = schema.copy(m)
    end
    return out
  end,
  clear = function()
    for i = #pending, 1, -1 do
      pending[i] = nil
    end
    last_history = function()
      return {}
    end
  end,
}

-- The messages waiting for the next turn (agent.lua takes them), and that turn's history.
function dialect.take_pending()
  local out = pending
  pending = {}
  return out
end
function dialect.set_last_history(fn)
  last_history = fn
end

-- python.iter(list): Python Tactus lists cross into Lua as Python objects; ours are tables.
local python = {
  iter = function(t)
    if type(t) ~= "table" then
      error("python.iter needs a list", 2)
    end
    return ipairs(t)
  end,
}

-- Declarations Python Tactus has that this runtime records (validate lists them).
local function recorder(kind)
  return function(name, value)
    if type(name) ~= "string" then
      error(kind .. '("name", ...) needs a name', 2)
    end
    recorded[kind .. "s"] = recorded[kind .. "s"] or {}
    recorded[kind .. "s"][name] = value
  end
end

function dialect.recorded()
  return recorded
end

-- The globals this module defines (the prelude sets them).
function dialect.globals()
  return {
    stages = stages,
    Stage = Stage,
    Iterations = Iterations,
    MessageHistory = MessageHistory,
    -- Session: Python Tactus's older name for it (history() is get()).
    Session = setmetatable({ history = MessageHistory.get }, { __index = MessageHistory }),
    python = python,
    default_model = text_setting("default_model", "default_model"),
    default_provider = text_setting("default_provider", "default_provider"),
    prompt = recorder("prompt"),
    hitl = recorder("hitl"),
    return_prompt = text_setting("return_prompt", "return_prompt"),
    error_prompt = text_setting("error_prompt", "error_prompt"),
    status_prompt = text_setting("status_prompt", "status_prompt"),
    max_turns = function(n)
      if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
        error("max_turns needs a whole number of at least 1", 2)
      end
      dialect.settings.max_turns = n
    end,
    max_depth = function(n)
      if type(n) ~= "number" or n < 1 or n % 1 ~= 0 or n > kMaxDepth then
        error("max_depth needs a whole number from 1 to " .. kMaxDepth, 2)
      end
      dialect.settings.max_depth = n
    end,
  }
end

return dialect
