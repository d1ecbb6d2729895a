-- The testing declarations of a file (docs/testing.md): Specification([[Gherkin]]),
-- Step("text", fn), Mocks {...} and Evaluation {...}. They are part of the language, so every
-- mode accepts them; they are only checked and recorded here. `tactus validate`, `tactus test`
-- and `tactus eval` read them through the testing runner (lua/tactus/testing/runner.lua),
-- which the language never loads itself.
local specs = {}

local texts = {} -- {text}
local steps = {} -- {text, fn}
local mock_tables = {} -- Mocks {...} tables, in order
local evaluation

function specs.specification(text, level)
  if type(text) ~= "string" then
    error("Specification([[ Gherkin ]]) needs a string", level + 1)
  end
  -- Only stored here: a plain run never pays for parsing.
  texts[#texts + 1] = { text = text }
end

function specs.step(text, fn, level)
  if type(text) ~= "string" or type(fn) ~= "function" then
    error('Step("text", function(ctx) ... end) needs a text and a function', level + 1)
  end
  steps[#steps + 1] = { text = text, fn = fn }
end

function specs.mocks(t, level)
  if type(t) ~= "table" then
    error("Mocks { ... } needs a table", level + 1)
  end
  for name, entry in pairs(t) do
    if type(name) ~= "string" or (type(entry) ~= "table" and type(entry) ~= "string") then
      error("Mocks: each entry is name = { message = ..., tool_calls = ..., temporal = ..., returns = ... }", level + 1)
    end
  end
  mock_tables[#mock_tables + 1] = t
end

function specs.evaluation(t, level)
  if type(t) ~= "table" then
    error("Evaluation({...}) needs a table", level + 1)
  end
  for _, k in ipairs({ "runs", "threshold" }) do
    if t[k] ~= nil and type(t[k]) ~= "number" then
      error("Evaluation: " .. k .. " must be a number", level + 1)
    end
  end
  if t.threshold and (t.threshold < 0 or t.threshold > 1) then
    error("Evaluation: threshold must be from 0 to 1", level + 1)
  end
  if t.runs and (t.runs < 1 or t.runs % 1 ~= 0) then
    error("Evaluation: runs must be a whole number of at least 1", level + 1)
  end
  evaluation = { runs = t.runs, threshold = t.threshold }
end

-- evaluations({dataset, dataset_file, evaluators, thresholds, runs, parallel}): Python
-- Tactus's evaluation set, checked here and run by `tactus eval`.
local eval_set
function specs.evaluations(t, level)
  if type(t) ~= "table" then
    error("evaluations({...}) needs a table", level + 1)
  end
  for _, k in ipairs({ "dataset", "evaluators", "thresholds" }) do
    if t[k] ~= nil and type(t[k]) ~= "table" then
      error("evaluations: " .. k .. " must be a table", level + 1)
    end
  end
  for i, e in ipairs(t.evaluators or {}) do
    if type(e) ~= "table" or type(e.type) ~= "string" then
      error("evaluations: evaluator " .. i .. " needs a type", level + 1)
    end
  end
  for i, c in ipairs(t.dataset or {}) do
    if type(c) ~= "table" or (c.inputs ~= nil and type(c.inputs) ~= "table") then
      error("evaluations: dataset case " .. i .. " must be a table with inputs = {...}", level + 1)
    end
  end
  if t.runs ~= nil and (type(t.runs) ~= "number" or t.runs < 1 or t.runs % 1 ~= 0) then
    error("evaluations: runs must be a whole number of at least 1", level + 1)
  end
  eval_set = t
end
function specs.evaluation_set()
  return eval_set
end

-- What was declared: the Specification texts, the Step definitions, the Mocks tables and the
-- Evaluation, as recorded (the lists are the recorder's own: read them, do not change them).
function specs.texts()
  return texts
end
function specs.steps()
  return steps
end
function specs.mock_tables()
  return mock_tables
end
function specs.evaluation_settings()
  return evaluation
end

return specs
