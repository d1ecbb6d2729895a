-- A procedure in Python Tactus's 0.10 form (docs/language.md, "Coming from Python Tactus"):
-- agent(), tool(), stages, procedure("main", {...}, fn) reading the global input, toolsets,
-- and Python-style specification steps. Its sidecar gives the agents' defaults.
tool("word_count", {
    description = "Count the words in a text",
    parameters = { text = { type = "string", required = true } },
}, function(args)
    local n = 0
    for _ in args.text:gmatch("%S+") do n = n + 1 end
    return n
end)

agent("summarizer", {
    system_prompt = "Summarize the text in one sentence, then call done with the summary.",
    initial_message = "{input.text}",
    toolsets = { "word_count", "done" },
})

stages({ "reading", "summarizing", "done" })

main = procedure("main", {
    input = {
        text = { type = "string", default = "Tactus runs agent procedures in a jail." },
    },
    output = {
        summary = { type = "string", required = true },
        words = { type = "number", required = true },
    },
}, function()
    Stage.set("reading")
    local words = Tool.get("word_count")({ text = input.text })
    Stage.set("summarizing")
    repeat
        Summarizer.turn()
    until Tool.called("done") or Iterations.exceeded(3)
    Stage.set("done")
    return { summary = Tool.last_call("done").args.reason, words = words }
end)

specifications([[
Feature: Python Tactus dialect
  Scenario: the summarizer calls done
    Given the procedure has started
    When the procedure runs
    Then the done tool should be called exactly once
    And the stage should transition from reading to summarizing
    And the stage should be done
    And the output words should be 7
    And the output should contain summary
]])
