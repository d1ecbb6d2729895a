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
