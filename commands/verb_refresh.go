package commands

import (
	"context"
	"fmt"
	"strconv"

	"xenmanager/backend"
)

func verbRefresh() *VerbInfo {
	return &VerbInfo{Name: "refresh", Help: "Re-read the agents' view of an object.", Specs: []*Spec{
		{
			Type: "Server", Instance: true,
			Help: "Re-read a server's identity and hardware from its agent and bring the state of its VMs in line with the domains it runs.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				r, err := x.Backend.RefreshServer(ctx, x.Ref())
				if err != nil {
					return nil, err
				}
				return &Result{Props: append(serverProps(r.Server), Prop{"Vms Changed", strconv.Itoa(r.VMsChanged)})}, nil
			},
		},
		{
			Type: "ServerPool", Instance: true,
			Help: "Refresh every server of a pool at once, one result line per server.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				out, err := x.Backend.RefreshServerPool(ctx, x.Ref())
				if out == nil {
					return nil, err
				}
				res := &Result{Rows: make([]Row, len(out))}
				failed, first := 0, error(nil)
				for i, r := range out {
					result := fmt.Sprintf("Success (%d Vms changed)", r.Result.VMsChanged)
					if r.Err != nil {
						result = fmt.Sprintf("%s: %s", codeFor(r.Err), backend.Message(r.Err))
						failed++
						if first == nil {
							first = r.Err
						}
					}
					res.Rows[i] = Row{ID: r.Server.ID, Name: r.Server.Name, Cols: []Prop{{resultCol, result}}}
				}
				if failed > 0 {
					return res, &multiError{failed: failed, total: len(out), first: first}
				}
				return res, nil
			},
		},
		{
			Type: "Repository", Instance: true,
			Help: "Ask a server of the pool how it sees the repository: size, free space and files, beside the manager's records.",
			Run: func(ctx context.Context, x *Exec) (*Result, error) {
				st, err := x.Backend.RefreshRepository(ctx, x.Ref())
				if err != nil {
					return nil, err
				}
				r := st.Repository
				return &Result{Props: []Prop{{"Name", r.Name}, {"Id", r.ID}, {"Server Pool", ref(r.Pool)}, {"Seen By", ref(st.Server)},
					{"Mount Point", r.MountPoint}, {"Total (MiB)", itoa(st.TotalMiB)}, {"Free (MiB)", itoa(st.FreeMiB)},
					{"Vm Files", itoa(st.VMFiles)}, {"Vms Recorded", strconv.Itoa(r.VMs)},
					{"Disk Files", itoa(st.DiskFiles)}, {"VirtualDisks Recorded", strconv.Itoa(st.RecordedDisks)},
					{"ISO Files", itoa(st.ISOFiles)}, {"VirtualCdroms Recorded", strconv.Itoa(st.RecordedISOs)},
					{"Templates", itoa(st.Templates)}}}, nil
			},
		},
	}}
}
