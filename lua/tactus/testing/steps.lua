-- The built-in steps of a Specification (docs/testing.md lists them with the value rules).
-- Each step has the phrasing shown in suggestions, Lua patterns over the step's text (after its
-- keyword), and a function of the scenario's world and the captures. Setup steps (input, mocks,
-- human answers) are applied before the procedure's file runs, wherever they stand.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local mocks = require("tactus.testing.mocks")
local regex = require("tactus.testing.regex")
local tools = require("tactus.dsl.tools")

local steps = {}

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Values: "quoted" and 'quoted' are strings, numbers and true/false/True/False are typed,
-- {...} and [...] are JSON; anything else is its text.
function steps.value(text)
  local s = trim(text)
  local q = s:sub(1, 1)
  if (q == '"' or q == "'") and #s >= 2 and s:sub(-1) == q then
    if q == '"' then
      local ok, v = pcall(P.json_decode, s)
      if ok and type(v) == "string" then
        return v
      end
    end
    return s:sub(2, -2)
  end
  if q == "{" or q == "[" then
    local ok, v = pcall(P.json_decode, s)
    if not ok then
      -- A Python literal, as Python Tactus's steps write them: {'message': 'x', 'ok': True}.
      ok, v = pcall(P.json_decode, steps.python_literal(s))
    end
    if not ok then
      error("'" .. s .. "' is neither JSON nor a Python literal", 0)
    end
    return v
  end
  if s == "true" or s == "True" then
    return true
  elseif s == "false" or s == "False" then
    return false
  end
  local n = tonumber(s)
  if n and s:match("^[-+]?[%d%.]") then
    return n
  end
  return s
end

