--[[
  Writes one dead-letter entry at most once per marker, and acknowledges the source entry
  in the same step, so a crash can neither lose the event nor write it twice. An operator's
  dead-lettering is audited in the same step too: its record exists exactly when its dead
  letter was written, once.

  KEYS[1] dead-letter stream
  KEYS[2] markers hash (marker -> dead-letter entry id)
  KEYS[3] per-group counts hash
  KEYS[4] source stream (XACK target)
  KEYS[5] gone-marker key of this marker: set while its entry, replayed or discarded, is
          recent enough that a late writer of the same round may still come (a retry job
          that stalled after writing it runs again)
  KEYS[6] audit stream

  ARGV[1] marker: "<group>|<event id>|<replay count>" ("entry:<entry id>" for the event id of
          an invalid-event)
  ARGV[2] group
  ARGV[3] source entry id to XACK, or "" when the entry was already acknowledged
  ARGV[4] audit stream approximate max length
  ARGV[5] n: how many ARGVs after it are the audit record's field/value pairs (0: no record);
          the script appends the pair "deadLetterId", <the new entry's id>
  ARGV[6..5+n] audit record field/value pairs
  ARGV[6+n..] field/value pairs of the dead-letter entry

  Returns { dead-letter entry id, 1 if written now | 0 if it already existed (or existed and
  was replayed or discarded since) }
]]
local existing = redis.call('HGET', KEYS[2], ARGV[1]) or redis.call('GET', KEYS[5])
if existing then
  if ARGV[3] ~= '' then redis.call('XACK', KEYS[4], ARGV[2], ARGV[3]) end
  return { existing, 0 }
end
local audited = tonumber(ARGV[5])
local fields = {}
for i = 6 + audited, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if ARGV[3] ~= '' then redis.call('XACK', KEYS[4], ARGV[2], ARGV[3]) end
if audited > 0 then
  local record = {}
  for i = 6, 5 + audited do record[#record + 1] = ARGV[i] end
  record[#record + 1] = 'deadLetterId'
  record[#record + 1] = id
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', unpack(record))
end
return { id, 1 }
