-- The steps Python Tactus's specifications use that ours had no phrasing for (docs/testing.md,
-- "Built-in steps"): agent turns, stages, the stop reason, state keys, parameters. Appended to
-- lua/tactus/testing/steps.lua's list; each is phrase, patterns and a function of the world.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local mocks = require("tactus.testing.mocks")
local dialect = require("tactus.dsl.dialect")

-- steps: the steps module (value, show); check: its one-value check ("be X", "contain X", ...).
return function(steps, check)
  return {
  {
    phrase = "the agent should take at least N turns",
    patterns = { "^the agent should take at least (%d+) turns?$" },
    fn = function(world, n)
      world.run()
      if mocks.turns() < tonumber(n) then
        error("the agents took " .. mocks.turns() .. " turns in all, fewer than " .. n, 0)
      end
    end,
  },
  -- Stages (stages {...} and Stage.set): the stage a run ended in and the moves it made.
  {
    phrase = "the stage should be NAME",
    more = { "the stage should transition from A to B" },
    patterns = { "^the stage should be ([%w_%-]+)$", "^the stage is ([%w_%-]+)$", "^we are in stage ([%w_%-]+)$" },
    fn = function(world, name)
      world.run()
      local current = dialect.current_stage()
      if current ~= name then
        error("the stage is " .. steps.show(current) .. ", not " .. name, 0)
      end
    end,
  },
  {
    phrase = "the stage should transition from A to B",
    patterns = { "^the stage should transition from ([%w_%-]+) to ([%w_%-]+)$" },
    fn = function(world, from, to)
      world.run()
      local h = dialect.stage_history()
      for i = 1, #h - 1 do
        if h[i] == from and h[i + 1] == to then
          return
        end
      end
      error("the stage never moved from " .. from .. " to " .. to .. " (stages: " .. (#h > 0 and table.concat(h, " -> ") or "none") .. ")", 0)
    end,
  },
  {
    phrase = "the stop reason should be TEXT",
    more = { "the stop reason should contain TEXT", 'the stop reason should match pattern "REGEX"' },
    patterns = { "^the stop reason should (.+)$" },
    fn = function(world, predicate)
      world.run()
      local stop = require("tactus.dsl.stdlib").stop_state()
      if not stop.requested then
        error("no stop was requested (Stop.request or the done tool)", 0)
      end
      check("the stop reason", nil, stop.reason, predicate)
    end,
  },
  {
    phrase = "the state should contain KEY",
    patterns = { "^the state should contain ([%a_][%w_]*)$" },
    fn = function(world, key)
      world.run()
      if (world.state() or {})[key] == nil then
        error("the state has no key " .. key, 0)
      end
    end,
  },
  {
    phrase = "the NAME parameter is VALUE",
    patterns = { "^the ([%w_]+) parameter is (.+)$" },
    setup = true,
    fn = function(world, name, value)
      world.input[name] = steps.value(value)
    end,
  },
  }
end
