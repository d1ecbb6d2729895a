-- report.tac: reads a CSV from the workspace through the broker's file tools, summarises it,
-- and writes the summary back as JSON. The sidecar (report.tac.yml) allows the file tools.
-- `tactus test examples/report.tac` reads the real sales.csv and mocks the write.
Specification([[
Feature: Sales report
  Scenario: Sums the sales by region
    Given the tool "file.write" returns {}
    When the procedure runs
    Then the output rows should be 3
    And the output total should be 245
    And the output by_region should be {"north": 165, "south": 80}
    And the tool "file.write" should be called with args {"path": "summary.json"}
]])

local csv = require("tactus.io.csv")
local json = require("tactus.io.json")

local rows = csv.read("sales.csv")
local total, by_region = 0, {}
for _, row in ipairs(rows) do
  local amount = tonumber(row.amount)
  total = total + amount
  by_region[row.region] = (by_region[row.region] or 0) + amount
end
print(("%d rows, total %d"):format(#rows, total))

local summary = { rows = #rows, total = total, by_region = by_region }
json.write("summary.json", summary)
return summary
