package commands

import (
	"context"

	"xenmanager/backend"
)

// verbClone declares clone on Vm and VmTemplate: Oracle VM 3's form, with
// Oracle VM 2's copies=. As in Oracle VM 3, clone Vm takes a template too
// (a template is also addressed as a Vm).
func verbClone() *VerbInfo {
	return &VerbInfo{Name: "clone", Help: "Copy a VM or template into new VMs or templates.", Specs: []*Spec{
		cloneSpec("Vm", "Copy a stopped VM (or, as in Oracle VM 3, a template named as a Vm) into new VMs (destType=Vm) or templates "+
			"(destType=VmTemplate: saving a VM as a template)."),
		cloneSpec("VmTemplate", "Copy an approved template into new VMs (destType=Vm) or templates (destType=VmTemplate)."),
		cloneDiskSpec(),
	}}
}

// cloneDiskSpec declares clone VirtualDisk: a copy of one disk, as a new
// disk in no VM.
func cloneDiskSpec() *Spec {
	return &Spec{
		Type: "VirtualDisk", Instance: true,
		Help: "Copy a disk that no running VM uses into a new disk (in no VM): sparse unless cloneType= says otherwise, into the disk's " +
			"repository unless targetRepository= names another of its pool. A copy that fails or is aborted leaves nothing behind.",
		Attrs: []Attr{
			{Name: "destName", Kind: AttrString, Required: true, Help: "the new disk's name"},
			{Name: "targetRepository", Kind: AttrObject, Object: "Repository", Help: "where the copy goes (default: the disk's repository)"},
			{Name: "cloneType", Kind: AttrEnum, Enum: backend.CloneTypes, Default: backend.CloneSparseCopy,
				Help: "SPARSE_COPY keeps holes, NON_SPARSE_COPY writes every block, THIN_CLONE shares blocks where the file system can (reflink)"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			d, err := x.Backend.CloneVirtualDisk(ctx, backend.DiskCloneRequest{Source: x.Ref(), DestName: x.Str("destName"),
				Repository: objectRef(x.Str("targetRepository")), CloneType: x.Str("cloneType")})
			return rowOf(d.ID, d.Name, err)
		},
	}
}

func cloneSpec(typ, help string) *Spec {
	return &Spec{
		Type: typ, Instance: true,
		Help: help + " Every disk is copied (sparse, into its own repository, unless targetRepository= or cloneCustomizer= says otherwise), " +
			"and each copy gets new ids, names and MAC addresses. copies=1 names the copy destName; copies=N names them destName-1 .. destName-N, " +
			"and a name that is taken fails the command before anything is copied. Each copy is a job of its own, run in parallel within the " +
			"manager's cloneParallelismPerServer and cloneParallelismPerRepository; abort Job stops it between disks, and a copy that fails or " +
			"is aborted leaves nothing behind (its disks and vm.cfg are removed, no record is made); the copies made stay. ISOs are not carried into clones.",
		Attrs: []Attr{
			{Name: "destType", Kind: AttrEnum, Enum: []string{"Vm", "VmTemplate"}, Required: true, Help: "what the copies are"},
			{Name: "destName", Kind: AttrString, Required: true, Help: "the copy's name; with copies=N, the names are destName-1 .. destName-N"},
			{Name: "copies", Kind: AttrInt, Min: 1, Max: backend.MaxCloneCopies, Default: "1", Help: "how many copies to make"},
			{Name: "serverPool", Kind: AttrObject, Object: "ServerPool", Help: "the source's server pool (a clone copies within one pool)"},
			{Name: "targetRepository", Kind: AttrObject, Object: "Repository",
				Help: "where the copies' vm.cfg go, and the disks no storage mapping places (default: the source's repository, and each disk's own)"},
			{Name: "cloneCustomizer", Kind: AttrObject, Object: "VmCloneCustomizer",
				Help: "a VmCloneCustomizer of the source: where and how each disk is copied, which network each VNIC is on"},
		},
		Run:       runClone,
		AlsoNames: map[string]string{"Vm": "VmTemplate"},
	}
}

func runClone(ctx context.Context, x *Exec) (*Result, error) {
	res, err := x.Backend.Clone(ctx, backend.CloneRequest{
		SourceType: x.Cmd.Spec.Type,
		Source:     x.Ref(),
		DestType:   x.Str("destType"),
		DestName:   x.Str("destName"),
		Copies:     int(x.Int("copies")),
		Pool:       objectRef(x.Str("serverPool")),
		Repository: objectRef(x.Str("targetRepository")),
		Customizer: objectRef(x.Str("cloneCustomizer")),
	})
	if len(res.Copies) == 0 {
		return nil, err // refused before any copy, or still running
	}
	if len(res.Copies) == 1 {
		c := res.Copies[0]
		if c.Err != nil {
			return nil, c.Err
		}
		return &Result{Rows: []Row{{ID: c.ID, Name: c.Name}}}, err
	}
	// Several copies: a row each, with its outcome and its job; the
	// command fails when any copy failed, with the core's count of them.
	out := &Result{}
	for _, c := range res.Copies {
		fields := append(outcomeFields(StatusSuccess, c.Err), strField("job", "jobId", c.Job))
		id := c.ID
		if c.Err != nil {
			id = "" // nothing was made
		}
		out.Rows = append(out.Rows, Row{ID: id, Name: c.Name, Fields: fields})
	}
	return out, err
}
