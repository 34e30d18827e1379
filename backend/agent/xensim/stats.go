package xensim

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"xenmanager/backend/agentapi"
)

// dom0Load is the CPUs Domain-0 keeps busy, for the host's cpu_percent.
const dom0Load = 0.05

// Stats answers get_statistics. The figures are simulated, derived
// from the clock and from a hash of each domain's uuid, so that they are
// plausible, differ between domains and are reproducible with a fake clock:
//
//   - a domain's cpu_percent is as xentop's (100 is one CPU busy): its vCPUs
//     times the guest load of 25 %, 0 unless running, so that it is the
//     growth rate of cpu_time_s;
//   - the host's is Domain-0's 5 % of a CPU plus the domains', over all CPUs,
//     at most 100;
//   - net and disk byte counters are a per-domain rate (net receive 20-95
//     kB/s, send a third of it; disk read 50-200 kB/s, write half of it)
//     times the seconds the domain has run since it booted;
//   - the guest: uptime since boot; load1 its busy vCPUs varying ±20 % over
//     five minutes; 60-119 processes plus one per ten minutes of uptime (at
//     most 20 more); 35-64 % of its memory used; disk total the size of the
//     disk images in its vm.cfg at start, 20-59 % of it used plus 1 MiB per
//     hour run; an address in 10.0.0.0/8.
//
// Running, blocked and paused domains are listed; suspended, crashed and
// shut down ones are not.
func (h *Sim) Stats() (agentapi.Statistics, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	st := agentapi.Statistics{Time: now.Unix(), MemoryFreeMiB: h.freeLocked(), VMs: []agentapi.VMStats{}}
	busy := dom0Load
	for _, d := range h.domains {
		if !d.holdsMemory() {
			continue
		}
		vs := d.stats(now)
		busy += vs.CPUPercent / 100
		st.VMs = append(st.VMs, vs)
	}
	slices.SortFunc(st.VMs, func(a, b agentapi.VMStats) int { return cmp.Compare(a.UUID, b.UUID) })
	st.CPUPercent = round2(min(100, busy/float64(h.cpus)*100))
	return st, nil
}

// stats computes a domain's simulated statistics at now (see
// Stats).
func (d *domain) stats(now time.Time) agentapi.VMStats {
	hv := uuidHash(d.uuid)
	run := d.runTimeAt(now)
	uptime := max(0, now.Sub(d.booted).Seconds())
	netRx := 20_000 + float64(hv%16)*5_000
	diskRead := 50_000 + float64(hv>>4%16)*10_000
	cpu := 0.0
	if d.state == agentapi.StateRunning {
		cpu = float64(d.vcpus) * cpuLoad * 100
	}
	phase := float64(hv>>8%1000) / 1000
	load := float64(d.vcpus) * cpuLoad * (1 + 0.2*math.Sin(2*math.Pi*(float64(now.Unix())/300+phase)))
	diskUsed := d.diskMiB*int64(20+hv>>16%40)/100 + int64(run/3600)
	return agentapi.VMStats{
		UUID:           d.uuid,
		CPUPercent:     round2(cpu),
		MemoryMiB:      d.memoryMiB,
		NetRxBytes:     int64(run * netRx),
		NetTxBytes:     int64(run * netRx / 3),
		DiskReadBytes:  int64(run * diskRead),
		DiskWriteBytes: int64(run * diskRead / 2),
		Guest: agentapi.GuestStats{
			UptimeS:      int64(uptime),
			Load1:        round2(load),
			Processes:    60 + int64(hv>>24%60) + min(int64(uptime/600), 20),
			MemUsedMiB:   d.memoryMiB * int64(35+hv>>32%30) / 100,
			DiskUsedMiB:  min(d.diskMiB, diskUsed),
			DiskTotalMiB: d.diskMiB,
			IP:           fmt.Sprintf("10.%d.%d.%d", byte(hv>>40), byte(hv>>48), 2+hv>>56%253),
		},
	}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// uuidHash is a stable pseudo-random number per domain.
func uuidHash(uuid string) uint64 {
	sum := sha256.Sum256([]byte("xensim-stats\x00" + uuid))
	return binary.BigEndian.Uint64(sum[:8])
}
