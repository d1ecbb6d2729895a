-- Agent {}: an LLM-driven agent. Calling it runs one turn: one llm.chat request to the broker
-- with the agent's conversation and its tools' schemas, then every tool call in the reply runs
-- (Lua tools here, host tools through the broker) and its result joins the conversation.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")
local tools = require("tactus.dsl.tools")
local naming = require("tactus.dsl.naming")
local host = require("tactus.host")
local dialect = require("tactus.dsl.dialect")
local agent_tools = require("tactus.dsl.agent_tools")

local agent = {}
local all = {} -- every agent declared, in order

local known = {
  "name", "model", "provider", "system_prompt", "initial_message", "tools", "temperature",
  "max_tokens", "tool_choice", "model_type", "output_type", "toolsets",
  -- Python Tactus's fields (docs/language.md, "Coming from Python Tactus"): model_settings
  -- gives temperature and max_tokens; output is output_type; the rest are recorded.
  "model_settings", "output", "max_turns", "request_limit", "disable_streaming",
  "return_prompt", "error_prompt", "status_prompt", "message_history", "session", "description",
}

-- Fills {input.x} and {state.x} (and {x} for input fields) in a prompt.
local function render(text, env)
  if type(text) ~= "string" then
    return text
  end
  return (text:gsub("{([%w_%.]+)}", function(path)
    local root, rest = path:match("^(%w+)%.(.+)$")
    local value
    if root == "input" or root == "state" then
      value = env[root]
      for part in rest:gmatch("[^%.]+") do
        value = type(value) == "table" and value[part] or nil
      end
    else
      return "{" .. path .. "}"
    end
    if value == nil then
      return ""
    end
    return type(value) == "table" and P.json_encode(value) or tostring(value)
  end))
end

local resolve_tools = agent_tools.resolve

local function tool_schemas(list)
  local out = {}
  for _, entry in ipairs(list) do
    local t = entry.tool
    out[#out + 1] = {
      name = entry.wire,
      description = t.description or "",
      parameters = t.raw_schema or schema.object_schema(t.input or {}),
    }
  end
  return out
end

local function encode_result(v)
  if type(v) == "string" then
    return v
  end
  local ok, text = pcall(P.json_encode, v == nil and "" or v)
  return ok and text or tostring(v)
end

-- The agent's tool for a scripted call, by wire name or declared name.
local function scripted_tool(list, name)
  for _, entry in ipairs(list) do
    if entry.wire == name or entry.tool.name == name then
      return entry.tool
    end
  end
end

-- An error for the trace: a string's first 1000 bytes (an error object's own __tostring is not
-- run for it).
local function error_text(e)
  return type(e) == "string" and e:sub(1, 1000) or "(" .. type(e) .. ")"
end

