-- The request door: every request the language makes of the broker (Host.call, the tactus.io
-- modules, an agent's host tools, Human.*) passes here. In validate mode nothing is run. A
-- mocked run (tactus test, run --mock) installs its mocks (lua/tactus/testing/mocks.lua)
-- through the seam below, once, before the procedure runs; a live run has none, and its
-- requests go straight to the broker.
local _, P = ...

local host = {}

local mocks -- the mock seam: nil in a live run
local sealed = false -- set before the procedure runs: no mocks can be installed after

-- Called by the testing runner of a mocked run; refused once the procedure may run.
function host.install_mocks(m)
  if sealed then
    error("Host: mocks can only be installed before the procedure runs", 2)
  end
  mocks, sealed = m, true
end

function host.seal()
  sealed = true
end

-- One host tool request: its mock's result, else the broker's answer. direct: a Host.call or
-- tactus.io request, recorded for a scenario's Then steps (tool handles record their own).
function host.call(name, args, direct)
  if P.mode() == "validate" then
    -- tactus validate runs no host tool: not Host.call, tactus.io.* nor a tool handle.
    error("validate: Host.call is not run during validation", 0)
  end
  local mocked, result = false, nil
  if mocks then
    mocked, result = mocks.tool_result(name)
  end
  if not mocked then
    result = P.host_call(name, args)
  end
  if mocks and direct then
    mocks.record_call(name, args, result)
  end
  return result
end

-- Human.KIND: a scenario's answer when mocks answer them, else one broker request (asked at
-- the terminal, or the run suspends: docs/durability.md).
function host.human(kind, args)
  if P.mode() == "validate" then
    error("validate: Human." .. kind .. " is not run during validation", 0)
  end
  if mocks and mocks.answers_humans() then
    return mocks.human(kind, args)
  end
  return P.human(kind, args)
end

-- A mocked tool's result (found, value); found is false in a live run.
function host.tool_result(name)
  if mocks then
    return mocks.tool_result(name)
  end
  return false
end

-- The reply a mocked agent gives on this turn, or nil when the model is to be asked.
function host.agent_reply(a, has_done)
  if mocks then
    return mocks.agent_reply(a, has_done)
  end
end

-- The first message a scenario gives the agents, or nil.
function host.first_message()
  if mocks then
    return mocks.first_message()
  end
end

function host.note_turn(name)
  if mocks then
    mocks.note_turn(name)
  end
end

-- The direct requests a mocked run recorded for name (none in a live run).
function host.recorded_calls(name)
  if mocks then
    return mocks.host_calls(name)
  end
  return {}
end

return host
