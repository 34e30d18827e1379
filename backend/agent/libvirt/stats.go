package libvirt

import (
	"strconv"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// statsRecord is one domain of libvirt's bulk statistics, with the VM it
// runs.
type statsRecord struct {
	meta   vmMeta
	domID  int64
	params map[string]any
}

// allStats reads the bulk statistics of the live domains of this
// driver's VMs in one call (ConnectGetAllDomainStats), without waiting for
// a domain that a job holds (NOWAIT): a domain being started, saved or
// migrated is listed with what libvirt has at once (its state) rather than
// after the job, which under QEMU lasts seconds. The HA lease renewal
// lists the domains through here, and must not wait out a start (a wait
// longer than the fence timeout would fence the server).
func (d *Driver) allStats(kinds golibvirt.DomainStatsTypes) ([]statsRecord, error) {
	var out []statsRecord
	err := d.do("list the domains", func(l *golibvirt.Libvirt) error {
		recs, err := l.ConnectGetAllDomainStats(nil, uint32(kinds),
			uint32(golibvirt.ConnectGetAllDomainsStatsActive|golibvirt.ConnectGetAllDomainsStatsNowait))
		if err != nil {
			return err
		}
		out = make([]statsRecord, 0, len(recs))
		for _, r := range recs {
			meta, ok := d.metaFor(l, r.Dom)
			if !ok {
				continue
			}
			rec := statsRecord{meta: meta, domID: int64(r.Dom.ID), params: paramsOf(r.Params)}
			if _, ok := rec.params["balloon.current"]; !ok {
				// A driver without these statistics (libvirt's test
				// driver) still has the domain's info.
				if _, _, curKiB, vcpus, cpuNS, err := l.DomainGetInfo(r.Dom); err == nil {
					rec.params["balloon.current"], rec.params["vcpu.current"], rec.params["cpu.time"] = curKiB, uint64(vcpus), cpuNS
				}
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// paramsOf indexes typed parameters by name.
func paramsOf(ps []golibvirt.TypedParam) map[string]any {
	params := make(map[string]any, len(ps))
	for _, p := range ps {
		params[p.Field] = p.Value.I
	}
	return params
}

// uintParam is a numeric statistic, 0 when absent.
func (r statsRecord) uintParam(name string) uint64 {
	switch v := r.params[name].(type) {
	case uint64:
		return v
	case int64:
		return uint64(max(v, 0))
	case uint32:
		return uint64(v)
	case int32:
		return uint64(max(v, 0))
	}
	return 0
}

// domain is the record as the protocol describes a domain.
func (r statsRecord) domain() hypervisor.Domain {
	return hypervisor.Domain{VMID: r.meta.VM, Domain: agentapi.Domain{
		UUID:      r.meta.UUID,
		Name:      r.meta.Name,
		DomID:     r.domID,
		State:     stateOf(golibvirt.DomainState(r.uintParam("state.state"))),
		MemoryMiB: int64(r.uintParam("balloon.current") >> 10),
		VCPUs:     int64(r.uintParam("vcpu.current")),
		CPUTimeS:  float64(r.uintParam("cpu.time")) / 1e9,
		RepoID:    r.meta.Repo,
	}}
}

// cpuSample is the CPU time of each domain (by VM uuid) at a moment, for
// the percentages of the next get_statistics.
type cpuSample struct {
	at      int64 // UnixNano
	cpuTime map[string]uint64
}

// Stats answers get_statistics: each domain's share of a CPU since the
// previous call, its memory and block and network counters, and the
// host's use of its CPUs by domains.
func (d *Driver) Stats() (agentapi.Statistics, error) {
	now := d.env.Now()
	st := agentapi.Statistics{Time: now.Unix(), MemoryFreeMiB: d.FreeMemoryMiB()}
	recs, err := d.allStats(golibvirt.DomainStatsState | golibvirt.DomainStatsCPUTotal | golibvirt.DomainStatsBalloon |
		golibvirt.DomainStatsVCPU | golibvirt.DomainStatsInterface | golibvirt.DomainStatsBlock)
	if err != nil {
		return st, err
	}
	var cpus int64
	_ = d.do("count the node's CPUs", func(l *golibvirt.Libvirt) (err error) {
		cpus, err = cpuCount(l)
		return err
	})
	d.statsMu.Lock()
	prev := d.stats
	next := cpuSample{at: now.UnixNano(), cpuTime: make(map[string]uint64, len(recs))}
	d.stats = next
	d.statsMu.Unlock()
	elapsed := float64(next.at - prev.at)
	var busy float64
	for _, r := range recs {
		dom := r.domain()
		t := r.uintParam("cpu.time")
		next.cpuTime[dom.UUID] = t
		vm := agentapi.VMStats{UUID: dom.UUID, MemoryMiB: dom.MemoryMiB}
		if before, ok := prev.cpuTime[dom.UUID]; ok && elapsed > 0 && t >= before {
			vm.CPUPercent = float64(t-before) / elapsed * 100
			busy += vm.CPUPercent
		}
		for i := range r.uintParam("net.count") {
			vm.NetRxBytes += int64(r.uintParam(indexed("net", i, "rx.bytes")))
			vm.NetTxBytes += int64(r.uintParam(indexed("net", i, "tx.bytes")))
		}
		for i := range r.uintParam("block.count") {
			vm.DiskReadBytes += int64(r.uintParam(indexed("block", i, "rd.bytes")))
			vm.DiskWriteBytes += int64(r.uintParam(indexed("block", i, "wr.bytes")))
		}
		st.VMs = append(st.VMs, vm)
	}
	if cpus > 0 {
		st.CPUPercent = busy / float64(cpus)
	}
	return st, nil
}

// indexed names a statistic of the i-th device: net.0.rx.bytes.
func indexed(group string, i uint64, field string) string {
	return group + "." + strconv.FormatUint(i, 10) + "." + field
}
