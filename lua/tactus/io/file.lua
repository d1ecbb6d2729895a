-- tactus.io.file: text files through the broker's file tools (file.read, file.write,
-- file.exists, file.list), inside the run's mounts. The broker decides where a path may go; its
-- errors propagate unchanged ("denied: ...", "not_found: ...", "invalid_args: ...").
local name, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local host = require("tactus.host")

local file = {}

local function check_text(fn, text)
  if type(text) ~= "string" then
    error(name .. "." .. fn .. ": text must be a string", 3)
  end
end

-- read(path) -> the file's content, a string.
function file.read(path)
  return host.call("file.read", { path = path }, true).content
end

-- write(path, text): replaces the file (creates it if missing).
function file.write(path, text)
  check_text("write", text)
  host.call("file.write", { path = path, content = text }, true)
end

-- append(path, text): adds text at the end of the file (creates it if missing).
function file.append(path, text)
  check_text("append", text)
  host.call("file.write", { path = path, content = text, append = true }, true)
end

-- exists(path) -> true or false.
function file.exists(path)
  return host.call("file.exists", { path = path }, true).exists == true
end

-- list([path]) -> the entries' names, in the order the broker returns them (sorted), and a
-- second result, true when the broker truncated the listing.
function file.list(path)
  local r = host.call("file.list", { path = path }, true)
  local names = {}
  for i, entry in ipairs(r.entries or {}) do
    names[i] = entry.name
  end
  return names, r.truncated == true
end

return file
