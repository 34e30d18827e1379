package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"xenmanager/backend/agentapi"
)

// Figure 10's template: a 2 GiB sparse disk holding 64 MiB of data in 16
// extents of 4 MiB spread over it, cloned into 20 VMs.
const (
	cloneCopies    = 20
	cloneDiskGiB   = 2
	cloneExtents   = 16
	cloneExtentLen = 4 << 20
)

// cloneTemplate is figure 10 (issue 14): `clone VmTemplate tpl destType=Vm
// destName=cN copies=20` through the OpenSSH client to a manager process
// whose pool has one xenagent process, beside 20 `cp --sparse=always` of
// the template's disk image on the same file system, one at a time and as
// many at a time as the manager copies on one server
// (cloneParallelismPerServer, read from `show Manager`). copy_file syncs
// every copy before it answers, so each cp's copy is synced too (fsync,
// timed with it). A fourth side makes the same copy_file calls straight
// to the agent, as many at a time, to tell the agent's part from the
// manager's. The template comes from a VM: `create VirtualDisk` of 2 GiB,
// the harness writes the data into its image, `clone Vm ...
// destType=VmTemplate`. The sides take turns, which goes first rotating,
// after a warm-up of each; the clones are deleted (VMs and their disks,
// through the manager) and the other copies removed after each.
func (b *bench) cloneTemplate(ctx context.Context) {
	measure := fmt.Sprintf("`clone VmTemplate ... copies=%d`, %d GiB sparse disk holding %d MiB, one agent (exec wall time)",
		cloneCopies, cloneDiskGiB, cloneExtents*cloneExtentLen>>20)
	fmt.Println("\n== figure 10:", measure)
	if !b.needSSH("10", measure) {
		return
	}
	dir := filepath.Join(b.work, "clone")
	a, err := b.startAgentProc(ctx, filepath.Join(dir, "agents"), "clone1", 5*time.Second, "--cpus", "8", "--memory-mib", "65536")
	if err != nil {
		b.res.fail("10", measure, err)
		return
	}
	defer a.stop()
	m, err := startManager(ctx, b.bin, filepath.Join(dir, "manager"))
	if err != nil {
		b.res.fail("10", measure, err)
		return
	}
	defer m.stop()
	repoDir := filepath.Join(dir, "repository")
	t0 := time.Now()
	src, agentSrc, perServer, err := b.cloneSetup(ctx, m, a, repoDir)
	if err != nil {
		b.res.fail("10", measure, fmt.Errorf("set-up: %w", err))
		return
	}
	fmt.Printf("  template with a %d GiB disk (%d MiB of data) made in %s; the manager copies %d at a time per server\n",
		cloneDiskGiB, cloneExtents*cloneExtentLen>>20, time.Since(t0).Round(time.Millisecond), perServer)
	srcBlocks, err := allocatedBytes(src)
	if err != nil {
		b.res.fail("10", measure, err)
		return
	}
	cpDir := filepath.Join(dir, "cp") // the same file system as the repository
	if err := os.MkdirAll(cpDir, 0o700); err != nil {
		b.res.fail("10", measure, err)
		return
	}

	cloneRun := func(round int) (time.Duration, error) {
		name := fmt.Sprintf("c%d", round)
		var out bytes.Buffer
		cmd := b.ssh.command(m.port, "xenbench-clone", "admin", nil,
			fmt.Sprintf("clone VmTemplate name=tpl destType=Vm destName=%s copies=%d", name, cloneCopies))
		cmd.Stdout, cmd.Stderr = &out, &out
		d, err := runTimed(ctx, cmd)
		if err != nil {
			return 0, exitErr(err, out.Bytes())
		}
		if err := checkCopies(filepath.Join(repoDir, "VirtualDisks"), 2+cloneCopies, srcBlocks); err != nil {
			return 0, fmt.Errorf("after the clone: %w", err)
		}
		// Delete the clones through the manager: the VMs, then their disks
		// (delete Vm leaves a VM's disks in the repository).
		var del strings.Builder
		fmt.Fprintf(&del, "delete Vm name=%s-* multiple=Yes\n", name)
		for i := 1; i <= cloneCopies; i++ {
			fmt.Fprintf(&del, "delete VirtualDisk name=%s-%d-xvda\n", name, i)
		}
		if _, err := m.goSSH(ctx, del.String(), true); err != nil {
			return 0, fmt.Errorf("delete the clones: %w", err)
		}
		return d, checkCopies(filepath.Join(repoDir, "VirtualDisks"), 2, -1)
	}
	cpRun := func(inFlight int) func(int) (time.Duration, error) {
		return func(int) (time.Duration, error) {
			d, err := inTurns(cloneCopies, inFlight, func(i int) error {
				dst := filepath.Join(cpDir, fmt.Sprintf("copy%d.img", i))
				return copySynced(ctx, exec.Command("cp", "--sparse=always", src, dst), dst)
			})
			if err != nil {
				return 0, err
			}
			if err := checkCopies(cpDir, cloneCopies, srcBlocks); err != nil {
				return 0, fmt.Errorf("after cp: %w", err)
			}
			return d, removeAll(cpDir)
		}
	}
	// The same copies by the agent alone: copy_file called by the harness
	// as the clone's jobs call it, as many at a time, into files the
	// manager does not know (removed by the harness). What the clone takes
	// beyond this is the manager's.
	ac, err := a.client(30 * time.Second)
	if err != nil {
		b.res.fail("10", measure, err)
		return
	}
	defer ac.Close()
	disks := filepath.Join(repoDir, "VirtualDisks")
	directRun := func(round int) (time.Duration, error) {
		name := func(i int) string { return fmt.Sprintf("direct%d-%d.img", round, i) }
		d, err := inTurns(cloneCopies, perServer, func(i int) error {
			return ac.CopyFile(ctx, agentSrc, path.Join(path.Dir(agentSrc), name(i)), agentapi.CopyOption{Mode: agentapi.CopySparse})
		})
		if err == nil {
			err = checkCopies(disks, 2+cloneCopies, srcBlocks)
		}
		for i := range cloneCopies {
			os.Remove(filepath.Join(disks, name(i)))
		}
		return d, err
	}
	clone, seq, par := &side{name: "clone", run: cloneRun}, &side{name: "cp, one at a time", run: cpRun(1)},
		&side{name: fmt.Sprintf("cp, %d at a time", perServer), run: cpRun(perServer)}
	direct := &side{name: "copy_file alone", run: directRun}
	err = takeTurns([]*side{clone, seq, par, direct}, b.plan.clones, func(round int) {
		fmt.Printf("  round %d: clone %s, cp one at a time %s, %d at a time %s; copy_file alone %s\n", round,
			clone.times[round-1].Round(time.Millisecond), seq.times[round-1].Round(time.Millisecond), perServer,
			par.times[round-1].Round(time.Millisecond), direct.times[round-1].Round(time.Millisecond))
	})
	if err != nil {
		b.res.fail("10", measure, err)
		return
	}
	c, s, p, dc := median(durationsMS(clone.times)), median(durationsMS(seq.times)), median(durationsMS(par.times)),
		median(durationsMS(direct.times))
	b.res.add(row{Fig: "10", Measure: measure, Value: fmtMS(c),
		Baseline: fmt.Sprintf("%d x cp --sparse=always + fsync, one at a time: %s", cloneCopies, fmtMS(s)),
		Ratio:    ratio(c, s), Target: "<= 1.2 x cp", Met: yesNo(c <= 1.2*s)})
	b.res.add(row{Fig: "10", Measure: measure, Value: fmtMS(c),
		Baseline: fmt.Sprintf("%d x cp --sparse=always + fsync, %d at a time (the manager's cloneParallelismPerServer): %s",
			cloneCopies, perServer, fmtMS(p)),
		Ratio: ratio(c, p), Target: "<= 1.2 x cp", Met: yesNo(c <= 1.2*p)})
	b.res.note("figure 10: a manager process and one xenagent process (simulated host, real files); the template's disk is a %d GiB "+
		"sparse file with %d extents of %d MiB at offsets i x %d MiB (%s allocated); the clone's time is `ssh ... \"clone VmTemplate "+
		"name=tpl destType=Vm destName=cN copies=%d\"` (OpenSSH, key login; its jobs, %d copy_file calls of mode sparse, %d at a time "+
		"on the one server, each synced, the vm.cfg and the records); cp runs `cp --sparse=always` then fsync per copy on the same "+
		"file system; a warm-up of each side, then %d rounds, the sides in turn; times median (min-max): clone %s, cp one at a time %s, "+
		"%d at a time %s",
		cloneDiskGiB, cloneExtents, cloneExtentLen>>20, cloneDiskGiB<<10/cloneExtents, fmtMB(srcBlocks>>10), cloneCopies,
		cloneCopies, perServer, len(clone.times), medianRange(clone.times), medianRange(seq.times), perServer, medianRange(par.times))
	b.res.note("figure 10: the agent's part: the same %d copy_file calls (mode sparse, %d at a time) made by the harness straight to "+
		"the agent took %s, %s cp %d at a time; the clone took %s of it (what is more is the manager's: SSH, jobs, copy slots, "+
		"vm.cfg, records)", cloneCopies, perServer, medianRange(direct.times), ratio(dc, p), perServer, ratio(c, dc))
}

