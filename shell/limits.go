package shell

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits bound the connections and sessions the SSH server admits. They
// are process limits (serve's flags, docs/guide.md "Limits"), and they keep
// two pools apart: unauthenticated connections, which anyone can open and
// which are bounded in all and per address, and sessions of users who
// logged in, which are bounded in all, per user and per connection but not
// per address (an office behind one NAT address is not refused).
type Limits struct {
	// Startups bounds unauthenticated connections as OpenSSH's MaxStartups
	// does: random early drop from Start, all refused at Full.
	Startups Startups
	// StartupsPerAddress bounds the unauthenticated connections from one
	// address (OpenSSH's PerSourceMaxStartups).
	StartupsPerAddress int
	// Sessions bounds sessions in all. A connection that logged in holds
	// one session's slot until its first session opens (which takes that
	// slot), so that connections without sessions are bounded too.
	Sessions int
	// SessionsPerUser bounds the sessions (as Sessions counts them) of one
	// user, so that no account can take every slot.
	SessionsPerUser int
	// SessionsPerConn bounds the sessions open at once on one connection
	// (OpenSSH's MaxSessions).
	SessionsPerConn int
	// SessionSetups bounds the password and key checks and the
	// interactive session setups (the front-end started, its first prompt
	// answered) in progress, all together; the others wait their turn.
	// DefaultSessionSetups when zero.
	SessionSetups int
}

// DefaultLimits are the limits of a Config that sets none: OpenSSH's
// MaxStartups 10:30:100 and MaxSessions 10, at most 10 unauthenticated
// connections per address, 1,000 sessions in all and half of them for one
// user, and DefaultSessionSetups setups at once.
func DefaultLimits() Limits {
	return Limits{Startups: Startups{Start: 10, Rate: 30, Full: 100}, StartupsPerAddress: 10,
		Sessions: 1000, SessionsPerUser: 500, SessionsPerConn: 10, SessionSetups: DefaultSessionSetups()}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Startups == (Startups{}) {
		l.Startups = d.Startups
	}
	if l.StartupsPerAddress == 0 {
		l.StartupsPerAddress = d.StartupsPerAddress
	}
	if l.Sessions == 0 {
		l.Sessions = d.Sessions
	}
	if l.SessionsPerUser == 0 {
		l.SessionsPerUser = d.SessionsPerUser
	}
	if l.SessionsPerConn == 0 {
		l.SessionsPerConn = d.SessionsPerConn
	}
	if l.SessionSetups == 0 {
		l.SessionSetups = DefaultSessionSetups()
	}
	return l
}

// Check reports the first limit that makes no sense.
func (l Limits) Check() error {
	if err := l.Startups.check(); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"unauthenticated connections per address", l.StartupsPerAddress}, {"sessions", l.Sessions},
		{"sessions per user", l.SessionsPerUser}, {"sessions per connection", l.SessionsPerConn},
		{"session setups", l.SessionSetups}} {
		if v.n < 1 {
			return fmt.Errorf("%s: %d is not a limit; use 1 or more", v.name, v.n)
		}
	}
	return nil
}

// Startups is OpenSSH's MaxStartups start:rate:full: below Start
// unauthenticated connections every new one is admitted; from Start on, a
// new one is refused with a probability of Rate per cent, rising linearly
// to 100 at Full, from which every new one is refused.
type Startups struct{ Start, Rate, Full int }

// ParseStartups reads "start:rate:full" (as "10:30:100") or a single
// number N, which refuses every connection past N (N:100:N).
func ParseStartups(s string) (Startups, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Startups{}, fmt.Errorf("%q: use start:rate:full (as 10:30:100) or one number", s)
		}
		nums[i] = n
	}
	var st Startups
	switch len(nums) {
	case 1:
		st = Startups{Start: nums[0], Rate: 100, Full: nums[0]}
	case 3:
		st = Startups{Start: nums[0], Rate: nums[1], Full: nums[2]}
	default:
		return Startups{}, fmt.Errorf("%q: use start:rate:full (as 10:30:100) or one number", s)
	}
	if err := st.check(); err != nil {
		return Startups{}, fmt.Errorf("%q: %w", s, err)
	}
	return st, nil
}

