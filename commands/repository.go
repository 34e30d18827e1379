package commands

import (
	"context"

	"xenmanager/backend"
)

// repositoryType is the Repository: shared storage of a pool holding VMs'
// files, disk images and ISOs.
var repositoryType = &objectType{
	Name: "Repository",
	List: &Spec{Help: "List repositories.", Attrs: []Attr{filterName, filterServerPool},
		Run: listedBy((*backend.Manager).Repositories, repoRow)},
	Show:       shownBy((*backend.Manager).Repository, repoFields),
	ShowFields: fieldsOf(repoFields),
	ListFields: rowFieldsOf(repoRow),
	RenameHelp: "Rename a repository (in the manager's records; its alias on the servers stays).",
}

func repoRow(r backend.Repository) Row {
	return Row{ID: r.ID, Name: r.Name, Fields: []Field{
		refCol("serverPool", "serverPool", r.Pool), strField("fsLocation", "fsLocation", r.FSLocation), intField("vms", "vmCount", int64(r.VMs))}}
}

func repoFields(r backend.Repository) []Field {
	return []Field{
		strField("Name", "name", r.Name),
		strField("Id", "id", r.ID),
		refField("Server Pool", "serverPool", r.Pool),
		strField("File System Location", "fsLocation", r.FSLocation),
		strField("Mount Point", "mountPoint", r.MountPoint),
		intField("Vms", "vmCount", int64(r.VMs)),
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
			return &Result{Fields: repoStatusFields(st)}, nil
		},
	}
}

// repoStatusFields are what refresh Repository prints: how a server sees
// the repository, beside the manager's records.
func repoStatusFields(st backend.RepositoryState) []Field {
	r := st.Repository
	return []Field{strField("Name", "name", r.Name), strField("Id", "id", r.ID), refField("Server Pool", "serverPool", r.Pool),
		refField("Seen By", "seenBy", st.Server), strField("Mount Point", "mountPoint", r.MountPoint),
		intField("Total (MiB)", "totalMiB", st.TotalMiB), intField("Free (MiB)", "freeMiB", st.FreeMiB),
		intField("Vm Files", "vmFileCount", st.VMFiles), intField("Vms Recorded", "vmCount", int64(r.VMs)),
		intField("Disk Files", "diskFileCount", st.DiskFiles), intField("VirtualDisks Recorded", "virtualDiskCount", int64(st.RecordedDisks)),
		intField("ISO Files", "isoFileCount", st.ISOFiles), intField("VirtualCdroms Recorded", "virtualCdromCount", int64(st.RecordedISOs)),
		intField("Template Disks Recorded", "templateDiskCount", int64(st.RecordedTemplateDisks)),
		intField("Templates", "templateCount", st.Templates), intField("VmTemplates Recorded", "vmTemplateCount", int64(st.RecordedTemplates))}
}
