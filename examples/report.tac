-- report.tac: reads a CSV from the workspace through the broker's file tools, summarises it,
-- and writes the summary back as JSON. The sidecar (report.tac.yml) allows the file tools.
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
