--[[
  Pauses or resumes a consumer group and audits the change, in one step: the audit stream
  holds a record exactly when the group's state changed, so a call that finds the group in
  that state already records nothing, and a crash cannot leave a change unrecorded.

  KEYS[1] set of paused groups
  KEYS[2] audit stream

  ARGV[1] "1" to pause, "0" to resume
  ARGV[2] group
  ARGV[3] audit stream approximate max length
  ARGV[4..] audit record field/value pairs

  Returns 1 when the group's state changed, 0 when it already was in that state.
]]
local changed
if ARGV[1] == '1' then
  changed = redis.call('SADD', KEYS[1], ARGV[2])
else
  changed = redis.call('SREM', KEYS[1], ARGV[2])
end
if changed == 0 then return 0 end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
return 1
