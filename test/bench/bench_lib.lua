-- bench_lib.lua: what catalog_bench.lua and search_bench.lua share.
--
--   local lib = dofile(<this file>)   (see the scripts' header)
--   lib.now()                          monotonic seconds (clock_gettime)
--   lib.write_lines(path, n, line)     write line(i) for i = 1..n, one a line

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } catalog_bench_timespec;
int clock_gettime(int clk_id, catalog_bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("catalog_bench_timespec")

local lib = {}

-- The wall clock of sysbench's own reports is coarse here; time every event
-- with CLOCK_MONOTONIC through LuaJIT's FFI instead.
function lib.now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Write n lines in chunks of 4096 (a thread's latencies: one file per thread).
function lib.write_lines(path, n, line)
   local f = assert(io.open(path, "w"))
   local chunk = {}
   for i = 1, n do
      chunk[#chunk + 1] = line(i)
      if #chunk == 4096 then
         f:write(table.concat(chunk, "\n"), "\n")
         chunk = {}
      end
   end
   if #chunk > 0 then
      f:write(table.concat(chunk, "\n"), "\n")
   end
   f:close()
end

return lib
