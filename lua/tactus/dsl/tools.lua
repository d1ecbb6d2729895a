-- Tools: Lua tools (Tool {...}), host tools offered to a model, Toolsets, and the handles that
-- record each call (t.called(), t.last_call(), ...). One registry per run, by name.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local schema = require("tactus.dsl.schema")
local naming = require("tactus.dsl.naming")
local host = require("tactus.host")

local tools = {}

local by_name = {} -- name -> tool
local toolsets = {} -- name -> toolset
local handles = setmetatable({}, { __mode = "k" }) -- handle -> tool record
local scripted = {} -- name -> scripted calls of tools no agent offered

-- Host tools the model may be offered, with their parameters (the rest get a free-form object).
local host_params = {
  ["file.read"] = { path = schema.field.string({ required = true, description = "a path in the workspace or a volume" }) },
  ["file.write"] = {
    path = schema.field.string({ required = true }),
    content = schema.field.string({ required = true }),
    append = schema.field.boolean({}),
  },
  ["file.list"] = { path = schema.field.string({}) },
  ["file.exists"] = { path = schema.field.string({ required = true }) },
  ["http.request"] = {
    url = schema.field.string({ required = true }),
    method = schema.field.string({}),
    headers = schema.field.object({}),
    body = schema.field.string({}),
  },
}

