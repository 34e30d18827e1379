package backend

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultPasswordCacheSeconds is how long a verified password is
// remembered in a new database (edit Manager passwordCacheSeconds; the
// migration's default, which this must match). Five minutes covers a
// script's run of logins and a storm of sessions logging in at once, each
// of which would otherwise take tens of milliseconds of a processor for
// bcrypt; it keeps what a copy of the process's memory could give away to
// the passwords used in the last five minutes. Elasticsearch's realm cache
// keeps twenty.
const DefaultPasswordCacheSeconds = 300

// MaxPasswordCacheSeconds bounds passwordCacheSeconds (a day; the store
// checks it too).
const MaxPasswordCacheSeconds = 86400

// credentialCache remembers the passwords that passed bcrypt recently, so
// that the same user's next login with the same password skips it: a
// storm of password logins as one user pays one bcrypt instead of one
// each. It keeps, per user, only an HMAC-SHA256 of the password under a
// key drawn at random when the process starts (never stored, never
// shown), with the stored hash the password was checked against and when.
// An entry serves while that hash is still the user's (a password change
// ends it) and while it is younger than the TTL read at each login (so a
// lower passwordCacheSeconds, or 0, ends it at once). Failures are never
// remembered: every wrong password pays bcrypt in its slot.
//
// Concurrent checks of one user, stored hash and password share one bcrypt
// (singleflight); a caller that shared a check which failed (a wrong
// password, or the first caller's connection gone while it waited) runs
// its own, so that sharing never makes a failure cheaper, and a caller
// whose own context ends stops waiting for a shared one.
type credentialCache struct {
	key    [32]byte // the HMAC key: random, per process
	now    func() time.Time
	flight singleflight.Group // checks in flight, by user, stored hash and the password's HMAC

	// bcrypts counts the bcrypt comparisons run for logins of known
	// users (tests read it); began, when not nil, is called as each check
	// begins (tests wait on it for logins to meet).
	bcrypts atomic.Int64
	began   func()

	mu      sync.Mutex                 // guards entries
	entries map[string]credentialEntry // by user name
}

// credentialEntry is a password that passed bcrypt.
type credentialEntry struct {
	mac      [sha256.Size]byte // HMAC-SHA256 of the user's name and the password under credentialCache.key
	hash     string            // the stored hash it was checked against
	verified time.Time
}

func newCredentialCache() *credentialCache {
	c := &credentialCache{now: time.Now, entries: map[string]credentialEntry{}}
	rand.Read(c.key[:]) // never fails (crypto/rand)
	return c
}

// mac is the HMAC of user and password under c's key.
func (c *credentialCache) mac(user, password string) [sha256.Size]byte {
	h := hmac.New(sha256.New, c.key[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// check reports whether password is user's, whose stored bcrypt hash is
// hash: from the cache when ttl > 0 and a younger entry for this hash has
// the password's HMAC, else by bcrypt in slots. A context that ends while
// the check waits for a slot fails it as a wrong password would.
func (c *credentialCache) check(ctx context.Context, slots passwordSlots, user, hash, password string, ttl time.Duration) error {
	if c.began != nil {
		c.began()
	}
	compare := func() error {
		c.bcrypts.Add(1)
		return slots.compare(ctx, []byte(hash), password)
	}
	if ttl <= 0 {
		c.forgetAll()
		return compare()
	}
	mac := c.mac(user, password)
	if c.hit(user, hash, mac, ttl) {
		return nil
	}
	// The check that runs returns its caller's token, so that each caller
	// knows whether the result it got is its own (the check runs in a
	// goroutine of its own: DoChan).
	token := new(byte)
	shared := c.flight.DoChan(user+"\x00"+hash+"\x00"+string(mac[:]), func() (any, error) {
		err := compare()
		if err == nil {
			c.put(user, hash, mac, ttl)
		}
		return token, err
	})
	var err error
	select {
	case r := <-shared:
		err = r.Err
		if err != nil && r.Val != token {
			if err = compare(); err == nil {
				c.put(user, hash, mac, ttl)
			}
		}
	case <-ctx.Done():
		// The caller's connection is gone: it waits no longer for a
		// check another login runs.
		err = ctx.Err()
	}
	return err
}

// hit reports whether user's entry is for hash, younger than ttl and of
// mac; an entry for another hash or too old is dropped.
func (c *credentialCache) hit(user, hash string, mac [sha256.Size]byte, ttl time.Duration) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[user]
	if !ok {
		return false
	}
	if e.hash != hash || now.Sub(e.verified) >= ttl || now.Before(e.verified) {
		delete(c.entries, user)
		return false
	}
	return hmac.Equal(e.mac[:], mac[:])
}

// put remembers that mac's password passed for user against hash, and
// drops the entries older than ttl.
func (c *credentialCache) put(user, hash string, mac [sha256.Size]byte, ttl time.Duration) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, e := range c.entries {
		if now.Sub(e.verified) >= ttl {
			delete(c.entries, u)
		}
	}
	c.entries[user] = credentialEntry{mac: mac, hash: hash, verified: now}
}

// forget drops user's entry (a password changed, a user deleted, or the
// cache disabled).
func (c *credentialCache) forget(user string) {
	c.mu.Lock()
	delete(c.entries, user)
	c.mu.Unlock()
}

// forgetAll drops every entry.
func (c *credentialCache) forgetAll() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
