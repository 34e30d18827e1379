package agent_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/agent/internal/testkit"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

// The tests of the templates extension run real agents on 127.0.0.1 and
// call them with the manager's client; the files are real files in the
// tests' temporary directories (and tmpfs mounts where a small or
// reflink-less file system is the point).

const tplMount = "/OVS/Repositories/"

// tplAgent starts an agent with repository r1 at a fresh directory (or at
// fsLoc when given) and returns its client and the repository's
// fs_location.
func tplAgent(t *testing.T, fsLoc string) (*agentclient.Client, string) {
	t.Helper()
	a := agenttest.Start(t, agent.Config{})
	c := clientFor(t, a.Port(), a.Password, a.SPKISHA256())
	if fsLoc == "" {
		fsLoc = filepath.Join(t.TempDir(), "repo")
	}
	must(t, c.CreateRepository(t.Context(), fsLoc, tplMount+"r1", "r1", "repo one"))
	return c, fsLoc
}

// disk is the path of VirtualDisks/<name> in repository repo as the agent
// sees it.
func disk(repo, name string) string { return tplMount + repo + "/VirtualDisks/" + name }

// writeSparse makes a file of size bytes at path holding random data at
// each offset of at (1 MiB each) and holes elsewhere.
func writeSparse(t *testing.T, path string, size int64, at ...int64) {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	must(t, f.Truncate(size))
	data := make([]byte, 1<<20)
	for _, off := range at {
		_, _ = rand.Read(data)
		_, err := f.WriteAt(data, off)
		must(t, err)
	}
	must(t, f.Sync())
}

// fileSum is the SHA-256 of the file at path.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	must(t, err)
	return [32]byte(h.Sum(nil))
}

func blocks(t *testing.T, path string) (size, allocated int64) {
	t.Helper()
	var st syscall.Stat_t
	must(t, syscall.Stat(path, &st))
	return st.Size, st.Blocks * 512
}

// dirNames lists dir, hidden names included: a test that wants nothing
// left sees temporary files too.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func wantNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := dirNames(t, dir)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q (nothing half-made left)", dir, got, want)
	}
}

// TestTemplatesExtension: the agent lists the extension the manager asks
// for before it calls any of these methods.
func TestTemplatesExtension(t *testing.T) {
	c, _ := tplAgent(t, "")
	v, err := c.GetAPIVersion(t.Context())
	must(t, err)
	if !v.Has(agentapi.ExtTemplates) {
		t.Errorf("get_api_version lists %q, want %q among them", v.Extensions, agentapi.ExtTemplates)
	}
}

