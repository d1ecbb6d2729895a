-- The prelude: runs in every VM after the restricted environment is built and before the
-- procedure. It receives the private primitives table; what it defines as globals is what the
-- procedure sees. Tables listed in sandbox_env.cpp (freeze_prelude_globals) are made read-only.
local _, P = ...

-- Host: the one door out. Host.call(name, args) is one broker request; on failure it raises
-- an error whose message starts with the code (denied, invalid_args, not_found, timeout, failed).
Host = {
  call = P.host_call,
}
