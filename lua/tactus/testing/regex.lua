-- A small backtracking regular-expression search for "should match pattern" steps, written in
-- Lua so the VM's instruction budget meters it (a pathological pattern trips the limit, it
-- cannot hang the jail). The common ECMAScript/Python subset: literals, ., [...] with ranges
-- and negation, \d \w \s \D \W \S \b \B, escapes, ^ $, groups (...) (?:...), alternation,
-- * + ? {n} {n,} {n,m} (lazy forms accepted; a search only asks whether a match exists), and a
-- leading (?i). Bytes, not Unicode code points.
local regex = {}

local function class_test(name)
  if name == "d" then
    return function(c) return c >= 48 and c <= 57 end
  elseif name == "w" then
    return function(c)
      return (c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122) or c == 95
    end
  elseif name == "s" then
    return function(c) return c == 32 or (c >= 9 and c <= 13) end
  end
  local inner = class_test(name:lower())
  return function(c) return not inner(c) end
end
local is_word = class_test("w")

local escapes = { n = 10, t = 9, r = 13, f = 12, v = 11 }

-- Parser: pattern string -> node. Errors are raised as "invalid pattern: ...".
local function parse(p, icase)
  local pos = 1
  local function perr(msg)
    error("invalid pattern /" .. p .. "/: " .. msg, 0)
  end
  local function lower(c)
    if icase and c >= 65 and c <= 90 then
      return c + 32
    end
    return c
  end
  local parse_alt

  local function parse_set()
    -- at the char after '['
    local neg = false
    if p:sub(pos, pos) == "^" then
      neg = true
      pos = pos + 1
    end
    local tests, first = {}, true
    while true do
      local c = p:sub(pos, pos)
      if c == "" then
        perr("unclosed [")
      end
      if c == "]" and not first then
        pos = pos + 1
        break
      end
      first = false
      local lo
      if c == "\\" then
        local e = p:sub(pos + 1, pos + 1)
        pos = pos + 2
        if e:match("[dwsDWS]") then
          tests[#tests + 1] = class_test(e)
        else
          lo = escapes[e] or e:byte()
        end
      else
        lo = c:byte()
        pos = pos + 1
      end
      if lo then
        if p:sub(pos, pos) == "-" and p:sub(pos + 1, pos + 1) ~= "]" and p:sub(pos + 1, pos + 1) ~= "" then
          local hc = p:sub(pos + 1, pos + 1)
          local hi
          if hc == "\\" then
            local e = p:sub(pos + 2, pos + 2)
            hi = escapes[e] or e:byte()
            pos = pos + 3
          else
            hi = hc:byte()
            pos = pos + 2
          end
          if hi < lo then
            perr("range out of order in [...]")
          end
          local a, b = lo, hi
          tests[#tests + 1] = function(ch)
            if ch >= a and ch <= b then
              return true
            end
            if icase then
              local alt = (ch >= 65 and ch <= 90) and ch + 32 or ((ch >= 97 and ch <= 122) and ch - 32 or ch)
              return alt >= a and alt <= b
            end
            return false
          end
        else
          local v = lower(lo)
          tests[#tests + 1] = function(ch) return lower(ch) == v end
        end
      end
    end
    return {
      t = "char",
      test = function(ch)
        for _, f in ipairs(tests) do
          if f(ch) then
            return not neg
          end
        end
        return neg
      end,
    }
  end

  local function parse_atom()
    local c = p:sub(pos, pos)
    if c == "(" then
      pos = pos + 1
      if p:sub(pos, pos + 1) == "?:" then
        pos = pos + 2
      elseif p:sub(pos, pos) == "?" then
        perr("only (?:...) groups are supported")
      end
      local node = parse_alt()
      if p:sub(pos, pos) ~= ")" then
        perr("unclosed (")
      end
      pos = pos + 1
      return node
    elseif c == "[" then
      pos = pos + 1
      return parse_set()
    elseif c == "." then
      pos = pos + 1
      return { t = "char", test = function(ch) return ch ~= 10 end }
    elseif c == "^" then
      pos = pos + 1
      return { t = "bol" }
    elseif c == "$" then
      pos = pos + 1
      return { t = "eol" }
    elseif c == "\\" then
      local e = p:sub(pos + 1, pos + 1)
      pos = pos + 2
      if e == "" then
        perr("trailing backslash")
      elseif e:match("[dwsDWS]") then
        return { t = "char", test = class_test(e) }
      elseif e == "b" or e == "B" then
        return { t = "boundary", want = e == "b" }
      end
      local v = lower(escapes[e] or e:byte())
      return { t = "char", test = function(ch) return lower(ch) == v end }
    elseif c == "*" or c == "+" or c == "?" then
      perr("nothing to repeat before '" .. c .. "'")
    end
    pos = pos + 1
    local v = lower(c:byte())
    return { t = "char", test = function(ch) return lower(ch) == v end }
  end

  local function parse_seq()
    local items = {}
    while pos <= #p do
      local c = p:sub(pos, pos)
      if c == "|" or c == ")" then
        break
      end
      local atom = parse_atom()
      local q = p:sub(pos, pos)
      local min, max
      if q == "*" then
        min, max = 0, math.huge
        pos = pos + 1
      elseif q == "+" then
        min, max = 1, math.huge
        pos = pos + 1
      elseif q == "?" then
        min, max = 0, 1
        pos = pos + 1
      elseif q == "{" then
        local a, b, close = p:match("^{(%d*),?(%d*)()}", pos)
        local body = close and p:sub(pos + 1, close - 1)
        if body and body ~= "" and a ~= "" then
          min = tonumber(a)
          max = body:find(",") and (b ~= "" and tonumber(b) or math.huge) or min
          if max < min then
            perr("{n,m} with m < n")
          end
          pos = close + 1
        end
      end
      if min then
        if p:sub(pos, pos) == "?" then
          pos = pos + 1 -- lazy: the same answer for a search
        end
        if atom.t == "bol" or atom.t == "eol" or atom.t == "boundary" then
          perr("nothing to repeat")
        end
        atom = { t = "rep", node = atom, min = min, max = max }
      end
      items[#items + 1] = atom
    end
    return { t = "seq", items = items }
  end

  parse_alt = function()
    local list = { parse_seq() }
    while p:sub(pos, pos) == "|" do
      pos = pos + 1
      list[#list + 1] = parse_seq()
    end
    return #list == 1 and list[1] or { t = "alt", list = list }
  end

  local node = parse_alt()
  if pos <= #p then
    perr("unbalanced )")
  end
  return node
end

-- Continuation-passing backtracking: m(node, i, k) is true if node matches at i and k(after)
-- is true.
local function matcher(s)
  local len = #s
  local m
  local function seq(items, idx, i, k)
    if idx > #items then
      return k(i)
    end
    return m(items[idx], i, function(j)
      return seq(items, idx + 1, j, k)
    end)
  end
  m = function(n, i, k)
    local t = n.t
    if t == "char" then
      return i <= len and n.test(s:byte(i)) and k(i + 1)
    elseif t == "seq" then
      return seq(n.items, 1, i, k)
    elseif t == "alt" then
      for _, alt in ipairs(n.list) do
        if m(alt, i, k) then
          return true
        end
      end
      return false
    elseif t == "rep" then
      local function try(count, j)
        if count < n.max and m(n.node, j, function(j2)
          return j2 ~= j and try(count + 1, j2)
        end) then
          return true
        end
        return count >= n.min and k(j)
      end
      return try(0, i)
    elseif t == "bol" then
      return i == 1 and k(i)
    elseif t == "eol" then
      return i == len + 1 and k(i)
    elseif t == "boundary" then
      local before = i > 1 and is_word(s:byte(i - 1))
      local after = i <= len and is_word(s:byte(i))
      return ((before ~= after) == n.want) and k(i)
    end
    return false
  end
  return m
end

-- Compiles pattern; raises "invalid pattern /p/: why".
function regex.compile(pattern)
  local icase = false
  if pattern:sub(1, 4) == "(?i)" then
    icase, pattern = true, pattern:sub(5)
  end
  local node = parse(pattern, icase)
  return function(s)
    local m = matcher(s)
    local function done()
      return true
    end
    for start = 1, #s + 1 do
      if m(node, start, done) then
        return true
      end
    end
    return false
  end
end

-- True if pattern matches somewhere in s.
function regex.search(pattern, s)
  return regex.compile(pattern)(s)
end

return regex