var (
	idLineRx    = regexp.MustCompile(`(?m)^\s*Id = (\S+)\s*$`)
	diskLineRx  = regexp.MustCompile(`(?m)^\s*Disk 1 = .*, (/\S+\.img) \(VmDiskMapping`)
	perServerRx = regexp.MustCompile(`(?m)^\s*Clone Parallelism per Server = (\d+)\s*$`)
)

// cloneSetup makes the pool (one server, one repository in repoDir) and
// the template tpl with figure 10's disk, and returns the template's disk
// image as the harness sees it and as the agent does, and the manager's
// cloneParallelismPerServer.
func (b *bench) cloneSetup(ctx context.Context, m *managerProc, a *agentProc, repoDir string) (string, string, int, error) {
	var setup strings.Builder
	fmt.Fprintf(&setup, "create SshKey name=bench key=\"%s\"\n", b.ssh.pub)
	setup.WriteString(a.discoverLine())
	setup.WriteString("create ServerPool name=clone-pool\n")
	fmt.Fprintf(&setup, "add Server name=%s to ServerPool name=clone-pool\n", a.name)
	fmt.Fprintf(&setup, "create Repository name=clone-repo fsLocation=%s on ServerPool name=clone-pool\n", repoDir)
	setup.WriteString("create Vm name=src repository=clone-repo memory=256 cpuCount=1\n")
	fmt.Fprintf(&setup, "create VirtualDisk name=src-root size=%d sparse=Yes on Repository name=clone-repo\n", cloneDiskGiB)
	if _, err := m.goSSH(ctx, setup.String(), true); err != nil {
		return "", "", 0, err
	}
	out, err := m.goSSH(ctx, "show VirtualDisk name=src-root", false)
	if err != nil {
		return "", "", 0, err
	}
	id := idLineRx.FindStringSubmatch(out)
	if id == nil {
		return "", "", 0, fmt.Errorf("no Id in show VirtualDisk: %s", oneLine(out))
	}
	if err := writeExtents(filepath.Join(repoDir, "VirtualDisks", id[1]+".img")); err != nil {
		return "", "", 0, err
	}
	if _, err := m.goSSH(ctx, "add VirtualDisk name=src-root to Vm name=src\nclone Vm name=src destType=VmTemplate destName=tpl\n", true); err != nil {
		return "", "", 0, err
	}
	out, err = m.goSSH(ctx, "show VmTemplate name=tpl\nshow Manager\n", true)
	if err != nil {
		return "", "", 0, err
	}
	disk, par := diskLineRx.FindStringSubmatch(out), perServerRx.FindStringSubmatch(out)
	if disk == nil || par == nil {
		return "", "", 0, fmt.Errorf("no disk path or clone parallelism in show VmTemplate / show Manager: %s", oneLine(out))
	}
	n, _ := strconv.Atoi(par[1])
	return filepath.Join(repoDir, "VirtualDisks", path.Base(disk[1])), disk[1], max(n, 1), nil
}

