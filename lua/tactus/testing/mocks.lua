-- Mocks for `tactus test` and `tactus run --mock` (docs/testing.md): scripted agent replies,
-- tool results and human answers, and the record of agent turns and requests the Then steps
-- read. The testing runner installs them in the request door (lua/tactus/host.lua).
-- One VM runs one scenario, so this module's state is the scenario's.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")
local specs = require("tactus.dsl.specs")

local mocks = {}

local active = false -- scenario mocks are in force (tactus test)
local file_mocks = false -- Mocks {...} blocks and default replies answer unmocked agents (--mock)
local scripted = {} -- agent name -> list of {message, tool_calls}
local used = {} -- agent name -> replies used
local tool_results = {} -- tool name -> list of results
local tool_used = {}
local decisions, texts = {}, {} -- queued human answers: approve/reject, and answers
local decisions_used, texts_used = 0, 0
local turns = {} -- agent name -> turns taken
local total_turns = 0
local first_message
local config = {} -- --mock-config FILE: tool name -> result; "Human.approve" ... -> answer

-- test: scenario mocks apply; mock: file-level mocks and defaults answer the rest.
function mocks.activate(test, mock)
  active = test or mock
  file_mocks = mock
end

-- --mock-config FILE (a JSON object, trusted: the command line's): each tool's mocked result
-- by name, and "Human.KIND" answers (approve, input, select, review).
function mocks.set_config(c)
  config = type(c) == "table" and c or {}
end

-- Human.* are answered here (tactus test, run --mock), not by a person.
function mocks.answers_humans()
  return active
end

-- the agent "A" responds with "TEXT": a new scripted turn, unless the last one has no text yet.
function mocks.agent_says(name, text)
  local list = scripted[name] or {}
  scripted[name] = list
  local last = list[#list]
  if last and last.message == nil then
    last.message = text
  else
    list[#list + 1] = { message = text, tool_calls = {} }
  end
end

-- the agent "A" calls tool "T" with args {...}: joins the agent's last scripted turn.
function mocks.agent_calls(name, tool, args)
  local list = scripted[name] or {}
  scripted[name] = list
  local last = list[#list]
  if not last then
    last = { tool_calls = {} }
    list[1] = last
  end
  last.tool_calls[#last.tool_calls + 1] = { tool = tool, args = args or {} }
end

function mocks.tool_returns(name, value)
  local list = tool_results[name] or {}
  tool_results[name] = list
  list[#list + 1] = { value = value }
end

-- the human approves / rejects (decision true/false) and the human answers "TEXT".
function mocks.human_decides(approved)
  decisions[#decisions + 1] = approved
end

function mocks.human_answers(value)
  texts[#texts + 1] = value
end

function mocks.set_first_message(text)
  first_message = text
end

function mocks.first_message()
  return first_message
end

-- The entry of a Mocks {...} block for name (the last block wins).
local function declared_for(name)
  local declared = specs.mock_tables()
  for i = #declared, 1, -1 do
    local e = declared[i][name]
    if e ~= nil then
      return e
    end
  end
end

-- The n-th of a list, the last one repeating.
local function nth(list, n)
  return list[math.min(n, #list)]
end

-- A minimal value that passes the output_type's validation, for a default reply.
local function placeholder(fields)
  local out = {}
  for name, f in pairs(fields) do
    do
      local v
      if f.enum and #f.enum > 0 then
        v = f.enum[1]
      elseif f.type == "number" or f.type == "integer" then
        v = f.min or 0
      elseif f.type == "boolean" then
        v = false
      elseif f.type == "array" then
        v = {}
      elseif f.type == "object" then
        v = {}
      else
        v = "mock " .. name
      end
      out[name] = v
    end
  end
  return out
end

local function reply_from(entry, agent_name)
  local reply = { content = entry.message, tool_calls = {}, scripted = true, value = entry.value }
  if reply.content == nil and entry.value ~= nil then
    reply.content = type(entry.value) == "table" and P.json_encode(entry.value) or tostring(entry.value)
  end
  for i, c in ipairs(entry.tool_calls or {}) do
    local tool = c.tool or c.name
    if type(tool) ~= "string" then
      error("Mocks: agent '" .. agent_name .. "': tool call " .. i .. " needs tool = \"name\"", 0)
    end
    reply.tool_calls[i] = { id = "mock_" .. i, name = tool, arguments = c.args or c.arguments or {} }
  end
  return reply
end

-- The reply a mocked agent gives on this turn, or nil when the model is to be asked.
-- a: the agent record (name, output_fields); has_done: the agent offers the done tool.
function mocks.agent_reply(a, has_done)
  if not active then
    return nil
  end
  local n = (used[a.name] or 0) + 1
  local list = scripted[a.name]
  if list then
    used[a.name] = n
    return reply_from(nth(list, n), a.name)
  end
  if not file_mocks then
    return nil
  end
  used[a.name] = n
  local entry = declared_for(a.name)
  if type(entry) == "table" then
    if type(entry.temporal) == "table" and #entry.temporal > 0 then
      return reply_from(nth(entry.temporal, n), a.name)
    end
    return reply_from(entry, a.name)
  elseif type(entry) == "string" then
    return reply_from({ message = entry }, a.name)
  end
  -- No mock: a plain reply, and done if the agent has it, so `until done.called()` ends.
  local text = "Mock reply from " .. a.name .. "."
  if a.output_fields then
    text = P.json_encode(placeholder(a.output_fields))
  end
  local reply = { content = text, tool_calls = {}, scripted = true }
  if has_done then
    reply.tool_calls[1] = { id = "mock_done", name = "done", arguments = { reason = text } }
  end
  return reply
end

-- A mocked tool's result: found, value.
function mocks.tool_result(name)
  if not active then
    return false
  end
  local list = tool_results[name]
  if list then
    local n = (tool_used[name] or 0) + 1
    tool_used[name] = n
    return true, schema.copy(nth(list, n).value)
  end
  if config[name] ~= nil then
    return true, schema.copy(config[name])
  end
  if not file_mocks then
    return false
  end
  local entry = declared_for(name)
  if type(entry) == "table" then
    if type(entry.temporal) == "table" and #entry.temporal > 0 and entry.temporal[1].returns ~= nil then
      local n = (tool_used[name] or 0) + 1
      tool_used[name] = n
      return true, schema.copy(nth(entry.temporal, n).returns)
    end
    if entry.returns ~= nil then
      return true, schema.copy(entry.returns)
    end
  end
  return false
end

-- A direct request (Host.call, a tactus.io request) and its result, recorded for the Then
-- steps (lua/tactus/host.lua calls this; tool handles record their own calls).
local host_calls = {}
function mocks.record_call(name, args, result)
  if active then
    local list = host_calls[name] or {}
    host_calls[name] = list
    list[#list + 1] = { name = name, args = args, result = result }
  end
end

function mocks.host_calls(name)
  return host_calls[name] or {}
end

-- An option of Human.select is a value or {label = ..., value = ...} (the value, else the label,
-- is the answer), as cli/durable_commands.cpp reads it.
local function option_value(o)
  if type(o) == "table" then
    if o.value ~= nil then
      return o.value
    end
    return o.label
  end
  return o
end

-- Human.*: the scenario's answers in order (the last repeating): approve and review take the
-- decisions, input and select the answers; else the request's default, else approve -> true,
-- select -> its first option. notify and escalate need no answer.
function mocks.human(kind, args)
  if kind == "notify" or kind == "escalate" then
    return nil
  end
  if (kind == "approve" or kind == "review") and #decisions > 0 then
    decisions_used = decisions_used + 1
    local approved = nth(decisions, decisions_used)
    if kind == "review" then
      -- As `tactus answer` gives it (cli/durable_commands.cpp).
      return { decision = approved and "approved" or "rejected", feedback = "" }
    end
    return approved
  end
  if kind ~= "approve" and #texts > 0 then
    texts_used = texts_used + 1
    local v = nth(texts, texts_used)
    if kind == "review" and type(v) ~= "table" then
      return { decision = "approved", feedback = tostring(v) }
    elseif kind == "select" then
      -- A label (or the option's number) answers with that option's value, as at the terminal.
      local labels = {}
      for i, o in ipairs(args.options) do
        if v == option_value(o) or v == i or (type(o) == "table" and v == o.label) then
          return option_value(o)
        end
        labels[i] = tostring(type(o) == "table" and (o.label or o.value) or o)
      end
      error("Human.select (\"" .. tostring(args.message) .. "\"): the scenario's answer " .. tostring(v)
        .. " is not one of its options (" .. table.concat(labels, ", ") .. ")", 0)
    end
    return v
  end
  if config["Human." .. kind] ~= nil then
    return schema.copy(config["Human." .. kind])
  end
  if args.default ~= nil then
    return args.default
  end
  if kind == "approve" then
    return true
  elseif kind == "select" then
    return option_value(args.options[1])
  elseif kind == "review" then
    return { decision = "approved", feedback = "" }
  end
  error("Human." .. kind .. " (\"" .. tostring(args.message) .. "\") has no default and the scenario gives no answer: add 'Given the human answers \"...\"'", 0)
end

function mocks.note_turn(name)
  turns[name] = (turns[name] or 0) + 1
  total_turns = total_turns + 1
end

-- The turns of the agent called name, or of one whose name differs only in case and
-- underscores (Python Tactus procedures call test_agent Test_agent or TestAgent).
function mocks.turns_like(name)
  local function key(n)
    return (tostring(n):lower():gsub("_", ""))
  end
  local n = 0
  for agent, count in pairs(turns) do
    if agent == name or key(agent) == key(name) then
      n = n + count
    end
  end
  return n
end

function mocks.turns(name)
  if name then
    return turns[name] or 0
  end
  return total_turns
end

return mocks
