package commands

import (
	"context"
	"strconv"

	"xenmanager/backend"
)

// repositoryType is the Repository: shared storage of a pool holding VMs'
// files, disk images and ISOs.
var repositoryType = &objectType{
	Name: "Repository",
	List: &Spec{Help: "List repositories.", Attrs: []Attr{filterName, filterServerPool},
		Run: listedBy((*backend.Manager).Repositories, repoRow)},
	Show:       shownBy((*backend.Manager).Repository, repoProps),
	RenameHelp: "Rename a repository (in the manager's records; its alias on the servers stays).",
}

func repoRow(r backend.Repository) Row {
	return Row{ID: r.ID, Name: r.Name, Cols: []Prop{
		{"serverPool", r.Pool.Name}, {"fsLocation", r.FSLocation}, {"vms", strconv.Itoa(r.VMs)}}}
}

func repoProps(r backend.Repository) []Prop {
	return []Prop{
		{"Name", r.Name},
		{"Id", r.ID},
		{"Server Pool", ref(r.Pool)},
		{"File System Location", r.FSLocation},
		{"Mount Point", r.MountPoint},
		{"Vms", strconv.Itoa(r.VMs)},
	}
}

func createRepositorySpec() *Spec {
	return &Spec{
		Type: "Repository", Help: "Create a repository on shared storage and make it known to every server of the pool.",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "the repository's name"},
			{Name: "fsLocation", Kind: AttrString, Required: true, Help: "the shared file system's path (for simulated servers, a local directory)"},
		},
		Clause: &Clause{Prep: "on", Types: []string{"ServerPool"}, Required: true},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			r, err := x.Backend.CreateRepository(ctx, backend.CreateRepositoryRequest{
				Name: x.Str("name"), FSLocation: x.Str("fsLocation"), Pool: x.TargetRef()})
			return rowOf(r.ID, r.Name, err)
		},
	}
}

func deleteRepositorySpec() *Spec {
	return &Spec{
		Type: "Repository", Instance: true, Help: "Forget a repository that holds no VMs; its servers unmount it and its files stay.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			r, err := x.Backend.DeleteRepository(ctx, x.Ref())
			return rowOf(r.ID, r.Name, err)
		},
	}
}

func refreshRepositorySpec() *Spec {
	return &Spec{
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
	}
}
