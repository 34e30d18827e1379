package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"xenmanager/backend"
)

// Terminal is the screen and keyboard of an interactive session, for the
// commands that take them over (top, console). Exec.Terminal is nil in exec
// and batch sessions.
type Terminal interface {
	io.Writer
	// Raw switches key forwarding on (every key arrives on Keys, nothing
	// is echoed) or off.
	Raw(on bool)
	// Keys delivers what is typed while raw.
	Keys() <-chan []byte
	// Size is the terminal's width and height.
	Size() (width, height int)
}

func verbTop() *VerbInfo {
	return &VerbInfo{Name: "top", Help: "Live view of servers and VMs by CPU.", Specs: []*Spec{{
		Help: "Servers and running VMs sorted by CPU, with memory, state, server and the guest's load; refreshes every second until q on a terminal, one snapshot otherwise.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if x.Terminal == nil {
				snap, err := x.Backend.Top(ctx)
				if err != nil {
					return nil, err
				}
				return &Result{Text: topLines(snap, 0, 0)}, nil
			}
			return &Result{}, liveTop(ctx, x)
		},
	}}}
}

// liveTop redraws top every second until q, Ctrl-C or the command's time
// runs out.
func liveTop(ctx context.Context, x *Exec) error {
	t := x.Terminal
	t.Raw(true)
	defer t.Raw(false)
	defer io.WriteString(t, "\033[?25h") // show the cursor again
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		snap, err := x.Backend.Top(ctx)
		if err != nil {
			return err
		}
		w, h := t.Size()
		lines := topLines(snap, w, h-1)
		io.WriteString(t, "\033[?25l\033[H\033[2J"+strings.Join(lines, "\r\n")+"\r\n(q to quit)")
		select {
		case k := <-t.Keys():
			if strings.ContainsAny(string(k), "qQ\x03") {
				io.WriteString(t, "\r\n")
				return nil
			}
		case <-tick.C:
		case <-ctx.Done():
			io.WriteString(t, "\r\n")
			return nil
		}
	}
}

// topLines renders a snapshot in at most width columns and height lines (0:
// no limit).
func topLines(s backend.TopSnapshot, width, height int) []string {
	unknown := 0
	for _, v := range s.VMs {
		if v.Status == backend.VMUnknown {
			unknown++
		}
	}
	head := fmt.Sprintf("xenmanager top - %s - %d servers, %d running VMs", s.Time.UTC().Format("15:04:05 UTC"), len(s.Servers), len(s.VMs)-unknown)
	if unknown > 0 {
		head += fmt.Sprintf(", %d Unknown (their server is unreachable)", unknown)
	}
	out := []string{head, ""}
	out = append(out, fmt.Sprintf("%-20s %-12s %6s %10s %10s %4s", "SERVER", "STATUS", "CPU%", "MEM MiB", "FREE MiB", "VMS"))
	for _, sv := range s.Servers {
		line := fmt.Sprintf("%-20s %-12s %6.1f %10d %10d %4d", clip(sv.Name, 20), sv.Status, sv.CPUPercent, sv.TotalMemoryMiB, sv.FreeMemoryMiB, sv.VMs)
		if sv.Err != "" {
			line = fmt.Sprintf("%-20s %-12s %s", clip(sv.Name, 20), sv.Status, sv.Err)
		}
		out = append(out, line)
	}
	out = append(out, "", fmt.Sprintf("%-24s %-16s %-9s %6s %8s %6s %9s %s", "VM", "SERVER", "STATE", "CPU%", "MEM MiB", "LOAD1", "UPTIME", "IP"))
	for _, v := range s.VMs {
		out = append(out, fmt.Sprintf("%-24s %-16s %-9s %6.1f %8d %6.2f %9s %s", clip(v.Name, 24), clip(v.Server, 16), v.Status,
			v.CPUPercent, v.MemoryMiB, v.Load1, (time.Duration(v.UptimeS)*time.Second).String(), v.IP))
	}
	if height > 0 && len(out) > height {
		out = out[:height]
	}
	if width > 0 {
		for i, l := range out {
			out[i] = clip(l, width)
		}
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
