-- Procedures: Procedure {...}, Procedure "name" {...}, the legacy procedure(...), script mode
-- with input {...} / output {...}; and the runner: declarations, then the main procedure with
-- its input validated before and its output after.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")

local procedure = {}

local main -- {input, output, state, fn, legacy}
local named = {} -- name -> procedure
local script_output -- output {...} in script mode
local script_input -- input {...} in script mode (recorded by validate)

local function make(spec, level)
  if type(spec) ~= "table" then
    error("Procedure expects a table: Procedure { input = {...}, output = {...}, function(input) ... end }", level + 1)
  end
  local fn = spec[1] or spec.fn
  if type(fn) ~= "function" then
    error("Procedure needs its function as the table's first element: Procedure { ..., function(input) ... end }", level + 1)
  end
  return {
    input = schema.fields(spec.input, "Procedure input", level + 1) or {},
    output = schema.fields(spec.output, "Procedure output", level + 1),
    state = spec.state,
    fn = fn,
  }
end

procedure.make = make

-- Makes t hold exactly values (the input table keeps its identity: the global input and the
-- function's argument stay the same table).
function procedure.refill(t, values)
  for k in pairs(t) do
    t[k] = nil
  end
  for k, v in pairs(values) do
    t[k] = v
  end
end

-- A procedure's output checked by its form's rule: ours (types, declared fields kept), or
-- Python Tactus's for procedure("name", {...}, fn) (required fields present).
function procedure.check_output(p, result)
  if p.python then
    return schema.validate_python_output(p.output, result)
  end
  return schema.validate_output(p.output, result)
end

local function set_main(p, level)
  if main then
    error("a main procedure is already declared (one unnamed Procedure per file)", level + 1)
  end
  main = p
end

-- Runs procedure p (declared as name) on input: the input validated, the output checked by its
-- form's rule. A Python Tactus procedure reads its input from the global input of globals (the
-- run's, or a sub-procedure file's own): it is this call's while the call runs.
function procedure.run_record(p, name, input, level, globals)
  globals = globals or _G
  local checked, err = schema.validate_input(p.input, input or {})
  if not checked then
    error("procedure '" .. name .. "': " .. err, level + 1)
  end
  local result
  if p.legacy then
    local outer = rawget(globals, "input")
    rawset(globals, "input", checked)
    local ok, r = pcall(p.fn, checked)
    rawset(globals, "input", outer)
    if not ok then
      error(r, 0)
    end
    result = r
  else
    result = p.fn(checked)
  end
  if p.output then
    local out, oerr = procedure.check_output(p, result)
    if not out then
      error("procedure '" .. name .. "': " .. oerr, level + 1)
    end
    result = out
  end
  return result
end

-- The global Procedure: Procedure {...} (main), Procedure "name" {...}, Procedure.run(name, input).
procedure.Procedure = setmetatable({
  run = function(name, input)
    local p = named[name]
    if not p and name == "main" and main then
      p = main
    end
    if not p and type(name) == "string" and name:match("%.tac$") then
      local result = require("tactus.dsl.subprocedure").run(name, input, 2)
      return result -- not a tail call: error levels count this frame
    end
    if not p then
      error("no procedure named '" .. tostring(name) .. "'", 2)
    end
    local result = procedure.run_record(p, name, input, 2)
    return result
  end,
}, {
  __call = function(_, arg)
    if type(arg) == "string" then
      return function(spec)
        local p = make(spec, 2)
        if named[arg] then
          error("a procedure named '" .. arg .. "' is already declared", 2)
        end
        named[arg] = p
        return p
      end
    end
    local p = make(arg, 2)
    set_main(p, 2)
    p.is_main = true
    return p
  end,
  __newindex = function()
    error("Procedure is read-only", 2)
  end,
  __metatable = false,
})

-- The options procedure() accepts: ours, and Python Tactus's (recorded where this runtime has
-- no such concept: message_history, dependencies, the prompts).
local legacy_options = {
  params = true, input = true, outputs = true, output = true, state = true, description = true,
  message_history = true, session = true, dependencies = true, return_prompt = true,
  error_prompt = true, status_prompt = true, max_turns = true, stages = true,
}

