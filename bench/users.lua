-- wrk script for bench/run: GET one path, rotating the X-User-ID header
-- over N users named with a printf pattern, e.g.
--
--   wrk ... -s bench/users.lua http://127.0.0.1:PORT -- /api/tiktok/videos 100 bu%04d
--
-- The requests are formatted once in init(), so request() only picks the
-- next one and wrk stays cheap per request.

local reqs = {}
local n = 0

function init(args)
   local path = args[1] or "/"
   local count = tonumber(args[2] or "1")
   local pattern = args[3] or "user%d"

   for i = 1, count do
      reqs[i] = wrk.format("GET", path,
                           { ["X-User-ID"] = string.format(pattern, i) })
   end
end

function request()
   n = n % #reqs + 1
   return reqs[n]
end
