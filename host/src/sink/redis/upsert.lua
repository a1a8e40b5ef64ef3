-- weir's redis sink: write one event's value under KEYS[1] unless the stored
-- version is newer or equal (a replay, or a late event).
-- KEYS[1]: the key; KEYS[2]: the version key (string mode).
-- ARGV[1]: 'hash' or 'string'; ARGV[2]: the version; ARGV[3]: TTL in seconds
-- (0: none); ARGV[4]: the version field (hash mode); ARGV[5..]: the value
-- (string mode) or field, value pairs (hash mode).
local mode, version, ttl, vfield = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local current
if mode == 'hash' then
  current = redis.call('HGET', KEYS[1], vfield)
else
  current = redis.call('GET', KEYS[2])
end
if current and tonumber(current) and tonumber(current) >= version then
  return 0
end
if mode == 'hash' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], vfield, ARGV[2], unpack(ARGV, 5))
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
  end
else
  if ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[5], 'EX', ttl)
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
  else
    redis.call('SET', KEYS[1], ARGV[5])
    redis.call('SET', KEYS[2], ARGV[2])
  end
end
return 1
