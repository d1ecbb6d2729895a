-- tactus.io.csv: RFC 4180 text <-> Lua values, and CSV files through the broker's file tools.
--
--   parse(text[, {separator = ","}])   -> records, each an array of strings
--   format(records[, {separator}])     -> text
--   decode(text[, {separator}])        -> rows keyed by the header (the first record)
--   encode(rows[, {headers, separator}]) -> text, the header record first
--   read(path[, opts]) = decode(file content); write(path, rows[, opts]) = file of encode(...)
--   with_separator(sep[, name])        -> this same API with another default separator
--                                         (tactus.io.tsv is with_separator("\t"))
--
-- Parsing: fields are split by the separator, records by CRLF or LF; the last record may lack a
-- line break, and a final line break does not start another record (so "" has no records and an
-- empty line is a record of one empty field). A field may be quoted with "; inside, "" is a
-- quote and the separator, CR and LF are plain text. A lone CR outside quotes is plain text.
-- Unquoted fields are kept as they are, spaces included. A quote inside an unquoted field, text
-- between a closing quote and the separator, or a quoted field never closed is an error naming
-- the record and field ("csv: record 3, field 2: unexpected quote").
--
-- Headers: empty or duplicate names are errors, and so is a record with a different number of
-- fields than the header. Every value decoded is a string (an empty field is "").
--
-- Encoding: the headers are opts.headers (in that order; keys of a row not listed are left out)
-- or else the union of the rows' keys, sorted. Strings are written as they are, numbers as
-- tostring writes them but integers without a fraction (1 -> "1", 1.5 -> "1.5", and as many
-- digits as it takes to read the same number back), booleans as "true"/"false", a missing value
-- as an empty field; a table or function value is an error. A field is quoted when it holds the
-- separator, a quote, CR or LF, or starts or ends with a space; a record of a single empty field
-- is written as "". Records end with CRLF.
local _, P = ...
local require = P.require -- the whole of tactus.*; procedures get the public part
local module_name, P = ...
local host = require("tactus.host")

local byte, find, sub, format = string.byte, string.find, string.sub, string.format
local concat, sort = table.concat, table.sort

local QUOTE, LF, CR = 34, 10, 13

-- Errors in the data: no position (it is the text that is wrong, not a line of the caller).
local function fail(label, fmt, ...)
  error(label .. ": " .. format(fmt, ...), 0)
end

local function line_of(text, pos)
  local line = 1
  for _ in sub(text, 1, pos - 1):gmatch("\n") do
    line = line + 1
  end
  return line
end

-- The separator, checked: one byte, not a quote, CR or LF.
local function separator_of(label, opts, default)
  local sep = opts and opts.separator
  if sep == nil then
    return default
  end
  if type(sep) ~= "string" or #sep ~= 1 or sep == '"' or sep == "\r" or sep == "\n" then
    fail(label, "the separator must be one character other than a quote, CR or LF")
  end
  return sep
end

