-- researcher.tac: an agent with a Lua tool (word_count, runs in the VM) and a host tool
-- (file.read, runs in the broker under the sidecar's rules) that answers from a notes file.
-- Run it with a key:  OPENAI_API_KEY=... build/tactus run examples/researcher.tac
local done = require("tactus.tools.done")

word_count = Tool {
  description = "Count the words in a text.",
  input = { text = field.string{ required = true } },
  function(args)
    local n = 0
    for _ in args.text:gmatch("%S+") do n = n + 1 end
    return { words = n }
  end,
}

researcher = Agent {
  model = "openai/gpt-4o-mini",
  system_prompt = "Answer the question from the file notes.txt (read it with file_read). "
    .. "Use word_count when asked about lengths. Call done when you have the answer.",
  tools = { "file.read", word_count, done },
  temperature = 0,
}

Procedure {
  input = { question = field.string{ default = "How many words are in notes.txt?" } },
  output = {
    answer = field.string{ required = true },
    tools_used = field.array{ items = field.string{} },
  },
  function(input)
    local used, answer = {}, nil
    local turn = researcher(input.question)
    for _ = 1, 5 do
      for _, call in ipairs(turn.tool_calls) do used[#used + 1] = call.name end
      answer = turn.output or answer
      if done.called() then break end
      turn = researcher()
    end
    return { answer = answer or "(no answer)", tools_used = used }
  end,
}

-- `tactus test --mock`: without a scenario's script, the researcher answers from this block.
Mocks {
  researcher = {
    temporal = {
      { message = "Let me read the notes.", tool_calls = { { tool = "file.read", args = { path = "notes.txt" } } } },
      { message = "The notes have 12 words.", tool_calls = { { tool = "done", args = { reason = "answered" } } } },
    },
  },
}

Specification([[
Feature: Research from the notes
  Scenario: Reads the notes, then answers
    When the procedure runs
    Then the procedure should complete successfully
    And the file.read tool should be called
    And the tool "file.read" should be called with args {"path": "notes.txt"}
    And the output answer should be "The notes have 12 words."
    And the output tools_used should be ["file.read", "done"]

  Scenario: Counts words with the Lua tool
    Given the agent "researcher" calls tool "word_count" with args {"text": "hello from the notes"}
    And the agent "researcher" responds with "Four words."
    And the agent "researcher" calls tool "done" with args {"reason": "counted"}
    Then the word_count tool should be called exactly 1 time
    And the output answer should be "Four words."
]])
