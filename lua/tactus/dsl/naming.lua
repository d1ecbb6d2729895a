-- Names from assignments: `lookup = Tool {...}` and `greeter = Agent {...}` take the name of the
-- global they are first assigned to (the prelude's metatable on the globals calls assigned()).
local naming = {}

local pending = setmetatable({}, { __mode = "k" }) -- object -> function(name)

function naming.on_assign(object, fn)
  pending[object] = fn
end

function naming.assigned(name, value)
  local fn = pending[value]
  if fn then
    pending[value] = nil
    fn(name)
  end
end

return naming
