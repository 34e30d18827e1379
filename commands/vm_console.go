package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
)

func verbConsole() *VerbInfo {
	return &VerbInfo{Name: "console", Help: "Attach to a VM's serial console.", Specs: []*Spec{{
		Type: "Vm", Instance: true,
		Help: "Attach the terminal to the guest's serial console through its server's agent; Ctrl-] returns to the prompt. Needs an interactive session (ssh -t).",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if x.Terminal == nil {
				return nil, failf(CodeNotSupported, "console needs an interactive session: connect with ssh -t and run it at the OVM> prompt")
			}
			conn, v, err := x.Backend.OpenConsole(ctx, x.Ref())
			if err != nil {
				return nil, err
			}
			t := x.Terminal
			fmt.Fprintf(t, "Connected to the console of Vm %s on %s. Ctrl-] returns to the prompt.\r\n", v.Name, v.Server.Name)
			t.Raw(true)
			guestGone := make(chan struct{})
			go func() {
				defer close(guestGone)
				io.Copy(t, conn)
			}()
			// On the way out: close the console and wait for the copy, so that
			// no guest output reaches the terminal after the command ends, and
			// only then give the keyboard back.
			defer t.Raw(false)
			defer func() { conn.Close(); <-guestGone }()
			// Keys go to the guest as typed, as from a serial terminal: Enter
			// is CR, which a guest's tty reads as a line end (ICRNL, the
			// default of a Linux serial console and of getty); sent as CR LF
			// it would be two line ends there (an empty password after a
			// login name).
			for {
				select {
				case k := <-t.Keys():
					if i := strings.IndexByte(string(k), 0x1d); i >= 0 {
						conn.Write(k[:i])
						io.WriteString(t, "\r\n")
						return &Result{}, nil
					}
					if _, err := conn.Write(k); err != nil {
						return &Result{}, nil
					}
				case <-guestGone:
					io.WriteString(t, "\r\nThe console closed.\r\n")
					return &Result{}, nil
				case <-ctx.Done():
					return &Result{}, nil
				}
			}
		},
	}}}
}
