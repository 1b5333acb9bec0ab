--[[
  Removes a dead-letter entry after a replay or discard, and audits it, in one step.

  KEYS[1] dead-letter stream
  KEYS[2] markers hash
  KEYS[3] per-group counts hash
  KEYS[4] tombstone key of this entry (answers "already replayed" for a while)
  KEYS[5] audit stream
  KEYS[6] gone-marker key of the entry's marker (a late write of the same round is a no-op)

  ARGV[1] dead-letter entry id
  ARGV[2] marker of the entry
  ARGV[3] group
  ARGV[4] tombstone value (JSON)
  ARGV[5] tombstone (and gone-marker) time to live, seconds
  ARGV[6] audit stream approximate max length
  ARGV[7..] audit entry field/value pairs

  Returns 1 when removed, 0 when the entry was not there (already replayed or discarded).
]]
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[5])
if redis.call('HINCRBY', KEYS[3], ARGV[3], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[3]) end
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[5])
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', unpack(fields))
return 1
