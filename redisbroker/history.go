package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/lafgo/laf"
	"github.com/redis/go-redis/v9"
)

var _ laf.HistoryBroker = (*Broker)(nil)

// History: each room's messages are a Redis Stream, "laf:h:{r.ROOM}:s" (the
// channel, then the room as the hash tag, so that a room's keys share a
// slot), and its epoch and last offset a hash, "laf:h:{r.ROOM}:m". Append
// runs one script that gives the message the room's next offset (HINCRBY),
// adds it to the stream (XADD, MAXLEN ~ size) and publishes it to the
// room's channel: Redis runs the script alone, so every subscriber gets
// a room's messages in offset order, whichever node appended them. Both
// keys expire ttl after the room's last append; a room whose hash is gone
// (expired, flushed, or missing on a replica promoted without it) starts
// a new epoch at offset 1. Under WithSharded the keys are under the
// Broker's hash tag instead, with its channels.

// appendScript: KEYS stream, meta; ARGV msg, maxlen, ttl ms, channel,
// new epoch, sharded ("1"), id.
var appendScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local e = redis.call('HGET', KEYS[2], 'e')
if not e then
  e = ARGV[5]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', e)
else
  -- A retry of an append that went through (go-redis retries a command
  -- whose reply was lost): answer its position again.
  local recent = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 16)
  for _, entry in ipairs(recent) do
    local f = entry[2]
    for j = 1, #f, 2 do
      if f[j] == 'i' and f[j+1] == ARGV[7] then
        for k = 1, #f, 2 do
          if f[k] == 'o' then return {e, tonumber(f[k+1])} end
        end
      end
    end
  end
end
local o = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'o', o, 'i', ARGV[7], 'm', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local frame = 'lafh ' .. e .. ':' .. o .. ' ' .. ARGV[1]
if ARGV[6] == '1' then
  redis.call('SPUBLISH', ARGV[4], frame)
else
  redis.call('PUBLISH', ARGV[4], frame)
end
return {e, o}
`)

// historyScript: KEYS stream, meta; ARGV since epoch, since offset, size,
// ttl ms. It returns {} for a room it keeps nothing of, else epoch, last
// offset, then offset and message of each kept message after since (the
// last size, none older than ttl by Redis's clock), oldest first.
var historyScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[2], 'e', 'o')
if not m[1] then return {} end
local e, o = m[1], tonumber(m[2])
local out = {e, o}
local since = tonumber(ARGV[2])
if ARGV[1] ~= e or since >= o then return out end
local n = math.min(o - since, tonumber(ARGV[3]))
if n <= 0 then return out end
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', n)
for i = #entries, 1, -1 do
  local ms = tonumber(string.match(entries[i][1], '^(%d+)'))
  if ms >= oldest then
    local f = entries[i][2]
    local off, msg
    for j = 1, #f, 2 do
      if f[j] == 'o' then off = f[j+1] elseif f[j] == 'm' then msg = f[j+1] end
    end
    table.insert(out, off)
    table.insert(out, msg)
  end
end
return out
`)

// historyKeys returns the keys of the stream and hash of the room whose
// channel is channel.
func (b *Broker) historyKeys(channel string) (stream, meta string) {
	base := b.channel + ":h:{" + channel + "}"
	if b.sharded {
		base = "{" + b.channel + "}:h:" + channel
	}
	return base + ":s", base + ":m"
}

// Append gives msg room's next offset, adds it to the room's stream and
// publishes it to laf's channel, in one script. go-redis may retry the
// script when its reply is lost; the script then answers the position it
// gave before rather than appending again (it looks for the append among
// the room's 16 newest).
func (b *Broker) Append(ctx context.Context, channel string, msg []byte, limits laf.HistoryLimits) (laf.Position, error) {
	if err := b.usable(); err != nil {
		return laf.Position{}, err
	}
	stream, meta := b.historyKeys(channel)
	sharded := "0"
	if b.sharded {
		sharded = "1"
	}
	res, err := appendScript.Run(ctx, b.client, []string{stream, meta},
		msg, max(limits.Size, 0), max(limits.TTL.Milliseconds(), 1), b.redisChannel(channel), randomID(), sharded, randomID()).Slice()
	if err != nil {
		return laf.Position{}, err
	}
	if len(res) != 2 {
		return laf.Position{}, fmt.Errorf("redisbroker: append answered %v", res)
	}
	epoch, _ := res[0].(string)
	off, _ := res[1].(int64)
	if epoch == "" || off <= 0 {
		return laf.Position{}, fmt.Errorf("redisbroker: append answered %v", res)
	}
	return laf.Position{Epoch: epoch, Offset: uint64(off)}, nil
}

// History returns room's last position and the messages its stream keeps
// after since, in one script.
func (b *Broker) History(ctx context.Context, channel string, since laf.Position, limits laf.HistoryLimits) (laf.Position, []laf.HistoryEntry, error) {
	if err := b.usable(); err != nil {
		return laf.Position{}, nil, err
	}
	stream, meta := b.historyKeys(channel)
	res, err := historyScript.Run(ctx, b.client, []string{stream, meta},
		since.Epoch, since.Offset, max(limits.Size, 0), max(limits.TTL.Milliseconds(), 1)).Slice()
	if err != nil {
		return laf.Position{}, nil, err
	}
	if len(res) == 0 {
		return laf.Position{}, nil, nil
	}
	if len(res) < 2 || len(res)%2 != 0 {
		return laf.Position{}, nil, fmt.Errorf("redisbroker: history answered %d values", len(res))
	}
	epoch, _ := res[0].(string)
	last, _ := res[1].(int64)
	out := make([]laf.HistoryEntry, 0, (len(res)-2)/2)
	for i := 2; i < len(res); i += 2 {
		o, _ := res[i].(string)
		m, _ := res[i+1].(string)
		off, err := strconv.ParseUint(o, 10, 64)
		if err != nil {
			return laf.Position{}, nil, fmt.Errorf("redisbroker: history offset %q", o)
		}
		out = append(out, laf.HistoryEntry{Offset: off, Msg: []byte(m)})
	}
	return laf.Position{Epoch: epoch, Offset: uint64(last)}, out, nil
}

// randomID returns 64 random bits in 11 characters of [A-Za-z0-9_-]: an
// epoch, or an append's id.
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
