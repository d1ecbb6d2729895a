-- Python Tactus's standard primitives beyond agents (docs/language.md, "Coming from Python
-- Tactus"): Stop, Json, Retry, File, Session, Model / model() and Classify. Each goes through
-- the same doors as the rest of the language: File over the file tools (tools.allow decides),
-- an http Model over http.request (the broker's HTTP policy decides), Classify's llm method
-- over llm.chat. Nothing here reaches the host another way.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")
local host = require("tactus.host")
local dialect = require("tactus.dsl.dialect")

local stdlib = {}

-- Stop: a procedure's request to end (the done tool's meaning in Python Tactus); the procedure
-- reads it (Stop.requested()) and the "stop reason" steps check it.
local stop = { requested = false, reason = nil, success = true }
local Stop = {
  request = function(reason, success)
    stop.requested, stop.reason = true, reason ~= nil and tostring(reason) or nil
    stop.success = success ~= false
  end,
  requested = function()
    return stop.requested
  end,
  reason = function()
    return stop.reason
  end,
  success = function()
    return stop.success
  end,
  reset = function()
    stop.requested, stop.reason, stop.success = false, nil, true
  end,
}
function stdlib.stop_state()
  return stop
end
stdlib.stop_request = Stop.request

local Json = {
  encode = function(v)
    local ok, text = pcall(P.json_encode, v)
    if not ok then
      error("Json.encode: " .. tostring(text), 2)
    end
    return text
  end,
  decode = function(text)
    if type(text) ~= "string" then
      error("Json.decode needs a string", 2)
    end
    local ok, v = pcall(P.json_decode, text)
    if not ok then
      error("Json.decode: not valid JSON: " .. tostring(v), 2)
    end
    return v
  end,
}