func (st Startups) check() error {
	switch {
	case st.Start < 1 || st.Full < 1:
		return errors.New("start and full must be 1 or more")
	case st.Start > st.Full:
		return errors.New("start must not be above full")
	case st.Rate < 0 || st.Rate > 100:
		return errors.New("rate is a percentage, 0 to 100")
	}
	return nil
}

func (st Startups) String() string { return fmt.Sprintf("%d:%d:%d", st.Start, st.Rate, st.Full) }

// Set reads s as ParseStartups does, so that a Startups is a flag.Value.
func (st *Startups) Set(s string) error {
	v, err := ParseStartups(s)
	if err != nil {
		return err
	}
	*st = v
	return nil
}

// drop decides on a new unauthenticated connection when open are open
// already; roll is uniform in [0, 100).
func (st Startups) drop(open, roll int) bool {
	if open < st.Start {
		return false
	}
	if open >= st.Full {
		return true
	}
	p := st.Rate + (100-st.Rate)*(open-st.Start)/(st.Full-st.Start)
	return roll < p
}

// startups is the pool of unauthenticated connections: from accept until
// the login succeeds or the connection ends.
type startups struct {
	limits     Startups
	perAddress int
	roll       func() int // uniform in [0, 100); called with mu held

	mu     sync.Mutex                // guards open and byAddr
	open   int                       // unauthenticated connections in all
	byAddr map[string][]*startupSlot // per address, oldest first
}

// startupSlot is one unauthenticated connection's place in the pool.
type startupSlot struct {
	addr   string
	evict  func() // closes the connection
	inPool bool   // guarded by startups.mu
}

func newStartups(limits Startups, perAddress int) *startups {
	return &startups{limits: limits, perAddress: perAddress, roll: func() int { return rand.IntN(100) },
		byAddr: map[string][]*startupSlot{}}
}

// admit decides on a new connection from addr: refused when its address
// holds StartupsPerAddress already, or when the random early drop says so
// and no other address holds at least two more than addr would; in that
// case the oldest connection of the address holding the most is evicted
// (evict is called) and the new one takes its place, so that a flood from
// a few addresses cannot keep everyone else out. evict closes the new
// connection, should it be evicted in turn.
func (p *startups) admit(addr string, evict func()) (*startupSlot, bool) {
	p.mu.Lock()
	own := len(p.byAddr[addr])
	if own >= p.perAddress {
		p.mu.Unlock()
		return nil, false
	}
	var victim *startupSlot
	if p.limits.drop(p.open, p.roll()) {
		hog := ""
		for a, slots := range p.byAddr {
			if len(slots) >= own+2 && (hog == "" || len(slots) > len(p.byAddr[hog])) {
				hog = a
			}
		}
		if hog == "" {
			p.mu.Unlock()
			return nil, false
		}
		victim = p.byAddr[hog][0]
		p.removeLocked(victim)
	}
	slot := &startupSlot{addr: addr, evict: evict, inPool: true}
	p.byAddr[addr] = append(p.byAddr[addr], slot)
	p.open++
	p.mu.Unlock()
	if victim != nil {
		victim.evict()
	}
	return slot, true
}

// leave takes slot out of the pool: its connection logged in or ended.
// Calling it again, or for an evicted slot, does nothing.
func (p *startups) leave(slot *startupSlot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(slot)
}

func (p *startups) removeLocked(slot *startupSlot) {
	if !slot.inPool {
		return
	}
	slot.inPool = false
	p.open--
	slots := p.byAddr[slot.addr]
	for i, s := range slots {
		if s == slot {
			slots = append(slots[:i:i], slots[i+1:]...)
			break
		}
	}
	if len(slots) == 0 {
		delete(p.byAddr, slot.addr)
	} else {
		p.byAddr[slot.addr] = slots
	}
}

// sessionSlots counts the session slots taken, in all and per user.
type sessionSlots struct {
	max, maxPerUser int

	mu      sync.Mutex // guards total and perUser
	total   int
	perUser map[string]int
}

