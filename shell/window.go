package shell

import (
	"sync"

	"github.com/gliderlabs/ssh"
)

// The window sizes the editors are given. SSH lets a client report any
// size up to 2^32-1 columns and rows, and a pty keeps 16 bits of each, so
// a width of 65536 would reach go-prompt as 0 columns, and it divides by
// the width. A client whose terminal reports no size sends 0 x 0 (expect's
// terminal, which nobody sized): go-prompt then finds the window too small
// and the plain editor wraps after each character, so expect never sees
// the prompt. Every size a client reports (the pty request, each window
// change) goes through clampWindow first: a dimension of 0 is the
// terminal's classic 80 columns or 24 rows, and any other is bounded to
// 1..maxWindowCols columns and 1..maxWindowRows rows, far more than a
// screen shows.
const (
	defaultWindowCols = 80
	defaultWindowRows = 24
	maxWindowCols     = 1000
	maxWindowRows     = 1000
)

// clampWindow is the window the session's editors are given for w, the
// size a client reported; each dimension is taken on its own.
func clampWindow(w ssh.Window) ssh.Window {
	return ssh.Window{
		Width:  clampDimension(w.Width, defaultWindowCols, maxWindowCols),
		Height: clampDimension(w.Height, defaultWindowRows, maxWindowRows),
	}
}

// clampDimension is v bounded to 1..most, or unknown when v is none (0,
// or below).
func clampDimension(v, unknown, most int) int {
	if v <= 0 {
		return unknown
	}
	return min(v, most)
}

// windowSize is a session's current window, as the manager last set it on
// the session's pty, for commands that draw to fit it (top): kept here so
// that they need not ask the pty, which closes when the session ends.
type windowSize struct {
	mu sync.Mutex // guards w
	w  ssh.Window
}

func (s *windowSize) set(w ssh.Window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
}

func (s *windowSize) get() ssh.Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w
}
