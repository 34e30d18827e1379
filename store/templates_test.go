package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A template keeps its disks and VNICs (one without a network reads as
// ""), refuses a slot or a disk file given twice, and takes its disks,
// VNICs, customizers and tags with it when it goes; a customizer belongs
// to exactly one VM or template and goes with it, with its mappings; a
// second mapping of one disk or VNIC in a customizer is a conflict.
func TestTemplatesAndCustomizers(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		must := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		write := func(fn func(q *Queries) error) error { return s.Write(ctx, fn) }
		must("seed", write(func(q *Queries) error {
			for _, err := range []error{
				q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool1", CreatedAt: now}),
				q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/m", CreatedAt: now}),
				q.InsertNetwork(ctx, Network{ID: "n1", Name: "net", PoolID: "p1", Bridge: "xenbr0", CreatedAt: now}),
				q.InsertVM(ctx, VM{ID: "v1", Name: "vm", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1,
					DomainType: "xen_pvm", CreatedAt: now}),
				q.InsertTag(ctx, Tag{ID: "t1", Name: "gold", CreatedAt: now}),
			} {
				if err != nil {
					return err
				}
			}
			return nil
		}))
		tpl := VMTemplate{ID: "tp1", Name: "ol9", PoolID: "p1", RepoID: "r1", MemoryMiB: 512, CPUCount: 2, DomainType: "xen_hvm",
			Origin: "http://h/ol9.tgz", State: "Pending", CreatedBy: "op", CreatedAt: now}
		disks := []TemplateDisk{{ID: "m0", DiskID: "d0", RepoID: "r1", Name: "ol9-xvda", Slot: 0, SizeMiB: 10, Sparse: true, CreatedAt: now},
			{ID: "m1", DiskID: "d1", RepoID: "r1", Name: "ol9-xvdb", Slot: 1, SizeMiB: 20, CreatedAt: now}}
		vnics := []TemplateVnic{{ID: "e0", Name: "ol9-eth0", NetworkID: "n1", Position: 0, MAC: "00:21:f6:00:00:01", CreatedAt: now},
			{ID: "e1", Name: "ol9-eth1", Position: 1, MAC: "00:21:f6:00:00:02", CreatedAt: now}}
		must("insert template", write(func(q *Queries) error { return q.InsertVMTemplate(ctx, tpl, disks, vnics) }))

		q := s.Read()
		got, err := q.TemplateDisks(ctx, "tp1")
		if err != nil || len(got) != 2 || got[0].DiskID != "d0" || got[1].SizeMiB != 20 || !got[0].Sparse || got[0].TemplateID != "tp1" {
			t.Fatalf("TemplateDisks = %+v, %v", got, err)
		}
		vs, err := q.TemplateVnics(ctx, "tp1")
		if err != nil || len(vs) != 2 || vs[0].NetworkID != "n1" || vs[1].NetworkID != "" {
			t.Fatalf("TemplateVnics = %+v, %v", vs, err)
		}
		if byName, err := q.VMTemplatesByName(ctx, "ol9"); err != nil || len(byName) != 1 || byName[0].Origin != tpl.Origin {
			t.Fatalf("VMTemplatesByName = %+v, %v", byName, err)
		}

		// A slot or a disk file given twice is a conflict, and nothing of the
		// template is left (the write rolls back as a whole).
		for name, d := range map[string][]TemplateDisk{
			"slot": {{ID: "x0", DiskID: "dx", RepoID: "r1", Name: "a", Slot: 0}, {ID: "x1", DiskID: "dy", RepoID: "r1", Name: "b", Slot: 0}},
			"disk": {{ID: "x0", DiskID: "d0", RepoID: "r1", Name: "a", Slot: 0}},
		} {
			err := write(func(q *Queries) error {
				return q.InsertVMTemplate(ctx, VMTemplate{ID: "tp2", Name: "x", PoolID: "p1", RepoID: "r1", MemoryMiB: 1, CPUCount: 1,
					DomainType: "xen_pvm", State: "Approved", CreatedBy: "admin", CreatedAt: now}, d, nil)
			})
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("%s given twice: %v, want ErrConflict", name, err)
			}
			if _, err := q.VMTemplate(ctx, "tp2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a refused template was left: %v", err)
			}
		}

		// Customizers: one source each.
		err = write(func(q *Queries) error {
			return q.InsertCloneCustomizer(ctx, CloneCustomizer{ID: "cx", Name: "both", PoolID: "p1", VMID: "v1", TemplateID: "tp1", CreatedAt: now})
		})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("a customizer of a VM and a template: %v, want ErrConflict", err)
		}
		must("customizers", write(func(q *Queries) error {
			for _, c := range []CloneCustomizer{{ID: "cv", Name: "of-vm", PoolID: "p1", VMID: "v1", CreatedAt: now},
				{ID: "ct", Name: "of-tpl", PoolID: "p1", TemplateID: "tp1", CreatedAt: now}} {
				if err := q.InsertCloneCustomizer(ctx, c); err != nil {
					return err
				}
			}
			if err := q.InsertCloneStorageMapping(ctx, CloneStorageMapping{ID: "s1", Name: "sm", CustomizerID: "ct", DiskMappingID: "m0",
				CloneType: "NON_SPARSE_COPY", RepoID: "r1", CreatedAt: now}); err != nil {
				return err
			}
			if err := q.InsertCloneNetworkMapping(ctx, CloneNetworkMapping{ID: "nm1", Name: "nm", CustomizerID: "ct", VnicID: "e1",
				NetworkID: "n1", CreatedAt: now}); err != nil {
				return err
			}
			return q.TagObject(ctx, "t1", "tp1", "VmTemplate")
		}))
		if c, err := q.CloneCustomizer(ctx, "ct"); err != nil || c.SourceID() != "tp1" || c.VMID != "" {
			t.Fatalf("CloneCustomizer = %+v, %v", c, err)
		}
		err = write(func(q *Queries) error {
			return q.InsertCloneStorageMapping(ctx, CloneStorageMapping{ID: "s2", Name: "sm2", CustomizerID: "ct", DiskMappingID: "m0",
				CloneType: "SPARSE_COPY", RepoID: "r1", CreatedAt: now})
		})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("a second mapping of one disk: %v, want ErrConflict", err)
		}
		err = write(func(q *Queries) error {
			return q.InsertCloneNetworkMapping(ctx, CloneNetworkMapping{ID: "nm2", Name: "nm2", CustomizerID: "ct", VnicID: "e1",
				NetworkID: "n1", CreatedAt: now})
		})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("a second mapping of one VNIC: %v, want ErrConflict", err)
		}

		// The template goes with everything that hangs on it; the VM's
		// customizer goes with the VM.
		must("delete template", write(func(q *Queries) error { return q.DeleteVMTemplate(ctx, "tp1") }))
		for what, n := range map[string]func() (int, error){
			"disks":            func() (int, error) { d, err := q.TemplateDisks(ctx, "tp1"); return len(d), err },
			"vnics":            func() (int, error) { v, err := q.TemplateVnics(ctx, "tp1"); return len(v), err },
			"storage mappings": func() (int, error) { m, err := q.CloneStorageMappingsOf(ctx, "ct"); return len(m), err },
			"network mappings": func() (int, error) { m, err := q.CloneNetworkMappingsOf(ctx, "ct"); return len(m), err },
			"tags":             func() (int, error) { ids, err := q.TaggedObjects(ctx, []string{"t1"}); return len(ids), err },
		} {
			if got, err := n(); err != nil || got != 0 {
				t.Fatalf("%s left after the template: %d, %v", what, got, err)
			}
		}
		if _, err := q.CloneCustomizer(ctx, "ct"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the template's customizer: %v, want ErrNotFound", err)
		}
		must("delete vm", write(func(q *Queries) error { return q.DeleteVM(ctx, "v1") }))
		if _, err := q.CloneCustomizer(ctx, "cv"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the VM's customizer: %v, want ErrNotFound", err)
		}
	})
}