local function new_handle(t)
  local calls = {}
  t.calls = calls
  local h = setmetatable({}, {
    __index = function(_, k)
      if k == "name" then
        return t.name
      end
      return t.methods[k]
    end,
    __newindex = function()
      error("a tool handle is read-only", 2)
    end,
    __call = function(_, args)
      return tools.invoke(t, args)
    end,
    __metatable = false,
  })
  t.methods = {
    called = function()
      return #calls > 0
    end,
    last_call = function()
      return calls[#calls]
    end,
    last_result = function()
      local c = calls[#calls]
      return c and c.result
    end,
    call_count = function()
      return #calls
    end,
    calls = function()
      return schema.copy(calls)
    end,
    reset = function()
      for i = #calls, 1, -1 do
        calls[i] = nil
      end
    end,
  }
  t.handle = h
  handles[h] = t
  return h
end

-- level: where the declaration is, as error() counts from register's caller.
local function register(t, name, level)
  if by_name[name] and by_name[name] ~= t then
    error("a tool named '" .. name .. "' is already declared", (level or 2) + 1)
  end
  t.name = name
  by_name[name] = t
end

-- The record of a handle (nil for anything else).
function tools.of(h)
  return handles[h]
end

-- Runs a tool and records the call. Lua tools run here; host tools go through the broker; a
-- tool mocked by the scenario (tactus test) returns its mocked result instead.
function tools.invoke(t, args)
  if not t.name then
    error("this Tool has no name: assign it to a global (lookup = Tool {...}) or give name = '...'", 3)
  end
  args = args or {}
  local result
  local mocked, value = host.tool_result(t.name)
  if mocked then
    result = value
  elseif t.host then
    result = host.call(t.host, args)
  else
    if t.input then
      local checked, err = schema.validate_input(t.input, args)
      if not checked then
        error("tool '" .. t.name .. "': " .. err:gsub("^invalid input: ", "invalid arguments: "), 0)
      end
      args = checked
    end
    result = t.handler(args)
  end
  t.calls[#t.calls + 1] = { name = t.name, args = args, result = result }
  return result
end

local function make_tool(spec, level)
  if type(spec) ~= "table" then
    error("Tool expects a table: name = Tool { description = ..., input = {...}, function(args) ... end }", level + 1)
  end
  local t = { description = spec.description or "", kind = "lua" }
  if spec.use then
    local use = tostring(spec.use):gsub("^broker%.", "")
    t.host = use
    t.kind = "host"
    t.input = spec.input and schema.fields(spec.input, "Tool input", level + 1) or host_params[use]
  else
    t.handler = spec[1] or spec.handler
    if type(t.handler) ~= "function" then
      error("Tool needs a function: Tool { ..., function(args) ... end } or handler = fn", level + 1)
    end
    t.input = schema.fields(spec.input or {}, "Tool input", level + 1)
  end
  local h = new_handle(t)
  if spec.name then
    register(t, spec.name, level + 1)
  else
    naming.on_assign(h, function(name)
      if not t.name then
        register(t, name)
      end
    end)
  end
  return h
end

-- Tool { ... } makes a tool; Tool "name" {...} is refused as Tactus refuses it.
tools.Tool = setmetatable({
  called = function(name)
    local t = by_name[name]
    return t ~= nil and #t.calls > 0
  end,
  last_call = function(name)
    local t = by_name[name]
    return t and t.calls[#t.calls]
  end,
  last_result = function(name)
    local t = by_name[name]
    local c = t and t.calls[#t.calls]
    return c and c.result
  end,
  get = function(name)
    local t = by_name[name]
    return t and t.handle
  end,
  calls = function(name)
    local t = by_name[name]
    return t and schema.copy(t.calls) or {}
  end,
  reset = function()
    tools.reset_calls()
  end,
}, {
  __call = function(_, spec)
    if type(spec) == "string" then
      error("Tool \"" .. spec .. "\" {...} is not supported: write " .. spec .. " = Tool {...}", 2)
    end
    local h = make_tool(spec, 2) -- not a tail call: error levels count this frame
    return h
  end,
  __newindex = function()
    error("Tool is read-only", 2)
  end,
  __metatable = false,
})

-- A host tool as a model sees it: the name made safe for provider APIs ("file.read" is
-- offered as "file_read"), mapped back when the model calls it.
function tools.host(name)
  local t = by_name["host:" .. name]
  if t then
    return t
  end
  t = { kind = "host", host = name, description = "The host tool " .. name .. ".", input = host_params[name] }
  new_handle(t)
  t.name = name
  by_name["host:" .. name] = t
  return t
end

-- Toolset "name" { description, tools = {...}, include = {...}, exclude = {...} } or { use = ... }.
tools.Toolset = function(name)
  if type(name) ~= "string" then
    error('Toolset needs a name: Toolset "name" { tools = {...} }', 2)
  end
  return function(spec)
    if type(spec) ~= "table" then
      error("Toolset '" .. name .. "' expects a table", 2)
    end
    local set = { name = name, description = spec.description, members = {} }
    local include, exclude = {}, {}
    if spec.use then
      set.use = tostring(spec.use)
      if not set.use:match("^mcp%.[%w_%-]+$") then
        error("Toolset '" .. name .. "': use = '" .. set.use .. "' is not an MCP server (use = \"mcp.SERVER\")", 2)
      end
      set.include, set.exclude = include, exclude
    end
    for _, n in ipairs(spec.include or {}) do
      include[n] = true
    end
    for _, n in ipairs(spec.exclude or {}) do
      exclude[n] = true
    end
    for i, item in ipairs(spec.tools or {}) do
      local t = tools.of(item)
      if not t and type(item) == "table" then
        if type(item.name) ~= "string" then
          error("Toolset '" .. name .. "': inline tool " .. i .. " needs a name", 2)
        end
        local h = make_tool({
          name = spec.plain_names and item.name or name .. "_" .. item.name,
          description = item.description,
          input = item.input or item.parameters,
          handler = item.handler or item[1],
        }, 2)
        t = tools.of(h)
        t.short = item.name
      elseif not t and type(item) == "string" then
        t = tools.host(item)
      end
      if not t then
        error("Toolset '" .. name .. "': tool " .. i .. " is not a tool", 2)
      end
      local short = t.short or t.name
      if (next(include) == nil or include[short] or include[t.name]) and not (exclude[short] or exclude[t.name]) then
        set.members[#set.members + 1] = t
      end
    end
    toolsets[name] = set
    return set
  end
end

-- tool("name", {description, parameters}, fn): a Lua tool, and a toolset of one by its name.
function tools.declare_tool(name, spec, fn, level)
  if type(name) ~= "string" or type(spec) ~= "table" then
    error('tool("name", { description = ..., parameters = {...} }, function(args) ... end) needs a name and a table', level + 1)
  end
  fn = fn or spec.handler or spec[1]
  if type(fn) ~= "function" then
    error("tool '" .. name .. "' needs a function", level + 1)
  end
  local h = make_tool({ name = name, description = spec.description, input = spec.parameters or spec.input, handler = fn }, level + 1)
  toolsets[name] = toolsets[name] or { name = name, members = { handles[h] } }
  return h
end

-- Tool.reset(): forgets every recorded call (Python Tactus's form, between two agents' runs).
-- What it forgot stays in the run's record that a Specification's steps read.
local forgotten = {} -- name -> calls made before a reset
function tools.reset_calls()
  for name, t in pairs(by_name) do
    local kept = forgotten[t.name or name] or {}
    for i, c in ipairs(t.calls or {}) do
      kept[#kept + 1] = c
      t.calls[i] = nil
    end
    forgotten[t.name or name] = kept
  end
  for k, list in pairs(scripted) do
    local kept = forgotten[k] or {}
    for _, c in ipairs(list) do
      kept[#kept + 1] = c
    end
    forgotten[k] = kept
    scripted[k] = nil
  end
end

function tools.names()
  local out = {}
  for name, t in pairs(by_name) do
    if not t.host or t.kind == "host" and name:sub(1, 5) ~= "host:" then
      out[#out + 1] = name
    end
  end
  table.sort(out)
  return out
end

-- A scripted call (a mocked agent's tool call): recorded, its handler not run. t may be nil
-- when the agent has no such tool; the call is still recorded under its name.
function tools.record_scripted(t, name, args)
  local call = { name = t and t.name or name, args = args }
  if t then
    t.calls[#t.calls + 1] = call
  else
    scripted[name] = scripted[name] or {}
    table.insert(scripted[name], call)
  end
end

-- Every recorded call to the tool called name (declared, host or scripted), in order.
function tools.calls_named(name)
  local t = by_name[name] or by_name["host:" .. name]
  local out = {}
  for _, c in ipairs(forgotten and forgotten[name] or {}) do
    out[#out + 1] = c
  end
  for _, c in ipairs(t and t.calls or {}) do
    out[#out + 1] = c
  end
  for _, c in ipairs(scripted[name] or {}) do
    out[#out + 1] = c
  end
  for _, c in ipairs(host.recorded_calls(name)) do
    out[#out + 1] = c
  end
  return out
end

function tools.toolset(name)
  return toolsets[name]
end

-- The toolsets the procedure declared (lua/tactus/dsl/toolsets.lua resolves them).
function tools.define_toolset(name, set)
  toolsets[name] = set
end
function tools.declared_toolset_names()
  local out = {}
  for n in pairs(toolsets) do
    out[#out + 1] = n
  end
  return out
end
function tools.named(name)
  return by_name[name]
end

-- MCP tools. The broker lists a server's tools the policy allows (Host.call("mcp.SERVER")),
-- once per run here; the listing is journaled like any answer, so a resume does not start the
-- server to learn its schemas.
local listings = {} -- server -> {tool name -> {description, inputSchema}}

local function listing(server)
  local l = listings[server]
  if not l then
    l = {}
    local answer = host.call("mcp." .. server, {})
    for _, t in ipairs(answer.tools or {}) do
      l[#l + 1] = t
      l[t.name] = t
    end
    listings[server] = l
  end
  return l
end

-- "mcp.SERVER.TOOL" -> SERVER, TOOL (nil for other names).
local function mcp_parts(name)
  return (name or ""):match("^mcp%.([%w_%-]+)%.(.+)$")
end

-- An MCP tool as a model sees it: SERVER_TOOL, made safe for provider APIs.
local function mcp_wire(server, tool)
  return ((server .. "_" .. tool):gsub("[^%w_%-]", "_")):sub(1, 64)
end

-- Fills t's description and schema from its server's listing (t.host is "mcp.SERVER.TOOL").
-- A tool the listing does not show (the policy or the server does not offer it) is an error.
function tools.describe_mcp(t, who)
  local server, tool = mcp_parts(t.host)
  if not server or t.raw_schema then
    return t
  end
  local entry = listing(server)[tool]
  if not entry then
    error(who .. ": MCP server '" .. server .. "' offers no tool '" .. tool .. "' this run may call (tools.allow decides)", 0)
  end
  t.raw_schema = entry.inputSchema
  if t.description == nil or t.description == "" or t.description == "The host tool " .. t.host .. "." then
    t.description = entry.description or ""
  end
  t.wire = mcp_wire(server, tool)
  return t
end

-- The tools of a Toolset { use = "mcp.SERVER" }, filtered by its include/exclude (by the
-- tool's own name or its full mcp.SERVER.TOOL name).
function tools.mcp_members(set)
  local server = set.use:match("^mcp%.(.+)$")
  local out = {}
  for _, entry in ipairs(listing(server)) do
    local full = "mcp." .. server .. "." .. entry.name
    local inc = next(set.include) == nil or set.include[entry.name] or set.include[full]
    if inc and not (set.exclude[entry.name] or set.exclude[full]) then
      out[#out + 1] = tools.describe_mcp(tools.host(full), "toolset '" .. set.name .. "'")
    end
  end
  return out
end

tools.mcp_parts = mcp_parts

return tools
