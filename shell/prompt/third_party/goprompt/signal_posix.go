//go:build !windows
// +build !windows

package prompt

import (
	"os"
	"os/signal"
	"syscall"

	"xenmanager/shell/prompt/third_party/goprompt/internal/debug"
)

func (p *Prompt) handleSignals(exitCh chan int, winSizeCh chan *WinSize, stop chan struct{}) {
	in := p.in
	sigCh := make(chan os.Signal, 1)
	signal.Notify(
		sigCh,
		syscall.SIGINT,
		syscall.SIGTERM,
		syscall.SIGQUIT,
		syscall.SIGWINCH,
	)

	// xenmanager patch: every send also watches stop. Run stops this
	// handler (a blocking send on stop) before it runs the executor; a
	// signal that arrived just before, with its send blocking here, used
	// to deadlock the two, and the prompt froze after Enter.
	send := func(ch chan int, code int) bool {
		select {
		case ch <- code:
			return true
		case <-stop:
			return false
		}
	}
	for {
		select {
		case <-stop:
			debug.Log("stop handleSignals")
			return
		case s := <-sigCh:
			switch s {
			case syscall.SIGINT: // kill -SIGINT XXXX or Ctrl+c
				debug.Log("Catch SIGINT")
				if !send(exitCh, 0) {
					return
				}

			case syscall.SIGTERM: // kill -SIGTERM XXXX
				debug.Log("Catch SIGTERM")
				if !send(exitCh, 1) {
					return
				}

			case syscall.SIGQUIT: // kill -SIGQUIT XXXX
				debug.Log("Catch SIGQUIT")
				if !send(exitCh, 0) {
					return
				}

			case syscall.SIGWINCH:
				debug.Log("Catch SIGWINCH")
				select {
				case winSizeCh <- in.GetWinSize():
				case <-stop:
					return
				}
			}
		}
	}
}