-- Runs the model's tool calls; returns the calls made, each {name, args, result | error}.
-- A mocked reply's calls are recorded without running (docs/testing.md).
local function run_tool_calls(a, reply, by_wire, list)
  local made = {}
  for _, call in ipairs(reply.tool_calls or {}) do
    local t = by_wire[call.name]
    local record = { id = call.id, name = call.name, args = call.arguments }
    local content
    if reply.scripted then
      t = scripted_tool(list, call.name)
      record.name = t and t.name or call.name
      tools.record_scripted(t, call.name, call.arguments or {})
      record.result = "(mocked)"
    elseif not t then
      record.error = "no tool named '" .. tostring(call.name) .. "'"
    elseif type(call.arguments) == "table" and call.arguments._raw ~= nil then
      record.error = "the arguments are not valid JSON"
    else
      record.name = t.name
      -- A Lua tool runs here, unseen by the broker: the run's trace hears of it from us.
      local traced = not t.host and P.traced()
      if traced then
        P.trace("begin", "execute_tool", tostring(t.name))
      end
      local ok, result = pcall(tools.invoke, t, call.arguments or {})
      if traced then
        P.trace("end", "execute_tool", tostring(t.name), not ok and error_text(result) or nil)
      end
      if ok then
        record.result = result
      else
        record.error = tostring(result)
      end
    end
    content = record.error and ("error: " .. record.error) or encode_result(record.result)
    a.history[#a.history + 1] = { role = "tool", tool_call_id = call.id, name = call.name, content = content }
    made[#made + 1] = record
  end
  return made
end

-- The agent's provider and model: its own, else the dialect's defaults (default_provider and
-- default_model from the configuration or the procedure), else Python Tactus's ("gpt-4o").
-- "provider/model" and Python's "provider:model" name both when no provider is set.
local function model_of(a)
  local spec = a.spec
  local model = spec.model
  if type(model) == "table" then
    model = model.name
  end
  local provider = spec.provider or dialect.settings.default_provider
  local defaulted = false
  if model == nil then
    model = dialect.settings.default_model
    if model == nil then
      model, defaulted = "gpt-4o", true
    end
  end
  if type(model) ~= "string" or model == "" then
    error("agent '" .. a.name .. "': model must be a name: model = \"openai/gpt-4o-mini\" (or provider = ..., model = ...)", 0)
  end
  if not provider then
    local p, m = model:match("^([%w_%-]+)/(.+)$")
    if not p then
      p, m = model:match("^([%w_%-]+):(.+)$")
    end
    if p then
      provider, model = p, m
    else
      provider = "openai"
    end
  end
  return provider, model, defaulted
end

-- A setting of the turn, else the agent's, else its model_settings' (Python Tactus's form).
local function setting(a, opts, k)
  if opts[k] ~= nil then
    return opts[k]
  end
  if type(opts.model_settings) == "table" and opts.model_settings[k] ~= nil then
    return opts.model_settings[k]
  end
  if a.spec[k] ~= nil then
    return a.spec[k]
  end
  local ms = a.spec.model_settings
  if type(ms) == "table" and ms[k] ~= nil then
    return ms[k]
  end
  if type(a.spec.model) == "table" then
    return a.spec.model[k]
  end
end

local function chat(a, by_wire, list, env, opts)
  local messages = {}
  local system = render(a.spec.system_prompt, env)
  if a.output_fields then
    local note = "Reply with only a JSON object matching this JSON Schema, and nothing else: "
      .. P.json_encode(schema.object_schema(a.output_fields))
    system = system and (system .. "\n\n" .. note) or note
  end
  if system then
    messages[1] = { role = "system", content = system }
  end
  for _, m in ipairs(a.history) do
    messages[#messages + 1] = m
  end
  local provider, model = model_of(a)
  local request = {
    agent = a.name,
    provider = provider,
    model = model,
    model_type = a.spec.model_type,
    messages = messages,
    tool_choice = a.spec.tool_choice,
    temperature = setting(a, opts, "temperature"),
    max_tokens = setting(a, opts, "max_tokens"),
  }
  for _, k in ipairs({ "temperature", "max_tokens" }) do
    if request[k] ~= nil and type(request[k]) ~= "number" then
      error("agent '" .. a.name .. "': " .. k .. " must be a number", 0)
    end
  end
  if #list > 0 then
    request.tools = tool_schemas(list)
  end
  if P.mode() == "validate" then
    error("validate: no model call", 0)
  end
  local mocked = host.agent_reply(a, by_wire.done ~= nil)
  if mocked then
    return mocked
  end
  return P.llm_chat(request)
end

-- The turn's usage: the sum of its model calls' (docs/language.md, "Usage and cost"). A call
-- whose provider reported none makes the turn's "unknown"; a call without a price, its cost.
local usage_fields = {
  "input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens",
  "total_tokens", "prompt_tokens", "completion_tokens",
}

local function new_spend()
  local usage = {}
  for _, k in ipairs(usage_fields) do
    usage[k] = 0
  end
  return { usage = usage, cost = 0 }
end

local function add_spend(total, reply)
  local u = reply.usage
  if u == nil and reply.cost == nil then
    return -- a mocked reply: nothing was spent
  end
  if type(u) ~= "table" then
    total.usage = "unknown"
  elseif type(total.usage) == "table" then
    for _, k in ipairs(usage_fields) do
      total.usage[k] = total.usage[k] + (tonumber(u[k]) or 0)
    end
    if u.reasoning_tokens ~= nil then
      total.usage.reasoning_tokens = (total.usage.reasoning_tokens or 0) + (tonumber(u.reasoning_tokens) or 0)
    end
  end
  if type(reply.cost) ~= "number" then
    total.cost = "unknown"
  elseif type(total.cost) == "number" then
    total.cost = total.cost + reply.cost
  end
end

-- A structured reply: the JSON object in the text (a ```json fence is allowed).
local function parse_structured(text)
  if type(text) ~= "string" then
    return nil, "the reply has no text"
  end
  local body = text:match("```json%s*(.-)%s*```") or text:match("```%s*(.-)%s*```") or text
  body = body:match("^%s*(.-)%s*$")
  local ok, value = pcall(P.json_decode, body)
  if not ok or type(value) ~= "table" then
    return nil, "the reply is not a JSON object"
  end
  return value
end

-- A turn's argument: nil, a message, or {message =, inject =, toolsets =, temperature =,
-- max_tokens =} (Python Tactus's form; inject is a message added for this turn).
local turn_keys = { message = true, inject = true, toolsets = true, temperature = true, max_tokens = true, model_settings = true }

local function turn_options(a, message)
  if type(message) ~= "table" then
    return message ~= nil and tostring(message) or nil, {}
  end
  for k in pairs(message) do
    if not turn_keys[k] then
      error("agent '" .. a.name .. "': turn: unknown option '" .. tostring(k) .. "' (known: message, inject, toolsets, temperature, max_tokens, model_settings)", 0)
    end
  end
  local text = message.message or message.inject
  if message.toolsets ~= nil and type(message.toolsets) ~= "table" then
    error("agent '" .. a.name .. "': turn: toolsets must be a list", 0)
  end
  return text ~= nil and tostring(text) or nil, message
end

local function turn(a, message, env)
  local text, opts = turn_options(a, message)
  local first = #a.history + 1
  for _, m in ipairs(dialect.take_pending()) do -- MessageHistory.append/inject_system
    a.history[#a.history + 1] = m
  end
  dialect.set_last_history(function()
    return a.history
  end)
  if text ~= nil then
    if not a.started and a.spec.initial_message and not host.first_message() and type(message) == "table" and message.inject then
      -- Python Tactus: an inject before the first turn follows the initial message.
      a.history[#a.history + 1] = { role = "user", content = render(a.spec.initial_message, env) }
    end
    a.history[#a.history + 1] = { role = "user", content = text }
  elseif not a.started and (host.first_message() or a.spec.initial_message) then
    -- A scenario's "Given the message is ..." replaces the first user message.
    local m = host.first_message() or render(a.spec.initial_message, env)
    a.history[#a.history + 1] = { role = "user", content = m }
  end
  a.started = true
  local list, by_wire = resolve_tools(a, opts.toolsets)
  local spend = new_spend()
  host.note_turn(a.name)
  local reply = chat(a, by_wire, list, env, opts)
  add_spend(spend, reply)
  local assistant = { role = "assistant", content = reply.content }
  if type(reply.tool_calls) == "table" and #reply.tool_calls > 0 then
    assistant.tool_calls = reply.tool_calls
  end
  a.history[#a.history + 1] = assistant
  local calls = run_tool_calls(a, reply, by_wire, list)
  local output = reply.content
  if reply.value ~= nil then
    output = reply.value -- a mock's value is the turn's output as it stands
  elseif a.output_fields and #calls == 0 then
    -- One retry, showing the model what was wrong.
    for attempt = 1, 2 do
      local value, err = parse_structured(output)
      if value then
        local checked, verr = schema.validate_value(a.output_fields, value)
        if checked then
          output = checked
          break
        end
        err = verr
      end
      if attempt == 2 then
        error("agent '" .. a.name .. "': the structured reply is invalid after a retry: " .. err, 0)
      end
      a.history[#a.history + 1] = {
        role = "user",
        content = "Your reply was not valid: " .. err .. ". Reply again with only the JSON object.",
      }
      reply = chat(a, by_wire, list, env, opts)
      add_spend(spend, reply)
      a.history[#a.history + 1] = { role = "assistant", content = reply.content }
      output = reply.content
    end
  elseif a.output_fields and type(output) == "string" then
    output = parse_structured(output) or output
  end
  local last = #a.history
  -- Python Tactus's result: .text, .data (the structured value, else the text), .usage,
  -- .new_messages(); ours: .output, .tool_calls, .cost.
  local result = {
    output = output,
    text = type(reply.content) == "string" and reply.content or "",
    data = output,
    tool_calls = calls,
    usage = spend.usage,
    cost = spend.cost,
    new_messages = function()
      local out = {}
      for i = first, last do
        out[#out + 1] = schema.copy(a.history[i])
      end
      return out
    end,
  }
  a.last = result
  dialect.count_turn()
  return result
end

-- A turn is a span of the run's trace (telemetry), ended with its error if it raised. Only a
-- traced run pays for the pcall (and its error is raised again from here).
local function traced_turn(a, message, env)
  if not P.traced() then
    return turn(a, message, env)
  end
  P.trace("begin", "invoke_agent", tostring(a.name))
  local ok, result = pcall(turn, a, message, env)
  P.trace("end", "invoke_agent", tostring(a.name), not ok and error_text(result) or nil)
  if not ok then
    error(result, 0)
  end
  return result
end

-- Agent {...}; env gives the prompts their input and state.
-- into: the globals its aliases go to when it is named by assignment (a sub-procedure
-- file's own; the run's by default).
function agent.new(spec, env, level, name, into)
  if type(spec) ~= "table" then
    error('Agent expects a table: greeter = Agent { model = "openai/gpt-4o-mini", ... }', level + 1)
  end
  local allowed = {}
  for _, k in ipairs(known) do
    allowed[k] = true
  end
  for k in pairs(spec) do
    if not allowed[k] then
      error("Agent: unknown field '" .. tostring(k) .. "' (known: " .. table.concat(known, ", ") .. ")", level + 1)
    end
  end
  if spec.model ~= nil and type(spec.model) ~= "string" and type(spec.model) ~= "table" then
    error('Agent: model must be a name: model = "openai/gpt-4o-mini"', level + 1)
  end
  if spec.model_settings ~= nil and type(spec.model_settings) ~= "table" then
    error("Agent: model_settings must be a table", level + 1)
  end
  for _, k in ipairs({ "temperature", "max_tokens" }) do
    if spec[k] ~= nil and type(spec[k]) ~= "number" then
      error("Agent: " .. k .. " must be a number", level + 1)
    end
  end
  if spec.tool_choice ~= nil and spec.tool_choice ~= "auto" and spec.tool_choice ~= "required" and spec.tool_choice ~= "none" then
    error("Agent: tool_choice must be auto, required or none", level + 1)
  end
  if spec.model_type ~= nil and spec.model_type ~= "chat" and spec.model_type ~= "responses" then
    error("Agent: model_type must be chat or responses", level + 1)
  end
  local output_type = spec.output_type or spec.output
  local a = {
    spec = spec,
    name = spec.name or name or "agent",
    history = {},
    spec_tools = spec.tools or {},
    output_fields = output_type and schema.fields(output_type, "output_type", level + 1),
  }
  if type(a.spec_tools) ~= "table" then
    error("Agent: tools must be a list", level + 1)
  end
  local object = setmetatable({}, {
    __index = function(_, k)
      if k == "history" then
        return function()
          return schema.copy(a.history)
        end
      elseif k == "turn" then
        return function(message)
          return traced_turn(a, message, env())
        end
      elseif k == "name" then
        return a.name
      elseif k == "output" then
        return a.last and a.last.output
      end
    end,
    __call = function(_, message)
      return traced_turn(a, message, env())
    end,
    __newindex = function()
      error("an agent is read-only", 2)
    end,
    __metatable = false,
  })
  all[#all + 1] = a
  if not spec.name and not name then
    naming.on_assign(object, function(n)
      a.name = n
      agent.alias(n, object, into)
    end)
  end
  return object
end

-- Greeter.turn() is an alias of greeter(), as in Tactus; contact_formatter is also
-- Contact_formatter and ContactFormatter (both forms appear in Python Tactus procedures).
function agent.alias(n, object, into)
  into = into or _G
  local cap = n:sub(1, 1):upper() .. n:sub(2)
  local camel = cap:gsub("_(%w)", function(c)
    return c:upper()
  end)
  for _, alias in ipairs({ cap, camel }) do
    if alias ~= n and rawget(into, alias) == nil then
      rawset(into, alias, object)
    end
  end
end

-- validate: every agent's model and tools resolve (nothing is asked of a provider or MCP
-- server). Returns notes for what was defaulted; raises the first agent that does not resolve.
function agent.check_all()
  local notes = {}
  for _, a in ipairs(all) do
    local _, model, defaulted = model_of(a)
    if defaulted then
      notes[#notes + 1] = "agent '" .. a.name .. "' names no model: it uses " .. model .. " (Python Tactus's default; set default_model)"
    end
    resolve_tools(a, nil, true)
  end
  return notes
end

function agent.names()
  local out = {}
  for i, a in ipairs(all) do
    out[i] = a.name
  end
  return out
end

return agent
