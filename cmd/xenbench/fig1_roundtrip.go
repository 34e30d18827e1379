package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
)

// roundTrip is figure 1: `ssh -p PORT admin@127.0.0.1 "show Vm name=vm-5000"`
// with 10,000 VMs, key login, a new connection each time, beside the same
// client logging in to a baseline sshd whose ForceCommand is /bin/true. The
// two are measured alternately so that drift hits both alike.
func (b *bench) roundTrip(ctx context.Context, m *managerProc) {
	const measure = "ssh exec round trip `show Vm name=vm-5000`, 10,000 VMs, key login"
	fmt.Println("\n== figure 1:", measure)
	if !b.needSSH("1", measure) {
		return
	}
	sshd, sshdErr := startSSHD(ctx, b.work, "sshd-true", "/bin/true", b.ssh)
	defer sshd.stop()

	mgrRun := func() (time.Duration, error) {
		var out bytes.Buffer
		cmd := b.ssh.command(m.port, "xenbench-manager", "admin", nil, "show Vm name=vm-5000")
		cmd.Stdout, cmd.Stderr = &out, &out
		d, err := runTimed(ctx, cmd)
		if err != nil {
			return 0, exitErr(err, out.Bytes())
		}
		if !strings.Contains(out.String(), "vm-5000") {
			return 0, fmt.Errorf("show Vm did not show vm-5000: %s", oneLine(out.String()))
		}
		return d, nil
	}
	sshdRun := func() (time.Duration, error) {
		var out bytes.Buffer
		cmd := b.ssh.command(sshd.port, sshd.alias, sshd.user, nil, "true")
		cmd.Stdout, cmd.Stderr = &out, &out
		d, err := runTimed(ctx, cmd)
		if err != nil {
			return 0, exitErr(err, out.Bytes())
		}
		return d, nil
	}
	var mgr, base []time.Duration
	// Two warm-up logins each (known_hosts, page cache), not counted.
	for i := 0; i < b.plan.roundTrips+2; i++ {
		d, err := mgrRun()
		if err != nil {
			b.res.fail("1", measure, err)
			return
		}
		if i >= 2 {
			mgr = append(mgr, d)
		}
		if sshdErr == nil {
			d, err := sshdRun()
			if err != nil {
				sshdErr = err
			} else if i >= 2 {
				base = append(base, d)
			}
		}
	}
	v := median(durationsMS(mgr))
	r := row{Fig: "1", Measure: measure, Value: fmtMS(v), Target: "<= 0.6 x sshd"}
	if sshdErr != nil {
		r.Baseline = "missing: " + oneLine(sshdErr.Error())
	} else {
		bv := median(durationsMS(base))
		r.Baseline = "sshd, ForceCommand /bin/true: " + fmtMS(bv)
		r.Ratio = ratio(v, bv)
		r.Met = yesNo(v <= 0.6*bv)
	}
	b.res.add(r)
	b.res.note("figure 1: %d round trips per server, alternating, after 2 warm-ups; both with %s, %s, %s, ed25519 user key; "+
		"p90 manager %s", len(mgr), kexAlg, hostKeyAlg, cipherAlg, fmtMS(percentile(durationsMS(mgr), 90)))
}
