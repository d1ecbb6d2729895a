-- Fields and schemas: field.string{} ... field.object{}, legacy {type = "string"} tables,
-- validation of input (with --param strings converted by type) and output, and JSON Schema for
-- the tools offered to a model.
local _, P = ...

local schema = {}

local FIELD = {} -- marks a field table made by field.*
local types = { string = true, number = true, integer = true, boolean = true, array = true, object = true }

local function make(kind)
  return function(opts)
    opts = opts or {}
    if type(opts) ~= "table" then
      error("field." .. kind .. " expects a table of options", 2)
    end
    local f = { [FIELD] = true, type = kind }
    for k, v in pairs(opts) do
      f[k] = v
    end
    if f.required == nil then
      f.required = false
    end
    return f
  end
end

schema.field = {}
for kind in pairs(types) do
  schema.field[kind] = make(kind)
end

-- A field from field.* or a legacy {type = ..., required = ...} table; nil if it is neither.
function schema.normalize(f)
  if type(f) ~= "table" then
    return nil
  end
  if f[FIELD] then
    return f
  end
  local kind = f.type
  if kind == "table" then
    kind = "object"
  end
  if kind == "list" then
    kind = "array"
  end
  if not types[kind] then
    return nil
  end
  local out = { [FIELD] = true }
  for k, v in pairs(f) do
    out[k] = v
  end
  out.type = kind
  if out.required == nil then
    out.required = false
  end
  return out
end

-- Checks a {name = field} table at declaration time; level points error() at the declaration.
function schema.fields(t, what, level)
  if t == nil then
    return nil
  end
  if type(t) ~= "table" then
    error(what .. " must be a table of fields", level + 1)
  end
  local out = {}
  for name, f in pairs(t) do
    local n = schema.normalize(f)
    if type(name) ~= "string" or not n then
      error(what .. ": '" .. tostring(name) .. "' must be a field (field.string{}, ...)", level + 1)
    end
    out[name] = n
  end
  return out
end

local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local c = {}
  for k, x in pairs(v) do
    c[k] = copy(x)
  end
  return c
end
schema.copy = copy

local function is_array(v)
  if type(v) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(v) do
    n = n + 1
  end
  for i = 1, n do
    if v[i] == nil then
      return false
    end
  end
  return true
end

