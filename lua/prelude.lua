-- The prelude: runs in every VM after the restricted environment is built and before the
-- procedure. It receives the private primitives table; what it defines as globals is what the
-- procedure sees. Tables listed in sandbox_env.cpp (freeze_prelude_globals) are made read-only.
local _, P = ...

-- Host: the one door out. Host.call(name, args) is one broker request; on failure it raises
-- an error whose message starts with the code (denied, invalid_args, not_found, timeout, failed).
Host = {
  call = P.host_call,
}

-- xpcall: LuaJIT runs a message handler for an error raised in the instruction-count hook while
-- the hook is still marked active, so no hook would fire inside it and an endless handler would
-- run unmetered. Once a limit has tripped, the procedure's handler is skipped and the error
-- passes through. Written in Lua, not C, so coroutines can still yield across xpcall.
do
  local raw_xpcall, tripped = xpcall, P.limit_tripped
  xpcall = function(f, handler, ...)
    return raw_xpcall(f, function(e)
      if tripped() then
        return e
      end
      return handler(e)
    end, ...)
  end
end
