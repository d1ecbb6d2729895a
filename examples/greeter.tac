-- greeter.tac: an agent that greets someone and says when it is done.
-- Run it with a key:  OPENAI_API_KEY=... build/tactus run examples/greeter.tac --param name=Ada
local done = require("tactus.tools.done")

greeter = Agent {
  model = "openai/gpt-4o-mini",
  system_prompt = "You greet {input.name} in one short, warm sentence. "
    .. "When you have greeted them, call the done tool.",
  initial_message = "Please greet {input.name}.",
  tools = { done },
  temperature = 0.2,
  max_tokens = 200,
}

Procedure {
  input = { name = field.string{ required = true, description = "who to greet" } },
  output = {
    greeting = field.string{ required = true },
    turns = field.integer{},
  },
  function(input)
    local turn = greeter()
    local greeting = turn.output
    local turns = 1
    -- Give the model a few turns to call done; it does not stop the procedure by itself.
    while not done.called() and turns < 3 do
      turn = greeter("Please call the done tool now.")
      turns = turns + 1
      greeting = greeting or turn.output
    end
    Log.info("greeted", { name = input.name, turns = turns })
    return { greeting = greeting, turns = turns }
  end,
}

Specification([[
Feature: Greeting
  Scenario: The agent greets and calls done
    Given the input name is "Ada"
    And the agent "greeter" responds with "Hello, Ada! Lovely to meet you."
    And the agent "greeter" calls tool "done" with args {"reason": "greeted Ada"}
    When the procedure runs
    Then the procedure should complete successfully
    And the done tool should be called exactly 1 time
    And the output greeting should match pattern "^Hello, Ada"
    And the output turns should be 1
    And the total iterations should be less than 2

  Scenario: A model that never calls done gets three turns
    Given the input name is "Bo"
    And the agent "greeter" responds with "Hi Bo!"
    Then the done tool should not be called
    And the output turns should be 3
    And the output greeting should fuzzy match "hi bo" with threshold 0.9

  Scenario: The name is required
    When the procedure runs
    Then the procedure should fail
]])
