-- tactus.io.json: JSON text <-> Lua values, and JSON files through the broker's file tools.
local _, P = ...
local mocks = require("tactus.testing.mocks")

local json = {}

function json.encode(value)
  return P.json_encode(value)
end

function json.decode(text)
  return P.json_decode(text)
end

-- Files are read and written by the broker (file.read / file.write), inside the run's mounts.
function json.read(path)
  local r = mocks.host_call("file.read", { path = path }, true)
  return P.json_decode(r.content)
end

function json.write(path, value)
  mocks.host_call("file.write", { path = path, content = P.json_encode(value) }, true)
end

return json
