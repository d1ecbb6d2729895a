-- hello.tac: the smallest procedure. Script mode: the chunk's return value is the result.
local name = input.name or "world"
print("Hello, " .. name .. "!")

-- Host.call is the one way out of the VM; host.ping just echoes its arguments.
local pong = Host.call("host.ping", { from = "hello.tac" })

return { greeting = "Hello, " .. name .. "!", ping = pong.from }
