-- The evaluators of evaluations({...}) (Python Tactus's set; docs/testing.md, "Evaluations"):
-- each is a function of (evaluator, case context) returning passed, reason; or nil, reason
-- when it cannot judge here (llm_judge under --mock). One named table, dispatched by type.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local regex = require("tactus.testing.regex")
local tools = require("tactus.dsl.tools")
local mocks = require("tactus.testing.mocks")

local evaluators = {}

local function show(v)
  if type(v) == "table" then
    local ok, text = pcall(P.json_encode, v)
    return ok and text or "(a table)"
  end
  return tostring(v)
end

-- The evaluated value: the output's field when one is named and the output is a table, else
-- the whole output.
local function value_of(e, ctx)
  if e.field and type(ctx.output) == "table" then
    return ctx.output[e.field]
  end
  return ctx.output
end

local function text_of(e, ctx)
  local v = value_of(e, ctx)
  if v == nil then
    return ""
  end
  return type(v) == "table" and show(v) or tostring(v)
end

local function length_of(v)
  if type(v) == "table" then
    local n = 0
    for _ in pairs(v) do
      n = n + 1
    end
    return n
  end
  return #(v == nil and "" or tostring(v))
end

-- Deep, typed equality: the Then steps' own (tactus.testing.steps).
local equal = require("tactus.testing.steps").equal

local function between(n, lo, hi)
  return (lo == nil or n >= lo) and (hi == nil or n <= hi)
end

-- A small JSON Schema check (type, properties, required, items, enum, minimum, maximum): what
-- the evaluators' schemas use; anything else in the schema is not checked.
local function schema_ok(v, s, path)
  if type(s) ~= "table" then
    return true
  end
  local t = s.type
  local kinds = {
    object = function(x) return type(x) == "table" end,
    array = function(x) return type(x) == "table" end,
    string = function(x) return type(x) == "string" end,
    number = function(x) return type(x) == "number" end,
    integer = function(x) return type(x) == "number" and x % 1 == 0 end,
    boolean = function(x) return type(x) == "boolean" end,
    null = function(x) return x == nil end,
  }
  if t and kinds[t] and not kinds[t](v) then
    return false, path .. " is not " .. t
  end
  if s.enum then
    local found = false
    for _, e in ipairs(s.enum) do
      found = found or equal(e, v)
    end
    if not found then
      return false, path .. " is not one of the enum"
    end
  end
  if type(v) == "number" and not between(v, s.minimum, s.maximum) then
    return false, path .. " is out of range"
  end
  if type(v) == "table" then
    for _, r in ipairs(s.required or {}) do
      if v[r] == nil then
        return false, path .. "." .. tostring(r) .. " is required"
      end
    end
    for k, sub in pairs(type(s.properties) == "table" and s.properties or {}) do
      if v[k] ~= nil then
        local ok, why = schema_ok(v[k], sub, path .. "." .. k)
        if not ok then
          return false, why
        end
      end
    end
    if s.items then
      for i, item in ipairs(v) do
        local ok, why = schema_ok(item, s.items, path .. "[" .. i .. "]")
        if not ok then
          return false, why
        end
      end
    end
  end
  return true
end

-- The model of an llm_judge: "openai:gpt-4o-mini" or "openai/gpt-4o-mini" (Python's default
-- openai:gpt-4o).
local function judge_model(e)
  local m = type(e.model) == "string" and e.model or "openai:gpt-4o"
  local provider, model = m:match("^([%w_%-]+)[:/](.+)$")
  return provider or "openai", model or m
end

local kinds = {
  contains = function(e, ctx)
    local want = tostring(e.value)
    local got = text_of(e, ctx)
    if e.case_sensitive == false then
      got, want = got:lower(), want:lower()
    end
    return got:find(want, 1, true) ~= nil, show(value_of(e, ctx)) .. " does not contain " .. show(e.value)
  end,
  contains_any = function(e, ctx)
    local values = type(e.value) == "table" and e.value
    if not values and e.check_expected and type(ctx.expected) == "table" then
      values = ctx.expected[e.check_expected]
      values = type(values) == "table" and values or { values }
    end
    if not values then
      return false, "no values to look for (value = {...} or check_expected)"
    end
    local got = text_of(e, ctx):lower()
    for _, v in ipairs(values) do
      if got:find(tostring(v):lower(), 1, true) then
        return true
      end
    end
    return false, show(value_of(e, ctx)) .. " contains none of " .. show(values)
  end,
  equals_expected = function(e, ctx)
    if type(ctx.expected) ~= "table" then
      return true -- no expected output: nothing to compare (as Python Tactus)
    end
    local want = e.field and ctx.expected[e.field] or ctx.expected
    local got = value_of(e, ctx)
    return equal(got, want), show(got) .. " is not the expected " .. show(want)
  end,
  exact_match = function(e, ctx)
    local got = value_of(e, ctx)
    return equal(got, e.value), show(got) .. " is not " .. show(e.value)
  end,
  min_length = function(e, ctx)
    local min = e.value or 0
    if e.check_expected and type(ctx.expected) == "table" and ctx.expected[e.check_expected] then
      min = ctx.expected[e.check_expected]
    end
    local n = length_of(value_of(e, ctx))
    return n >= min, "length " .. n .. " is less than " .. tostring(min)
  end,
  max_length = function(e, ctx)
    local n = length_of(value_of(e, ctx))
    return n <= (e.value or 0), "length " .. n .. " is more than " .. tostring(e.value or 0)
  end,
  regex = function(e, ctx)
    local pattern = tostring(e.value or "")
    if e.case_sensitive == false then
      pattern = "(?i)" .. pattern
    end
    return regex.search(pattern, text_of(e, ctx)), show(value_of(e, ctx)) .. " does not match /" .. tostring(e.value) .. "/"
  end,
  range = function(e, ctx)
    local v = tonumber(value_of(e, ctx))
    local r = type(e.value) == "table" and e.value or {}
    local lo, hi = r.min or e.min_value, r.max or e.max_value
    return v ~= nil and between(v, lo, hi), show(value_of(e, ctx)) .. " is not in [" .. tostring(lo) .. ", " .. tostring(hi) .. "]"
  end,
  json_schema = function(e, ctx)
    local ok, why = schema_ok(value_of(e, ctx), e.json_schema or e.value, e.field or "output")
    return ok, why
  end,
  is_instance = function(e, ctx)
    local v = value_of(e, ctx)
    local names = { str = "string", int = "number", float = "number", dict = "table", list = "table", bool = "boolean" }
    return type(v) == (names[e.value] or e.value), show(v) .. " is not a " .. tostring(e.value)
  end,
  tool_called = function(e, ctx)
    local n = #tools.calls_named(tostring(e.value))
    return between(n, e.min_value or 1, e.max_value), "the " .. tostring(e.value) .. " tool was called " .. n .. " times"
  end,
  agent_turns = function(e, ctx)
    local n = e.field and mocks.turns_like(e.field) or mocks.turns()
    return between(n, e.min_value or 1, e.max_value), (e.field or "the agents") .. " took " .. n .. " turns"
  end,
  state_check = function(e, ctx)
    local v = (ctx.state or {})[e.field]
    return equal(v, e.value), "state " .. tostring(e.field) .. " is " .. show(v) .. ", not " .. show(e.value)
  end,
  max_iterations = function(e, ctx)
    local n = mocks.turns()
    return n <= (e.value or 10), n .. " agent turns, more than " .. tostring(e.value or 10)
  end,
  llm_judge = function(e, ctx)
    if ctx.mock then
      return nil, "an LLM judge needs a model: not judged under --mock"
    end
    local provider, model = judge_model(e)
    local reply = P.llm_chat({
      agent = "llm_judge",
      provider = provider,
      model = model,
      messages = {
        { role = "system", content = "You grade the output of a procedure against a rubric. Reply with only a JSON object: {\"score\": a number from 0 to 1, \"reason\": \"...\"}." },
        { role = "user", content = "Rubric:\n" .. tostring(e.rubric) .. "\n\nInput:\n" .. show(ctx.input) .. "\n\nOutput:\n" .. show(ctx.output) },
      },
      temperature = 0,
      max_tokens = 300,
    })
    local body = tostring(reply.content or ""):match("%b{}")
    local ok, verdict = pcall(P.json_decode, body or "")
    local score = ok and type(verdict) == "table" and tonumber(verdict.score)
    if not score then
      return false, "the judge's reply has no score: " .. tostring(reply.content):sub(1, 200)
    end
    local threshold = tonumber(e.threshold) or 0.5
    return score >= threshold, string.format("score %.2f (threshold %.2f): %s", score, threshold, tostring(verdict.reason or ""):sub(1, 300))
  end,
}

-- Checked when evaluations({...}) is declared: an evaluator of an unknown type is a mistake.
function evaluators.known(kind)
  return kinds[kind] ~= nil
end

-- Each evaluator on one run of a case: {type, field, passed (or nil: not judged), reason}.
function evaluators.run(list, ctx)
  local out = {}
  for i, e in ipairs(list or {}) do
    local fn = kinds[e.type]
    local r = { type = e.type, field = e.field or e.value }
    if not fn then
      r.passed, r.reason = false, "unknown evaluator type '" .. tostring(e.type) .. "'"
    else
      local ok, passed, reason = pcall(fn, e, ctx)
      if not ok then
        if P.limit_tripped() then
          error(passed, 0)
        end
        r.passed, r.reason = false, tostring(passed)
      else
        r.passed = passed
        if passed ~= true then
          r.reason = reason
        end
      end
    end
    out[i] = r
  end
  return out
end

return evaluators
