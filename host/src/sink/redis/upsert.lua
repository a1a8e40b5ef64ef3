-- weir's redis sink: write a batch of events in one call, each under its key
-- unless the stored version is newer or equal (a replay, or a late event).
-- Items are applied in order, so a later event of the same key wins.
-- KEYS[2i-1]: item i's key; KEYS[2i]: its version key (string mode).
-- ARGV[1]: 'hash' or 'string'; ARGV[2]: TTL in seconds (0: none);
-- ARGV[3]: the version field (hash mode); then for each item: its version,
-- the count n of its values, and the n values: the value (string mode) or
-- field, value pairs (hash mode).
-- Returns how many items were written.
local mode, ttl, vfield = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local at, written = 4, 0
for i = 1, #KEYS, 2 do
  local key, vkey = KEYS[i], KEYS[i + 1]
  local version, n = ARGV[at], tonumber(ARGV[at + 1])
  local first = at + 2
  at = first + n
  local current
  if mode == 'hash' then
    current = redis.call('HGET', key, vfield)
  else
    current = redis.call('GET', vkey)
  end
  if not (current and tonumber(current) and tonumber(current) >= tonumber(version)) then
    if mode == 'hash' then
      redis.call('DEL', key)
      redis.call('HSET', key, vfield, version, unpack(ARGV, first, at - 1))
      if ttl > 0 then
        redis.call('EXPIRE', key, ttl)
      end
    elseif ttl > 0 then
      redis.call('SET', key, ARGV[first], 'EX', ttl)
      redis.call('SET', vkey, version, 'EX', ttl)
    else
      redis.call('SET', key, ARGV[first])
      redis.call('SET', vkey, version)
    end
    written = written + 1
  end
end
return written