-- Retry.with_backoff(fn, {max_retries = 3}): calls fn again when it raises, up to max_retries
-- more times; the last error is raised. There is no waiting between tries: the VM has no
-- clock to sleep on (model and HTTP calls have the broker's own retries with backoff).
local Retry = {
  with_backoff = function(fn, opts)
    if type(fn) ~= "function" then
      error("Retry.with_backoff needs a function", 2)
    end
    opts = type(opts) == "table" and opts or {}
    local max = tonumber(opts.max_retries) or 3
    if max < 0 or max > 100 or max % 1 ~= 0 then
      error("Retry.with_backoff: max_retries must be a whole number from 0 to 100", 2)
    end
    local last
    for _ = 0, max do
      local ok, result = pcall(fn)
      if ok then
        return result
      end
      if P.limit_tripped() then
        error(result, 0)
      end
      last = result
    end
    error(last, 0)
  end,
}

-- File: the file tools by their Python Tactus names. Each is a Host.call: the sidecar's
-- tools.allow decides, and a denial names the line to add.
local function file_call(tool, args)
  return host.call(tool, args, true)
end
local File = {
  read = function(path)
    return file_call("file.read", { path = path }).content
  end,
  write = function(path, content)
    file_call("file.write", { path = path, content = tostring(content) })
    return true
  end,
  exists = function(path)
    return file_call("file.exists", { path = path }).exists == true
  end,
  size = function(path)
    local r = file_call("file.read", { path = path })
    return #(r.content or "")
  end,
}

-- Models: model("name", {type = "http" | "mock", ...}) or Model "name" {...}; the model is a
-- global callable (and .predict(input)). http: POSTs the input as JSON to endpoint through
-- http.request; mock: answers response, or responses in turn (the last repeating).
local models = {}
local function make_model(name, spec, level)
  if type(name) ~= "string" or type(spec) ~= "table" then
    error('model("name", { type = "http", endpoint = "https://..." }) needs a name and a table', level + 1)
  end
  local kind = spec.type
  if kind ~= "http" and kind ~= "mock" then
    error("model '" .. name .. "': type must be http or mock (Python ML backends such as pytorch do not run here)", level + 1)
  end
  if kind == "http" and type(spec.endpoint) ~= "string" then
    error("model '" .. name .. "': an http model needs endpoint = \"https://...\"", level + 1)
  end
  local used = 0
  local function predict(input)
    if P.mode() == "validate" then
      error("validate: stopped at model '" .. name .. "'", 0)
    end
    if kind == "mock" then
      used = used + 1
      local list = spec.responses
      if type(list) == "table" and #list > 0 then
        return schema.copy(list[math.min(used, #list)])
      end
      return schema.copy(spec.response)
    end
    local r = host.call("http.request", {
      url = spec.endpoint,
      method = "POST",
      headers = { ["content-type"] = "application/json" },
      body = P.json_encode(input == nil and {} or input),
    }, true)
    local ok, v = pcall(P.json_decode, r.body or "")
    return ok and v or r.body
  end
  local m = setmetatable({ name = name, predict = predict }, {
    __call = function(_, input)
      return predict(input)
    end,
    __newindex = function()
      error("a model is read-only", 2)
    end,
    __metatable = false,
  })
  models[name] = m
  return m
end

local Model = setmetatable({}, {
  __call = function(_, name)
    if type(name) ~= "string" then
      error('Model "name" {...} declares a model; Model("name") is one declared', 2)
    end
    if models[name] then
      return models[name]
    end
    return function(spec)
      local m = make_model(name, spec, 2)
      rawset(_G, name, m)
      return m
    end
  end,
  __newindex = function()
    error("Model is read-only", 2)
  end,
  __metatable = false,
})

local function model(name, spec)
  local m = make_model(name, spec, 2)
  rawset(_G, name, m)
  return m
end

-- Classify {classes = {...}, method = "llm" | "fuzzy" | "contains", prompt, model,
-- max_retries, threshold}: a classifier; classifier(text) -> {label, confidence, retries}.
-- llm asks the model for one of the classes and asks again, showing its mistake, when the
-- reply is not one (up to max_retries); fuzzy takes the class most similar to the text.
-- 2 * LCS / (len a + len b): the indel similarity of two texts, byte by byte (also the Then
-- steps' "similar to" and fuzzy match, lua/tactus/testing/steps.lua).
function stdlib.ratio(a, b)
  local la, lb = #a, #b
  if la + lb == 0 then
    return 1
  end
  local prev, cur = {}, {}
  for j = 0, lb do
    prev[j] = 0
  end
  for i = 1, la do
    cur[0] = 0
    local ca = a:byte(i)
    for j = 1, lb do
      if ca == b:byte(j) then
        cur[j] = prev[j - 1] + 1
      else
        cur[j] = math.max(prev[j], cur[j - 1])
      end
    end
    prev, cur = cur, prev
  end
  return 2 * prev[lb] / (la + lb)
end

local function similarity(a, b)
  return stdlib.ratio(a:lower(), b:lower())
end

local function label_in(reply, classes)
  local text = tostring(reply or ""):match("^%s*(.-)%s*$"):gsub("^[\"'`]", ""):gsub("[\"'`%.]$", "")
  for _, c in ipairs(classes) do
    if text:lower() == c:lower() then
      return c
    end
  end
end

local function classify_llm(spec, text)
  local provider = spec.provider or dialect.settings.default_provider
  local model_name = spec.model or dialect.settings.default_model or "gpt-4o"
  if not provider then
    local p, m = model_name:match("^([%w_%-]+)[/:](.+)$")
    provider, model_name = p or "openai", m or model_name
  end
  local messages = {
    {
      role = "system",
      content = (spec.prompt and (spec.prompt .. "\n\n") or "")
        .. "Classify the user's text. Reply with exactly one of these labels and nothing else: "
        .. table.concat(spec.classes, ", "),
    },
    { role = "user", content = tostring(text) },
  }
  local max = spec.max_retries or 3
  for attempt = 0, max do
    local reply = host.agent_reply({ name = spec.name or "classify" }, false)
    if not reply then
      if P.mode() == "validate" then
        error("validate: stopped at Classify", 0)
      end
      reply = P.llm_chat({ agent = spec.name or "classify", provider = provider, model = model_name, messages = messages, temperature = spec.temperature or 0 })
    end
    local label = label_in(reply.content, spec.classes)
    if label then
      return { label = label, retries = attempt, raw = reply.content }
    end
    messages[#messages + 1] = { role = "assistant", content = tostring(reply.content or "") }
    messages[#messages + 1] = {
      role = "user",
      content = "That is not one of the labels. Reply with exactly one of: " .. table.concat(spec.classes, ", "),
    }
  end
  error("Classify: no valid label after " .. max .. " retries (labels: " .. table.concat(spec.classes, ", ") .. ")", 0)
end

local methods = {
  llm = classify_llm,
  fuzzy = function(spec, text)
    local best, best_score = nil, -1
    for _, c in ipairs(spec.classes) do
      local s = similarity(tostring(text), c)
      if s > best_score then
        best, best_score = c, s
      end
    end
    local threshold = spec.threshold or 0
    return { label = best_score >= threshold and best or nil, confidence = best_score, retries = 0 }
  end,
  contains = function(spec, text)
    local lower = tostring(text):lower()
    for _, c in ipairs(spec.classes) do
      if lower:find(c:lower(), 1, true) then
        return { label = c, confidence = 1, retries = 0 }
      end
    end
    return { label = nil, confidence = 0, retries = 0 }
  end,
}

local function Classify(spec)
  if type(spec) ~= "table" or type(spec.classes) ~= "table" or #spec.classes == 0 then
    error("Classify needs classes: Classify { classes = {\"positive\", \"negative\"}, method = \"llm\" }", 2)
  end
  for i, c in ipairs(spec.classes) do
    if type(c) ~= "string" or c == "" then
      error("Classify: class " .. i .. " must be a non-empty string", 2)
    end
  end
  local method = spec.method or "llm"
  if not methods[method] then
    error("Classify: method must be llm, fuzzy or contains", 2)
  end
  if spec.max_retries ~= nil and (type(spec.max_retries) ~= "number" or spec.max_retries < 0 or spec.max_retries > 10) then
    error("Classify: max_retries must be a number from 0 to 10", 2)
  end
  local c = { classes = spec.classes, method = method }
  return setmetatable({}, {
    __call = function(_, text)
      return methods[method](spec, text)
    end,
    __index = c,
    __newindex = function()
      error("a classifier is read-only", 2)
    end,
    __metatable = false,
  })
end

function stdlib.globals()
  return { Stop = Stop, Json = Json, Retry = Retry, File = File, Model = Model, model = model, Classify = Classify }
end

return stdlib
