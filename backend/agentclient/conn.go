package agentclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"xenmanager/backend/agentapi"
)

// Connection limits: how long a dial and a TLS handshake may take, how long
// an idle connection is kept (under the agent's own idle timeout of 2
// minutes, so that the agent is not the one to close it), and how many
// bytes of headers an answer may have before its body.
const (
	dialTimeout      = 5 * time.Second
	handshakeTimeout = 5 * time.Second
	idleTimeout      = 60 * time.Second
	maxAnswerHeader  = 64 << 10
)

// conn is one HTTP/1.1 keep-alive connection to the agent over TLS, used by
// one call at a time. A call writes its request and reads the answer on it
// in its own goroutine: net/http's transport hands each request to a write
// goroutine and each answer back from a read goroutine, two wake-ups per
// call that cost a busy machine several milliseconds of waiting for a core
// (docs/performance.md, figure 4).
type conn struct {
	raw       net.Conn
	tls       *tls.Conn
	lim       limitedReader // under br: bounds what one call reads
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// limitedReader reads from r while n > 0, then fails with errTooLong: what
// one answer may read of the connection, headers and body.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLong
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// connPool keeps the idle connections of a Client; there are never more
// than Conns and the held call's, as no more calls are in flight.
type connPool struct {
	mu     sync.Mutex // guards idle and closed
	idle   []*conn
	closed bool
}

// get returns an idle connection that is still open, or nil.
func (p *connPool) get() *conn {
	for {
		p.mu.Lock()
		if len(p.idle) == 0 {
			p.mu.Unlock()
			return nil
		}
		cn := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		if time.Since(cn.idleSince) < idleTimeout && alive(cn.raw) {
			return cn
		}
		cn.raw.Close()
	}
}

// put keeps cn for the next call, or closes it once the client is closed.
func (p *connPool) put(cn *conn) {
	cn.idleSince = time.Now()
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, cn)
		cn = nil
	}
	p.mu.Unlock()
	if cn != nil {
		cn.raw.Close()
	}
}

// close closes the idle connections and every one put back after it.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, cn := range idle {
		cn.raw.Close()
	}
}

// dial opens a connection to the agent and makes the TLS handshake (verify
// checks the pin, on a resumed session too), within ctx and the dial and
// handshake timeouts.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", c.Address())
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	tc := tls.Client(raw, c.tlsConf)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	cn := &conn{raw: raw, tls: tc, bw: bufio.NewWriterSize(tc, 4<<10)}
	cn.lim.r = tc
	cn.br = bufio.NewReaderSize(&cn.lim, 4<<10)
	return cn, nil
}

// requestHead returns the head of every request of the client but its
// Content-Length: the method, path, host, credentials and type.
func requestHead(cfg Config) string {
	host := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
	auth := base64.StdEncoding.EncodeToString([]byte(agentapi.AgentUser + ":" + cfg.Password))
	return "POST " + agentapi.Path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: xenmanager\r\n" +
		"Authorization: Basic " + auth + "\r\nContent-Type: text/xml\r\nContent-Length: "
}