// TestTemplateCalls: create_template writes Templates/<id>/vm.cfg, read
// back by get_template_config and listed by list_templates; an existing
// template is refused unless replace; delete_template removes only the
// template's directory.
func TestTemplateCalls(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	ctx := t.Context()
	diskPath := disk("r1", "d1.img")
	params := agentapi.VMParams{"name": "t1", "OVM_simple_name": "Oracle Linux 9", "memory": "2048", "vcpus": int64(2),
		"disk": []string{"file:" + diskPath + ",xvda,w"}}
	must(t, c.CreateVirtualDisk(ctx, "r1", "d1", 16, true))
	must(t, c.CreateTemplate(ctx, "r1", "t1", params, false))

	got, err := c.GetTemplateConfig(ctx, "r1", "t1")
	must(t, err)
	if n, _ := got.Int("memory"); n != 2048 || got.String("OVM_simple_name") != "Oracle Linux 9" {
		t.Errorf("get_template_config = %v, want memory 2048 and the simple name", got)
	}
	if data, err := os.ReadFile(filepath.Join(fsLoc, "Templates", "t1", "vm.cfg")); err != nil || !strings.Contains(string(data), "memory = 2048\n") {
		t.Errorf("Templates/t1/vm.cfg = %q, %v; want memory = 2048 as an integer", data, err)
	}
	wantCallFault(t, c.CreateTemplate(ctx, "r1", "t1", params, false), agentapi.FaultInvalidState, "template t1 already exists")
	params["memory"] = int64(4096)
	must(t, c.CreateTemplate(ctx, "r1", "t1", params, true))
	if got, err := c.GetTemplateConfig(ctx, "r1", "t1"); err != nil || got["memory"] != int64(4096) {
		t.Errorf("after replace, get_template_config = %v, %v; want memory 4096", got, err)
	}
	must(t, c.CreateTemplate(ctx, "r1", "t0", params, false))
	if ids, err := c.ListTemplates(ctx, "r1"); err != nil || !slices.Equal(ids, []string{"t0", "t1"}) {
		t.Errorf("list_templates = %q, %v; want [t0 t1]", ids, err)
	}

	wantCallFault(t, c.CreateTemplate(ctx, "r1", "t2", agentapi.VMParams{"vcpus": 1}, false), agentapi.FaultInvalidArgument, "template t2: params.memory must be a positive integer")
	wantCallFault(t, c.CreateTemplate(ctx, "r1", "../x", params, false), agentapi.FaultInvalidArgument, "template id")
	wantCallFault(t, c.CreateTemplate(ctx, "nope", "t2", params, false), agentapi.FaultNotFound, "repository nope is not known")

	must(t, c.DeleteTemplate(ctx, "r1", "t1"))
	if _, err := os.Stat(filepath.Join(fsLoc, "VirtualDisks", "d1.img")); err != nil {
		t.Errorf("delete_template removed the disk its vm.cfg names: %v", err)
	}
	wantNames(t, filepath.Join(fsLoc, "Templates"), "t0")
	wantCallFault(t, c.DeleteTemplate(ctx, "r1", "t1"), agentapi.FaultNotFound, "template t1 not found")
	_, err = c.GetTemplateConfig(ctx, "r1", "t1")
	wantCallFault(t, err, agentapi.FaultNotFound, "template t1 not found in repository r1")
}

// TestCopyFileSparse: a sparse copy of a 2 GiB file holding 3 MiB of data
// takes the blocks of the data only, reads back equal, and its progress
// counts the data's bytes.
func TestCopyFileSparse(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	ctx := t.Context()
	const size = 2 << 30
	src := filepath.Join(fsLoc, "VirtualDisks", "src.img")
	writeSparse(t, src, size, 0, 1<<30, size-1<<20)
	must(t, c.CopyFile(ctx, disk("r1", "src.img"), disk("r1", "dst.img"), agentapi.CopyOption{Mode: agentapi.CopySparse}))

	dst := filepath.Join(fsLoc, "VirtualDisks", "dst.img")
	srcSize, srcAlloc := blocks(t, src)
	dstSize, dstAlloc := blocks(t, dst)
	if dstSize != srcSize {
		t.Errorf("copy is %d bytes, source %d", dstSize, srcSize)
	}
	if dstAlloc > srcAlloc || dstAlloc < 3<<20 {
		t.Errorf("copy takes %d bytes of blocks, source %d: a sparse copy takes no more than the source's data (3 MiB)", dstAlloc, srcAlloc)
	}
	if fileSum(t, src) != fileSum(t, dst) {
		t.Error("copy differs from its source")
	}
	p, err := c.GetOperationProgress(ctx, agentapi.ProgressCopy+"dst.img")
	must(t, err)
	if p.State != agentapi.ProgressDone || p.Done != 3<<20 || p.Total != 3<<20 {
		t.Errorf("progress = %+v, want done with 3 MiB of 3 MiB", p)
	}
	wantNames(t, filepath.Join(fsLoc, "VirtualDisks"), "dst.img", "src.img")
}

