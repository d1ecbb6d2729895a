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

local function register(t, name)
  if by_name[name] and by_name[name] ~= t then
    error("a tool named '" .. name .. "' is already declared", 3)
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
    register(t, spec.name)
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

-- toolset("name", {type = "lua" | "mcp" | "filtered" | "combined" | "plugin", ...}): Python
-- Tactus's form. A lua toolset's inline tools keep their own names; plugin names Python files,
-- which do not run here: the toolset offers no tools.
local toolset_types = { lua = true, mcp = true, filtered = true, combined = true, plugin = true }
function tools.declare_toolset(name, spec, level)
  if type(name) ~= "string" or type(spec) ~= "table" then
    error('toolset("name", { type = "lua", tools = {...} }) needs a name and a table', level + 1)
  end
  local kind = spec.type or (spec.tools and "lua") or (spec.server and "mcp")
  if not toolset_types[kind] then
    error("toolset '" .. name .. "': type must be lua, mcp, filtered, combined or plugin", level + 1)
  end
  if kind == "lua" then
    return tools.Toolset(name)({ description = spec.description, tools = spec.tools or {}, plain_names = true })
  end
  local set = { name = name, description = spec.description, kind = kind, members = {} }
  set.server, set.source, set.pattern, set.sources = spec.server, spec.source, spec.pattern, spec.sources
  if kind == "plugin" then
    set.note = "toolset '" .. name .. "' loads Python plugin files, which tactus does not run: it offers no tools"
  end
  toolsets[name] = set
  return set
end

-- Named toolsets as Python Tactus resolves them: those the procedure declares (Toolset,
-- toolset(), each tool()), then the configuration's (toolsets:, trusted), the built-in "done",
-- "plugin" (tool_paths), each configured MCP server by name and its tools as SERVER_TOOL.
local config_sets, mcp_servers, plugin_set = {}, {}, false
local notes = {} -- what a resolution could not honour, said once each by validate

function tools.configure(dialect)
  config_sets = type(dialect.toolsets) == "table" and dialect.toolsets or {}
  plugin_set = dialect.plugin_toolset == true
  mcp_servers = {}
  for _, n in ipairs(type(dialect.mcp_servers) == "table" and dialect.mcp_servers or {}) do
    mcp_servers[n] = true
  end
end

local function note(text)
  if not notes[text] then
    notes[text] = true
    notes[#notes + 1] = text
  end
end

function tools.notes()
  return notes
end

local function done_tool()
  if by_name.done then
    return by_name.done
  end
  return handles[require("tactus.tools.done")]
end

-- A pattern of a filtered toolset, matched from the start of a tool's name (Python's re.match).
local function matches(pattern, name)
  return require("tactus.testing.regex").search("^(?:" .. pattern .. ")", name)
end

-- The name a toolset filter sees: an MCP tool's SERVER_TOOL, a Lua tool's own name.
function tools.display_name(t)
  local server, tool = tools.mcp_parts(t.host)
  if server then
    return ((server .. "_" .. tool):gsub("[^%w_%-]", "_"))
  end
  return t.short or t.name
end

local resolve
local function members_of(set, check, seen, memo)
  if set.kind == "plugin" then
    note(set.note or ("toolset '" .. tostring(set.name) .. "' loads Python plugin files, which tactus does not run: it offers no tools"))
    return {}
  elseif set.use or set.kind == "mcp" then
    if check then
      return {}
    end
    local use = set.use or ("mcp." .. tostring(set.server))
    return tools.mcp_members({ name = set.name, use = use, include = set.include or {}, exclude = set.exclude or {} })
  elseif set.kind == "filtered" then
    local source = resolve(set.source, check, seen, memo)
    if not source then
      note("toolset '" .. set.name .. "': its source '" .. tostring(set.source) .. "' is no toolset or MCP server: it offers no tools")
      return {}
    end
    local out = {}
    for _, t in ipairs(source) do
      if not set.pattern or matches(set.pattern, tools.display_name(t)) then
        out[#out + 1] = t
      end
    end
    return out
  elseif set.kind == "combined" then
    local out, have = {}, {}
    for _, src in ipairs(set.sources or {}) do
      local list = resolve(src, check, seen, memo)
      if not list then
        note("toolset '" .. set.name .. "': its source '" .. tostring(src) .. "' is no toolset: skipped")
      end
      for _, t in ipairs(list or {}) do
        if not have[t] then -- each tool once: a diamond of toolsets does not multiply them
          have[t] = true
          out[#out + 1] = t
        end
      end
    end
    return out
  end
  return set.members
end

-- The tools of the toolset called name, or nil when there is none. check (validate): nothing is
-- asked of an MCP server, whose tools then count as none. seen: the names being resolved (a
-- cycle resolves to nothing); memo: the names resolved, each once per resolution.
resolve = function(name, check, seen, memo)
  seen, memo = seen or {}, memo or {}
  if type(name) ~= "string" or seen[name] then
    return nil
  end
  if memo[name] ~= nil then
    return memo[name] or nil
  end
  seen[name] = true
  local list
  local set = toolsets[name] or config_sets[name]
  if set then
    if config_sets[name] == set and not set.name then
      set.name, set.kind = name, set.type
    end
    list = members_of(set, check, seen, memo)
  elseif name == "done" then
    list = { done_tool() }
  elseif name == "plugin" and plugin_set then
    note("toolset 'plugin' (tool_paths) is Python plugin tools, which tactus does not run: it offers no tools")
    list = {}
  elseif mcp_servers[name] then
    list = members_of({ name = name, kind = "mcp", server = name }, check, seen, memo)
  else
    for server in pairs(mcp_servers) do
      if name:sub(1, #server + 1) == server .. "_" and #name > #server + 1 then
        list = check and {} or { tools.describe_mcp(tools.host("mcp." .. server .. "." .. name:sub(#server + 2)), "toolset '" .. name .. "'") }
      end
    end
  end
  seen[name] = nil
  memo[name] = list or false
  return list
end
tools.resolve_toolset = resolve

-- Every toolset name an agent could name, for an error's list.
function tools.toolset_names()
  local out, seen = {}, {}
  local function add(n)
    if not seen[n] then
      seen[n] = true
      out[#out + 1] = n
    end
  end
  add("done")
  for n in pairs(toolsets) do
    add(n)
  end
  for n in pairs(config_sets) do
    add(n)
  end
  for n in pairs(mcp_servers) do
    add(n)
  end
  if plugin_set then
    add("plugin")
  end
  table.sort(out)
  return out
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
