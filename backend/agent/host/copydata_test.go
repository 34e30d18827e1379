//go:build linux

package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agentapi"
)

// copySource makes a file of size bytes in dir holding 1 MiB of random
// data at each offset of data, 1 MiB of written zeros (blocks, not a hole)
// at each offset of zeros, and holes elsewhere.
func copySource(t *testing.T, dir string, size int64, data, zeros []int64) string {
	t.Helper()
	p := filepath.Join(dir, "src.img")
	f, err := os.Create(p)
	mustOK(t, err)
	defer f.Close()
	mustOK(t, f.Truncate(size))
	buf := make([]byte, 1<<20)
	for _, off := range data {
		_, _ = rand.Read(buf)
		must(f.WriteAt(buf, off))
	}
	for _, off := range zeros {
		must(f.WriteAt(make([]byte, 1<<20), off))
	}
	mustOK(t, f.Sync())
	return p
}

// fileBlocks is the size of the file at p and the bytes it has allocated.
func fileBlocks(t *testing.T, p string) (size, allocated int64) {
	t.Helper()
	var st syscall.Stat_t
	mustOK(t, syscall.Stat(p, &st))
	return st.Size, st.Blocks * 512
}

// copyWith runs fill of mode from src into a new file in dstDir, as
// copy_file does, and returns the copy's path and the fileCopy.
func copyWith(t *testing.T, h *Host, ctx context.Context, op hypervisor.Operation, mode, src, dstDir string) (string, *fileCopy, error) {
	t.Helper()
	in, err := os.Open(src)
	mustOK(t, err)
	defer in.Close()
	fi, err := in.Stat()
	mustOK(t, err)
	extents, err := dataExtents(in, fi.Size())
	mustOK(t, err)
	dst := filepath.Join(dstDir, "dst.img")
	out, err := os.Create(dst)
	mustOK(t, err)
	defer out.Close()
	if op == nil {
		op = h.progress.Start("copy:"+t.Name(), agentapi.PhaseCopying, 0)
	}
	c := &fileCopy{ctx: ctx, mode: mode, op: op}
	err = c.fill(out, in, fi.Size(), extents)
	if err == nil {
		err = out.Sync()
	}
	return dst, c, err
}

// TestCopyDataPaths: sparse and allocated copies copy their data in the
// kernel (copy_file_range) on one file system, through the buffer across
// two where the kernel refuses, and read back equal either way; a sparse
// copy leaves its source's holes and blocks of zeros unwritten, an
// allocated one has no hole.
func TestCopyDataPaths(t *testing.T) {
	h := newHost(t, testConfig{})
	const size = 16 << 20
	data := []int64{0, 2 << 20, 3 << 20, 10 << 20}
	zeros := []int64{6 << 20}
	const dataBytes = 4 << 20
	// Each is the directories of the source and of the copy.
	oneExt4 := func(t *testing.T) (string, string) { d := t.TempDir(); return d, d }
	oneTmpfs := func(t *testing.T) (string, string) { d := testkit.MountTmpfs(t, 40); return d, d }
	tmpfsToExt4 := func(t *testing.T) (string, string) { return testkit.MountTmpfs(t, 40), t.TempDir() }
	ext4ToTmpfs := func(t *testing.T) (string, string) { return t.TempDir(), testkit.MountTmpfs(t, 40) }
	tests := []struct {
		name       string
		mode       string
		dirs       func(*testing.T) (string, string)
		wantKernel func(int64) bool // of the bytes copy_file_range copied
	}{
		{"sparse, one file system", agentapi.CopySparse, oneExt4, func(n int64) bool { return n == dataBytes }},
		{"allocated, one file system", agentapi.CopyAllocated, oneExt4,
			func(n int64) bool { return n == dataBytes+1<<20 }}, // the written zeros are data to SEEK_DATA
		{"sparse, tmpfs", agentapi.CopySparse, oneTmpfs, func(n int64) bool { return n == dataBytes }},
		{"allocated, tmpfs", agentapi.CopyAllocated, oneTmpfs, func(n int64) bool { return n == dataBytes+1<<20 }},
		// Since Linux 5.19 the kernel refuses copies between file systems
		// of different types (EXDEV), and older kernels may do them: the
		// copy is whole either way.
		{"sparse, two file systems", agentapi.CopySparse, tmpfsToExt4, func(int64) bool { return true }},
		{"allocated, two file systems", agentapi.CopyAllocated, ext4ToTmpfs, func(int64) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcDir, dstDir := tt.dirs(t)
			src := copySource(t, srcDir, size, data, zeros)
			dst, c, err := copyWith(t, h, t.Context(), nil, tt.mode, src, dstDir)
			mustOK(t, err)
			t.Logf("copy_file_range copied %d of the %d data bytes", c.kernelBytes, dataBytes)
			if !tt.wantKernel(c.kernelBytes) {
				t.Errorf("copy_file_range copied %d bytes: not what this copy's data is (%d bytes of data, 1 MiB of zeros)", c.kernelBytes, dataBytes)
			}
			a, b := must(os.ReadFile(src)), must(os.ReadFile(dst))
			if !bytes.Equal(a, b) {
				t.Fatal("copy differs from its source")
			}
			dstSize, dstAlloc := fileBlocks(t, dst)
			if dstSize != size {
				t.Errorf("copy is %d bytes, want %d", dstSize, size)
			}
			f := must(os.Open(dst))
			defer f.Close()
			written := must(dataExtents(f, size))
			switch tt.mode {
			case agentapi.CopySparse:
				if dstAlloc < dataBytes || dstAlloc > dataBytes+1<<20 {
					t.Errorf("sparse copy takes %d bytes of blocks, want its %d bytes of data (not the holes, not the block of zeros)", dstAlloc, dataBytes)
				}
			case agentapi.CopyAllocated:
				if dstAlloc < size || !slices.Equal(written, [][2]int64{{0, size}}) {
					t.Errorf("allocated copy takes %d bytes of blocks with data at %v, want every block of %d, no hole", dstAlloc, written, size)
				}
			}
		})
	}
}

