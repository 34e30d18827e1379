package shell

import (
	"sync"

	"github.com/gliderlabs/ssh"
)

// The window sizes the editors are given. SSH lets a client report any
// size up to 2^32-1 columns and rows, and a pty keeps 16 bits of each, so
// a width of 65536 would reach go-prompt as 0 columns, and it divides by
// the width. Every size a client reports (the pty request, each window
// change) goes through clampWindow first: 1 to maxWindowCols columns and 1
// to maxWindowRows rows, far more than any screen shows.
const (
	maxWindowCols = 1000
	maxWindowRows = 1000
)

// clampWindow is the window the session's editors are given for w, the
// size a client reported.
func clampWindow(w ssh.Window) ssh.Window {
	return ssh.Window{Width: clampDimension(w.Width, maxWindowCols), Height: clampDimension(w.Height, maxWindowRows)}
}

// clampDimension bounds one dimension to 1..most.
func clampDimension(v, most int) int { return min(max(v, 1), most) }

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
