-- The tools an agent offers: its tools list (tool handles, toolsets and host tools by name,
-- inline {name, description, parameters, handler} tables) and its toolsets expressions
-- ("done", {name =, include =, exclude =, prefix =, rename =}), the configuration's
-- default_toolsets when it has no toolsets key. Each offered under a name safe for provider
-- APIs. Used by lua/tactus/dsl/agent.lua.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local tools = require("tactus.dsl.tools")
local toolsets = require("tactus.dsl.toolsets")
local dialect = require("tactus.dsl.dialect")

local agent_tools = {}

-- A short, stable hash of text (FNV-1a, 32 bits), for names that would otherwise collide.
local function hash8(text)
  local h = 0x811c9dc5
  for i = 1, #text do
    h = bit.bxor(h, text:byte(i))
    h = bit.tobit(h * 403 + bit.lshift(h, 24)) -- h * 16777619, mod 2^32, exactly
  end
  return bit.tohex(h, 8)
end

-- The tools an agent offers, resolved when first used (declarations may come in any order).
-- Each is offered under a wire name safe for provider APIs (^[A-Za-z0-9_-]{1,64}$); an MCP
-- tool as SERVER_TOOL. Two different tools whose names come out the same are told apart by
-- a hash of the full name.
-- An inline tool of an agent ({name, description, parameters, handler}): a Lua tool called
-- AGENT_NAME, as Python Tactus names it. Made once per agent and tool.
local function inline_tool(a, item, i)
  a.inline = a.inline or {}
  if a.inline[i] then
    return a.inline[i]
  end
  if type(item.name) ~= "string" or type(item.handler or item[1]) ~= "function" then
    error("agent '" .. a.name .. "': inline tool " .. i .. " needs a name and a handler function", 0)
  end
  local h = tools.Tool({
    name = a.name .. "_" .. item.name,
    description = item.description,
    input = item.parameters or item.input,
    handler = item.handler or item[1],
  })
  local t = tools.of(h)
  t.short = item.name
  a.inline[i] = t
  return t
end

-- One entry of a toolsets list: "name", or {name =, include =, exclude =, prefix =, rename =}.
-- Returns {tool, wire} pairs.
local function toolset_expression(a, expr, i, check)
  local name = type(expr) == "table" and expr.name or expr
  if type(name) ~= "string" then
    error("agent '" .. a.name .. "': toolsets entry " .. i .. " is neither a name nor {name = ...}", 0)
  end
  local list = toolsets.resolve(name, check)
  if not list then
    error("agent '" .. a.name .. "': no toolset named '" .. name .. "' (toolsets here: " .. table.concat(toolsets.names(), ", ") .. ")", 0)
  end
  local out = {}
  local function set_of(v)
    local r = {}
    for _, n in ipairs(type(v) == "table" and v or {}) do
      r[n] = true
    end
    return r
  end
  local include = type(expr) == "table" and expr.include and set_of(expr.include)
  local exclude = type(expr) == "table" and set_of(expr.exclude) or {}
  local rename = type(expr) == "table" and type(expr.rename) == "table" and expr.rename or {}
  local prefix = type(expr) == "table" and expr.prefix or ""
  for _, t in ipairs(list) do
    local shown = toolsets.display_name(t)
    if (not include or include[shown]) and not exclude[shown] then
      local wire = rename[shown] or shown
      out[#out + 1] = { tool = t, wire = prefix ~= "" and (prefix .. wire) or nil }
      if rename[shown] and prefix == "" then
        out[#out].wire = wire
      end
    end
  end
  return out
end

-- The tools an agent offers, resolved when first used (declarations may come in any order):
-- its tools list, then its toolsets (the configuration's default_toolsets when it has no
-- toolsets key); a turn's toolsets replace both. Each is offered under a wire name safe for
-- provider APIs (^[A-Za-z0-9_-]{1,64}$); an MCP tool as SERVER_TOOL. Two different tools whose
-- names come out the same are told apart by a hash of the full name. check (validate): names
-- are resolved, no MCP server is asked.
function agent_tools.resolve(a, turn_sets, check)
  local list, by_wire, seen = {}, {}, {}
  local function add(t, wire)
    if seen[t] then
      return
    end
    seen[t] = true
    if tools.mcp_parts(t.host) and not check then
      tools.describe_mcp(t, "agent '" .. a.name .. "'")
    end
    -- A renamed or prefixed name is made safe too: providers take ^[A-Za-z0-9_-]{1,64}$.
    wire = ((wire or t.wire or t.name or ""):gsub("[^%w_%-]", "_")):sub(1, 64)
    if wire == "" then
      wire = "tool"
    end
    if by_wire[wire] then
      local base, salt = wire:sub(1, 55), t.host or t.name or ""
      wire = base .. "_" .. hash8(salt)
      while by_wire[wire] do -- a hash that collides too: hash again
        salt = salt .. "'"
        wire = base .. "_" .. hash8(salt)
      end
    end
    by_wire[wire] = t
    list[#list + 1] = { wire = wire, tool = t }
  end
  if turn_sets == nil then
    for i, item in ipairs(a.spec_tools) do
      local t = tools.of(item)
      if t then
        if not t.name then
          error("agent '" .. a.name .. "': tool " .. i .. " has no name (assign it to a global or give name = ...)", 0)
        end
        add(t)
      elseif type(item) == "string" then
        local set = toolsets.resolve(item, check)
        if set then
          for _, member in ipairs(set) do
            add(member)
          end
        else
          add(tools.host(item))
        end
      elseif type(item) == "table" and item.members then
        for _, member in ipairs(item.use and (check and {} or tools.mcp_members(item)) or item.members) do
          add(member)
        end
      elseif type(item) == "table" and (item.handler or type(item[1]) == "function") then
        add(inline_tool(a, item, i))
      else
        error("agent '" .. a.name .. "': tool " .. i .. " is neither a tool, a toolset nor a host tool name", 0)
      end
    end
  end
  local sets = turn_sets
  if sets == nil then
    sets = a.spec.toolsets
    if sets == nil then
      sets = dialect.settings.default_toolsets
    end
  end
  if sets ~= nil and type(sets) ~= "table" then
    error("agent '" .. a.name .. "': toolsets must be a list", 0)
  end
  for i, expr in ipairs(sets or {}) do
    for _, entry in ipairs(toolset_expression(a, expr, i, check)) do
      add(entry.tool, entry.wire)
    end
  end
  return list, by_wire
end


return agent_tools
