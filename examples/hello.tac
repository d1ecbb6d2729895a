-- hello.tac: the smallest procedure. Script mode: the chunk's return value is the result.
-- Its behaviour, checked by `tactus test examples/hello.tac` (a script declares its
-- Specification before its first Host.call, so `tactus validate` can list the scenarios).
Specification([[
Feature: Hello
  Scenario: Greets the world by default
    When the procedure runs
    Then the procedure should complete successfully
    And the output greeting should be "Hello, world!"
    And the output ping should be "hello.tac"
    And the host.ping tool should be called exactly 1 time

  Scenario Outline: Greets by name
    Given the input name is "<name>"
    Then the output greeting should be "Hello, <name>!"
    Examples:
      | name |
      | Ada  |
      | Grace Hopper |
]])

local name = input.name or "world"
print("Hello, " .. name .. "!")

-- Host.call is the one way out of the VM; host.ping just echoes its arguments.
local pong = Host.call("host.ping", { from = "hello.tac" })

return { greeting = "Hello, " .. name .. "!", ping = pong.from }
