-- Named toolsets as Python Tactus resolves them (docs/language.md, "Coming from Python
-- Tactus"): toolset("name", {type = ...}) declarations, the configuration's toolsets
-- (options.dialect, trusted), the built-in "done", "plugin" (tool_paths), each configured MCP
-- server by name and its tools as SERVER_TOOL. The tools themselves live in tools.lua.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local tools = require("tactus.dsl.tools")

local toolsets = {}

-- toolset("name", {type = "lua" | "mcp" | "filtered" | "combined" | "plugin", ...}): Python
-- Tactus's form. A lua toolset's inline tools keep their own names; plugin names Python files,
-- which do not run here: the toolset offers no tools.
local toolset_types = { lua = true, mcp = true, filtered = true, combined = true, plugin = true }
function toolsets.declare(name, spec, level)
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
  tools.define_toolset(name, set)
  return set
end

-- Named toolsets as Python Tactus resolves them: those the procedure declares (Toolset,
-- toolset(), each tool()), then the configuration's (toolsets:, trusted), the built-in "done",
-- "plugin" (tool_paths), each configured MCP server by name and its tools as SERVER_TOOL.
local config_sets, mcp_servers, plugin_set = {}, {}, false
local notes = {} -- what a resolution could not honour, said once each by validate

function toolsets.configure(dialect)
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

function toolsets.notes()
  return notes
end

local function done_tool()
  return tools.named("done") or tools.of(require("tactus.tools.done"))
end

-- A pattern of a filtered toolset, matched from the start of a tool's name (Python's re.match).
local function matches(pattern, name)
  return require("tactus.testing.regex").search("^(?:" .. pattern .. ")", name)
end

-- The name a toolset filter sees: an MCP tool's SERVER_TOOL, a Lua tool's own name.
function toolsets.display_name(t)
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
      if not set.pattern or matches(set.pattern, toolsets.display_name(t)) then
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
  local set = tools.toolset(name) or config_sets[name]
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
toolsets.resolve = resolve

-- Every toolset name an agent could name, for an error's list.
function toolsets.names()
  local out, seen = {}, {}
  local function add(n)
    if not seen[n] then
      seen[n] = true
      out[#out + 1] = n
    end
  end
  add("done")
  for _, n in ipairs(tools.declared_toolset_names()) do
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


return toolsets
