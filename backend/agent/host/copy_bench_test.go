package host

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"xenmanager/backend/agent/xensim"
	"xenmanager/backend/agentapi"
)

// BenchmarkCopyFile1GiB copies a fully allocated 1 GiB disk with copy_file
// (allocated and sparse) and, as the baselines of the same machine and
// file system, with cp and dd; each result is synced to disk, as copy_file
// syncs its own. Run it with
//
//	go test -run '^$' -bench CopyFile1GiB -benchtime 3x ./backend/agent/host/
func BenchmarkCopyFile1GiB(b *testing.B) {
	const size = 1 << 30
	h, err := New(Config{DataDir: b.TempDir(), Hostname: "bench", Driver: xensim.Driver(xensim.Config{})})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	fsLoc := filepath.Join(b.TempDir(), "repo")
	if err := h.CreateRepository(fsLoc, "/OVS/Repositories/r1", "r1", "bench"); err != nil {
		b.Fatal(err)
	}
	disks := filepath.Join(fsLoc, DirDisks)
	src := filepath.Join(disks, "src.img")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 4<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1) // no block of zeros: every block is data
	}
	for off := 0; off < size; off += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(disks, "dst.img")
	syncFile := func(path string) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	run := func(name string, copyOnce func()) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				copyOnce()
				b.StopTimer()
				if err := os.Remove(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	for _, mode := range []string{agentapi.CopyAllocated, agentapi.CopySparse} {
		run("copy_file_"+mode, func() {
			if err := h.CopyFile(context.Background(), "/OVS/Repositories/r1/VirtualDisks/src.img",
				"/OVS/Repositories/r1/VirtualDisks/dst.img", mode); err != nil {
				b.Fatal(err)
			}
		})
	}
	run("cp", func() {
		if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v: %s", err, out)
		}
		syncFile(dst)
	})
	run("dd_bs4M", func() {
		if out, err := exec.Command("dd", "if="+src, "of="+dst, "bs=4M", "conv=fsync", "status=none").CombinedOutput(); err != nil {
			b.Fatalf("dd: %v: %s", err, out)
		}
	})
}
