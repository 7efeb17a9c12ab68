package wire

import (
	"strconv"
	"strings"
)

// The chat payload is the header followed by JSON-like chat traffic
// instead of 'x' padding: an array of messages with ids, users, rooms,
// timestamps and short texts drawn from a small vocabulary, which
// deflate shrinks about as much as real chat traffic (3-10 times), where
// the padding would shrink a hundredfold. It is ASCII, so valid UTF-8.

// chatBody is the text after the header, long enough for any payload
// (the servers' 32 KiB read limit); a payload is its prefix.
var chatBody = makeChat(64 << 10)

var (
	chatUsers = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	chatRooms = []string{"general", "dev", "ops"}
	chatWords = strings.Fields(`the a to and of is in it you that for on with this be are at have not
	was but we can do so if just will about what get all my up out there one no time now like when
	deploy build release test fix bug merge branch review ticket server client socket message room
	meeting lunch coffee today tomorrow yesterday morning afternoon tonight week weekend friday monday
	please thanks sure okay yes great cool nice sorry maybe later soon again still already really
	think know need want look see try make let check send call start stop wait help move keep
	latency memory queue cache database index query table schema migration rollback staging prod
	logs metrics alert dashboard graph spike error timeout retry limit config flag feature update
	customer user team project plan doc note issue idea question answer problem reason result
	works broke passed failed green red done blocked running waiting merged shipped pushed pulled`)
	chatEmoji = []string{"thumbsup", "heart", "laugh", "eyes", "rocket", "tada"}
)

// makeChat returns n bytes of chat messages from a fixed pseudo-random
// sequence, so that every run sends the same bytes.
func makeChat(n int) []byte {
	x := uint64(0x9e3779b97f4a7c15)
	rnd := func(k int) int { // xorshift64*
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		return int((x * 0x2545f4914f6cdd1d >> 33) % uint64(k))
	}
	b := make([]byte, 0, n+512)
	b = append(b, `,"messages":[`...)
	id, ts := 48213, int64(1764150000123)
	for i := 0; len(b) < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		id += 1 + rnd(3)
		ts += int64(200 + rnd(30000))
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(id), 10)
		room := chatRooms[rnd(len(chatRooms))]
		b = append(b, `,"type":"message","url":"https://chat.example.com/rooms/`...)
		b = append(b, room...)
		b = append(b, `/messages/`...)
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, `","room":"`...)
		b = append(b, room...)
		b = append(b, `","user":{"id":`...)
		u := rnd(len(chatUsers))
		b = strconv.AppendInt(b, int64(1000+u*37), 10)
		b = append(b, `,"name":"`...)
		b = append(b, chatUsers[u]...)
		b = append(b, `","avatar":"https://cdn.example.com/avatars/`...)
		b = append(b, chatUsers[u]...)
		b = append(b, `.png","status":"online"},"ts":`...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, `,"text":"`...)
		for w, words := 0, 2+rnd(11); w < words; w++ {
			if w > 0 {
				b = append(b, ' ')
			}
			b = append(b, chatWords[rnd(len(chatWords))]...)
		}
		b = append(b, '"')
		if rnd(4) == 0 {
			b = append(b, `,"reactions":{"`...)
			b = append(b, chatEmoji[rnd(len(chatEmoji))]...)
			b = append(b, `":`...)
			b = strconv.AppendInt(b, int64(1+rnd(5)), 10)
			b = append(b, '}')
		}
		b = append(b, `,"attachments":[],"mentions":[],"pinned":false,"edited":`...)
		b = strconv.AppendBool(b, rnd(6) == 0)
		b = append(b, '}')
	}
	return b[:n]
}

// FillChat writes a chat payload of kind into p (len(p) >= HeaderLen):
// the header, then chat traffic.
func FillChat(p []byte, kind byte, seq uint64, nanos int64) {
	p[0] = kind
	Stamp(p, seq, nanos)
	copy(p[HeaderLen:], chatBody)
}

// NewChat returns a chat payload of kind and size (at most HeaderLen
// plus 64 KiB).
func NewChat(kind byte, size int, seq uint64, nanos int64) []byte {
	size = min(max(size, HeaderLen), HeaderLen+len(chatBody))
	p := make([]byte, size)
	FillChat(p, kind, seq, nanos)
	return p
}
