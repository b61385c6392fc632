-- search_bench.lua: the search workload pair of the catalog benchmark.
--
-- Driven by test/bench/run.sh (make bench); one script for both arms so that
-- both go through exactly the same client code and the same inputs.
--
-- Workloads (--workload):
--   search        SELECT catalog_api.search_products(q => ..., category_id
--                 => ..., min_price => ..., max_price => ..., sort => ...,
--                 page_size => 20, cursor => ...)                    (ours)
--   search_naive  the query a PostgREST user would write against a plain
--                 table: name (or sku) ILIKE '%q%' served by a pg_trgm GIN
--                 index, category_id = ANY (descendant ids computed by the
--                 client), a price range, ORDER BY, LIMIT 20 OFFSET   (baseline)
-- Commands besides `run`:
--   pool          builds the deep-page pool (see below) and writes it to
--                 --pool_file; run once per benchmark, before the runs
--   mix           prints the first --mix_events queries of thread 0 and the
--                 shares of the mix over them (no database needed)
--
-- The query mix.  Every thread runs its own endless sequence of queries,
-- generated from --seed and its thread id with a private generator (Park and
-- Miller's minimal standard), so the two arms run exactly the same inputs in
-- the same order: the i-th event of thread t is the same query in both arms,
-- whatever each arm's speed.  (sysbench's own generator is not used: the
-- driver draws statement names from it, and the two arms prepare different
-- numbers of statements.)  Each query is made from one published product
-- drawn from a sample of the loaded data (--products_file: one product in
-- 101, with its SKU, leaf category, price and name, the name taken apart
-- into brand, adjective, material, noun and colour with the generator's
-- word lists, read from test/data/sample.sql), so that the words come with
-- the frequency they have in the catalog and the filters agree with the
-- text.  The sequence is made of blocks of 100 events; within each block
-- the attributes below are exact counts, shuffled independently:
--   text     40 one common word of the product: its adjective, a word of its
--               material, of its colour or of its brand, one of the four
--               classes at random ("premium", "steel", "navy", "nordwind");
--            15 two words of the product: its two-word material ("merino
--               wool"), adjective + first material word ("premium
--               stainless"), brand word + last noun word ("nordwind socks")
--               or colour word + last noun word ("navy jumper"), one of the
--               four at random (the last two are not adjacent in the name);
--            15 prefix, the last word typed so far: a word of the product
--               cut to 2 to 6 characters ("merin"), after the word that
--               precedes it in the name in one case of three ("stainless
--               st");
--            10 SKU: the product's SKU (two in five, "NW-SOC-0001234"), its
--               brand-and-type prefix ("NW-SOC"), the SKU without its last
--               two digits ("NW-SOC-00012") or that without the brand
--               ("SOC-00012");
--            10 one typo: a word of the product of 5 or more letters with one
--               substitution, transposition of two adjacent letters or
--               deletion (words of 6 or more letters), never of the first
--               letter, never giving another word of the generator
--               ("premuim", "charcal");
--            10 filters only: no text (q NULL);
--   category 50 with a category filter: the product's department (ids
--               1-12), subcategory (13-108) or leaf (109-492), one level of
--               three at random; 50 without;
--   price    20 with the price range that holds the product's price, one of
--               [0, 10] [10, 25] [25, 50] [50, 100] [100, 250] [250, 500]
--               [500, 1000] [1000, 5000]; 80 without;
--   sort     60 relevance, 10 price_asc, 10 price_desc, 20 newest (a query
--               without text sorted by relevance is sorted newest first, in
--               both arms);
--   depth    10 ask for a page from 11 to 15 (see below), 90 for page 1.
-- `sysbench search_bench.lua ... mix` prints a sequence and its shares.
--
-- Deep pages.  Ours pages with the keyset cursor of the previous page, the
-- baseline with OFFSET.  What is timed is the request for the deep page
-- itself, in both arms: the baseline's LIMIT 20 OFFSET (page - 1) * 20, and
-- ours' call with the next_cursor returned by page - 1.  Walking to the
-- cursor is not timed: the `pool` command runs before the benchmark, draws
-- queries from the same mix (without the stratification) with a page from 11
-- to 15, walks each one with search_products from page 1 (as bench_anon),
-- and keeps those whose page exists (an exact SKU has no page 11) with the
-- cursor that fetches it, until it has --pool_size of them.  The deep tenth
-- of every block takes the place of ten events of the mix above and draws
-- from this pool, the same draws in both arms, so the deep events lean to
-- broad queries (as deep paging does).  Without search_products (the
-- baseline alone, while the function does not exist), --pool_check=0 keeps
-- every candidate unchecked.
--
-- The baseline.  A plain copy of the table, bench.product_plain, with the
-- indexes a careful PostgREST user adds: GIN gin_trgm_ops on name and on
-- sku, btree (status, price, id) and (status, created_at, id) (run.sh adds
-- those that the copy of catalog.product's indexes does not already
-- provide).  One prepared statement per query shape, as PostgREST sends
-- only the filters a request has (plan_cache_mode left at auto, so after
-- five executions a shape may run a generic plan, as with PostgREST's own
-- prepared statements):
--   SELECT p.id, p.sku, p.name, p.price, p.currency, p.status,
--          p.category_id, c.name AS category_name
--   FROM bench.product_plain p JOIN catalog.category c ON c.id = p.category_id
--   WHERE p.status = 'published'
--     [AND p.name ILIKE $q]           '%' || q || '%', with % _ \ escaped;
--                                     p.sku ILIKE for the SKU queries (a
--                                     search box that spots SKU input)
--     [AND p.category_id = ANY ($ids::bigint[])]   the category and all its
--                                     descendants, as category_id=in.(...)
--     [AND p.price >= $min::numeric AND p.price <= $max::numeric]
--   ORDER BY similarity(p.name, $q) DESC, p.id DESC     (relevance with text;
--                                     similarity(p.sku, $q) for SKUs)
--          | p.price, p.id | p.price DESC, p.id DESC
--          | p.created_at DESC, p.id DESC               (newest, or no text)
--   LIMIT 20 OFFSET $offset
-- The whole q is one ILIKE pattern, as a search box sends it: two words
-- match only where they are adjacent in that order, and a typo matches
-- nothing.  The rows are returned as rows (PostgREST would also aggregate
-- them into JSON, which the baseline is spared).
--
-- Ours passes every argument, with NULLIF turning the empty value into NULL
-- (the sysbench pgsql driver cannot send a NULL parameter), and the cursor
-- in up to three parameters that the statement concatenates (the driver
-- limits a parameter to 255 bytes).
--
-- Latency: as in catalog_bench.lua, every event is timed with
-- clock_gettime(CLOCK_MONOTONIC) through the LuaJIT FFI; events starting in
-- the first --warmup seconds of a thread are not recorded; the others are
-- written to <--latfile>.<thread id>, one line per event: latency in ms, the
-- kind of query (common, two, prefix, sku, typo, filters, or deep for a deep
-- page) and the number of items it returned (counted after the clock stops),
-- -1 for a call cancelled by catalog.search_timeout (SQLSTATE 57014): such
-- an event counts as failed, with the time it took to fail, and the run
-- goes on.  Ours must return one row (the jsonb document), the baseline 0 to
-- 20 rows; anything else, or any other error, stops the run.

sysbench.cmdline.options = {
   workload = {"search | search_naive", "search"},
   warmup = {"seconds at the start of each thread whose events are not recorded", 0},
   latfile = {"prefix of the per-thread latency files (empty: do not record)", ""},
   seed = {"seed of the query sequences (each thread derives its own)", 42},
   sample_file = {"the generator test/data/sample.sql (word lists)", ""},
   products_file = {"sample of published products: sku, category id, price, name (tab-separated)", ""},
   categories_file = {"one line per category: id, depth (0 = department), {descendant ids}", ""},
   pool_file = {"the deep-page pool (written by the pool command)", ""},
   pool_size = {"pool command: deep-page queries to find", 200},
   pool_check = {"pool command: 1 walk each candidate with search_products and keep its cursor, 0 keep every candidate unchecked", 1},
   mix_events = {"mix command: events of thread 0 to generate", 10000},
   mix_print = {"mix command: events to print", 40}
}

local PAGE_SIZE = 20
local BLOCK = 100
local CURSOR_CHUNK = 250
local CURSOR_CHUNKS = 3

-- The mix, per block of 100 events.
local KINDS = {{"common", 40}, {"two", 15}, {"prefix", 15}, {"sku", 10}, {"typo", 10}, {"filters", 10}}
local SORTS = {{"relevance", 60}, {"price_asc", 10}, {"price_desc", 10}, {"newest", 20}}
local WITH_CATEGORY = 50
local WITH_PRICE = 20
local DEEP = 10
local DEEP_MIN, DEEP_MAX = 11, 15
local PRICE_RANGES = {{"0", "10"}, {"10", "25"}, {"25", "50"}, {"50", "100"}, {"100", "250"},
                      {"250", "500"}, {"500", "1000"}, {"1000", "5000"}}

------------------------------------------------------------------------------
-- Deterministic generator: Park and Miller's minimal standard (exact in
-- doubles: 48271 * 2^31 < 2^53).
------------------------------------------------------------------------------
local function new_rng(seed)
   local x = seed % 2147483646 + 1
   local r = {}
   function r.next()
      x = (x * 48271) % 2147483647
      return x
   end
   function r.int(lo, hi)
      return lo + r.next() % (hi - lo + 1)
   end
   function r.pick(t)
      return t[r.int(1, #t)]
   end
   function r.weighted(pairs_)
      local total = 0
      for _, p in ipairs(pairs_) do total = total + p[2] end
      local v = r.int(1, total)
      for _, p in ipairs(pairs_) do
         if v <= p[2] then return p[1] end
         v = v - p[2]
      end
   end
   function r.shuffle(t)
      for i = #t, 2, -1 do
         local j = r.int(1, i)
         t[i], t[j] = t[j], t[i]
      end
      return t
   end
   for _ = 1, 8 do r.next() end
   return r
end

local function thread_seed(seed, stream)
   return (seed * 1000003 + (stream + 1) * 7919) % 2147483646
end

------------------------------------------------------------------------------
-- Word lists, read from the generator, and the sample products.
------------------------------------------------------------------------------
local function split(s, sep)
   local t = {}
   for part in (s .. sep):gmatch("(.-)" .. sep) do t[#t + 1] = part end
   return t
end

-- The words of s made of letters only, at least minlen (3) of them, lower case.
local function alpha_words(s, minlen)
   local t = {}
   for w in (s or ""):gmatch("%S+") do
      if w:match("^%a+$") and #w >= (minlen or 3) then t[#t + 1] = w:lower() end
   end
   return t
end

local function set_of(list)
   local s = {}
   for _, v in ipairs(list) do s[v] = true end
   return s
end

-- From the generator: the brands, the colours and every material (full
-- names, to take product names apart), and the set of all its words (a
-- typo must not be one of them).
local function load_words(path)
   local f = assert(io.open(path, "r"), "cannot open " .. path)
   local text = f:read("*a")
   f:close()
   local arrays = {}
   for body, name in text:gmatch("'{([^}]*)}'::text%[%] AS (%w+)") do arrays[name] = split(body, ",") end
   assert(arrays.brands and arrays.adjectives and arrays.colours,
          path .. ": brands, adjectives or colours not found")
   local W = {brands = arrays.brands, colours = set_of(arrays.colours), materials = {}, known = {},
              words5 = {}}
   local nsub = 0
   local function know(s)
      for _, w in ipairs(alpha_words(s, 1)) do W.known[w] = true end
   end
   for _, l in ipairs({arrays.brands, arrays.adjectives, arrays.colours}) do
      for _, v in ipairs(l) do know(v) end
   end
   for line in text:gmatch("[^\n]+") do
      local sub, mats, leaves =
         line:match("^%(%d+, %d+, '([^']*)', '{([^}]*)}', '{[^}]*}', %a+, '{([^}]*)}'%)")
      if mats then
         nsub = nsub + 1
         know(sub)
         for _, m in ipairs(split(mats, ",")) do
            W.materials[m] = true
            know(m)
         end
         for _, leaf in ipairs(split(leaves, ",")) do
            for _, part in ipairs(split(leaf:gsub("%*", ""), "|")) do know(part) end
         end
      end
   end
   assert(nsub == 96, path .. ": expected 96 subcategories, found " .. nsub)
   for w in pairs(W.known) do
      if #w >= 5 then W.words5[#W.words5 + 1] = w end
   end
   table.sort(W.words5)
   return W
end

local function read_lines(path, what)
   local t = {}
   local f = assert(io.open(path, "r"), "cannot open " .. path)
   for line in f:lines() do
      if line ~= "" then t[#t + 1] = line end
   end
   f:close()
   assert(#t > 0, path .. " has no " .. what)
   return t
end

-- Categories: ids[id] = "{descendant ids}", depth[id], up[id] = {[0] =
-- department, [1] = subcategory, [2] = leaf} for a leaf, by_depth[d].
local function load_categories(path)
   local C = {ids = {}, depth = {}, up = {}, by_depth = {[0] = {}, [1] = {}, [2] = {}}}
   for _, line in ipairs(read_lines(path, "categories")) do
      local id, depth, ids = line:match("^(%d+)\t(%d+)\t{([%d,]+)}$")
      assert(id, path .. ": bad line " .. line)
      id, depth = tonumber(id), tonumber(depth)
      assert(#ids + 2 < 256, "descendant list of category " .. id .. " longer than 255 bytes")
      C.ids[id] = "{" .. ids .. "}"
      C.depth[id] = depth
      if C.by_depth[depth] then table.insert(C.by_depth[depth], id) end
      for _, d in ipairs(split(ids, ",")) do
         d = tonumber(d)
         C.up[d] = C.up[d] or {}
         C.up[d][depth] = id
      end
   end
   for d = 0, 2 do assert(#C.by_depth[d] > 0, path .. ": no category at depth " .. d) end
   return C
end

-- A sample product, "sku <tab> category id <tab> price <tab> name", taken
-- apart: "Brand Adjective Material Noun[, Colour][, Size]".
local function parse_product(W, C, line)
   local sku, cat, price, name = line:match("^([^\t]+)\t(%d+)\t([%d.]+)\t(.+)$")
   assert(sku, "bad product line " .. line)
   cat = tonumber(cat)
   local p = {sku = sku, cat = cat, price = tonumber(price), up = C.up[cat]}
   assert(p.up and p.up[0] and p.up[1] and p.up[2] == cat, "product " .. sku .. " is not in a leaf")
   local parts = split(name, ", ")
   local main = parts[1]
   for _, b in ipairs(W.brands) do
      if main:sub(1, #b + 1) == b .. " " then p.brand = b end
   end
   assert(p.brand, "no brand in " .. name)
   local rest = main:sub(#p.brand + 2)
   p.adjective, rest = rest:match("^(%S+) (.+)$")
   -- the longest material that starts the rest; the noun is what follows
   local best = ""
   for m in pairs(W.materials) do
      if #m > #best and rest:sub(1, #m + 1) == m .. " " then best = m end
   end
   assert(best ~= "", "no material in " .. name)
   p.material, p.noun = best, rest:sub(#best + 2)
   if parts[2] and W.colours[parts[2]] then p.colour = parts[2] end
   -- its words, lower case, letters only, 3 or more
   p.w = {brand = alpha_words(p.brand), adjective = alpha_words(p.adjective),
          material = alpha_words(p.material), noun = alpha_words(p.noun),
          colour = alpha_words(p.colour)}
   p.all = {}
   for _, k in ipairs({"brand", "adjective", "material", "noun", "colour"}) do
      for _, w in ipairs(p.w[k]) do p.all[#p.all + 1] = w end
   end
   -- adjacent words of the name before the first comma, both letters only
   p.pairs = {}
   local toks = {}
   for t in main:gmatch("%S+") do toks[#toks + 1] = t end
   for i = 1, #toks - 1 do
      local a, b = toks[i], toks[i + 1]
      if a:match("^%a+$") and b:match("^%a+$") and #a >= 2 and #b >= 3 then
         p.pairs[#p.pairs + 1] = {a:lower(), b:lower()}
      end
   end
   return p
end

------------------------------------------------------------------------------
-- Query generation.  Every text query is made from one published product
-- of the sample (--products_file), and a category filter is that product's
-- leaf, subcategory or department: the filters are consistent with the text
-- and words come with the frequency they have in the catalog.
------------------------------------------------------------------------------
local W, C, PRODUCTS, POOL

local function typo(rng, words)
   for _ = 1, 100 do
      local base = rng.pick(words)
      local n = #base
      local kind = rng.int(1, 3)
      local out
      if kind == 1 then        -- substitution, never the first letter
         local i = rng.int(2, n)
         local c = base:sub(i, i)
         local r = c
         while r == c do r = string.char(96 + rng.int(1, 26)) end
         out = base:sub(1, i - 1) .. r .. base:sub(i + 1)
      elseif kind == 2 then    -- transposition of two different adjacent letters
         local i = rng.int(2, n - 1)
         if base:sub(i, i) ~= base:sub(i + 1, i + 1) then
            out = base:sub(1, i - 1) .. base:sub(i + 1, i + 1) .. base:sub(i, i) .. base:sub(i + 2)
         end
      elseif n >= 6 then       -- deletion, the result keeps 5 letters or more
         local i = rng.int(2, n)
         out = base:sub(1, i - 1) .. base:sub(i + 1)
      end
      if out and not W.known[out] then return out end
   end
   error("could not make a typo")
end

local function cut(rng, w)
   return w:sub(1, rng.int(2, math.min(6, #w - 1)))
end

local function gen_text(rng, kind, p)
   if kind == "common" then
      -- a word of one of four classes: adjective, material, colour, brand
      for _ = 1, 20 do
         local class = ({"adjective", "material", "colour", "brand"})[rng.int(1, 4)]
         if #p.w[class] > 0 then return rng.pick(p.w[class]) end
      end
      return p.adjective:lower()
   elseif kind == "two" then
      -- two words of the product: a two-word material, adjective and the
      -- material's first word, brand word and noun, colour word and noun
      local m, n = p.w.material, p.w.noun
      local mt = {}
      for t in p.material:gmatch("%S+") do mt[#mt + 1] = t end
      for _ = 1, 20 do
         local src = rng.int(1, 4)
         if src == 1 and #mt == 2 and #m == 2 then
            return m[1] .. " " .. m[2]
         elseif src == 2 and #m > 0 and mt[1]:lower() == m[1] and #p.w.adjective > 0 then
            return p.w.adjective[1] .. " " .. m[1]
         elseif src == 3 and #n > 0 then
            return rng.pick(p.w.brand) .. " " .. n[#n]
         elseif src == 4 and #n > 0 and p.colour and #p.w.colour > 0 then
            return rng.pick(p.w.colour) .. " " .. n[#n]
         end
      end
      return rng.pick(p.w.brand) .. " " .. p.adjective:lower()
   elseif kind == "prefix" then
      -- the last word typed so far: one word cut to 2-6 characters, after a
      -- whole word of the name in one case of three
      if rng.int(1, 3) == 3 and #p.pairs > 0 then
         local pr = rng.pick(p.pairs)
         return pr[1] .. " " .. cut(rng, pr[2])
      end
      return cut(rng, rng.pick(p.all))
   elseif kind == "sku" then
      local form = rng.int(1, 5)
      if form <= 2 then return p.sku end
      local brand, code, digits = p.sku:match("^([^-]+)%-([^-]+)%-(%d+)$")
      assert(brand, "unexpected SKU " .. p.sku)
      if form == 3 then return brand .. "-" .. code end
      local head = digits:sub(1, #digits - 2)
      if form == 4 then return brand .. "-" .. code .. "-" .. head end
      return code .. "-" .. head
   elseif kind == "typo" then
      local long = {}
      for _, w in ipairs(p.all) do
         if #w >= 5 then long[#long + 1] = w end
      end
      return typo(rng, #long > 0 and long or W.words5)
   end
   return ""       -- filters only
end

local function make_spec(rng, kind, with_cat, with_price, sort)
   local p = rng.pick(PRODUCTS)
   local s = {kind = kind, q = gen_text(rng, kind, p), cat = 0, minp = "", maxp = "",
              sort = sort, page = 1, cursor = ""}
   if with_cat then s.cat = p.up[rng.int(0, 2)] end
   if with_price then
      -- the range that holds the product's price
      for _, pr in ipairs(PRICE_RANGES) do
         if p.price >= tonumber(pr[1]) and p.price <= tonumber(pr[2]) then
            s.minp, s.maxp = pr[1], pr[2]
            break
         end
      end
      assert(s.minp ~= "", "no price range holds " .. p.price)
   end
   return s
end

local function counts_to_list(pairs_)
   local t = {}
   for _, p in ipairs(pairs_) do
      for _ = 1, p[2] do t[#t + 1] = p[1] end
   end
   assert(#t == BLOCK)
   return t
end

local function flags(n)
   local t = {}
   for i = 1, BLOCK do t[i] = i <= n end
   return t
end

-- The next block of 100 events of a thread.
local function gen_block(rng)
   local kinds = rng.shuffle(counts_to_list(KINDS))
   local sorts = rng.shuffle(counts_to_list(SORTS))
   local cats = rng.shuffle(flags(WITH_CATEGORY))
   local prices = rng.shuffle(flags(WITH_PRICE))
   local deep = rng.shuffle(flags(DEEP))
   local block = {}
   for i = 1, BLOCK do
      if deep[i] then
         block[i] = POOL[rng.int(1, #POOL)]
      else
         block[i] = make_spec(rng, kinds[i], cats[i], prices[i], sorts[i])
      end
   end
   return block
end

------------------------------------------------------------------------------
-- The deep-page pool: file format, one query a line, tab-separated:
-- kind, q, category id (0: none), min price, max price, sort, page, cursor.
------------------------------------------------------------------------------
local function load_pool(path)
   local pool = {}
   for _, line in ipairs(read_lines(path, "deep-page queries")) do
      local f = split(line, "\t")
      assert(#f == 8, path .. ": bad line " .. line)
      pool[#pool + 1] = {kind = f[1], q = f[2], cat = tonumber(f[3]), minp = f[4], maxp = f[5],
                         sort = f[6], page = tonumber(f[7]), cursor = f[8], deep = true}
      assert(#f[8] <= CURSOR_CHUNK * CURSOR_CHUNKS, "cursor longer than " ..
             CURSOR_CHUNK * CURSOR_CHUNKS .. " bytes")
   end
   return pool
end

local function load_inputs(need_pool)
   assert(sysbench.opt.sample_file ~= "", "--sample_file is required")
   assert(sysbench.opt.products_file ~= "", "--products_file is required")
   assert(sysbench.opt.categories_file ~= "", "--categories_file is required")
   W = load_words(sysbench.opt.sample_file)
   C = load_categories(sysbench.opt.categories_file)
   PRODUCTS = {}
   for i, line in ipairs(read_lines(sysbench.opt.products_file, "products")) do
      PRODUCTS[i] = parse_product(W, C, line)
   end
   if need_pool then
      assert(sysbench.opt.pool_file ~= "", "--pool_file is required")
      POOL = load_pool(sysbench.opt.pool_file)
   end
end

local function lit(s)
   return "'" .. s:gsub("'", "''") .. "'"
end

local function ours_call_text(s, cursor)
   return string.format(
      "SELECT catalog_api.search_products(q => %s, category_id => %s, min_price => %s," ..
      " max_price => %s, sort => %s, page_size => %d, cursor => %s)::text",
      s.q == "" and "NULL" or lit(s.q), s.cat == 0 and "NULL" or tostring(s.cat),
      s.minp == "" and "NULL" or lit(s.minp) .. "::numeric",
      s.maxp == "" and "NULL" or lit(s.maxp) .. "::numeric",
      lit(s.sort), PAGE_SIZE, cursor == "" and "NULL" or lit(cursor))
end

local function next_cursor(doc)
   if doc:find('"next_cursor": null', 1, true) then return nil end
   local c = doc:match('"next_cursor": "([^"]*)"')
   assert(c, "no next_cursor in the result: " .. doc:sub(1, 300))
   assert(not c:find("[\\\t\n]"), "a cursor with an escape or a tab: " .. c)
   return c
end

function cmd_pool()
   load_inputs(false)
   assert(sysbench.opt.pool_file ~= "", "--pool_file is required")
   local want = sysbench.opt.pool_size
   local check = tonumber(sysbench.opt.pool_check) == 1
   local rng = new_rng(thread_seed(sysbench.opt.seed, 100000))
   local con
   if check then con = sysbench.sql.driver():connect() end
   local out, tried, calls, longest = {}, 0, 0, 0
   local kinds = {}
   while #out < want do
      tried = tried + 1
      assert(tried <= 50 * want, "found only " .. #out .. " deep-page queries in " ..
             (tried - 1) .. " candidates")
      local s = make_spec(rng, rng.weighted(KINDS), rng.int(1, 100) <= WITH_CATEGORY,
                          rng.int(1, 100) <= WITH_PRICE, rng.weighted(SORTS))
      s.page = rng.int(DEEP_MIN, DEEP_MAX)
      local cursor = ""
      if check then
         for _ = 1, s.page - 1 do
            local rs = con:query(ours_call_text(s, cursor))
            calls = calls + 1
            local row = rs:fetch_row()
            cursor = next_cursor(row[1])
            if cursor == nil then break end
         end
      end
      if cursor ~= nil then
         longest = math.max(longest, #cursor)
         assert(#cursor <= CURSOR_CHUNK * CURSOR_CHUNKS, "cursor longer than " ..
                CURSOR_CHUNK * CURSOR_CHUNKS .. " bytes: " .. #cursor)
         out[#out + 1] = table.concat({s.kind, s.q, tostring(s.cat), s.minp, s.maxp, s.sort,
                                       tostring(s.page), cursor}, "\t")
         kinds[s.kind] = (kinds[s.kind] or 0) + 1
      end
   end
   if con then con:disconnect() end
   local f = assert(io.open(sysbench.opt.pool_file, "w"))
   f:write(table.concat(out, "\n"), "\n")
   f:close()
   local parts = {}
   for _, k in ipairs(KINDS) do parts[#parts + 1] = k[1] .. " " .. (kinds[k[1]] or 0) end
   print(string.format("pool: %d deep-page queries from %d candidates (%s), %s; %d calls; longest cursor %d bytes",
                       #out, tried, table.concat(parts, ", "),
                       check and "checked with search_products" or "unchecked", calls, longest))
end

function cmd_mix()
   load_inputs(true)
   local rng = new_rng(thread_seed(sysbench.opt.seed, 0))
   local n = sysbench.opt.mix_events
   local block, bi = nil, BLOCK
   local count = {kind = {}, sort = {}, cat = {}, price = {}}
   local function bump(t, k) t[k] = (t[k] or 0) + 1 end
   for i = 1, n do
      if bi == BLOCK then block, bi = gen_block(rng), 0 end
      bi = bi + 1
      local s = block[bi]
      local label = s.deep and "deep" or s.kind
      bump(count.kind, label)
      bump(count.sort, s.sort)
      bump(count.cat, s.cat == 0 and "none" or ({[0] = "department", "subcategory", "leaf"})[C.depth[s.cat]])
      bump(count.price, s.minp == "" and "none" or "range")
      if i <= sysbench.opt.mix_print then
         print(string.format("%5d %-7s %-22s cat %3d price %-11s %-10s page %2d%s", i, label,
                             s.q == "" and "(none)" or '"' .. s.q .. '"', s.cat,
                             s.minp == "" and "-" or s.minp .. "-" .. s.maxp, s.sort, s.page,
                             s.cursor ~= "" and " (cursor)" or ""))
      end
   end
   for _, what in ipairs({"kind", "sort", "cat", "price"}) do
      local keys = {}
      for k in pairs(count[what]) do keys[#keys + 1] = k end
      table.sort(keys)
      local parts = {}
      for _, k in ipairs(keys) do
         parts[#parts + 1] = string.format("%s %.1f%%", k, 100 * count[what][k] / n)
      end
      print(string.format("%-6s %s", what, table.concat(parts, ", ")))
   end
end

sysbench.cmdline.commands = {
   pool = {cmd_pool},
   mix = {cmd_mix}
}

------------------------------------------------------------------------------
-- The benchmark.
------------------------------------------------------------------------------
-- The shared helpers, next to this script.
local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_lib.lua")
local now = lib.now

local OURS_SQL =
   "SELECT catalog_api.search_products(q => NULLIF(?, ''), category_id => NULLIF(?, 0)," ..
   " min_price => NULLIF(?, '')::numeric, max_price => NULLIF(?, '')::numeric, sort => ?," ..
   " page_size => " .. PAGE_SIZE .. ", cursor => NULLIF(? || ? || ?, ''))"

local NAIVE_SELECT =
   "SELECT p.id, p.sku, p.name, p.price, p.currency, p.status, p.category_id," ..
   " c.name AS category_name" ..
   " FROM bench.product_plain p JOIN catalog.category c ON c.id = p.category_id" ..
   " WHERE p.status = 'published'"

local workload, record
local drv, con, rng
local block, bi = nil, BLOCK
local ours_stmt, ours_params
local naive = {}           -- shape -> {stmt, params, order of fields}
local lat, lab, items, nlat = {}, {}, {}, 0
local t_first, t_record

-- The baseline statement for one shape: text (none | name | sku), category
-- (bool), price (bool), order (relevance | price_asc | price_desc | newest).
local function naive_shape(s)
   local text = s.q == "" and "none" or (s.kind == "sku" and "sku" or "name")
   local order = s.sort
   if text == "none" and order == "relevance" then order = "newest" end
   return text, s.cat ~= 0, s.minp ~= "", order
end

local function naive_stmt(text, cat, price, order)
   local key = table.concat({text, tostring(cat), tostring(price), order}, "/")
   if naive[key] then return naive[key] end
   local T = sysbench.sql.type
   local sql, fields = NAIVE_SELECT, {}
   if text ~= "none" then
      sql = sql .. " AND p." .. text .. " ILIKE ?"
      fields[#fields + 1] = {"pattern", T.VARCHAR, 255}
   end
   if cat then
      sql = sql .. " AND p.category_id = ANY (?::bigint[])"
      fields[#fields + 1] = {"catids", T.VARCHAR, 255}
   end
   if price then
      sql = sql .. " AND p.price >= ?::numeric AND p.price <= ?::numeric"
      fields[#fields + 1] = {"minp", T.VARCHAR, 16}
      fields[#fields + 1] = {"maxp", T.VARCHAR, 16}
   end
   if order == "relevance" then
      sql = sql .. " ORDER BY similarity(p." .. text .. ", ?) DESC, p.id DESC"
      fields[#fields + 1] = {"q", T.VARCHAR, 255}
   elseif order == "price_asc" then
      sql = sql .. " ORDER BY p.price, p.id"
   elseif order == "price_desc" then
      sql = sql .. " ORDER BY p.price DESC, p.id DESC"
   else
      sql = sql .. " ORDER BY p.created_at DESC, p.id DESC"
   end
   sql = sql .. " LIMIT " .. PAGE_SIZE .. " OFFSET ?"
   fields[#fields + 1] = {"offset", T.BIGINT}
   local st = con:prepare(sql)
   local params = {}
   for i, f in ipairs(fields) do params[i] = st:bind_create(f[2], f[3]) end
   st:bind_param(unpack(params))
   naive[key] = {stmt = st, params = params, fields = fields}
   return naive[key]
end

local function like_pattern(q)
   return "%" .. q:gsub("[\\%%_]", "\\%0") .. "%"
end

function thread_init()
   workload = sysbench.opt.workload
   assert(workload == "search" or workload == "search_naive", "unknown workload " .. tostring(workload))
   record = sysbench.opt.latfile ~= ""
   load_inputs(true)
   rng = new_rng(thread_seed(sysbench.opt.seed, sysbench.tid))

   drv = sysbench.sql.driver()
   con = drv:connect()
   local T = sysbench.sql.type
   if workload == "search" then
      ours_stmt = con:prepare(OURS_SQL)
      ours_params = {
         ours_stmt:bind_create(T.VARCHAR, 255),   -- q
         ours_stmt:bind_create(T.BIGINT),         -- category_id
         ours_stmt:bind_create(T.VARCHAR, 16),    -- min_price
         ours_stmt:bind_create(T.VARCHAR, 16),    -- max_price
         ours_stmt:bind_create(T.VARCHAR, 16)     -- sort
      }
      for i = 1, CURSOR_CHUNKS do
         ours_params[5 + i] = ours_stmt:bind_create(T.VARCHAR, CURSOR_CHUNK)
      end
      ours_stmt:bind_param(unpack(ours_params))
   else
      -- every shape prepared before the clock starts
      for _, text in ipairs({"none", "name", "sku"}) do
         for _, cat in ipairs({false, true}) do
            for _, price in ipairs({false, true}) do
               for _, order in ipairs({"relevance", "price_asc", "price_desc", "newest"}) do
                  if not (text == "none" and order == "relevance") then
                     naive_stmt(text, cat, price, order)
                  end
               end
            end
         end
      end
   end
end

local function next_spec()
   if bi == BLOCK then
      block, bi = gen_block(rng), 0
   end
   bi = bi + 1
   return block[bi]
end

local function run_ours(s)
   local p = ours_params
   p[1]:set(s.q)
   p[2]:set(s.cat)
   p[3]:set(s.minp)
   p[4]:set(s.maxp)
   p[5]:set(s.sort)
   for i = 1, CURSOR_CHUNKS do
      p[5 + i]:set(s.cursor:sub((i - 1) * CURSOR_CHUNK + 1, i * CURSOR_CHUNK))
   end
   return ours_stmt:execute()
end

local function run_naive(s)
   local n = naive_stmt(naive_shape(s))
   for i, f in ipairs(n.fields) do
      local name, v = f[1]
      if name == "pattern" then v = like_pattern(s.q)
      elseif name == "catids" then v = C.ids[s.cat]
      elseif name == "minp" then v = s.minp
      elseif name == "maxp" then v = s.maxp
      elseif name == "q" then v = s.q
      else v = (s.page - 1) * PAGE_SIZE end
      n.params[i]:set(v)
   end
   return n.stmt:execute()
end

function event()
   local t0 = now()
   if t_first == nil then
      t_first = t0
      t_record = t0 + sysbench.opt.warmup
   end
   local s = next_spec()
   local ok, rs = pcall(workload == "search" and run_ours or run_naive, s)
   local t1 = now()
   local n
   if not ok then
      -- a call cancelled by catalog.search_timeout (57014) is a failed event,
      -- recorded as such; any other error stops the run
      if tostring(rs):match("state = '(%w+)'") ~= "57014" then error(rs, 0) end
      n = -1
   elseif workload == "search" then
      if rs == nil or rs.nrows ~= 1 then
         error(string.format("search: expected one row, got %s",
                             rs == nil and "no result set" or tostring(rs.nrows)))
      end
      if record and t0 >= t_record then
         local doc = rs:fetch_row()[1]
         local _, k = doc:gsub('"match": ', "")
         n = k
      end
   else
      if rs == nil or rs.nrows > PAGE_SIZE then
         error(string.format("search_naive: expected 0 to %d rows, got %s", PAGE_SIZE,
                             rs == nil and "no result set" or tostring(rs.nrows)))
      end
      n = rs.nrows
   end
   if record and t0 >= t_record then
      nlat = nlat + 1
      lat[nlat] = (t1 - t0) * 1000.0
      lab[nlat] = s.deep and "deep" or s.kind
      items[nlat] = n
   end
end

function thread_done()
   if record then
      lib.write_lines(sysbench.opt.latfile .. "." .. sysbench.tid, nlat,
                      function(i) return string.format("%.4f %s %d", lat[i], lab[i], items[i]) end)
   end
   if ours_stmt then ours_stmt:close() end
   for _, n in pairs(naive) do n.stmt:close() end
   if con then con:disconnect() end
end