// TestCopyFileAllocated: an allocated copy has every block of its size
// allocated, even where its source has holes, and reads back equal.
func TestCopyFileAllocated(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	const size = 64 << 20
	src := filepath.Join(fsLoc, "VirtualDisks", "src.img")
	writeSparse(t, src, size, 8<<20)
	must(t, c.CopyFile(t.Context(), disk("r1", "src.img"), disk("r1", "full.img"), agentapi.CopyOption{Mode: agentapi.CopyAllocated}))
	dst := filepath.Join(fsLoc, "VirtualDisks", "full.img")
	if dstSize, dstAlloc := blocks(t, dst); dstSize != size || dstAlloc < size {
		t.Errorf("allocated copy: %d bytes with %d bytes of blocks, want %d with every block allocated", dstSize, dstAlloc, size)
	}
	f, err := os.Open(dst)
	must(t, err)
	defer f.Close()
	if hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err != nil || hole != size {
		t.Errorf("allocated copy's first hole at %d (%v), want none before its end %d", hole, err, size)
	}
	if fileSum(t, src) != fileSum(t, dst) {
		t.Error("copy differs from its source")
	}
}

// TestCopyFileReflink: a reflink copy is refused clearly on a file system
// that cannot share blocks (tmpfs), leaving nothing, and shares the
// source's blocks where it can.
func TestCopyFileReflink(t *testing.T) {
	t.Run("tmpfs refuses", func(t *testing.T) {
		mnt := testkit.MountTmpfs(t, 64)
		c, fsLoc := tplAgent(t, filepath.Join(mnt, "repo"))
		writeSparse(t, filepath.Join(fsLoc, "VirtualDisks", "src.img"), 4<<20, 0)
		err := c.CopyFile(t.Context(), disk("r1", "src.img"), disk("r1", "clone.img"), agentapi.CopyOption{Mode: agentapi.CopyReflink})
		wantCallFault(t, err, agentapi.FaultInvalidState, "the file system of repository repo one cannot share blocks (reflink): use sparse or allocated")
		wantNames(t, filepath.Join(fsLoc, "VirtualDisks"), "src.img")
	})
	t.Run("shares blocks", func(t *testing.T) {
		dir := t.TempDir()
		if err := probeReflink(dir); err != nil {
			t.Skipf("SKIPPED: the test directory's file system cannot share blocks (%v); reflink copies are checked where one can", err)
		}
		c, fsLoc := tplAgent(t, filepath.Join(dir, "repo"))
		src := filepath.Join(fsLoc, "VirtualDisks", "src.img")
		writeSparse(t, src, 32<<20, 0, 16<<20)
		must(t, c.CopyFile(t.Context(), disk("r1", "src.img"), disk("r1", "clone.img"), agentapi.CopyOption{Mode: agentapi.CopyReflink}))
		if fileSum(t, src) != fileSum(t, filepath.Join(fsLoc, "VirtualDisks", "clone.img")) {
			t.Error("reflink copy differs from its source")
		}
	})
}

// probeReflink tries FICLONE in dir.
func probeReflink(dir string) error {
	a, err := os.Create(filepath.Join(dir, "probe-a"))
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Write(make([]byte, 64<<10)); err != nil {
		return err
	}
	b, err := os.Create(filepath.Join(dir, "probe-b"))
	if err != nil {
		return err
	}
	defer b.Close()
	return unix.IoctlFileClone(int(b.Fd()), int(a.Fd()))
}

// TestCopyFileAbort: when the caller's connection closes mid-copy, the
// agent stops and leaves no temporary file and no copy.
func TestCopyFileAbort(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	const size = 4 << 30 // an allocated copy writes all of it: far more than the moments the test needs
	writeSparse(t, filepath.Join(fsLoc, "VirtualDisks", "big.img"), size, 0)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- c.CopyFile(ctx, disk("r1", "big.img"), disk("r1", "half.img"), agentapi.CopyOption{Mode: agentapi.CopyAllocated})
	}()
	progress := func() agentapi.Progress {
		p, err := c.GetOperationProgress(t.Context(), agentapi.ProgressCopy+"half.img")
		if err != nil {
			return agentapi.Progress{}
		}
		return p
	}
	testkit.WaitFor(t, "the copy to be under way", func() bool { return progress().Done > 0 })
	if p := progress(); p.State != agentapi.ProgressRunning || p.Total != size {
		t.Fatalf("progress = %+v, want a running copy of %d bytes", p, int64(size))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("CopyFile after cancel = %v, want the context's end", err)
	}
	testkit.WaitFor(t, "the agent to stop the copy", func() bool { return progress().State == agentapi.ProgressFailed })
	if p := progress(); !strings.Contains(p.Phase, "stopped") || p.Done >= size {
		t.Errorf("progress = %+v, want a copy stopped half-way", p)
	}
	wantNames(t, filepath.Join(fsLoc, "VirtualDisks"), "big.img")
}