// cancelAfterFirst is a progress operation that ends its copy's context at
// the copy's first progress: the caller going away after one chunk.
type cancelAfterFirst struct {
	hypervisor.Operation
	cancel context.CancelFunc
	sets   int
}

func (c *cancelAfterFirst) Set(phase string, done int64) {
	c.sets++
	c.Operation.Set(phase, done)
	c.cancel()
}

// TestCopyDataAbortBetweenChunks: a copy in the kernel looks at its
// context between chunks and stops at the first look after it ends.
func TestCopyDataAbortBetweenChunks(t *testing.T) {
	h := newHost(t, testConfig{})
	dir := t.TempDir()
	var data []int64
	for off := int64(0); off < 16<<20; off += 1 << 20 {
		data = append(data, off)
	}
	src := copySource(t, dir, 16<<20, data, nil)
	for _, mode := range []string{agentapi.CopySparse, agentapi.CopyAllocated} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			op := &cancelAfterFirst{Operation: h.progress.Start("copy:abort-"+mode, agentapi.PhaseCopying, 16<<20), cancel: cancel}
			_, c, err := copyWith(t, h, ctx, op, mode, src, t.TempDir())
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("fill after the context ended = %v, want context.Canceled", err)
			}
			if op.sets != 1 || c.kernelBytes != copyChunk {
				t.Errorf("the copy went on for %d chunks (%d bytes in the kernel) after its context ended; want it to stop after the first (%d bytes)",
					op.sets, c.kernelBytes, copyChunk)
			}
		})
	}
}

// TestHoles: the complement of a file's data extents.
func TestHoles(t *testing.T) {
	tests := []struct {
		extents [][2]int64
		size    int64
		want    [][2]int64
	}{
		{nil, 100, [][2]int64{{0, 100}}},
		{nil, 0, [][2]int64{{0, 0}}},
		{[][2]int64{{0, 100}}, 100, [][2]int64{{0, 0}, {100, 100}}},
		{[][2]int64{{10, 20}, {50, 60}}, 100, [][2]int64{{0, 10}, {20, 50}, {60, 100}}},
		{[][2]int64{{10, 20}}, 15, [][2]int64{{0, 10}, {20, 20}}}, // the file shrank after its extents were read
	}
	for _, tt := range tests {
		if got := holes(tt.extents, tt.size); !slices.Equal(got, tt.want) {
			t.Errorf("holes(%v, %d) = %v, want %v", tt.extents, tt.size, got, tt.want)
		}
	}
}