// writeExtents writes figure 10's data into the disk image at p (which
// keeps its size) and syncs it.
func writeExtents(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	data := make([]byte, cloneExtentLen)
	for i := range data {
		data[i] = byte(i*7 + 1) // no block of zeros
	}
	for i := range cloneExtents {
		if _, err := f.WriteAt(data, int64(i)*(cloneDiskGiB<<30)/cloneExtents); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// inTurns runs do(0) .. do(n-1), inFlight at a time, and returns the
// wall time of it all and the first error.
func inTurns(n, inFlight int, do func(i int) error) (time.Duration, error) {
	slots := make(chan struct{}, inFlight)
	var mu sync.Mutex // guards first
	var first error
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := do(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), first
}

// copySynced runs a copying command, then syncs the file it wrote (dst),
// as copy_file syncs its copy before it answers.
func copySynced(ctx context.Context, cmd *exec.Cmd, dst string) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if _, err := runTimed(ctx, cmd); err != nil {
		return exitErr(fmt.Errorf("%s: %w", cmd.Args[0], err), out.Bytes())
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// allocatedBytes is how much of the file at p is allocated on disk.
func allocatedBytes(p string) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return 0, err
	}
	return st.Blocks * 512, nil
}

// checkCopies checks that dir holds want files (hidden ones included:
// no temporary file may be left) and, unless blocks is negative, that each
// holds the source's allocation within 1 MiB: a sparse copy of it, neither
// an allocated one nor a part.
func checkCopies(dir string, want int, blocks int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) != want {
		return fmt.Errorf("%s holds %d files, want %d", dir, len(entries), want)
	}
	if blocks < 0 {
		return nil
	}
	for _, e := range entries {
		n, err := allocatedBytes(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if n < blocks-(1<<20) || n > blocks+(1<<20) {
			return fmt.Errorf("%s holds %s allocated, the source %s: not a sparse copy of it", e.Name(), fmtMB(n>>10), fmtMB(blocks>>10))
		}
	}
	return nil
}

// removeAll empties dir.
func removeAll(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