// TestCopyFilePaced: on a simulated host slowed by sim_set copy_mib_per_s
// a copy moves no faster than that (it waits between chunks, its progress
// showing how far it got), and its caller going away ends it there too,
// leaving nothing.
func TestCopyFilePaced(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	var data []int64 // 8 MiB of data: two chunks
	for off := int64(0); off < 8<<20; off += 1 << 20 {
		data = append(data, off)
	}
	writeSparse(t, filepath.Join(fsLoc, "VirtualDisks", "src.img"), 16<<20, data...)
	must(t, c.Call(t.Context(), agentapi.MethodSimSet, nil, map[string]any{"copy_mib_per_s": 1}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- c.CopyFile(ctx, disk("r1", "src.img"), disk("r1", "slow.img"), agentapi.CopyOption{Mode: agentapi.CopySparse})
	}()
	progress := func() agentapi.Progress {
		p, _ := c.GetOperationProgress(t.Context(), agentapi.ProgressCopy+"slow.img")
		return p
	}
	// At 1 MiB/s the first 4 MiB chunk is followed by a wait of 4 s.
	testkit.WaitFor(t, "the copy to wait after its first chunk", func() bool {
		p := progress()
		return p.State == agentapi.ProgressRunning && p.Done == 4<<20
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("CopyFile after cancel = %v, want the context's end", err)
	}
	testkit.WaitFor(t, "the agent to stop the copy", func() bool { return progress().State == agentapi.ProgressFailed })
	if p := progress(); p.Done != 4<<20 || p.Total != 8<<20 {
		t.Errorf("progress = %+v, want a copy stopped after 4 MiB of 8", p)
	}
	wantNames(t, filepath.Join(fsLoc, "VirtualDisks"), "src.img")
}

// TestCopyFileFullDisk: a copy into a file system without the room is
// InsufficientResources and leaves nothing there.
func TestCopyFileFullDisk(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 16)
	a := agenttest.Start(t, agent.Config{})
	c := clientFor(t, a.Port(), a.Password, a.SPKISHA256())
	ctx := t.Context()
	big := filepath.Join(t.TempDir(), "big")
	must(t, c.CreateRepository(ctx, big, tplMount+"big", "big", "big one"))
	must(t, c.CreateRepository(ctx, filepath.Join(mnt, "small"), tplMount+"small", "small", "small one"))
	var data []int64 // 32 MiB of data in a 64 MiB file: twice the small file system
	for off := int64(0); off < 64<<20; off += 2 << 20 {
		data = append(data, off)
	}
	writeSparse(t, filepath.Join(big, "VirtualDisks", "d.img"), 64<<20, data...)
	for _, mode := range []string{agentapi.CopySparse, agentapi.CopyAllocated} {
		t.Run(mode, func(t *testing.T) {
			err := c.CopyFile(ctx, disk("big", "d.img"), disk("small", "d.img"), agentapi.CopyOption{Mode: mode})
			wantCallFault(t, err, agentapi.FaultInsufficientResources, "repository small one has")
			wantNames(t, filepath.Join(mnt, "small", "VirtualDisks"))
		})
	}
	// What fits is copied.
	writeSparse(t, filepath.Join(big, "VirtualDisks", "s.img"), 64<<20, 0)
	must(t, c.CopyFile(ctx, disk("big", "s.img"), disk("small", "s.img"), agentapi.CopyOption{Mode: agentapi.CopySparse}))
}

// TestCopyFilePaths: copy_file reads and writes only the files of a known
// repository's VirtualDisks/ and Templates/<id>/, follows no symbolic
// link, and never replaces a file.
func TestCopyFilePaths(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	ctx := t.Context()
	vd := filepath.Join(fsLoc, "VirtualDisks")
	writeSparse(t, filepath.Join(vd, "a.img"), 1<<20, 0)
	must(t, os.WriteFile(filepath.Join(t.TempDir(), "secret"), []byte("x"), 0o600))
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret.img"), []byte("secret"), 0o600))
	must(t, os.Symlink(filepath.Join(outside, "secret.img"), filepath.Join(vd, "link.img")))
	must(t, os.MkdirAll(filepath.Join(fsLoc, "Templates", "t1"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(fsLoc, "Templates", "tl")))
	must(t, os.MkdirAll(filepath.Join(fsLoc, "VirtualMachines", "vm1"), 0o755))
	must(t, os.WriteFile(filepath.Join(fsLoc, "VirtualMachines", "vm1", "vm.cfg"), []byte("memory = 1\n"), 0o644))
	sparse := agentapi.CopyOption{Mode: agentapi.CopySparse}
	tpl := tplMount + "r1/Templates/"
	cases := []struct {
		name, src, dst string
		opt            agentapi.CopyOption
		code           agentapi.FaultCode
		msg            string
	}{
		{"dot dot", tplMount + "r1/VirtualDisks/../VirtualMachines/vm1/vm.cfg", disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "contains '..'"},
		{"dot dot in dst", disk("r1", "a.img"), tplMount + "r1/VirtualDisks/../../x.img", sparse, agentapi.FaultInvalidArgument, "contains '..'"},
		{"not clean", disk("r1", "a.img"), tplMount + "r1/VirtualDisks//b.img", sparse, agentapi.FaultInvalidArgument, "not a clean path"},
		{"relative", "VirtualDisks/a.img", disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "not an absolute path"},
		{"symlink src", disk("r1", "link.img"), disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "is a symbolic link"},
		{"symlink dir", tpl + "tl/secret.img", disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "Templates/tl is a symbolic link"},
		{"symlink dir dst", disk("r1", "a.img"), tpl + "tl/x.img", sparse, agentapi.FaultInvalidArgument, "Templates/tl is a symbolic link"},
		{"vm.cfg", tplMount + "r1/VirtualMachines/vm1/vm.cfg", disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "is not a file of VirtualDisks/ or of a Templates/<id>/ directory"},
		{"into VirtualMachines", disk("r1", "a.img"), tplMount + "r1/VirtualMachines/vm1/x.img", sparse, agentapi.FaultInvalidArgument, "is not a file of VirtualDisks/"},
		{"repository root", disk("r1", "a.img"), tplMount + "r1/x.img", sparse, agentapi.FaultInvalidArgument, "is not a file of VirtualDisks/"},
		{"unknown repository", disk("r9", "a.img"), disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "not under the mount point of a repository known"},
		{"host file", "/etc/passwd", disk("r1", "b.img"), sparse, agentapi.FaultInvalidArgument, "not under the mount point"},
		{"hidden name", disk("r1", "a.img"), disk("r1", ".b.img"), sparse, agentapi.FaultInvalidArgument, "dst file name"},
		{"missing src", disk("r1", "none.img"), disk("r1", "b.img"), sparse, agentapi.FaultNotFound, "does not exist"},
		{"missing template dir", disk("r1", "a.img"), tpl + "t9/x.img", sparse, agentapi.FaultNotFound, "directory Templates/t9 does not exist"},
		{"dst exists", disk("r1", "a.img"), disk("r1", "link.img"), sparse, agentapi.FaultInvalidState, "exists already"},
		{"no mode", disk("r1", "a.img"), disk("r1", "b.img"), agentapi.CopyOption{}, agentapi.FaultInvalidArgument, `option.mode is missing: give "sparse"`},
		{"bad mode", disk("r1", "a.img"), disk("r1", "b.img"), agentapi.CopyOption{Mode: "thin"}, agentapi.FaultInvalidArgument, `give "sparse", "allocated", "reflink" or "move"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCallFault(t, c.CopyFile(ctx, tc.src, tc.dst, tc.opt), tc.code, tc.msg)
		})
	}
	wantNames(t, vd, "a.img", "link.img")
	wantNames(t, outside, "secret.img")

	// Into and out of a template's directory, and a move back.
	must(t, c.CopyFile(ctx, disk("r1", "a.img"), tpl+"t1/System.img", sparse))
	must(t, c.CopyFile(ctx, tpl+"t1/System.img", disk("r1", "moved.img"), agentapi.CopyOption{Mode: agentapi.CopyMove}))
	wantNames(t, filepath.Join(fsLoc, "Templates", "t1"))
	if fileSum(t, filepath.Join(vd, "a.img")) != fileSum(t, filepath.Join(vd, "moved.img")) {
		t.Error("the copied and moved file differs from its source")
	}
}

// TestCopyFileMoveAcrossFileSystems: a move is a rename within one file
// system; across two it is refused and both files stay as they were.
func TestCopyFileMoveAcrossFileSystems(t *testing.T) {
	mnt := testkit.MountTmpfs(t, 16)
	c, fsLoc := tplAgent(t, "")
	must(t, c.CreateRepository(t.Context(), filepath.Join(mnt, "r2"), tplMount+"r2", "r2", "repo two"))
	writeSparse(t, filepath.Join(fsLoc, "VirtualDisks", "a.img"), 1<<20, 0)
	err := c.CopyFile(t.Context(), disk("r1", "a.img"), disk("r2", "a.img"), agentapi.CopyOption{Mode: agentapi.CopyMove})
	wantCallFault(t, err, agentapi.FaultInvalidArgument, "are on different file systems")
	wantNames(t, filepath.Join(fsLoc, "VirtualDisks"), "a.img")
	wantNames(t, filepath.Join(mnt, "r2", "VirtualDisks"))
}

// TestResizeVirtualDisk: a disk grows sparse; shrinking is refused with
// the size it must keep.
func TestResizeVirtualDisk(t *testing.T) {
	c, fsLoc := tplAgent(t, "")
	ctx := t.Context()
	must(t, c.CreateVirtualDisk(ctx, "r1", "d1", 100, true))
	must(t, c.ResizeVirtualDisk(ctx, "r1", "d1", 300))
	path := filepath.Join(fsLoc, "VirtualDisks", "d1.img")
	if size, alloc := blocks(t, path); size != 300<<20 || alloc > 1<<20 {
		t.Errorf("resized disk: %d bytes with %d of blocks, want %d and sparse", size, alloc, 300<<20)
	}
	wantCallFault(t, c.ResizeVirtualDisk(ctx, "r1", "d1", 200), agentapi.FaultInvalidArgument,
		"shrinking a disk loses data: the size of disk d1 must be at least 300 MiB")
	must(t, c.ResizeVirtualDisk(ctx, "r1", "d1", 300))
	wantCallFault(t, c.ResizeVirtualDisk(ctx, "r1", "d9", 300), agentapi.FaultNotFound, "disk d9 not found")
	wantCallFault(t, c.ResizeVirtualDisk(ctx, "r1", "d1", 0), agentapi.FaultInvalidArgument, "out of range")
	if size, _ := blocks(t, path); size != 300<<20 {
		t.Errorf("disk is %d bytes after the refusals, want %d", size, 300<<20)
	}
}

// wantCallFault fails unless err is an agent fault of code containing sub.
func wantCallFault(t *testing.T, err error, code agentapi.FaultCode, sub string) {
	t.Helper()
	f, ok := agentapi.AsFault(err)
	if !ok || f.Code != code || !strings.Contains(f.Message, sub) {
		t.Fatalf("err = %v, want a %s fault containing %q", err, code.Kind(), sub)
	}
}
