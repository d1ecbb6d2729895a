-- Gherkin, the subset Tactus specifications use: Feature, Background, Scenario (Example),
-- Scenario Outline (Template) with Examples (Scenarios), Given/When/Then/And/But/*, doc strings,
-- data tables, tags, comments and free-text descriptions. Rule: headings are accepted and do not
-- scope anything. parse() returns the feature, or nil and an error naming the line.
local gherkin = {}

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local step_words = { "Given", "When", "Then", "And", "But" }

-- "Given the x" -> "Given", "the x"; "* the x" -> "*", "the x".
local function split_step(line)
  for _, w in ipairs(step_words) do
    if line:sub(1, #w + 1) == w .. " " then
      return w, trim(line:sub(#w + 2))
    end
  end
  if line:sub(1, 2) == "* " then
    return "*", trim(line:sub(3))
  end
end

-- "Scenario Outline: name" -> "Scenario Outline", "name".
local headings = {
  { "Feature:", "feature" },
  { "Background:", "background" },
  { "Scenario Outline:", "outline" },
  { "Scenario Template:", "outline" },
  { "Scenario:", "scenario" },
  { "Example:", "scenario" },
  { "Examples:", "examples" },
  { "Scenarios:", "examples" },
  { "Rule:", "rule" },
}
local function split_heading(line)
  for _, h in ipairs(headings) do
    if line:sub(1, #h[1]) == h[1] then
      return h[2], trim(line:sub(#h[1] + 1))
    end
  end
end

-- "| a | b\|c |" -> {"a", "b|c"}
local function split_row(line)
  local cells, cell, i = {}, {}, 2
  while i <= #line do
    local c = line:sub(i, i)
    if c == "\\" and i < #line then
      local n = line:sub(i + 1, i + 1)
      cell[#cell + 1] = n == "n" and "\n" or n
      i = i + 2
    elseif c == "|" then
      cells[#cells + 1] = trim(table.concat(cell))
      cell = {}
      i = i + 1
    else
      cell[#cell + 1] = c
      i = i + 1
    end
  end
  if trim(table.concat(cell)) ~= "" then
    return nil
  end
  return cells
end

local function substitute(text, row)
  if type(text) ~= "string" then
    return text
  end
  return (text:gsub("<([^<>]+)>", function(name)
    local v = row[name]
    return v ~= nil and v or "<" .. name .. ">"
  end))
end

local function expand_outline(outline, out)
  if #outline.examples == 0 then
    return nil, { line = outline.line, message = "Scenario Outline '" .. outline.name .. "' has no Examples" }
  end
  local n = 0
  for _, ex in ipairs(outline.examples) do
    local header = ex.rows[1]
    if not header then
      return nil, { line = ex.line, message = "Examples need a header row and at least one row of values" }
    end
    if #ex.rows < 2 then
      return nil, { line = ex.line, message = "Examples have a header row but no row of values" }
    end
    for r = 2, #ex.rows do
      local row, values = {}, {}
      for c, name in ipairs(header.cells) do
        row[name] = ex.rows[r].cells[c]
        values[#values + 1] = name .. "=" .. tostring(ex.rows[r].cells[c])
      end
      n = n + 1
      local name = substitute(outline.name, row)
      if name == outline.name then
        name = outline.name .. " (" .. table.concat(values, ", ") .. ")"
      end
      local steps = {}
      for i, s in ipairs(outline.steps) do
        local table_rows
        if s.table then
          table_rows = {}
          for j, cells in ipairs(s.table) do
            table_rows[j] = {}
            for k, cell in ipairs(cells) do
              table_rows[j][k] = substitute(cell, row)
            end
          end
        end
        steps[i] = {
          keyword = s.keyword,
          word = s.word,
          text = substitute(s.text, row),
          line = s.line,
          doc = substitute(s.doc, row),
          table = table_rows,
        }
      end
      out[#out + 1] = {
        name = name,
        outline = outline.name,
        line = ex.rows[r].line,
        tags = outline.tags,
        steps = steps,
      }
    end
  end
  return n
end

-- text: the Gherkin; first_line: the file line of its first line (error and step lines are
-- file lines). Returns {name, line, background = steps, scenarios = {...}} or nil, {line, message}.
function gherkin.parse(text, first_line)
  first_line = first_line or 1
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = (l:gsub("\r$", ""))
  end
  local feature
  local container -- the scenario, outline or background steps go to
  local scenarios = {} -- scenarios and outlines, in order
  local examples -- the Examples block rows go to
  local last_step
  local tags = {}
  local i = 1
  local function fail(n, message)
    return nil, { line = first_line + n - 1, message = message }
  end
  while i <= #lines do
    local raw = lines[i]
    local line = trim(raw)
    local at = first_line + i - 1
    if line == "" or line:sub(1, 1) == "#" then
      -- blank or comment
    elseif line:sub(1, 1) == "@" then
      for tag in line:gmatch("@[^%s@]+") do
        tags[#tags + 1] = tag
      end
    elseif line:sub(1, 3) == '"""' or line:sub(1, 3) == "```" then
      local fence = line:sub(1, 3)
      if not last_step or examples then
        return fail(i, "a doc string must follow a step")
      end
      local indent = #raw:match("^(%s*)")
      local body = {}
      local j = i + 1
      while j <= #lines and trim(lines[j]) ~= fence do
        local l = lines[j]
        -- Lines lose the indentation of the opening delimiter, as in Cucumber.
        local lead = #l:match("^(%s*)")
        body[#body + 1] = l:sub(math.min(lead, indent) + 1)
        j = j + 1
      end
      if j > #lines then
        return fail(i, "doc string opened here is not closed with " .. fence)
      end
      last_step.doc = table.concat(body, "\n")
      i = j
    elseif line:sub(1, 1) == "|" then
      local cells = split_row(line)
      if not cells then
        return fail(i, "a table row must end with '|'")
      end
      if examples then
        local width = examples.rows[1] and #examples.rows[1].cells
        if width and #cells ~= width then
          return fail(i, "this row has " .. #cells .. " cells; the header has " .. width)
        end
        examples.rows[#examples.rows + 1] = { cells = cells, line = at }
      elseif last_step then
        last_step.table = last_step.table or {}
        local width = last_step.table[1] and #last_step.table[1]
        if width and #cells ~= width then
          return fail(i, "this row has " .. #cells .. " cells; the first row has " .. width)
        end
        last_step.table[#last_step.table + 1] = cells
      else
        return fail(i, "a table must follow a step or Examples:")
      end
    else
      local kind, name = split_heading(line)
      local word, step_text = split_step(line)
      if kind == "feature" then
        if feature then
          return fail(i, "a second Feature: (one Feature per Specification)")
        end
        feature = { name = name, line = at, background = {}, tags = tags }
        tags = {}
        container, examples, last_step = nil, nil, nil
      elseif not feature then
        return fail(i, "expected 'Feature:' before '" .. line .. "'")
      elseif kind == "background" then
        if #scenarios > 0 then
          return fail(i, "Background: must come before the first Scenario")
        end
        container = { steps = feature.background, background = true }
        examples, last_step = nil, nil
      elseif kind == "scenario" or kind == "outline" then
        if name == "" then
          return fail(i, (kind == "outline" and "Scenario Outline:" or "Scenario:") .. " needs a name")
        end
        container = { name = name, line = at, steps = {}, tags = tags, examples = kind == "outline" and {} or nil }
        tags = {}
        scenarios[#scenarios + 1] = container
        examples, last_step = nil, nil
      elseif kind == "examples" then
        if not container or not container.examples then
          return fail(i, "Examples: belongs to a Scenario Outline")
        end
        examples = { line = at, rows = {} }
        container.examples[#container.examples + 1] = examples
        last_step = nil
      elseif kind == "rule" then
        container, examples, last_step = nil, nil, nil
      elseif word then
        if not container then
          return fail(i, "the step '" .. line .. "' is outside a Scenario or Background")
        end
        if examples then
          return fail(i, "a step after Examples: (steps go before the Examples table)")
        end
        if step_text == "" then
          return fail(i, "'" .. word .. "' needs the text of a step")
        end
        local keyword = word
        if word == "And" or word == "But" or word == "*" then
          local prev = container.steps[#container.steps]
          keyword = prev and prev.keyword or "Given"
        end
        last_step = { keyword = keyword, word = word, text = step_text, line = at }
        container.steps[#container.steps + 1] = last_step
      elseif container and (#container.steps > 0 or examples) then
        return fail(i, "expected a step (Given, When, Then, And, But), a table or a doc string, got '" .. line .. "'")
      end
      -- anything else is a description line (after Feature:, Scenario:, ...)
    end
    i = i + 1
  end
  if not feature then
    return fail(1, "expected 'Feature:' (the Specification is empty)")
  end
  local out = {}
  for _, s in ipairs(scenarios) do
    if s.examples then
      local ok, err = expand_outline(s, out)
      if not ok then
        return nil, err
      end
    else
      out[#out + 1] = { name = s.name, line = s.line, tags = s.tags, steps = s.steps }
    end
  end
  feature.scenarios = out
  return feature
end

return gherkin
