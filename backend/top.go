package backend

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"xenmanager/store"
)

// ServerLoad is one server's line of top.
type ServerLoad struct {
	Name, Status   string
	CPUPercent     float64
	TotalMemoryMiB int64
	FreeMemoryMiB  int64
	VMs            int
	Err            string // why there are no figures
}

// VMLoad is one running VM's line of top, or, without figures, the line of
// a VM whose server is Unreachable (Status Unknown).
type VMLoad struct {
	Name, Server, Status string
	CPUPercent           float64
	MemoryMiB            int64
	Load1                float64
	UptimeS              int64
	IP                   string
}

// TopSnapshot is what top shows at one moment.
type TopSnapshot struct {
	Time    time.Time
	Servers []ServerLoad
	VMs     []VMLoad // by CPU, busiest first
}

// Top asks every server the actor may see for its statistics at once and
// returns servers and VMs sorted by CPU. The VMs placed on an Unreachable
// server are listed Unknown, as list Vm and show Vm show them.
func (m *Manager) Top(ctx context.Context) (TopSnapshot, error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return TopSnapshot{}, err
	}
	servers, err := m.st.Read().Servers(ctx)
	if err != nil {
		return TopSnapshot{}, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	vms, err := m.st.Read().VMs(ctx)
	if err != nil {
		return TopSnapshot{}, &Error{Kind: KindInternal, Msg: "read VMs", Cause: err}
	}
	byID := make(map[string]store.VM, len(vms))
	for _, v := range vms {
		byID[v.ID] = v
	}
	snap := TopSnapshot{Time: time.Now()}
	var mu sync.Mutex // guards snap
	var wg sync.WaitGroup
	for _, s := range servers {
		if !sc.sees(s.PoolID) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := ServerLoad{Name: s.Name, Status: s.Status, TotalMemoryMiB: s.TotalMemoryMiB}
			var loads []VMLoad
			c, err := m.clients.get(s)
			if err == nil && s.Status == ServerRunning {
				sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				st, serr := c.GetStatistics(sctx)
				cancel()
				if serr != nil {
					line.Err = agentError("statistics", s.Name, serr).Msg
				} else {
					line.CPUPercent, line.FreeMemoryMiB, line.VMs = st.CPUPercent, st.MemoryFreeMiB, len(st.VMs)
					for _, vs := range st.VMs {
						v, ok := byID[vs.UUID]
						if !ok {
							continue // not a VM of this manager
						}
						loads = append(loads, VMLoad{Name: v.Name, Server: s.Name, Status: v.Status, CPUPercent: vs.CPUPercent,
							MemoryMiB: vs.MemoryMiB, Load1: vs.Guest.Load1, UptimeS: vs.Guest.UptimeS, IP: vs.Guest.IP})
					}
				}
			} else if err != nil {
				line.Err = err.Error()
			}
			if s.Status == ServerUnreachable {
				line.Err = "unreachable: it missed its heartbeats; its VMs are Unknown"
				for _, v := range vms {
					if v.ServerID == s.ID {
						loads = append(loads, VMLoad{Name: v.Name, Server: s.Name, Status: shownVMStatus(v.Status, s.Status), MemoryMiB: v.MemoryMiB})
					}
				}
			}
			mu.Lock()
			snap.Servers = append(snap.Servers, line)
			snap.VMs = append(snap.VMs, loads...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(snap.Servers, func(i, j int) bool {
		if snap.Servers[i].CPUPercent != snap.Servers[j].CPUPercent {
			return snap.Servers[i].CPUPercent > snap.Servers[j].CPUPercent
		}
		return snap.Servers[i].Name < snap.Servers[j].Name
	})
	sort.Slice(snap.VMs, func(i, j int) bool {
		if snap.VMs[i].CPUPercent != snap.VMs[j].CPUPercent {
			return snap.VMs[i].CPUPercent > snap.VMs[j].CPUPercent
		}
		return snap.VMs[i].Name < snap.VMs[j].Name
	})
	return snap, nil
}

// OpenConsole connects to a running VM's serial console through its
// server's agent (open_console) and returns the connection, past the token:
// what is written goes to the guest, what is read comes from it.
func (m *Manager) OpenConsole(ctx context.Context, ref Ref) (net.Conn, VM, error) {
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return nil, VM{}, err
	}
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return nil, VM{}, err
	}
	if v.Status != VMRunning && v.Status != VMPaused {
		return nil, VM{}, errorf(KindInvalidState, "Vm %s is %s; console needs Running", v.Name, v.Status)
	}
	s, c, err := m.serverOf(ctx, v)
	if err != nil {
		return nil, VM{}, err
	}
	info, err := c.OpenConsole(ctx, v.RepoID, v.ID)
	if err != nil {
		return nil, VM{}, agentError("console Vm "+v.Name, s.Name, err)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", info.Address)
	if err != nil {
		return nil, VM{}, errorf(KindAgentUnreachable, "console Vm %s: cannot reach the console of server %s at %s: %v", v.Name, s.Name, info.Address, err)
	}
	if _, err := fmt.Fprintf(conn, "%s\n", info.Token); err != nil {
		conn.Close()
		return nil, VM{}, errorf(KindAgentUnreachable, "console Vm %s: %v", v.Name, err)
	}
	view, err := m.VM(ctx, Ref{ID: v.ID})
	if err != nil {
		conn.Close()
		return nil, VM{}, err
	}
	return conn, view, nil
}