-- procedure("name", {input =, output =, state =}, function(input) ... end), procedure("name",
-- fn), procedure({params =, outputs =}, fn) or procedure(fn): Python Tactus's forms and ours.
-- Returns name (nil for an unnamed one) and the procedure record.
function procedure.parse_legacy(a, b, c, level)
  local name, opts, fn
  if type(a) == "string" then
    name = a
    if type(b) == "function" then
      opts, fn = {}, b
    else
      opts, fn = b, c
    end
  elseif type(a) == "function" then
    opts, fn = {}, a
  else
    opts, fn = a, b
  end
  local what = name and ('procedure("' .. name .. '", ...)') or "procedure(...)"
  if type(opts) ~= "table" then
    error(what .. ': the options must be a table: procedure("main", { input = {...}, output = {...} }, function(input) ... end)', level + 1)
  end
  if type(fn) ~= "function" then
    error(what .. ': needs a function: procedure("main", { ... }, function(input) ... end)', level + 1)
  end
  for k in pairs(opts) do
    if not legacy_options[k] then
      local known = {}
      for n in pairs(legacy_options) do
        known[#known + 1] = n
      end
      table.sort(known)
      error(what .. ": unknown option '" .. tostring(k) .. "' (known: " .. table.concat(known, ", ") .. ")", level + 1)
    end
  end
  return name, {
    name = name,
    python = name ~= nil, -- Python Tactus's form: its output rule (schema.validate_python_output)
    input = schema.fields(opts.params or opts.input, "procedure input", level + 1) or {},
    output = schema.fields(opts.outputs or opts.output, "procedure output", level + 1),
    state = opts.state,
    fn = fn,
    legacy = true,
  }
end

-- What procedure(...) returns: calling it runs the procedure (Python Tactus's named
-- procedures are callable by their global name).
local function callable(name, run)
  return setmetatable({ name = name }, {
    __call = function(_, input)
      return run(name, input)
    end,
    __metatable = false,
  })
end

function procedure.legacy(a, b, c)
  local name, p = procedure.parse_legacy(a, b, c, 2)
  if name == nil or name == "main" then
    set_main(p, 2)
  else
    if named[name] then
      error("a procedure named '" .. name .. "' is already declared", 2)
    end
    named[name] = p
  end
  return callable(name or "main", procedure.Procedure.run)
end

-- Script mode: output { field = ... } declares the result's schema.
function procedure.output(fields)
  script_output = schema.fields(fields, "output", 2)
end

-- Script mode: input { field = ... } validates the global input against it, in place (the
-- input stays a plain table, callable only for this).
function procedure.make_input(values)
  return setmetatable(values, {
    __call = function(self, fields)
      local f = schema.fields(fields, "input", 2)
      local checked, err = schema.validate_input(f, self)
      if not checked then
        error(err, 0)
      end
      for k, v in pairs(checked) do
        self[k] = v
      end
      return self
    end,
    __metatable = false,
  })
end

-- validate: the input a script sees. input {...} declares its fields (checked, not
-- validated: there are no values); reading a field stops the script there (its body does not
-- run during validation).
function procedure.validate_input_proxy()
  return setmetatable({}, {
    __call = function(self, fields)
      script_input = schema.fields(fields, "input", 2)
      return self
    end,
    __index = function(_, k)
      error("validate: stopped at input." .. tostring(k), 0)
    end,
    __newindex = function()
      error("validate: stopped at input", 0)
    end,
    __metatable = false,
  })
end

function procedure.main_name()
  return main and (main.legacy and "procedure" or "Procedure") or nil
end

-- What tactus validate reports.
function procedure.summary()
  local names = {}
  for n in pairs(named) do
    names[#names + 1] = n
  end
  table.sort(names)
  local fields = function(f)
    local out = {}
    for n in pairs(f or {}) do
      out[#out + 1] = n
    end
    table.sort(out)
    return out
  end
  return {
    main = main ~= nil,
    input = main and fields(main.input) or fields(script_input),
    output = main and fields(main.output) or {},
    procedures = #names > 0 and names or nil,
  }
end

-- Runs the main procedure, if one was declared; returns found, result.
function procedure.run_main(input, global_main, init_state)
  local p = main
  if not p and type(global_main) == "function" then
    p = { input = {}, fn = global_main }
  end
  if not p then
    return false
  end
  -- A key the procedure does not declare is a mistake (a typo'd --param), named with the
  -- declared ones; a procedure that declares no input takes any.
  if next(p.input) ~= nil then
    local unknown = {}
    for k in pairs(input) do
      if p.input[k] == nil then
        unknown[#unknown + 1] = tostring(k)
      end
    end
    if #unknown > 0 then
      table.sort(unknown)
      local declared = {}
      for k in pairs(p.input) do
        declared[#declared + 1] = k
      end
      table.sort(declared)
      error("invalid input: unknown field" .. (#unknown > 1 and "s " or " ") .. "'" .. table.concat(unknown, "', '")
        .. "' (declared: " .. table.concat(declared, ", ") .. ")", 0)
    end
  end
  local checked, err = schema.validate_input(p.input, input)
  if not checked then
    error(err, 0)
  end
  init_state(p.state)
  local result
  if p.legacy then
    -- The body sees its validated input as the global input too (Python Tactus's form), the
    -- same table as its argument; params is our older name for it.
    procedure.refill(input, checked)
    rawset(_G, "params", input)
    result = p.fn(input)
  else
    result = p.fn(checked)
  end
  if p.output then
    local out, oerr = procedure.check_output(p, result)
    if not out then
      error(oerr, 0)
    end
    result = out
  end
  return true, result
end

function procedure.check_script_output(result)
  if not script_output then
    return result
  end
  local out, err = schema.validate_output(script_output, result)
  if not out then
    error(err, 0)
  end
  return out
end

return procedure
