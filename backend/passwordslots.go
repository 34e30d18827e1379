package backend

import (
	"context"
	"runtime"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
)

// DefaultPasswordChecks is how many bcrypt computations (a login's
// comparison, a new password's hash) run at once when Config.PasswordChecks
// is zero: one fewer than the processors Go runs on, at least one, so that
// a storm of password logins leaves the job runner, heartbeats and the
// sessions' commands a processor of their own. Each computation is tens of
// milliseconds of CPU at the default cost; more of them at once do not log
// anyone in sooner on a busy machine, they only queue everything else
// behind them.
func DefaultPasswordChecks() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// passwordSlots bounds the bcrypt computations that run at once; a caller
// waits for a slot, or until its context ends.
type passwordSlots struct{ sem *semaphore.Weighted }

func newPasswordSlots(n int) passwordSlots {
	if n <= 0 {
		n = DefaultPasswordChecks()
	}
	return passwordSlots{sem: semaphore.NewWeighted(int64(n))}
}

// do runs f in a slot.
func (s passwordSlots) do(ctx context.Context, f func()) error {
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	defer s.sem.Release(1)
	f()
	return nil
}

// compare is bcrypt.CompareHashAndPassword in a slot; a context that ends
// while it waits fails it as a wrong password would.
func (s passwordSlots) compare(ctx context.Context, hash []byte, password string) error {
	err := bcrypt.ErrMismatchedHashAndPassword
	if werr := s.do(ctx, func() { err = bcrypt.CompareHashAndPassword(hash, []byte(password)) }); werr != nil {
		return werr
	}
	return err
}

// generate is bcrypt.GenerateFromPassword in a slot.
func (s passwordSlots) generate(ctx context.Context, password string, cost int) ([]byte, error) {
	var h []byte
	var err error
	if werr := s.do(ctx, func() { h, err = bcrypt.GenerateFromPassword([]byte(password), cost) }); werr != nil {
		return nil, werr
	}
	return h, err
}
