-- tactus.io.tsv: tab-separated values, the API of tactus.io.csv with "\t" as the separator
-- (parse, format, decode, encode, read, write; the same quoting rules, errors start "tsv: ").
local name, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part

return require("tactus.io.csv").with_separator("\t", name)
