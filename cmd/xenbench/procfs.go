package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// statusKB returns a field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...).
func statusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				break
			}
			return strconv.ParseInt(fs[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// pssKB returns the proportional set size of pid (shared pages divided
// among the processes that map them), from smaps_rollup.
func pssKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				return strconv.ParseInt(fs[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/smaps_rollup has no Pss", pid)
}

// procStat is what the harness reads of /proc/<pid>/stat.
type procStat struct {
	pid, ppid      int
	comm           string
	utime, stime   int64 // own CPU, in clock ticks
	cutime, cstime int64 // CPU of children already waited for
	starttime      int64
	rssPages       int64
	state          string
	threads        int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: cannot parse", pid)
	}
	f := strings.Fields(s[close+1:])
	if len(f) < 22 { // fields 3..24
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state); field n is f[n-3].
	num := func(n int) int64 { v, _ := strconv.ParseInt(f[n-3], 10, 64); return v }
	return procStat{pid: pid, comm: s[open+1 : close], state: f[0], ppid: int(num(4)),
		utime: num(14), stime: num(15), cutime: num(16), cstime: num(17),
		threads: num(20), starttime: num(22), rssPages: num(24)}, nil
}

// descendants returns the live processes below root (not root itself).
func descendants(root int) []procStat {
	all := map[int][]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		all[st.ppid] = append(all[st.ppid], st)
	}
	var out []procStat
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range all[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// treeCPU is the CPU time (ticks) of root and every live descendant, plus
// what root's waited-for children used, keyed by pid+starttime so that a
// sample taken later can be compared.
type treeCPU struct {
	at      time.Time
	ticks   map[string]int64
	rootKey string
	procs   int
}

func sampleTreeCPU(root int, withChildren bool) (treeCPU, error) {
	st, err := readStat(root)
	if err != nil {
		return treeCPU{}, err
	}
	t := treeCPU{at: time.Now(), ticks: map[string]int64{}}
	key := func(s procStat) string { return fmt.Sprintf("%d/%d", s.pid, s.starttime) }
	t.rootKey = key(st)
	t.ticks[t.rootKey] = st.utime + st.stime
	if withChildren {
		t.ticks["reaped"] = st.cutime + st.cstime
		for _, d := range descendants(root) {
			t.ticks[key(d)] = d.utime + d.stime
			t.procs++
		}
	}
	return t, nil
}

// cpuPercent is the CPU used between two samples as a percentage of one
// core. A process that appeared in between counts from zero; one that
// ended is reflected in the reaped ticks of its parent if it was root's
// child.
func cpuPercent(a, b treeCPU) float64 {
	var used int64
	for k, v := range b.ticks {
		used += v - a.ticks[k]
	}
	sec := b.at.Sub(a.at).Seconds()
	if sec <= 0 {
		return 0
	}
	return float64(used) / clockTicks / sec * 100
}

// rootCPUPercent is the part of cpuPercent used by the root process itself.
func rootCPUPercent(a, b treeCPU) float64 {
	sec := b.at.Sub(a.at).Seconds()
	if sec <= 0 {
		return 0
	}
	return float64(b.ticks[b.rootKey]-a.ticks[a.rootKey]) / clockTicks / sec * 100
}

// rssPoller samples VmRSS of a process while a measurement runs and keeps
// the highest value seen.
type rssPoller struct {
	stop chan struct{}
	done chan int64
}

func pollRSS(pid int, every time.Duration) *rssPoller {
	p := &rssPoller{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v, err := statusKB(pid, "VmRSS"); err == nil && v > peak {
				peak = v
			}
			select {
			case <-p.stop:
				if v, err := statusKB(pid, "VmRSS"); err == nil && v > peak {
					peak = v
				}
				p.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Stop returns the highest VmRSS seen, in kB.
func (p *rssPoller) Stop() int64 {
	close(p.stop)
	return <-p.done
}