local function describe(v)
  if type(v) == "string" then
    return "'" .. (#v > 40 and v:sub(1, 40) .. "..." or v) .. "'"
  end
  return type(v) == "table" and "a table" or tostring(v)
end

-- "an integer", "an array", "an object", "a number"...
local function article(t)
  return (t == "integer" or t == "array" or t == "object") and "an " .. t or "a " .. t
end

-- A number that is neither NaN nor infinite (1e400 reads as infinity).
local function finite(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end

-- Converts a string (from --param) to the field's type; returns the value or nil.
local function from_string(f, v)
  if f.type == "number" then
    local n = tonumber(v)
    return finite(n) and n or nil
  elseif f.type == "integer" then
    local n = tonumber(v)
    return finite(n) and n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 and n or nil
  elseif f.type == "boolean" then
    if v == "true" then
      return true
    elseif v == "false" then
      return false
    end
    return nil
  elseif f.type == "array" or f.type == "object" then
    local ok, decoded = pcall(P.json_decode, v)
    return ok and type(decoded) == "table" and decoded or nil
  end
  return v
end

local check -- forward

local function check_fields(fields, value, path, convert, keep_only_declared)
  if type(value) ~= "table" or (next(value) ~= nil and is_array(value)) then
    return nil, path .. ": expected an object, got " .. describe(value)
  end
  local out = keep_only_declared and {} or copy(value)
  -- In name order, so the same mistake always gets the same message.
  local names = {}
  for name in pairs(fields) do
    names[#names + 1] = name
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local f = fields[name]
    local sub = path == "" and name or path .. "." .. name
    local v, err = check(f, value[name], sub, convert, keep_only_declared)
    if err then
      return nil, err
    end
    out[name] = v
  end
  return out
end

-- Validates v against field f at path; returns the (converted, defaulted) value or nil, error.
check = function(f, v, path, convert, keep_only_declared)
  local label = "field '" .. path .. "'"
  if v == nil then
    if f.default ~= nil then
      return copy(f.default)
    end
    if f.required then
      return nil, label .. " is required"
    end
    return nil
  end
  if convert and type(v) == "string" and f.type ~= "string" then
    local c = from_string(f, v)
    if c == nil then
      return nil, label .. " must be " .. article(f.type) .. ", got " .. describe(v)
    end
    v = c
  end
  local t = f.type
  local ok
  if t == "string" then
    ok = type(v) == "string"
  elseif t == "number" then
    ok = finite(v)
  elseif t == "integer" then
    -- Exact: from 2^53 on, neighbouring integers are one double (2^53 + 1 reads as 2^53).
    ok = finite(v) and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53
  elseif t == "boolean" then
    ok = type(v) == "boolean"
  elseif t == "array" then
    ok = is_array(v)
  elseif t == "object" then
    ok = type(v) == "table" and (next(v) == nil or not is_array(v))
  end
  if not ok then
    return nil, label .. " must be " .. article(t) .. ", got " .. describe(v)
  end
  if f.enum then
    local found = false
    for _, e in ipairs(f.enum) do
      if e == v then
        found = true
      end
    end
    if not found then
      local names = {}
      for _, e in ipairs(f.enum) do
        names[#names + 1] = tostring(e)
      end
      return nil, label .. " must be one of " .. table.concat(names, ", ") .. ", got " .. describe(v)
    end
  end
  if t == "array" and f.items then
    local items = schema.normalize(f.items)
    local out = {}
    for i, x in ipairs(v) do
      local c, err = check(items, x, path .. "[" .. i .. "]", convert, keep_only_declared)
      if err then
        return nil, err
      end
      out[i] = c
    end
    return out
  end
  if t == "object" and f.fields then
    return check_fields(schema.fields(f.fields, label, 1), v, path, convert, keep_only_declared)
  end
  return v
end

-- Input: defaults filled in, strings converted by type, undeclared fields kept.
function schema.validate_input(fields, value)
  local out, err = check_fields(fields, value == nil and {} or value, "", true, false)
  if err then
    return nil, "invalid input: " .. err
  end
  return out
end

-- Output: required fields present, types right, only declared fields kept.
function schema.validate_output(fields, value)
  local out, err = check_fields(fields, value == nil and {} or value, "", false, true)
  if err then
    return nil, "invalid output: " .. err
  end
  return out
end

-- Python Tactus's check of a procedure("name", {...}, fn)'s output: a table with every
-- required field present; types are not checked and undeclared fields are kept (its
-- procedures return sub-procedure results, tables, where a number is declared).
function schema.validate_python_output(fields, value)
  if type(value) ~= "table" then
    return nil, "invalid output: the procedure must return a table, got " .. type(value)
  end
  local names = {}
  for name, f in pairs(fields) do
    if f.required and value[name] == nil then
      names[#names + 1] = name
    end
  end
  if #names > 0 then
    table.sort(names)
    return nil, "invalid output: field '" .. names[1] .. "' is required"
  end
  return value
end

-- A structured model reply (output_type): like output, with the prefix the model is shown.
function schema.validate_value(fields, value)
  return check_fields(fields, value, "", false, true)
end

-- JSON Schema of a {name = field} table, for a tool's parameters or an output_type.
local function json_schema(f)
  local s = { type = f.type == "integer" and "integer" or f.type }
  if f.description then
    s.description = f.description
  end
  if f.enum then
    s.enum = f.enum
  end
  if f.type == "array" then
    s.items = f.items and json_schema(schema.normalize(f.items)) or {}
  elseif f.type == "object" and f.fields then
    return schema.object_schema(schema.fields(f.fields, "fields", 1), f.description)
  end
  return s
end

function schema.object_schema(fields, description)
  local props, required = {}, {}
  for name, f in pairs(fields or {}) do
    props[name] = json_schema(f)
    if f.required then
      required[#required + 1] = name
    end
  end
  table.sort(required)
  local s = { type = "object", properties = props } -- an empty table encodes as {}
  if #required > 0 then
    s.required = required
  end
  if description then
    s.description = description
  end
  return s
end

return schema
