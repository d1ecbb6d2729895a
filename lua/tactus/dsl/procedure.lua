-- Procedures: Procedure {...}, Procedure "name" {...}, the legacy procedure(...), script mode
-- with input {...} / output {...}; and the runner: declarations, then the main procedure with
-- its input validated before and its output after.
local _, P = ...
local schema = require("tactus.dsl.schema")

local procedure = {}

local main -- {input, output, state, fn, legacy}
local named = {} -- name -> procedure
local script_output -- output {...} in script mode

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

local function set_main(p, level)
  if main then
    error("a main procedure is already declared (one unnamed Procedure per file)", level + 1)
  end
  main = p
end

-- The global Procedure: Procedure {...} (main), Procedure "name" {...}, Procedure.run(name, input).
procedure.Procedure = setmetatable({
  run = function(name, input)
    local p = named[name]
    if not p then
      error("no procedure named '" .. tostring(name) .. "'", 2)
    end
    local checked, err = schema.validate_input(p.input, input or {})
    if not checked then
      error("procedure '" .. name .. "': " .. err, 2)
    end
    local result = p.fn(checked)
    if p.output then
      local out, oerr = schema.validate_output(p.output, result)
      if not out then
        error("procedure '" .. name .. "': " .. oerr, 2)
      end
      result = out
    end
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

-- procedure({params = {...}, outputs = {...}}, function() ... end): the global params.
function procedure.legacy(opts, fn)
  if type(opts) == "function" then
    opts, fn = {}, opts
  end
  if type(fn) ~= "function" then
    error("procedure(options, function() ... end) needs a function", 2)
  end
  local p = {
    input = schema.fields(opts.params or opts.input, "procedure params", 2) or {},
    output = schema.fields(opts.outputs or opts.output, "procedure outputs", 2),
    state = opts.state,
    fn = fn,
    legacy = true,
  }
  set_main(p, 2)
  return p
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
    input = main and fields(main.input) or {},
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
  local checked, err = schema.validate_input(p.input, input)
  if not checked then
    error(err, 0)
  end
  init_state(p.state)
  local result
  if p.legacy then
    rawset(_G, "params", checked)
    result = p.fn(checked)
  else
    result = p.fn(checked)
  end
  if p.output then
    local out, oerr = schema.validate_output(p.output, result)
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