local function parse(label, text, sep)
  local records = {}
  local n = #text
  if n == 0 then
    return records
  end
  local sepb = byte(sep)
  -- The end of an unquoted field: the separator, LF, or a quote (an error there).
  local stop_class = "[" .. (find(sep, "^%w") and sep or "%" .. sep) .. '\n"]'
  local record, pos = {}, 1
  while true do
    local field, ends -- ends: "sep", "eol" or "eof"
    if byte(text, pos) == QUOTE then
      local start, parts, p = pos, {}, pos + 1
      while true do
        local q = find(text, '"', p, true)
        if not q then
          fail(
            label,
            "record %d, field %d: quoted field starting on line %d is not closed",
            #records + 1,
            #record + 1,
            line_of(text, start)
          )
        end
        if byte(text, q + 1) == QUOTE then
          parts[#parts + 1] = sub(text, p, q) -- up to and with one quote
          p = q + 2
        else
          parts[#parts + 1] = sub(text, p, q - 1)
          p = q + 1
          break
        end
      end
      field = concat(parts)
      local c = byte(text, p)
      if c == nil then
        ends, pos = "eof", p
      elseif c == sepb then
        ends, pos = "sep", p + 1
      elseif c == LF then
        ends, pos = "eol", p + 1
      elseif c == CR and byte(text, p + 1) == LF then
        ends, pos = "eol", p + 2
      else
        fail(label, "record %d, field %d: text after the closing quote", #records + 1, #record + 1)
      end
    else
      local e = find(text, stop_class, pos)
      if not e then
        field, ends, pos = sub(text, pos), "eof", n + 1
      else
        local c = byte(text, e)
        if c == QUOTE then
          fail(label, "record %d, field %d: unexpected quote", #records + 1, #record + 1)
        end
        field = sub(text, pos, e - 1)
        pos = e + 1
        if c == LF then
          ends = "eol"
          if byte(field, -1) == CR then
            field = sub(field, 1, -2)
          end
        else
          ends = "sep"
        end
      end
    end
    record[#record + 1] = field
    if ends ~= "sep" then
      records[#records + 1] = record
      if ends == "eof" or pos > n then
        return records
      end
      record = {}
    end
  end
end

-- Numbers: integers without a fraction; otherwise the shortest of %.14g/%.17g that reads back.
local function number_text(v)
  if v ~= v or v == math.huge or v == -math.huge then
    return tostring(v)
  end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return format("%d", v)
  end
  local s = format("%.14g", v)
  if tonumber(s) ~= v then
    s = format("%.17g", v)
  end
  return s
end

-- where: a function giving the error's place ("record 2, field 3" / "row 2, field \"name\"").
local function field_text(label, v, where)
  local t = type(v)
  if t == "string" then
    return v
  elseif t == "number" then
    return number_text(v)
  elseif t == "boolean" then
    return v and "true" or "false"
  elseif v == nil then
    return ""
  end
  fail(label, "%s: a %s cannot be a field value", where(), t)
end

local function quoted(s, sep)
  if
    find(s, sep, 1, true)
    or find(s, '[\r\n"]')
    or byte(s, 1) == 32
    or byte(s, -1) == 32
  then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

-- One record's line (without its CRLF); values already strings.
local function record_line(fields, sep)
  if #fields == 1 and fields[1] == "" then
    return '""'
  end
  local out = {}
  for i = 1, #fields do
    out[i] = quoted(fields[i], sep)
  end
  return concat(out, sep)
end

local function format_records(label, records, sep)
  local lines = {}
  for r = 1, #records do
    local record = records[r]
    if type(record) ~= "table" then
      fail(label, "record %d is not a table", r)
    end
    if #record == 0 then
      fail(label, "record %d has no fields", r)
    end
    local fields = {}
    for f = 1, #record do
      fields[f] = field_text(label, record[f], function()
        return format("record %d, field %d", r, f)
      end)
    end
    lines[r] = record_line(fields, sep) .. "\r\n"
  end
  return concat(lines)
end

-- Header names: strings, not empty, not repeated. where(i) names header i in an error.
local function check_headers(label, headers, where)
  local seen = {}
  for i = 1, #headers do
    local h = headers[i]
    if type(h) ~= "string" then
      fail(label, "%s: a header must be a string, not a %s", where(i), type(h))
    end
    if h == "" then
      fail(label, "%s: empty header", where(i))
    end
    if seen[h] then
      fail(label, "%s: duplicate header %q", where(i), h)
    end
    seen[h] = i
  end
end

local function decode(label, text, sep)
  local records = parse(label, text, sep)
  local rows = {}
  local headers = records[1]
  if not headers then
    return rows
  end
  check_headers(label, headers, function(i)
    return format("record 1, field %d", i)
  end)
  for r = 2, #records do
    local record = records[r]
    if #record ~= #headers then
      fail(
        label,
        "record %d has %d field%s, the header has %d",
        r,
        #record,
        #record == 1 and "" or "s",
        #headers
      )
    end
    local row = {}
    for i = 1, #headers do
      row[headers[i]] = record[i]
    end
    rows[r - 1] = row
  end
  return rows
end

local function encode(label, rows, headers, sep)
  for r = 1, #rows do
    if type(rows[r]) ~= "table" then
      fail(label, "row %d is not a table", r)
    end
  end
  if headers then
    check_headers(label, headers, function(i)
      return format("headers[%d]", i)
    end)
  else
    local seen = {}
    headers = {}
    for r = 1, #rows do
      for k in pairs(rows[r]) do
        if type(k) ~= "string" then
          fail(label, "row %d: key %s is not a string, so it cannot be a header", r, tostring(k))
        end
        if not seen[k] then
          seen[k] = true
          headers[#headers + 1] = k
        end
      end
    end
    sort(headers)
  end
  if #headers == 0 then
    if #rows == 0 then
      return ""
    end
    fail(label, "no headers (the rows have no keys)")
  end
  local lines = { record_line(headers, sep) .. "\r\n" }
  for r = 1, #rows do
    local row, fields = rows[r], {}
    for i = 1, #headers do
      fields[i] = field_text(label, row[headers[i]], function()
        return format("row %d, field %q", r, headers[i])
      end)
    end
    lines[r + 1] = record_line(fields, sep) .. "\r\n"
  end
  return concat(lines)
end

-- The public API for one default separator. name ("tactus.io.csv") prefixes argument errors;
-- its last part ("csv") prefixes errors in the data.
local function make(default_sep, name)
  local label = name:match("[^.]+$")
  local m = {}

  local function check(fn, what, v, want, opts)
    if type(v) ~= want then
      error(format("%s.%s: %s must be a %s", name, fn, what, want), 3)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error(format("%s.%s: options must be a table", name, fn), 3)
    end
  end

  local function headers_of(fn, opts)
    local headers = opts and opts.headers
    if headers ~= nil and type(headers) ~= "table" then
      error(format("%s.%s: headers must be a table (an array of names)", name, fn), 3)
    end
    return headers
  end

  function m.parse(text, opts)
    check("parse", "text", text, "string", opts)
    return parse(label, text, separator_of(label, opts, default_sep))
  end

  function m.format(records, opts)
    check("format", "records", records, "table", opts)
    return format_records(label, records, separator_of(label, opts, default_sep))
  end

  function m.decode(text, opts)
    check("decode", "text", text, "string", opts)
    return decode(label, text, separator_of(label, opts, default_sep))
  end

  function m.encode(rows, opts)
    check("encode", "rows", rows, "table", opts)
    local headers = headers_of("encode", opts)
    return encode(label, rows, headers, separator_of(label, opts, default_sep))
  end

  -- Files are read and written by the broker (file.read / file.write), inside the run's mounts.
  function m.read(path, opts)
    if opts ~= nil and type(opts) ~= "table" then
      error(name .. ".read: options must be a table", 2)
    end
    local sep = separator_of(label, opts, default_sep)
    local r = host.call("file.read", { path = path }, true)
    return decode(label, r.content, sep)
  end

  function m.write(path, rows, opts)
    check("write", "rows", rows, "table", opts)
    local headers = headers_of("write", opts)
    local text = encode(label, rows, headers, separator_of(label, opts, default_sep))
    host.call("file.write", { path = path, content = text }, true)
  end

  return m
end

local csv = make(",", module_name)

-- with_separator(sep[, name]): the same functions with sep as the default separator; name
-- ("tactus.io.tsv") prefixes their errors (by default, this module's).
function csv.with_separator(sep, name)
  if name ~= nil and type(name) ~= "string" then
    error(module_name .. ".with_separator: name must be a string", 2)
  end
  name = name or module_name
  if sep == nil then
    error(module_name .. ".with_separator: the separator is missing", 2)
  end
  return make(separator_of(name:match("[^.]+$"), { separator = sep }, nil), name)
end

return csv
