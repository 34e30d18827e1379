package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
)

// copySize is figure 11's file: 1 GiB, every block written.
const copySize = 1 << 30

// allocatedCopy is figure 11: a copy of a fully written 1 GiB disk image by
// a xenagent process's copy_file in mode allocated (called over XML-RPC
// and HTTPS as the manager calls it, timed from the call to its answer),
// beside `cp` of the same file followed by an fsync of the copy, and `dd
// bs=4M conv=fsync`, in the same directory. copy_file syncs its copy
// before it answers, so every side ends with its copy on disk. The sides
// take turns, which goes first rotating; each copy is removed before the
// next, after a warm-up of each. The source is read from the page cache by every side alike (it
// stays cached after it is written).
func (b *bench) allocatedCopy(ctx context.Context) {
	measure := "1 GiB allocated copy, agent `copy_file` mode allocated over XML-RPC"
	fmt.Println("\n== figure 11:", measure)
	dir := filepath.Join(b.work, "copy")
	a, err := b.startAgentProc(ctx, filepath.Join(dir, "agents"), "copy1", 5*time.Second)
	if err != nil {
		b.res.fail("11", measure, err)
		return
	}
	defer a.stop()
	c, err := a.client(30 * time.Second)
	if err != nil {
		b.res.fail("11", measure, err)
		return
	}
	defer c.Close()
	repoDir := filepath.Join(dir, "repository")
	repo := backend.NewID(backend.TypeRepository)
	mount := backend.MountRoot + "/" + repo
	if err := c.TakeOwnership(ctx, backend.NewID(backend.TypeManager), "xenbench"); err != nil {
		b.res.fail("11", measure, err)
		return
	}
	if err := c.CreateRepository(ctx, repoDir, mount, repo, "copy-repo"); err != nil {
		b.res.fail("11", measure, err)
		return
	}
	disks := filepath.Join(repoDir, "VirtualDisks")
	srcID, dstID := backend.NewID(backend.TypeVirtualDisk), backend.NewID(backend.TypeVirtualDisk)
	src, dst := filepath.Join(disks, srcID+".img"), filepath.Join(disks, dstID+".img")
	t0 := time.Now()
	if err := writeFull(src, copySize); err != nil {
		b.res.fail("11", measure, err)
		return
	}
	fmt.Printf("  1 GiB source written and synced in %s\n", time.Since(t0).Round(time.Millisecond))

	// Each side's copy is checked whole and removed before the next.
	timed := func(copyOnce func() error) func(int) (time.Duration, error) {
		return func(int) (time.Duration, error) {
			t := time.Now()
			err := copyOnce()
			d := time.Since(t)
			if err == nil {
				err = checkFull(dst)
			}
			if rerr := os.Remove(dst); err == nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = rerr
			}
			return d, err
		}
	}
	agentSide := &side{name: "copy_file", run: timed(func() error {
		return c.CopyFile(ctx, mount+"/VirtualDisks/"+srcID+".img", mount+"/VirtualDisks/"+dstID+".img",
			agentapi.CopyOption{Mode: agentapi.CopyAllocated})
	})}
	cpSide := &side{name: "cp", run: timed(func() error { return copySynced(ctx, exec.Command("cp", src, dst), dst) })}
	ddSide := &side{name: "dd", run: timed(func() error {
		return copySynced(ctx, exec.Command("dd", "if="+src, "of="+dst, "bs=4M", "conv=fsync", "status=none"), dst)
	})}
	err = takeTurns([]*side{agentSide, cpSide, ddSide}, b.plan.copies, func(round int) {
		fmt.Printf("  round %d: copy_file %.0f MB/s, cp %.0f MB/s, dd %.0f MB/s\n", round,
			mbPerSec(agentSide.times[round-1]), mbPerSec(cpSide.times[round-1]), mbPerSec(ddSide.times[round-1]))
	})
	if err != nil {
		b.res.fail("11", measure, err)
		return
	}
	agentT, cpT, ddT := agentSide.times, cpSide.times, ddSide.times
	rate := func(ds []time.Duration) float64 { return copySize / 1e6 / (median(durationsMS(ds)) / 1000) }
	v := rate(agentT)
	for _, base := range []struct {
		name string
		ds   []time.Duration
	}{{"cp + fsync", cpT}, {"dd bs=4M conv=fsync", ddT}} {
		bv := rate(base.ds)
		b.res.add(row{Fig: "11", Measure: measure + " (MB/s, of the median time)", Value: fmtMBps(v),
			Baseline: base.name + ": " + fmtMBps(bv), Ratio: ratio(v, bv)})
	}
	b.res.note("figure 11: one xenagent process (simulated host); its repository and the baselines' copies in one directory of "+
		"the same file system; a fully written 1 GiB source (no block of zeros); copy_file is called with the harness's agent client "+
		"(HTTPS, as the manager calls it) and answers once its copy is synced; cp's copy is synced after cp (fsync), dd's by "+
		"conv=fsync; MB/s = 10^6 bytes/s of the median time; a warm-up of each side, then %d rounds, the sides in turn; times median (min-max): copy_file %s, "+
		"cp %s, dd %s", len(agentT), medianRange(agentT), medianRange(cpT), medianRange(ddT))
}

// medianRange is the median of ds with its range, "12.3 ms (10.1-15.0 ms)".
func medianRange(ds []time.Duration) string {
	x := durationsMS(ds)
	return fmt.Sprintf("%s (%s-%s)", fmtMS(median(x)), fmtMS(percentile(x, 0)), fmtMS(percentile(x, 100)))
}

func mbPerSec(d time.Duration) float64 { return copySize / 1e6 / d.Seconds() }

func fmtMBps(v float64) string { return fmt.Sprintf("%.0f MB/s", v) }

// writeFull writes size bytes of data with no block of zeros to a new
// file at p and syncs it.
func writeFull(p string, size int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	chunk := make([]byte, 4<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	for off := 0; off < size; off += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
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

// checkFull checks that p is a whole copy: copySize bytes, all allocated.
func checkFull(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	n, err := allocatedBytes(p)
	if err != nil {
		return err
	}
	if fi.Size() != copySize || n < copySize {
		return fmt.Errorf("the copy has %d bytes, %d allocated; want %d, all allocated", fi.Size(), n, copySize)
	}
	return nil
}
