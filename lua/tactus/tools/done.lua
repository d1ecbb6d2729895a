-- The done tool: the model calls it to say the task is complete. It does not stop the
-- procedure; the procedure checks done.called().
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local tools = require("tactus.dsl.tools")
local field = require("tactus.dsl.schema").field

return tools.Tool({
  name = "done",
  description = "Call this when the task is complete, with the reason.",
  input = { reason = field.string({ description = "why the task is complete" }) },
  function(args)
    -- As in Python Tactus, done asks the procedure to stop (Stop.requested()); it stops nothing.
    require("tactus.dsl.stdlib").stop_request(args.reason)
    return { status = "completed", reason = args.reason, tool = "done" }
  end,
})
