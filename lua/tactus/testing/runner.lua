-- Specifications (docs/testing.md): Specification([[Gherkin]]), Step("text", fn), Mocks {...}
-- and Evaluation {...} are collected while the file runs; `tactus validate` lists the scenarios
-- (a Gherkin error fails it with its file:line), and `tactus test` runs one scenario per VM:
-- setup steps first, then the file, then each step in order. The report is the run's result.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local declared = require("tactus.dsl.specs")
local host = require("tactus.host")
local mocks = require("tactus.testing.mocks")

local runner = {}

-- The file's declarations, recorded by the language (lua/tactus/dsl/specs.lua).
local specs, custom = declared.texts(), declared.steps()
-- tactus run --mock: Mocks {...} and default replies answer the agents.
function runner.mock_run(config)
  mocks.set_config(config)
  mocks.activate(false, true)
  host.install_mocks(mocks)
end

-- Every scenario of every Specification, Background steps first; raises "file:line: ..." for
-- a Gherkin error. Returns {scenarios = {...}, evaluation = {...}} or nil with no Specification.
function runner.list()
  if #specs == 0 then
    local ev = runner.evaluations()
    return ev and { scenarios = {}, evaluations = ev } or nil
  end
  local gherkin = require("tactus.testing.gherkin")
  local out = {}
  for _, spec in ipairs(specs) do
    local line, chunkname = P.source_line(spec.text)
    local feature, err = gherkin.parse(spec.text, line or 1)
    if not feature then
      -- An empty text has no place of its own in the source: the file is named alone.
      local at = line and (":" .. err.line) or ""
      error((chunkname or "?") .. at .. ": Specification: " .. err.message, 0)
    end
    for _, sc in ipairs(feature.scenarios) do
      local steps = {}
      for _, st in ipairs(feature.background) do
        steps[#steps + 1] = st
      end
      for _, st in ipairs(sc.steps) do
        steps[#steps + 1] = st
      end
      out[#out + 1] = { feature = feature.name, name = sc.name, outline = sc.outline, line = sc.line, steps = steps }
    end
  end
  return { scenarios = out, evaluation = declared.evaluation_settings(), evaluations = runner.evaluations() }
end

-- A custom step for text: def, captures. Exact text first, then the text as a Lua pattern
-- (Step("(%d+) items are left", function(ctx, n) ... end)).
local function find_custom(text)
  for _, c in ipairs(custom) do
    if c.text == text then
      return c, {}
    end
  end
  for _, c in ipairs(custom) do
    local ok, caps = pcall(function()
      return { text:match("^" .. c.text .. "$") }
    end)
    if ok and caps[1] ~= nil then
      return c, caps
    end
  end
end

local function custom_texts()
  local out = {}
  for i, c in ipairs(custom) do
    out[i] = c.text
  end
  return out
end

-- Raises again an error caught while a limit had tripped: limits end the run, not a step.
local function pass_limits(ok, err)
  if not ok and P.limit_tripped() then
    error(err, 0)
  end
end

-- Runs options.scenario (as listed) against the file's chunk. env: make_input, run_main,
-- init_state, has_main, check_script_output (lua/prelude.lua). Returns the scenario's report.
function runner.run_scenario(chunk, raw_input, options, env)
  local steps = require("tactus.testing.steps")
  local sc = options.scenario
  if type(sc) ~= "table" or type(sc.steps) ~= "table" then
    error("test: no scenario given", 0)
  end
  mocks.set_config(options.mock_config)
  mocks.activate(true, options.mock == true)
  host.install_mocks(mocks)
  local world = { input = {}, ran = false }
  for k, v in pairs(raw_input or {}) do
    world.input[k] = v
  end
  local report = { feature = sc.feature, name = sc.name, line = sc.line, steps = {} }
  local failed
  local function fail(i, err)
    report.steps[i].status = "failed"
    report.steps[i].error = steps.text_of(err)
    failed = failed or i
  end

  -- Setup steps (input, mocks, human answers) hold wherever they stand. Each step's built-in
  -- match is kept for the walk below.
  local builtin = {}
  for i, st in ipairs(sc.steps) do
    report.steps[i] = { keyword = st.word or st.keyword, text = st.text, line = st.line }
    local def, caps = steps.find(st.text)
    builtin[i] = def and { def = def, caps = caps }
    if def and def.setup and not failed then
      local ok, err = pcall(def.fn, world, unpack(caps))
      pass_limits(ok, err)
      if ok then
        report.steps[i].status = "passed"
      else
        fail(i, err)
      end
    end
  end

  local input = env.make_input(world.input)
  world.input = input
  rawset(_G, "input", input)
  world.state = function()
    return rawget(_G, "state")
  end
  if not failed then
    local loaded, result = pcall(chunk, input)
    pass_limits(loaded, result)
    if not env.has_main() then
      -- Script mode: running the file was running the procedure.
      world.ran = true
      world.ok = loaded
      if loaded then
        world.ok, world.output = pcall(env.check_script_output, result)
        pass_limits(world.ok, world.output)
        if not world.ok then
          world.error, world.output = steps.text_of(world.output), nil
        end
      else
        world.error = steps.text_of(result)
      end
    elseif not loaded then
      report.status = "failed"
      report.error = "the file failed to load: " .. steps.text_of(result)
      for _, s in ipairs(report.steps) do
        s.status = s.status or "skipped"
      end
      return report
    end
  end
  world.run = function()
    if world.ran then
      return
    end
    world.ran = true
    local ok, found, result = pcall(env.run_main, input, rawget(_G, "main"), env.init_state)
    pass_limits(ok, found)
    world.ok = ok
    if ok then
      world.output = result
    else
      world.error = steps.text_of(found)
    end
  end

  for i, st in ipairs(sc.steps) do
    local entry = report.steps[i]
    if failed then
      entry.status = entry.status or "skipped"
    elseif not entry.status then
      local c, ccaps = find_custom(st.text)
      local ok, err
      if c then
        if st.keyword == "Then" then
          world.run() -- a Then step checks what the procedure did
        end
        local ctx = setmetatable({ input = input, doc = st.doc, table = st.table, run = world.run }, {
          __index = function(_, k)
            if k == "output" then
              return world.output
            elseif k == "state" then
              return world.state()
            elseif k == "ok" then
              return world.ok
            elseif k == "error" then
              return world.error
            end
          end,
        })
        ok, err = pcall(c.fn, ctx, unpack(ccaps))
      else
        local found = builtin[i]
        if found then
          ok, err = pcall(found.def.fn, world, unpack(found.caps))
        else
          entry.status = "undefined"
          entry.error = 'undefined step; the closest known step is "' .. steps.suggest(st.text, custom_texts()) .. '"'
          failed = i
        end
      end
      if entry.status == nil then
        pass_limits(ok, err)
        if ok then
          entry.status = "passed"
        else
          fail(i, err)
        end
      end
    end
  end
  report.status = failed and "failed" or "passed"
  if failed then
    report.failed_step = failed
  end
  return report
end

-- evaluations({...}) as declared, for the listing: the dataset's cases (name, inputs,
-- expected_output), the evaluators, thresholds and runs. Plain data: `tactus eval` runs each
-- case with its inputs as the run's input (run_case).
function runner.evaluations()
  local set = declared.evaluation_set()
  if not set then
    return nil
  end
  local cases = {}
  for i, c in ipairs(set.dataset or {}) do
    cases[i] = { name = type(c.name) == "string" and c.name or ("case " .. i), inputs = c.inputs or {}, expected_output = c.expected_output }
  end
  local evs = require("tactus.testing.evaluators")
  for i, e in ipairs(set.evaluators or {}) do
    if not evs.known(e.type) then
      error("evaluations: evaluator " .. i .. " has an unknown type '" .. tostring(e.type) .. "'", 0)
    end
  end
  return {
    cases = cases,
    evaluators = #(set.evaluators or {}),
    runs = set.runs,
    thresholds = type(set.thresholds) == "table" and set.thresholds or nil,
    dataset_file = set.dataset_file,
  }
end

-- One run of case options.case (1-based) of the evaluations: the procedure runs on the input
-- the CLI gives (the case's inputs), mocked under --mock, then every evaluator judges it.
-- Returns {case, ok, error, results = {{type, field, passed, reason}}}.
function runner.run_case(chunk, raw_input, options, env)
  mocks.set_config(options.mock_config)
  mocks.activate(options.mock == true, options.mock == true)
  host.install_mocks(mocks)
  local input = env.make_input(raw_input or {})
  rawset(_G, "input", input)
  local ok, result = pcall(chunk, input)
  pass_limits(ok, result)
  local output, err = nil, nil
  if ok and env.has_main() then
    local found
    ok, found, output = pcall(env.run_main, input, rawget(_G, "main"), env.init_state)
    pass_limits(ok, found)
    if not ok then
      err = found
    end
  elseif ok then
    ok, output = pcall(env.check_script_output, result)
    pass_limits(ok, output)
    if not ok then
      err, output = output, nil
    end
  else
    err = result
  end
  local set = declared.evaluation_set() or {}
  local case = (set.dataset or {})[options.case] or {}
  local report = { case = options.case, ok = ok, error = err ~= nil and tostring(err) or nil }
  if ok then
    report.results = require("tactus.testing.evaluators").run(set.evaluators, {
      output = output,
      expected = case.expected_output,
      input = input,
      state = rawget(_G, "state"),
      mock = options.mock == true,
    })
  end
  return report
end

return runner