func newSessionSlots(max, maxPerUser int) *sessionSlots {
	return &sessionSlots{max: max, maxPerUser: maxPerUser, perUser: map[string]int{}}
}

// take takes n slots for user, or none and says which limit stands in the
// way, in words for the client.
func (s *sessionSlots) take(user string, n int) error {
	if n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total+n > s.max {
		return fmt.Errorf("the manager has %d sessions open, the most it admits; try again later", s.total)
	}
	if s.perUser[user]+n > s.maxPerUser {
		return fmt.Errorf("user %s has %d sessions open, the most one user may have; close one first", user, s.perUser[user])
	}
	s.total += n
	s.perUser[user] += n
	return nil
}

// give returns n slots of user.
func (s *sessionSlots) give(user string, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total -= n
	if s.perUser[user] -= n; s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
}

// clientConn is one client connection as the limits see it: in the
// unauthenticated pool from accept until the login, then holding session
// slots for its user.
type clientConn struct {
	s *Server

	mu       sync.Mutex   // guards the fields below
	startup  *startupSlot // nil once out of the unauthenticated pool
	user     string       // who logged in; "" before
	refusal  error        // why the login got no slot; sessions are refused with it
	sessions int          // sessions open
	held     int          // session slots held
	closed   bool
	authed   chan struct{} // closed at a login that got its slot
}

// wantSlotsLocked is how many slots the connection should hold: one per
// open session, and one while it has none, until it closes.
func (c *clientConn) wantSlotsLocked() int {
	if c.user == "" || c.refusal != nil {
		return 0
	}
	if c.closed {
		return c.sessions
	}
	return max(1, c.sessions)
}

// loggedIn moves the connection from the unauthenticated pool to the
// sessions of user. Without a free slot, the connection stays up (its
// sessions are refused, saying why) until the login grace time ends it.
func (c *clientConn) loggedIn(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.user != "" || c.closed {
		return
	}
	if c.startup != nil {
		c.s.startups.leave(c.startup)
		c.startup = nil
	}
	c.user = user
	if err := c.s.slots.take(user, 1); err != nil {
		c.refusal = err
		c.s.log.Warn("login without a session slot", "user", user, "reason", err.Error())
		return
	}
	c.held = 1
	close(c.authed)
}

// openSession takes a slot for a new session, or says why it cannot.
func (c *clientConn) openSession() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.user == "":
		return errors.New("not logged in")
	case c.refusal != nil:
		return c.refusal
	case c.sessions >= c.s.cfg.Limits.SessionsPerConn:
		return fmt.Errorf("this connection has %d sessions open, the most one connection may have; open another connection",
			c.sessions)
	}
	need := max(1, c.sessions+1) - c.held
	if err := c.s.slots.take(c.user, need); err != nil {
		return err
	}
	c.sessions++
	c.held += need
	return nil
}

// closeSession gives back what a session that ended held.
func (c *clientConn) closeSession() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions--
	c.settleLocked()
}

// close gives back everything the connection holds but its open
// sessions' slots, which they give back as they end.
func (c *clientConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.startup != nil {
		c.s.startups.leave(c.startup)
		c.startup = nil
	}
	c.settleLocked()
}

func (c *clientConn) settleLocked() {
	if extra := c.held - c.wantSlotsLocked(); extra > 0 {
		c.s.slots.give(c.user, extra)
		c.held -= extra
	}
}

// sourceOf is the source a connection's limits and back-off count it
// under: its IPv4 address, or the /64 network of its IPv6 address, since
// one IPv6 host is commonly given a whole /64 and could otherwise appear as
// any number of sources.
func sourceOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		host = a.String()
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
}

// DefaultLoginGraceTime is how long a connection may take to log in when
// Config.LoginTimeout is zero (OpenSSH's LoginGraceTime is 120 s; a person
// typing a password needs far less here, and every second a silent
// connection holds a slot is a second an attacker gets for free).
const DefaultLoginGraceTime = 20 * time.Second
