package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/lafgo/laf/internal/rawws"
)

// rawConn is a client connection spoken to byte by byte, for the peers
// coder/websocket's client cannot play: one that answers no ping, one that
// never reads, one that drops TCP, one that sends invalid UTF-8.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

// rawDial connects to the server's 127.0.0.1 address and does the opening
// handshake for kind k. A rcvbuf above zero sets SO_RCVBUF before
// connecting.
func (c *clients) rawDial(k kind, rcvbuf int) (*rawConn, error) {
	ks := &c.stats[k]
	ks.dials.Add(1)
	rc, err := c.rawDial1(k, rcvbuf)
	if err != nil {
		var se statusError
		if errors.As(err, &se) {
			ks.dialError(fmt.Sprint(int(se)))
		} else {
			ks.dialError(errClass(err))
		}
		c.sleep(100 * time.Millisecond)
	}
	return rc, err
}

func (c *clients) rawDial1(k kind, rcvbuf int) (*rawConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", c.addr) // c.addr is 127.0.0.1:port
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = crand.Read(key[:])
	k64 := base64.StdEncoding.EncodeToString(key[:])
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws?k=" + k.String() + " HTTP/1.1\r\nHost: " + c.addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + k64 +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	h := sha1.Sum([]byte(k64 + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(h[:]) {
		conn.Close()
		return nil, statusError(resp.StatusCode)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawConn{c: conn, br: br}, nil
}

// statusError is the HTTP status of a refused upgrade.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("upgrade refused with status %d", int(e)) }

// writeFrame writes one final, masked frame.
func (rc *rawConn) writeFrame(op byte, payload []byte) error {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	_, _ = crand.Read(key[:])
	b = append(b, key[:]...)
	for i, x := range payload {
		b = append(b, x^key[i%4])
	}
	_, err := rc.c.Write(b)
	return err
}

// readAll reads the server's byte stream until it ends or the deadline
// passes, answers the server's close frame with one of its own, and
// checks the stream with rawws: valid frames only, nothing after the close
// frame. It answers no ping. It returns the close code (1006 if none came)
// and how the stream ended.
func (c *clients) readAll(rc *rawConn, deadline time.Duration) (code int, end error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(deadline))
	var stream []byte
	buf := make([]byte, 4096)
	answered := false
	const maxStream = 4 << 20
	for {
		n, err := rc.br.Read(buf)
		if len(stream)+n <= maxStream {
			stream = append(stream, buf[:n]...)
		}
		if !answered && n > 0 {
			if frames, _ := rawws.Parse(stream); rawws.FirstClose(frames) >= 0 {
				f := frames[rawws.FirstClose(frames)]
				if !f.Truncated {
					answered = true
					code, _, _ := f.CloseStatus()
					p := binary.BigEndian.AppendUint16(nil, uint16(code))
					if code == 1005 {
						p = nil
					}
					_ = rc.writeFrame(rawws.OpClose, p)
				}
			}
		}
		if err != nil {
			end = err
			break
		}
	}
	code = 1006
	if len(stream) >= maxStream {
		return code, end // too long to keep; nothing to check
	}
	c.rawStreams.Add(1)
	frames, err := rawws.Parse(stream)
	if err != nil {
		c.v.add("server sent an invalid frame", err.Error())
	}
	if err := rawws.CheckClosed(frames); err != nil {
		c.v.add("server sent a bad close frame, or bytes after it", err.Error())
	}
	if i := rawws.FirstClose(frames); i >= 0 && !frames[i].Truncated {
		code, _, _ = frames[i].CloseStatus()
	}
	return code, end
}

// rawOutcome names how a raw client's stream ended.
func rawOutcome(code int, end error) string {
	switch {
	case code != 1006:
		return "got " + fmt.Sprint(code)
	case errors.Is(end, io.EOF):
		return "drop: EOF"
	default:
		return "drop: " + errClass(end)
	}
}

// noPong reads everything the server sends and never answers a ping, so
// the server's pong timeout drops it.
func (c *clients) noPong() {
	ks := &c.stats[kNoPong]
	rc, err := c.rawDial(kNoPong, 0)
	if err != nil {
		return
	}
	defer rc.c.Close()
	code, end := c.readAll(rc, c.cfg.Ping+c.cfg.Pong+c.cfg.Lifetime+30*time.Second)
	ks.outcome(rawOutcome(code, end))
}

// badUTF8 sends a text frame that is not UTF-8, and reads the answer.
func (c *clients) badUTF8() {
	ks := &c.stats[kBadUTF8]
	rc, err := c.rawDial(kBadUTF8, 0)
	if err != nil {
		return
	}
	defer rc.c.Close()
	if rc.writeFrame(rawws.OpText, []byte{'e', 0xff, 0xfe, 0xfd}) == nil {
		ks.sent.Add(1)
	}
	code, end := c.readAll(rc, c.cfg.CloseTimeout+30*time.Second)
	ks.outcome(rawOutcome(code, end))
}

// drop sends two echoes and drops the TCP connection without a close
// frame: every other time with a reset (SO_LINGER 0) instead of a FIN.
func (c *clients) drop(r interface{ IntN(int) int }) {
	ks := &c.stats[kDrop]
	rc, err := c.rawDial(kDrop, 0)
	if err != nil {
		return
	}
	for i := range 2 {
		if rc.writeFrame(rawws.OpText, fmt.Appendf(nil, "e:%d", i+1)) == nil {
			ks.sent.Add(1)
		}
	}
	time.Sleep(time.Duration(r.IntN(200)) * time.Millisecond)
	if r.IntN(2) == 0 {
		if tc, ok := rc.c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		ks.outcome("reset by client")
	} else {
		ks.outcome("FIN by client")
	}
	rc.c.Close()
}

// noRead never reads, with a small receive buffer, while the Func streams
// to it; it sends a message every NoReadEvery (so the read idle timeout
// does not close it) until a write fails, the server having dropped it.
func (c *clients) noRead(*rand.Rand) {
	ks := &c.stats[kNoRead]
	rc, err := c.rawDial(kNoRead, 4096)
	if err != nil {
		return
	}
	defer rc.c.Close()
	t := time.NewTicker(c.cfg.NoReadEvery)
	defer t.Stop()
	giveUp := time.After(c.cfg.Lifetime + c.cfg.CloseTimeout + 30*time.Second)
	for {
		select {
		case <-c.ctx.Done():
			ks.outcome("cancelled")
			return
		case <-giveUp:
			ks.outcome("still open at its deadline")
			return
		case <-t.C:
		}
		_ = rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := rc.writeFrame(rawws.OpText, []byte("n")); err != nil {
			ks.outcome("dropped: write " + errClass(err))
			return
		}
		ks.sent.Add(1)
	}
}
