-- tactus.io.json: JSON text <-> Lua values, and JSON files through the broker's file tools.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local host = require("tactus.host")

local json = {}

function json.encode(value)
  return P.json_encode(value)
end

function json.decode(text)
  return P.json_decode(text)
end

-- Files are read and written by the broker (file.read / file.write), inside the run's mounts.
function json.read(path)
  local r = host.call("file.read", { path = path }, true)
  return P.json_decode(r.content)
end

function json.write(path, value)
  host.call("file.write", { path = path, content = P.json_encode(value) }, true)
end

return json
