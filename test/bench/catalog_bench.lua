-- catalog_bench.lua: sysbench 1.0 workloads of the catalog benchmark.
--
-- Driven by test/bench/run.sh (make bench); one script for both arms of
-- every comparison so that both go through exactly the same client code.
--
-- Workloads (--workload):
--   get_product     SELECT catalog_api.get_product(?)                 (ours)
--   get_select      the hand-written SELECT ... JOIN of the same
--                   columns, published only, by primary key           (baseline)
--   create_product  SELECT catalog_api.create_product(...)            (ours)
--   insert_plain    INSERT INTO bench.product_plain ... RETURNING *   (baseline)
--   update_product  SELECT catalog_api.update_product(id, expected_version,
--                   price) of a random product of --id_min..--id_max  (audit)
--   select1         SELECT 1                                          (round-trip ceiling)
--
-- update_product (the audit workload of run.sh: its three arms run this same
-- script on the same table, only the triggers differ).  Each event changes
-- the price of one product drawn uniformly from --id_min..--id_max, so
-- every call is a real change (an update that changes nothing writes
-- neither the row nor an audit row).  The statement reads the product's
-- current version and price itself, in the same round trip:
--   SELECT catalog_api.update_product(id => p.id,
--              expected_version => p.version,
--              price => p.price - d or p.price + d)
--   FROM catalog.product p, (SELECT $1::numeric AS d) d WHERE p.id = $2
-- with d from 0.01 to 9.99 (drawn by the client), subtracted when the price
-- is at least d and added otherwise: never the current price, never
-- negative.  The read needs SELECT (id, price, version) on catalog.product,
-- which run.sh grants to bench_editor for this purpose only; it is one
-- primary-key lookup, the same in every arm, and saves the client a second
-- round trip per update (a client that just read the product knows its
-- version, as this one does).  Another thread may commit an update of the
-- same product between this read and update_product's own UPDATE: the call
-- then fails with PT409 (stale version) and the event retries the same
-- statement, which reads the fresh version, until it succeeds (at most
-- --max_retries times); the event's latency includes its retries.  Each
-- thread prints, when it ends, one line "bench_retries <tid> <measured>
-- <all>": the retries of its measured events and of all its events.
--
-- Protocol: every statement, in both arms, is a server-side prepared
-- statement (sysbench con:prepare + bind_param: PQprepare once per
-- connection, then PQexecPrepared per event, extended protocol, results in
-- binary format).  The sysbench pgsql driver declares string parameters as
-- varchar and integer ones as bigint, so the arguments that are neither
-- (numeric, jsonb, the status enum) carry the same explicit cast in both
-- arms.  sysbench turns each '?' into $n, so no statement text may contain a
-- literal question mark; a string parameter must stay under 256 bytes (the
-- driver's MAX_PARAM_LENGTH).
--
-- Latency percentiles: every event is timed here with
-- clock_gettime(CLOCK_MONOTONIC) through the LuaJIT FFI (wall time of the
-- whole event, as sysbench itself measures it).  Events that start during
-- the first --warmup seconds of a thread (counted from its first event,
-- which is when sysbench starts its clock) are not recorded; every other
-- event's latency is kept in memory and written, one value in milliseconds
-- per line, to <--latfile>.<thread id> when the thread ends.  run.sh merges
-- the files of one run and takes exact nearest-rank p50/p95/p99 over all
-- of its events: one run per configuration, no histogram buckets.  run.sh
-- passes --report-checkpoints=<warmup> with --time=<warmup + seconds>, so
-- sysbench's own counters (TPS) restart at the same point.
--
-- Every event must return exactly one row; anything else stops the run.

sysbench.cmdline.options = {
   workload = {"get_product | get_select | create_product | insert_plain | update_product | select1", "select1"},
   warmup = {"seconds at the start of each thread whose events are not recorded", 0},
   latfile = {"prefix of the per-thread latency files (empty: do not record)", ""},
   ids_file = {"file with the product ids to read, one a line", ""},
   id_min = {"lowest product id to read (ids_file empty) or update", 1},
   id_max = {"highest product id to read (ids_file empty) or update", 1},
   max_retries = {"update_product: most PT409 retries of one event before the run stops", 1000},
   categories_file = {"file with the category ids to use, one a line", ""},
   sku_prefix = {"prefix of the SKUs created by this run (unique per run)", "BENCH"},
   actor = {"created_by / updated_by of insert_plain (create_product records session_user)", "bench_editor"},
   sync_commit = {"synchronous_commit for the connection: on, off, or empty for the server default", ""}
}

-- The shared helpers, next to this script.
local lib = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_lib.lua")
local now = lib.now

local function read_numbers(path)
   local t = {}
   local f = assert(io.open(path, "r"), "cannot open " .. path)
   for line in f:lines() do
      local n = tonumber(line)
      if n then
         t[#t + 1] = n
      end
   end
   f:close()
   assert(#t > 0, path .. " has no ids")
   return t
end

-- Statements.  get_select returns the columns of the product document
-- (src/product.c, PRODUCT_DOC) as a row; the filter on status is the one an
-- anonymous read applies.
local SQL = {
   get_product = "SELECT catalog_api.get_product(?)",
   get_select =
      "SELECT p.id, p.sku, p.name, p.description, p.status, p.price, p.currency," ..
      " c.id AS category_id, c.name AS category_name, p.attributes, p.version," ..
      " p.created_at, p.updated_at" ..
      " FROM catalog.product p JOIN catalog.category c ON c.id = p.category_id" ..
      " WHERE p.id = ? AND p.status = 'published'",
   create_product =
      "SELECT catalog_api.create_product(?, ?, ?::numeric, ?, ?, ?, ?, ?::jsonb)",
   insert_plain =
      "INSERT INTO bench.product_plain" ..
      " (sku, name, price, category_id, description, status, currency, attributes," ..
      "  created_by, updated_by)" ..
      " VALUES (?, ?, ?::numeric, ?, ?, ?::catalog.product_status, ?, ?::jsonb, ?, ?)" ..
      " RETURNING *",
   update_product =
      "SELECT catalog_api.update_product(id => p.id, expected_version => p.version," ..
      " price => CASE WHEN p.price >= d.v THEN p.price - d.v ELSE p.price + d.v END)" ..
      " FROM catalog.product p, (SELECT ?::numeric AS v) d WHERE p.id = ?",
   select1 = "SELECT 1"
}

-- The product row both write arms create (same values, canonical already,
-- so create_product stores exactly what the plain INSERT stores).
local DESCRIPTION = "A product created by the catalog benchmark: sturdy, light and " ..
   "plain text only, about one hundred and fifty characters long in total."
local ATTRIBUTES = '{"color": "red", "size": "m", "weight_g": 250}'

local drv, con, stmt, params, ids, categories
local workload, record
local lat, nlat = {}, 0
local t_first, t_record
local counter = 0
local retries, retries_measured = 0, 0

function thread_init()
   workload = sysbench.opt.workload
   assert(SQL[workload], "unknown workload " .. tostring(workload))
   record = sysbench.opt.latfile ~= ""

   drv = sysbench.sql.driver()
   con = drv:connect()
   if sysbench.opt.sync_commit ~= "" then
      con:query("SET synchronous_commit = " .. sysbench.opt.sync_commit)
   end

   stmt = con:prepare(SQL[workload])
   local T = sysbench.sql.type
   if workload == "get_product" or workload == "get_select" then
      params = {stmt:bind_create(T.BIGINT)}
      if sysbench.opt.ids_file ~= "" then
         ids = read_numbers(sysbench.opt.ids_file)
      end
   elseif workload == "create_product" or workload == "insert_plain" then
      categories = read_numbers(sysbench.opt.categories_file)
      params = {
         stmt:bind_create(T.VARCHAR, 64),   -- sku
         stmt:bind_create(T.VARCHAR, 128),  -- name
         stmt:bind_create(T.VARCHAR, 16),   -- price
         stmt:bind_create(T.BIGINT),        -- category_id
         stmt:bind_create(T.VARCHAR, 200),  -- description
         stmt:bind_create(T.VARCHAR, 16),   -- status
         stmt:bind_create(T.VARCHAR, 8),    -- currency
         stmt:bind_create(T.VARCHAR, 128)   -- attributes
      }
      if workload == "insert_plain" then
         params[9] = stmt:bind_create(T.VARCHAR, 64)   -- created_by
         params[10] = stmt:bind_create(T.VARCHAR, 64)  -- updated_by
         params[9]:set(sysbench.opt.actor)
         params[10]:set(sysbench.opt.actor)
      end
      params[5]:set(DESCRIPTION)
      params[6]:set("published")
      params[7]:set("EUR")
      params[8]:set(ATTRIBUTES)
   elseif workload == "update_product" then
      assert(sysbench.opt.id_max >= sysbench.opt.id_min, "id_max < id_min")
      params = {
         stmt:bind_create(T.VARCHAR, 16),   -- price difference
         stmt:bind_create(T.BIGINT)         -- id
      }
   else
      params = {}
   end
   if #params > 0 then
      stmt:bind_param(unpack(params))
   end
end

local function set_params()
   if ids then
      params[1]:set(ids[sysbench.rand.uniform(1, #ids)])
   elseif workload == "get_product" or workload == "get_select" then
      params[1]:set(sysbench.rand.uniform(sysbench.opt.id_min, sysbench.opt.id_max))
   elseif workload == "update_product" then
      params[1]:set(string.format("%d.%02d", sysbench.rand.uniform(0, 9),
                                  sysbench.rand.uniform(1, 99)))
      params[2]:set(sysbench.rand.uniform(sysbench.opt.id_min, sysbench.opt.id_max))
   elseif categories then
      counter = counter + 1
      params[1]:set(string.format("%s-T%d-%d", sysbench.opt.sku_prefix,
                                  sysbench.tid, counter))
      params[2]:set(string.format("Benchmark product %d-%d", sysbench.tid, counter))
      params[3]:set(string.format("%d.%02d", sysbench.rand.uniform(1, 999),
                                  sysbench.rand.uniform(0, 99)))
      params[4]:set(categories[sysbench.rand.uniform(1, #categories)])
   end
end

-- Execute the update, again while it fails with PT409 (a concurrent update
-- of the same product committed after the statement read its version);
-- any other error stops the run.  t0: when the event started.
local function execute_retrying(t0)
   local n = 0
   while true do
      local ok, rs = pcall(stmt.execute, stmt)
      if ok then
         return rs
      end
      if tostring(rs):match("state = '(%w+)'") ~= "PT409" then
         error(rs, 0)
      end
      n = n + 1
      retries = retries + 1
      if t0 >= t_record then
         retries_measured = retries_measured + 1
      end
      if n > sysbench.opt.max_retries then
         error(string.format("update_product: still PT409 after %d retries", n - 1), 0)
      end
   end
end

function event()
   local t0 = now()
   if t_first == nil then
      t_first = t0
      t_record = t0 + sysbench.opt.warmup
   end
   set_params()
   local rs
   if workload == "update_product" then
      rs = execute_retrying(t0)
   else
      rs = stmt:execute()
   end
   if rs == nil or rs.nrows ~= 1 then
      error(string.format("%s: expected one row, got %s", workload,
                          rs == nil and "no result set" or tostring(rs.nrows)))
   end
   if record and t0 >= t_record then
      nlat = nlat + 1
      lat[nlat] = (now() - t0) * 1000.0
   end
end

function thread_done()
   if workload == "update_product" then
      -- one write per line: the threads share stdout
      io.stdout:write(string.format("bench_retries %d %d %d\n", sysbench.tid,
                                    retries_measured, retries))
      io.stdout:flush()
   end
   if record then
      lib.write_lines(sysbench.opt.latfile .. "." .. sysbench.tid, nlat,
                      function(i) return string.format("%.4f", lat[i]) end)
   end
   if stmt then
      stmt:close()
   end
   if con then
      con:disconnect()
   end
end