-- A Python dict or list literal as JSON: 'single-quoted' strings become "double-quoted",
-- True/False/None become true/false/null (outside strings); the rest is left to the JSON parser.
function steps.python_literal(s)
  local out, i, n = {}, 1, #s
  local words = { True = "true", False = "false", None = "null" }
  while i <= n do
    local c = s:sub(i, i)
    if c == "'" or c == '"' then
      local j, buf = i + 1, {}
      while j <= n and s:sub(j, j) ~= c do
        local d = s:sub(j, j)
        if d == "\\" and j < n then
          local e = s:sub(j + 1, j + 1)
          buf[#buf + 1] = (e == "'" and "'") or ("\\" .. e)
          j = j + 2
        else
          buf[#buf + 1] = d == '"' and '\\"' or d
          j = j + 1
        end
      end
      out[#out + 1] = '"' .. table.concat(buf) .. '"'
      i = j + 1
    elseif c:match("[%a_]") then
      local w = s:match("^[%w_]+", i)
      out[#out + 1] = words[w] or w
      i = i + #w
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n == #t
end

-- A value as text: a table as its JSON (if it has one), anything else by tostring.
function steps.text_of(v)
  if type(v) == "table" then
    local ok, text = pcall(P.json_encode, v)
    return ok and text or tostring(v)
  end
  return tostring(v)
end

-- A value as a message shows it: strings quoted, nil as "absent".
function steps.show(v)
  if v == nil then
    return "absent"
  elseif type(v) == "string" then
    return string.format("%q", v)
  end
  return steps.text_of(v)
end

local function equal(a, b)
  if type(a) ~= type(b) then
    return false
  end
  if type(a) ~= "table" then
    return a == b
  end
  if is_array(a) ~= is_array(b) then
    return false
  end
  for k, v in pairs(a) do
    if not equal(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end
steps.equal = equal

-- Every key of want is in got with an equal value.
local function contains(got, want)
  if type(want) ~= "table" or type(got) ~= "table" then
    return equal(got, want)
  end
  for k, v in pairs(want) do
    if not equal(got[k], v) then
      return false
    end
  end
  return true
end

-- Fuzzy matching: a token-set ratio in 0..1 over lower-cased words (punctuation dropped).
local function words(s)
  local set, list = {}, {}
  for w in tostring(s):lower():gmatch("[%w_]+") do
    if not set[w] then
      set[w] = true
      list[#list + 1] = w
    end
  end
  table.sort(list)
  return set, list
end

-- 2 * LCS / (len a + len b): the indel similarity (tactus.dsl.stdlib's, Classify's too).
local ratio = require("tactus.dsl.stdlib").ratio

function steps.similarity(a, b)
  local sa, la = words(a)
  local sb, lb = words(b)
  if #la == 0 or #lb == 0 then
    return (#la == 0 and #lb == 0) and 1 or 0
  end
  local common, only_a, only_b = {}, {}, {}
  for _, w in ipairs(la) do
    if sb[w] then
      common[#common + 1] = w
    else
      only_a[#only_a + 1] = w
    end
  end
  for _, w in ipairs(lb) do
    if not sa[w] then
      only_b[#only_b + 1] = w
    end
  end
  local t0 = table.concat(common, " ")
  local t1 = trim(t0 .. " " .. table.concat(only_a, " "))
  local t2 = trim(t0 .. " " .. table.concat(only_b, " "))
  if #common > 0 and (#only_a == 0 or #only_b == 0) then
    return 1
  end
  return math.max(ratio(t0, t1), ratio(t0, t2), ratio(t1, t2))
end

-- The value at a dotted path of the output (name nil or "": the output itself).
local function at_path(root, path)
  if path == nil or path == "" then
    return root
  end
  local v = root
  for part in path:gmatch("[^%.]+") do
    if type(v) ~= "table" then
      return nil
    end
    local key = part
    if v[key] == nil and tonumber(part) then
      key = tonumber(part) -- items.1: the first of a list
    end
    v = v[key]
  end
  return v
end

local function label(what, name)
  return (name and name ~= "") and (what .. " " .. name) or what
end

-- "be X", "not be X", "exist", "match pattern X", "fuzzy match ..." on one value.
local function check(what, name, v, predicate)
  local p = trim(predicate)
  local l = label(what, name)
  if p == "exist" then
    if v == nil then
      error(l .. " does not exist", 0)
    end
  elseif p == "not exist" then
    if v ~= nil then
      error(l .. " exists: " .. steps.show(v), 0)
    end
  elseif p:match("^not be ") then
    local want = steps.value(p:sub(8))
    if equal(v, want) then
      error(l .. " is " .. steps.show(v) .. ", and it should not be", 0)
    end
  elseif p:match("^be similar to ") then
    -- Python Tactus's step: the whole texts' indel similarity (rapidfuzz's ratio), in percent,
    -- at least 80 unless "with N% similarity" says otherwise.
    local rest = p:sub(15)
    local body, pct = rest:match('^(.-)%s+with%s+(%d+)%% similarity$')
    local threshold = 80
    if body then
      rest, threshold = body, tonumber(pct)
    end
    local want = tostring(steps.value(rest))
    local got = v == nil and "" or (type(v) == "table" and P.json_encode(v) or tostring(v))
    local similarity = ratio(got, want) * 100
    if similarity < threshold then
      error(string.format("%s is %s: %.0f%% similar to %s, less than %d%%", l, steps.show(v), similarity, steps.show(want), threshold), 0)
    end
  elseif p:match("^be ") then
    local want = steps.value(p:sub(4))
    if not equal(v, want) then
      if type(v) ~= type(want) and v ~= nil and tostring(v) == tostring(want) then
        error(l .. " is " .. steps.show(v) .. " (a " .. type(v) .. "), not " .. steps.show(want) .. " (a " .. type(want) .. ")", 0)
      end
      error(l .. " is " .. steps.show(v) .. ", not " .. steps.show(want), 0)
    end
  elseif p:match("^contain ") then
    local want = steps.value(p:sub(9))
    local found = false
    if type(v) == "string" then
      found = v:find(tostring(want), 1, true) ~= nil
    elseif type(v) == "table" then
      for _, item in pairs(v) do
        found = found or equal(item, want)
      end
    end
    if not found then
      error(l .. " is " .. steps.show(v) .. ", which does not contain " .. steps.show(want), 0)
    end
  elseif p:match("^match pattern ") then
    local pattern = steps.value(p:sub(15))
    if type(v) ~= "string" and type(v) ~= "number" then
      error(l .. " is " .. steps.show(v) .. ", not text to match /" .. tostring(pattern) .. "/", 0)
    end
    if not regex.search(tostring(pattern), tostring(v)) then
      error(l .. " is " .. steps.show(v) .. ", which does not match /" .. tostring(pattern) .. "/", 0)
    end
  elseif p:match("^fuzzy match ") then
    local rest = p:sub(13)
    local threshold = 0.8
    local body, t = rest:match("^(.-)%s+with threshold%s+([%d%.]+)$")
    if body then
      rest, threshold = body, tonumber(t)
      if not threshold or threshold < 0 or threshold > 1 then
        error("the threshold must be a number from 0 to 1, got " .. t, 0)
      end
    end
    local candidates
    local any = rest:match("^any of%s+(.+)$")
    if any then
      candidates = steps.value(any)
      if type(candidates) ~= "table" or #candidates == 0 then
        error("'any of' needs a JSON list of texts, got " .. any, 0)
      end
    else
      candidates = { steps.value(rest) }
    end
    if v == nil then
      error(l .. " does not exist", 0)
    end
    local text = type(v) == "table" and P.json_encode(v) or tostring(v)
    local best, best_of = -1, nil
    for _, c in ipairs(candidates) do
      local s = steps.similarity(text, tostring(c))
      if s > best then
        best, best_of = s, c
      end
    end
    if best < threshold then
      error(string.format("%s is %s: similarity %.2f to %s is below the threshold %.2f", l, steps.show(v), best, steps.show(best_of), threshold), 0)
    end
  else
    error("'should " .. p .. "' is not a check: use be, not be, exist, not exist, contain, match pattern, be similar to, fuzzy match", 0)
  end
end

-- The record of the calls to tool name (Lua tools, host tools, scripted calls).
local function calls_of(name)
  return tools.calls_named(name)
end

local function times(n)
  return n == 1 and "1 time" or (n .. " times")
end

-- Fails a "called with" check: the tool was not called, or none of its calls had what.
local function no_call_had(name, calls, what)
  if #calls == 0 then
    error("the " .. name .. " tool was not called", 0)
  end
  local seen = {}
  for i, c in ipairs(calls) do
    seen[i] = steps.show(c.args)
  end
  error("no call of the " .. name .. " tool had " .. what .. "; its calls had " .. table.concat(seen, ", "), 0)
end

-- "once", "twice", "thrice" as counts (Python Tactus's steps use them).
local count_words = { once = "1 time", twice = "2 times", thrice = "3 times" }

local function check_tool(name, predicate)
  local calls = calls_of(name)
  local n = #calls
  local p = trim(predicate):gsub("(%a+)$", function(w)
    return count_words[w] or w
  end)
  -- Python Tactus's "called with P=V" and "called with P matching pattern "R"".
  local param, pvalue = p:match("^be called with ([%w_]+)=(.+)$")
  local pparam, ppattern = p:match('^be called with ([%w_]+) matching pattern "(.+)"$')
  if param or pparam then
    for _, c in ipairs(calls) do
      local got = type(c.args) == "table" and c.args[param or pparam]
      if got ~= nil then
        if param and (equal(got, steps.value(pvalue)) or tostring(got) == tostring(steps.value(pvalue))) then
          return
        elseif pparam and regex.search(ppattern, tostring(got)) then
          return
        end
      end
    end
    no_call_had(name, calls, param and (param .. "=" .. pvalue) or (pparam .. " matching /" .. ppattern .. "/"))
  end
  local exact = p:match("^be called exactly (%d+) times?$")
  local least = p:match("^be called at least (%d+) times?$")
  local most = p:match("^be called at most (%d+) times?$")
  local args = p:match("^be called with args (.+)$")
  if p == "be called" then
    if n == 0 then
      error("the " .. name .. " tool was not called", 0)
    end
  elseif p == "not be called" then
    if n > 0 then
      error("the " .. name .. " tool was called " .. times(n) .. ", first with " .. steps.show(calls[1].args), 0)
    end
  elseif exact then
    if n ~= tonumber(exact) then
      error("the " .. name .. " tool was called " .. times(n) .. ", not " .. times(tonumber(exact)), 0)
    end
  elseif least then
    if n < tonumber(least) then
      error("the " .. name .. " tool was called " .. times(n) .. ", fewer than " .. least, 0)
    end
  elseif most then
    if n > tonumber(most) then
      error("the " .. name .. " tool was called " .. times(n) .. ", more than " .. most, 0)
    end
  elseif args then
    local want = steps.value(args)
    for _, c in ipairs(calls) do
      if contains(c.args, want) then
        return
      end
    end
    no_call_had(name, calls, "args " .. steps.show(want))
  else
    error("'should " .. p .. "' is not a tool check: use be called, not be called, be called exactly/at least/at most N times, be called with args {...}", 0)
  end
end

-- The steps. phrase: shown in suggestions; patterns: tried in order on the step's text.
steps.list = {
  { phrase = "the procedure has started", patterns = { "^the procedure has started$" }, setup = true, fn = function() end },
  {
    phrase = "the input NAME is VALUE",
    patterns = { "^the input ([%w_]+) is (.+)$" },
    setup = true,
    fn = function(world, name, value)
      world.input[name] = steps.value(value)
    end,
  },
  {
    phrase = 'the message is "TEXT"',
    patterns = { "^the message is (.+)$" },
    setup = true,
    fn = function(_, value)
      mocks.set_first_message(tostring(steps.value(value)))
    end,
  },
  {
    phrase = 'the agent "A" responds with "TEXT"',
    patterns = { '^the agent "([^"]+)" responds with (.+)$', "^the ([%w_]+) agent responds with (.+)$" },
    setup = true,
    fn = function(_, agent, value)
      local v = steps.value(value)
      mocks.agent_says(agent, type(v) == "table" and P.json_encode(v) or tostring(v))
    end,
  },
  {
    phrase = 'the agent "A" calls tool "T" with args {JSON}',
    patterns = {
      '^the agent "([^"]+)" calls tool "([^"]+)" with args (.+)$',
      '^the agent "([^"]+)" calls tool "([^"]+)"$',
      '^the ([%w_]+) agent calls tool "([^"]+)" with args (.+)$',
      '^the ([%w_]+) agent calls the ([%w_%.]+) tool$',
    },
    setup = true,
    fn = function(_, agent, tool, args)
      local a = args and steps.value(args) or {}
      if type(a) ~= "table" then
        error("the args must be a JSON object, got " .. tostring(args), 0)
      end
      mocks.agent_calls(agent, tool, a)
    end,
  },
  {
    phrase = 'the tool "T" returns {JSON}',
    patterns = { '^the tool "([^"]+)" returns (.+)$', "^the ([%w_%.]+) tool returns (.+)$" },
    setup = true,
    fn = function(_, tool, value)
      mocks.tool_returns(tool, steps.value(value))
    end,
  },
  { phrase = "the human approves", patterns = { "^the human approves$" }, setup = true, fn = function() mocks.human_decides(true) end },
  { phrase = "the human rejects", patterns = { "^the human rejects$" }, setup = true, fn = function() mocks.human_decides(false) end },
  {
    phrase = 'the human answers "TEXT"',
    patterns = { "^the human answers (.+)$" },
    setup = true,
    fn = function(_, value)
      mocks.human_answers(steps.value(value))
    end,
  },
  {
    phrase = "the procedure runs",
    patterns = { "^the procedure runs$", "^the procedure is run$" },
    fn = function(world)
      world.run()
    end,
  },
  {
    phrase = "the A agent takes turns",
    patterns = { "^the ([%w_]+) agent takes turns?$", '^the agent "([^"]+)" takes turns?$' },
    fn = function(world, agent)
      world.run()
      if mocks.turns_like(agent) == 0 then
        if world.ok == false then
          error("the procedure failed before the " .. agent .. " agent took a turn: " .. tostring(world.error), 0)
        end
        error("the " .. agent .. " agent took no turn", 0)
      end
    end,
  },
  {
    phrase = "the procedure should complete successfully",
    patterns = { "^the procedure should complete successfully$", "^the procedure should succeed$" },
    fn = function(world)
      world.run()
      if not world.ok then
        error("the procedure failed: " .. tostring(world.error), 0)
      end
    end,
  },
  {
    phrase = "the procedure should fail",
    patterns = { "^the procedure should fail$" },
    fn = function(world)
      world.run()
      if world.ok then
        error("the procedure completed, returning " .. steps.show(world.output), 0)
      end
    end,
  },
  {
    phrase = "the output NAME should be VALUE",
    more = {
      "the output should exist",
      "the output NAME should exist",
      "the output NAME should not be VALUE",
      'the output NAME should match pattern "REGEX"',
      'the output NAME should fuzzy match "TEXT" with threshold N',
    },
    patterns = { "^the output ([%w_%.]+) should (.+)$", "^the output should (.+)$", "^the result ([%w_%.]+) should (.+)$", "^the result should (.+)$" },
    fn = function(world, a, b)
      world.run()
      local name, predicate = a, b
      if b == nil then
        name, predicate = nil, a
      end
      if not world.ok then
        error("the procedure failed, so it has no output: " .. tostring(world.error), 0)
      end
      -- Python Tactus: "the output should contain KEY" asks for a key.
      local key = name == nil and predicate:match("^contain ([%a_][%w_]*)$")
      if key and type(world.output) == "table" then
        if world.output[key] == nil then
          error("the output has no key " .. key .. ": " .. steps.show(world.output), 0)
        end
        return
      end
      check("the output", name, at_path(world.output, name), predicate)
    end,
  },
  {
    phrase = "the state NAME should be VALUE",
    more = { "the state NAME should exist" },
    patterns = { "^the state ([%w_%.]+) should (.+)$" },
    fn = function(world, name, predicate)
      world.run()
      check("the state", name, at_path(world.state(), name), predicate)
    end,
  },
  {
    phrase = "the T tool should be called",
    more = {
      "the T tool should not be called",
      "the T tool should be called exactly N times",
      "the T tool should be called at least N times",
      'the tool "T" should be called with args {JSON}',
    },
    patterns = { '^the tool "([^"]+)" should (.+)$', "^the ([%w_%.%-]+) tool should (.+)$" },
    fn = function(world, name, predicate)
      world.run()
      check_tool(name, predicate)
    end,
  },
  {
    phrase = "the total iterations should be less than N",
    more = { "the total iterations should be greater than N", "the total iterations should be between A and B" },
    patterns = {
      "^the total iterations should be (less) than (%d+)$",
      "^the total iterations should be (greater) than (%d+)$",
      "^the total iterations should be (between) (%d+) and (%d+)$",
    },
    fn = function(world, how, a, b)
      world.run()
      local total, lo, hi = mocks.turns(), tonumber(a), tonumber(b)
      if how == "less" and total >= lo then
        error("the agents took " .. total .. " turns in all, not fewer than " .. a, 0)
      elseif how == "greater" and total <= lo then
        error("the agents took " .. total .. " turns in all, not more than " .. a, 0)
      elseif how == "between" and (total < lo or total > hi) then
        error("the agents took " .. total .. " turns in all, not between " .. a .. " and " .. b, 0)
      end
    end,
  },
}

-- The step for text: def, captures... (nil when no built-in step matches).
function steps.find(text)
  for _, def in ipairs(steps.list) do
    for _, pattern in ipairs(def.patterns) do
      local caps = { text:match(pattern) }
      if caps[1] ~= nil then
        return def, caps
      end
    end
  end
end

-- Edit distance over words, for "did you mean": a placeholder of the phrasing (NAME, "A",
-- {JSON}) matches any word, and a misspelt word (most letters shared) costs half.
-- Python Tactus's own steps (stages, stop reason, ...): lua/tactus/testing/python_steps.lua.
for _, def in ipairs(require("tactus.testing.python_steps")(steps, check)) do
  steps.list[#steps.list + 1] = def
end

local function word_cost(w, p)
  if w == p or p:match("^[\"{%[]?%u+[\"}%]]?$") then
    return 0
  end
  w, p = w:lower(), p:lower()
  if w == p then
    return 0
  end
  return ratio(w, p) >= 0.6 and 0.5 or 1
end

local function distance(text, phrase)
  local wa, wb = {}, {}
  for w in text:gmatch("%S+") do
    wa[#wa + 1] = w
  end
  for w in phrase:gmatch("%S+") do
    wb[#wb + 1] = w
  end
  local prev = {}
  for j = 0, #wb do
    prev[j] = j
  end
  for i = 1, #wa do
    local cur = { [0] = i }
    for j = 1, #wb do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + word_cost(wa[i], wb[j]))
    end
    prev = cur
  end
  return prev[#wb]
end

-- The closest phrasing among the built-in steps and the custom ones.
function steps.suggest(text, custom)
  local best, best_d
  local function consider(phrase)
    local d = distance(text, phrase)
    if not best_d or d < best_d then
      best, best_d = phrase, d
    end
  end
  for _, def in ipairs(steps.list) do
    consider(def.phrase)
    for _, alt in ipairs(def.more or {}) do
      consider(alt)
    end
  end
  for _, c in ipairs(custom or {}) do
    consider(c)
  end
  return best
end

return steps
