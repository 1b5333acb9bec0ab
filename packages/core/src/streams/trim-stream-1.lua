--[[
  Finds the trim floor and trims in one step. Done in two round trips, a group created (at
  `0`) or moved back (`XGROUP SETID`) in between, and the entries it read in between, could
  be trimmed away by a floor computed without it.

  The floor of a group is its oldest pending entry, or, with nothing pending, its
  last-delivered id (every entry before it is acknowledged; the entry itself is kept). The
  stream's floor is the lowest over its groups, lowered further by the retention window
  (measured on the Redis clock, which also mints the ids). No groups, or a floor of `0-0`:
  nothing is trimmed.

    KEYS[1] stream
    ARGV[1] retention, ms (0 = none)

  Returns { floor or '' when nothing may be trimmed, entries removed }.
]]
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-?(%d*)$')
  local bm, bs = string.match(b, '^(%d+)-?(%d*)$')
  if as == '' then as = '0' end
  if bs == '' then bs = '0' end
  -- Ids are up to 64-bit: compare digit strings, not Lua numbers.
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end

if redis.call('EXISTS', KEYS[1]) == 0 then return {'', 0} end
local floor = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  local candidate = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local oldest = redis.call('XPENDING', KEYS[1], info['name'])[2]
    if oldest then candidate = oldest end
  end
  if floor == nil or less(candidate, floor) then floor = candidate end
end
if floor == nil or floor == '0-0' then return {'', 0} end
local retentionMs = tonumber(ARGV[1])
if retentionMs > 0 then
  local now = redis.call('TIME')
  local keepFrom = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - retentionMs
  if keepFrom <= 0 then return {'', 0} end
  local retained = string.format('%.0f-0', keepFrom)
  if less(retained, floor) then floor = retained end
end
return {floor, redis.call('XTRIM', KEYS[1], 'MINID', floor)}
