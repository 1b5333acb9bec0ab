--[[
  Removes a consumer only if it still has nothing pending and is still idle, in one step:
  XGROUP DELCONSUMER drops a consumer's pending entries, so checking and deleting in two
  round trips could lose entries it read in between.

  KEYS[1] stream
  ARGV[1] group
  ARGV[2] consumer
  ARGV[3] minimum idle time, ms

  Returns 1 if removed, 0 otherwise.
]]
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] == ARGV[2] then
    -- Redis 7.2+: `inactive` is -1 for a consumer that never read an entry; fall back to `idle`.
    local idle = tonumber(info['inactive'])
    if idle == nil or idle < 0 then idle = tonumber(info['idle']) end
    if tonumber(info['pending']) == 0 and idle >= tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return 0
