-- wrk.lua - the one wrk script of the benchmark suite (bench/bench.py runs it).
--
-- DESIGN
-- Owns: shaping wrk's request from environment variables and printing one
-- machine-readable result line, so bench.py never parses wrk's human output
-- ("1.23ms", "456.00us").  Called as `wrk ... -s bench/wrk.lua URL`.
--
-- Why it is shaped so:
-- - Settings come from the environment (BENCH_WRK_*) rather than script
--   arguments so the same file serves the /health flood, the paced /health
--   probe and the paced 429 POST probe; every thread's Lua state reads the
--   same variables.
-- - response() is only defined when status counts are asked for: wrk hands
--   every response to Lua when it exists, which would slow the /health flood.
-- - delay() (BENCH_WRK_DELAY_MS) paces each connection: latency is then that
--   of a lone request arriving while the server is busy with something else,
--   not that of a queue built by wrk itself.  wrk starts the latency clock
--   after the delay, when the request is written.
--
-- Variables: BENCH_WRK_METHOD (GET), BENCH_WRK_BODY (file whose bytes are the
-- body), BENCH_WRK_CTYPE (Content-Type), BENCH_WRK_DELAY_MS (0 = no pacing),
-- BENCH_WRK_COUNT (any value: count statuses 2xx / 429 / other).

local method = os.getenv("BENCH_WRK_METHOD")
if method and method ~= "" then
	wrk.method = method
end

local body_file = os.getenv("BENCH_WRK_BODY")
if body_file and body_file ~= "" then
	local f = assert(io.open(body_file, "rb"))
	wrk.body = f:read("*a")
	f:close()
end

local ctype = os.getenv("BENCH_WRK_CTYPE")
if ctype and ctype ~= "" then
	wrk.headers["Content-Type"] = ctype
end

local delay_ms = tonumber(os.getenv("BENCH_WRK_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
	function delay()
		return delay_ms
	end
end

if os.getenv("BENCH_WRK_COUNT") then
	s2xx, s429, sother = 0, 0, 0
	function response(status, headers, body)
		if status >= 200 and status < 300 then
			s2xx = s2xx + 1
		elseif status == 429 then
			s429 = s429 + 1
		else
			sother = sother + 1
		end
	end
end

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function done(summary, latency, requests)
	local c2, c4, co = 0, 0, 0
	for _, t in ipairs(threads) do
		c2 = c2 + (t:get("s2xx") or 0)
		c4 = c4 + (t:get("s429") or 0)
		co = co + (t:get("sother") or 0)
	end
	local e = summary.errors
	io.write(string.format(
		"BENCH_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
		.. "mean_us=%.1f connect_err=%d read_err=%d write_err=%d timeout_err=%d non2xx=%d "
		.. "s2xx=%d s429=%d sother=%d\n",
		summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write,
		e.timeout, e.status, c2, c4, co))
end
