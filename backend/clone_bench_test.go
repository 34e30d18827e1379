package backend_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"xenmanager/backend"
)

// BenchmarkCloneTemplateTwenty clones a template whose disk is a 2 GiB
// sparse file holding 64 MiB of data (16 extents of 4 MiB spread over
// it) into 20 VMs, one clone command through a real agent, beside the
// baselines of the same machine and file system: 20 cp --sparse=always of
// the same file one after the other, and 4 at a time (the clone's
// cloneParallelismPerServer), each copy synced as copy_file syncs its
// own. Run it with
//
//	go test -run '^$' -bench CloneTemplateTwenty -benchtime 3x ./backend/
func BenchmarkCloneTemplateTwenty(b *testing.B) {
	const (
		copies   = 20
		sizeMiB  = 2048
		extents  = 16
		extentSz = 4 << 20
	)
	f := newCloneFleet(b, 1)
	m, ctx := f.m, f.ctx
	vm, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "src", Repository: backend.Ref{ID: f.repo.ID}, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		b.Fatal(err)
	}
	d, err := m.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: "src-root", Repository: backend.Ref{ID: f.repo.ID}, SizeMiB: sizeMiB, Sparse: true})
	if err != nil {
		b.Fatal(err)
	}
	img := filepath.Join(f.repoDir, "VirtualDisks", d.ID+".img")
	data := make([]byte, extentSz)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	w, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	for i := range extents {
		if _, err := w.WriteAt(data, int64(i)*(sizeMiB<<20)/extents); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := m.AddDiskToVM(ctx, backend.Ref{ID: d.ID}, backend.Ref{ID: vm.ID}, 0); err != nil {
		b.Fatal(err)
	}
	saved, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{ID: vm.ID}, DestType: "VmTemplate", DestName: "tpl"})
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := m.VMTemplate(ctx, backend.Ref{ID: saved.Copies[0].ID})
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(f.repoDir, "VirtualDisks", tpl.Disks[0].DiskID+".img")

	b.Run("clone_copies=20", func(b *testing.B) {
		round := 0
		for b.Loop() {
			round++
			res, err := m.Clone(ctx, backend.CloneRequest{SourceType: "VmTemplate", Source: backend.Ref{ID: tpl.ID}, DestType: "Vm",
				DestName: fmt.Sprintf("web%d", round), Copies: copies})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			for _, c := range res.Copies {
				v, err := m.VM(ctx, backend.Ref{ID: c.ID})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.DeleteVM(ctx, backend.Ref{ID: c.ID}); err != nil {
					b.Fatal(err)
				}
				for _, disk := range v.Disks {
					if _, err := m.DeleteVirtualDisk(ctx, backend.Ref{ID: disk.ID}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StartTimer()
		}
	})
	dir := b.TempDir()
	cpSparse := func(b *testing.B, i int) {
		dst := filepath.Join(dir, fmt.Sprintf("copy%d.img", i))
		if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v: %s", err, out)
		}
		f, err := os.OpenFile(dst, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	removeCopies := func(b *testing.B) {
		b.StopTimer()
		for i := range copies {
			os.Remove(filepath.Join(dir, fmt.Sprintf("copy%d.img", i)))
		}
		b.StartTimer()
	}
	b.Run("cp_sparse_20_one_at_a_time", func(b *testing.B) {
		for b.Loop() {
			for i := range copies {
				cpSparse(b, i)
			}
			removeCopies(b)
		}
	})
	b.Run("cp_sparse_20_four_at_a_time", func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			slots := make(chan struct{}, 4)
			for i := range copies {
				wg.Add(1)
				slots <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-slots }()
					cpSparse(b, i)
				}()
			}
			wg.Wait()
			removeCopies(b)
		}
	})
}
