package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"

	"xenmanager/backend/agent/libvirt/guestimage"
	"xenmanager/backend/agent/libvirt/libvirthost"
)

// Figure 8 is the libvirt driver beside libvirt itself, on the machine's
// libvirtd (QEMU under TCG when there is no KVM): a guest's boot and a live
// migration through the manager beside virsh doing the same to an equivalent
// domain, and what the agent adds to a lifecycle call (fig8_overhead.go).
const (
	bootMeasure    = "`start Vm` to the guest's first console line (XENGUEST READY), QEMU, 128 MiB"
	migrateMeasure = "live `migrate Vm` to a second libvirt host, running 128 MiB guest"

	systemURI = "qemu:///system"
	guestVM   = "bench8" // the manager's VM
	// baselinePrefix starts the name of the baseline's persistent domain on
	// the machine's libvirtd; the harness's pid ends it.
	baselinePrefix = "xenbench-fig8-"
	// consolePoll is how often a console log is read for the line awaited:
	// the resolution of figure 8's boot times.
	consolePoll = 10 * time.Millisecond
	// guestWait bounds a boot or a heartbeat: 7 to 25 s here, with other
	// guests competing for the cores; a guest that has printed nothing by
	// then is stuck (errNoBoot), and its sample is run again once.
	guestWait = 90 * time.Second
)

// libvirtFigures is figure 8. It needs the machine's libvirtd; the boot and
// the migration also QEMU, virsh, the OpenSSH client and the guest image, the
// migration a second libvirt host (root, namespaces). What is missing marks
// its rows failed or its baseline missing, with the reason.
func (b *bench) libvirtFigures(ctx context.Context) {
	fmt.Println("\n== figure 8: the libvirt driver beside libvirt itself")
	if err := libvirthost.SystemAvailable(); err != nil {
		err = fmt.Errorf("needs the machine's libvirtd: %w", err)
		for _, m := range []string{bootMeasure, migrateMeasure, overheadMeasure} {
			b.res.fail("8", m, err)
		}
		return
	}
	b.guestFigures(ctx)
	if ctx.Err() == nil {
		b.agentOverhead(ctx)
	}
	if err := libvirthost.SystemAvailable(); err != nil {
		b.res.note("figure 8: the machine's libvirtd no longer answers after the figure: %v", err)
	}
}

// guestRig is what the boot and migration rows run on: a manager with a pool
// of one libvirt agent on the machine's libvirtd (qemu1) and, when a second
// host could start, one on it (qemu2), a VM of the guest image preferring
// qemu1, and the baseline's domain defined from that VM's own domain XML.
type guestRig struct {
	b       *bench
	dir     string
	m       *managerProc
	sys     *golibvirt.Libvirt // the machine's libvirtd, for XML and checks
	second  *libvirthost.Daemon
	vmID    string // the VM's id, its libvirt domain's name
	vmLog   string // its serial console log (from its domain XML)
	base    string // the baseline's domain
	baseLog string // its serial console log
	// domXML is the VM's domain as the agent built it (inactive form).
	domXML string
	agents []*libvirtAgent
}

// guestFigures measures the boot row and the migration row, alternating the
// manager and virsh: for each sample, each side boots its guest on the
// machine's libvirtd (timed to XENGUEST READY), waits for its first
// heartbeat, migrates it live to the second host (timed), and kills it.
func (b *bench) guestFigures(ctx context.Context) {
	fail := func(err error) {
		b.res.fail("8", bootMeasure, err)
		b.res.fail("8", migrateMeasure, err)
	}
	if !b.needSSH("8", bootMeasure) || !b.needSSH("8", migrateMeasure) {
		return
	}
	if err := guestimage.Available(); err != nil {
		fail(err)
		return
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		fail(fmt.Errorf("QEMU (qemu-system-x86_64) is not installed: %w", err))
		return
	}
	t0 := time.Now()
	img, err := guestimage.Ensure(ctx)
	if err != nil {
		fail(fmt.Errorf("the guest image: %w", err))
		return
	}
	fmt.Printf("  guest image %s ready in %s\n", img.Version, time.Since(t0).Round(time.Millisecond))
	_, virshErr := exec.LookPath("virsh")
	if virshErr != nil {
		virshErr = fmt.Errorf("virsh (libvirt-clients) is not installed")
	}

	g := &guestRig{b: b}
	defer g.close()
	var migErr error
	if err := libvirthost.Available(); err != nil {
		migErr = err
	} else {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		g.second, migErr = libvirthost.Start(sctx, libvirthost.Options{Hostname: "qemu2"})
		cancel()
		if migErr != nil {
			migErr = fmt.Errorf("a second libvirt host: %w", migErr)
		}
	}
	if err := g.setup(ctx, img); err != nil {
		fail(err)
		return
	}
	var mgrBoot, mgrExec, mgrHost, mgrMig, mgrJob, baseBoot, baseExec, baseHost, baseMig, baseJob []time.Duration
	rivals := watchRivals(g.vmID, g.base)
	boots, crowded := 0, 0 // boots, and those that began while other guests still ran
	var retried []string   // why a sample was run again
	defer rivals.stop()
	// Sample 0 is a warm-up of each side (page cache, the daemons' first
	// connection to the second host), not counted.
	for i := 0; i <= b.plan.boots && ctx.Err() == nil; i++ {
		boots++
		if !quietWait(ctx, g.vmID, g.base) {
			crowded++
		}
		s, err := g.managerSample(ctx, migErr == nil)
		if errors.Is(err, errNoBoot) && ctx.Err() == nil {
			retried = append(retried, "manager: "+oneLine(err.Error()))
			s, err = g.managerSample(ctx, migErr == nil)
		}
		if err != nil {
			if !errors.Is(err, errMigration) {
				fail(err)
				return
			}
			migErr = err
		}
		if i == 0 && virshErr == nil && ctx.Err() == nil {
			virshErr = g.defineBaseline(ctx)
		}
		var bs guestSample
		if virshErr == nil && ctx.Err() == nil {
			boots++
			if !quietWait(ctx, g.vmID, g.base) {
				crowded++
			}
			bs, err = g.baselineSample(ctx, migErr == nil)
			if errors.Is(err, errNoBoot) && ctx.Err() == nil {
				retried = append(retried, "virsh: "+oneLine(err.Error()))
				bs, err = g.baselineSample(ctx, migErr == nil)
			}
			if err != nil {
				virshErr = err
			}
		}
		warm := ""
		if i == 0 {
			warm = " (warm-up)"
		}
		fmt.Printf("  sample %d%s: manager boot %s (start Vm %s, before the guest's clock %s), migrate %s (libvirt's job %s); "+
			"virsh boot %s (start %s, before the guest's clock %s), migrate %s (libvirt's job %s)\n",
			i, warm, s.boot.Round(time.Millisecond), s.exec.Round(time.Millisecond), s.host.Round(time.Millisecond),
			s.migrate.Round(time.Millisecond), s.job, bs.boot.Round(time.Millisecond), bs.exec.Round(time.Millisecond),
			bs.host.Round(time.Millisecond), bs.migrate.Round(time.Millisecond), bs.job)
		if i == 0 {
			continue
		}
		mgrBoot, mgrExec, mgrHost = append(mgrBoot, s.boot), append(mgrExec, s.exec), append(mgrHost, s.host)
		if s.migrate > 0 {
			mgrMig, mgrJob = append(mgrMig, s.migrate), append(mgrJob, s.job)
		}
		if virshErr == nil {
			baseBoot, baseExec, baseHost = append(baseBoot, bs.boot), append(baseExec, bs.exec), append(baseHost, bs.host)
			if bs.migrate > 0 {
				baseMig, baseJob = append(baseMig, bs.migrate), append(baseJob, bs.job)
			}
		}
	}
	if ctx.Err() != nil {
		return
	}

	v := median(durationsMS(mgrBoot))
	r := row{Fig: "8", Measure: bootMeasure, Value: fmtMS(v), Target: "<= 1.1 x virsh"}
	if virshErr != nil {
		r.Baseline = "missing: " + oneLine(virshErr.Error())
	} else {
		bv := median(durationsMS(baseBoot))
		r.Baseline = "`virsh start` of the same domain: " + fmtMS(bv)
		r.Ratio = ratio(v, bv)
		r.Met = yesNo(v <= 1.1*bv)
	}
	b.res.add(r)
	switch {
	case migErr != nil:
		b.res.fail("8", migrateMeasure, migErr)
	default:
		v := median(durationsMS(mgrMig))
		r := row{Fig: "8", Measure: migrateMeasure, Value: fmtMS(v), Target: "<= 1.1 x virsh"}
		if virshErr != nil {
			r.Baseline = "missing: " + oneLine(virshErr.Error())
		} else {
			bv := median(durationsMS(baseMig))
			r.Baseline = "`virsh migrate --live --p2p`: " + fmtMS(bv)
			r.Ratio = ratio(v, bv)
			r.Met = yesNo(v <= 1.1*bv)
		}
		b.res.add(r)
	}
	looks, busy, most := rivals.stop()
	others := "none"
	if busy > 0 {
		others = fmt.Sprintf("in %d %% of the 250 ms looks, up to %d at once; each boot waited up to %s for none to run, "+
			"and %d of the %d began with some still running", 100*busy/max(looks, 1), most, quietMax, crowded, boots)
	}
	b.res.note("figure 8, boot: %d samples per side after a warm-up each, alternating manager and virsh, each side killed "+
		"(`kill Vm`, `virsh destroy`) before the other boots; the manager's side is `ssh ... \"start Vm name=%s\"` (OpenSSH, "+
		"as figure 1) to a libvirt agent on qemu:///system, the baseline `virsh -c qemu:///system start %s`, a persistent "+
		"domain defined from the agent's own domain XML of that VM (read with virDomainGetXMLDesc, inactive; new name and "+
		"uuid, no metadata, its own serial log file); both timed from just before the client starts until %q appears in the "+
		"guest's serial console log (a <log file=... append='on'/> read every %s from its size before the start); the exec "+
		"itself returned after %s (manager) and %s (virsh); the part of the boot before the guest's clock started (time "+
		"to its first heartbeat line minus the uptime it prints: the client, libvirt, QEMU's start, then the firmware and "+
		"the kernel's decompression, emulated) %s (manager) and %s (virsh), the rest is the guest's kernel and init; "+
		"medians; p90 boot manager %s, virsh %s; QEMU processes of others on the machine (other users' guests, any libvirt daemon) while the figure ran: %s",
		len(mgrBoot), guestVM, g.base, guestimage.Ready, consolePoll, fmtMS(median(durationsMS(mgrExec))),
		fmtMS(median(durationsMS(baseExec))), fmtMS(median(durationsMS(mgrHost))), fmtMS(median(durationsMS(baseHost))),
		fmtMS(percentile(durationsMS(mgrBoot), 90)), fmtMS(percentile(durationsMS(baseBoot), 90)), others)
	if len(retried) > 0 {
		b.res.note("figure 8: %d sample(s) run again because the guest printed nothing in %s: %s", len(retried), guestWait,
			strings.Join(retried, "; "))
	}
	if migErr == nil {
		jobs := ""
		if len(diffsMS(mgrMig, mgrJob)) > 0 && len(diffsMS(baseMig, baseJob)) > 0 {
			jobs = fmt.Sprintf("; the migration job by libvirt's own clock (`virsh domjobinfo --completed` on the "+
				"destination, Time elapsed): manager %s, virsh %s (medians); the client's wall time less it, manager %s and "+
				"virsh %s, is the rest: libvirt's connection to the destination, the destination QEMU's start, the "+
				"switch-over, and what each path adds", fmtMS(median(nonZeroMS(mgrJob))), fmtMS(median(nonZeroMS(baseJob))),
				fmtMS(median(diffsMS(mgrMig, mgrJob))), fmtMS(median(diffsMS(baseMig, baseJob))))
		}
		b.res.note("figure 8, migration: the same samples: once the guest printed its first %q line, the manager's side "+
			"runs `ssh ... \"migrate Vm name=%s destServer=qemu2\"` (set-up on the destination agent, then migrate_vm on the "+
			"source's, peer to peer, live, abort on error), the baseline `virsh -c qemu:///system migrate --live --p2p "+
			"--abort-on-error %s %s %s` (the flags the agent passes); both timed as the client's wall time and checked "+
			"running on the destination after; the second host is a private libvirtd in a network namespace "+
			"(backend/agent/libvirt/libvirthost) on the same machine; p90 manager %s, virsh %s%s",
			guestimage.Heartbeat, guestVM, g.base, g.second.URI, g.second.MigrateURI(),
			fmtMS(percentile(durationsMS(mgrMig), 90)), fmtMS(percentile(durationsMS(baseMig), 90)), jobs)
	}
}

// errMigration marks a sample's failure in its migration (the boot row
// goes on without it).
var errMigration = errors.New("migration")

// errNoBoot marks a guest that did not print the line awaited in time.
var errNoBoot = errors.New("guest stuck")

// domStats is libvirt's state and CPU time of a domain, for the error of a
// guest that did not boot: stuck spinning, or starved of CPU.
func domStats(uri, domain string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := virsh(ctx, uri, "domstats", "--state", "--cpu-total", domain)
	var keep []string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "state.state=") || strings.HasPrefix(f, "cpu.time=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

// guestSample is one side's sample: the boot to READY, the start command's
// own wall time, the part of the boot before the guest's clock started
// (bootTimes), and the migration (0 when not migrated) by the client's clock
// and by libvirt's.
type guestSample struct {
	boot, exec, host, migrate time.Duration
	job                       time.Duration // the migration by libvirt's clock (runsOnSecond)
}

// setup starts the agents and the manager, pools them, creates the
// repository with the guest image in it and the VM.
func (g *guestRig) setup(ctx context.Context, img guestimage.Image) error {
	b := g.b
	// QEMU runs as libvirt's own user: it must reach the kernel in the
	// repository, so the working directory is made traversable (not
	// listable) and this figure's directory readable.
	if err := os.Chmod(b.work, 0o711); err != nil {
		return err
	}
	g.dir = filepath.Join(b.work, "libvirt")
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(g.dir, 0o755); err != nil {
		return err
	}
	sys := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(libvirthost.SystemSocket), dialers.WithLocalTimeout(5*time.Second)))
	if err := sys.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return fmt.Errorf("connect to the machine's libvirtd: %w", err)
	}
	g.sys = sys
	g.removeStale()

	a1, err := b.startLibvirtAgent(ctx, g.dir, "qemu1", systemURI)
	if err != nil {
		return err
	}
	g.agents = append(g.agents, a1)
	if g.second != nil {
		a2, err := b.startLibvirtAgent(ctx, g.dir, "qemu2", systemURI, "--libvirt-socket", g.second.Socket,
			"--libvirt-migration-uri", g.second.URI, "--migration-host", g.second.Addr)
		if err != nil {
			return err
		}
		g.agents = append(g.agents, a2)
	}
	if g.m, err = startManager(ctx, b.bin, filepath.Join(g.dir, "manager")); err != nil {
		return err
	}
	repo := filepath.Join(g.dir, "repo")
	var script strings.Builder
	fmt.Fprintf(&script, "create SshKey name=bench key=\"%s\"\n", b.ssh.pub)
	for _, a := range g.agents {
		fmt.Fprintf(&script, "discoverServer ipAddress=127.0.0.1 port=%d password=%s\n", a.port, a.password)
	}
	script.WriteString("create ServerPool name=lvpool\n")
	for _, a := range g.agents {
		fmt.Fprintf(&script, "add Server name=%s to ServerPool name=lvpool\n", a.name)
	}
	fmt.Fprintf(&script, "create Repository name=lvrepo fsLocation=%s on ServerPool name=lvpool\n", repo)
	if _, err := g.m.goSSH(ctx, script.String(), true); err != nil {
		return fmt.Errorf("pool set-up: %w", err)
	}
	kernels := filepath.Join(repo, "Kernels")
	if err := os.MkdirAll(kernels, 0o755); err != nil {
		return err
	}
	for src, name := range map[string]string{img.Kernel: "vmlinuz", img.Initrd: "initrd.gz"} {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(kernels, name), data, 0o644); err != nil {
			return err
		}
	}
	// preferredServers keeps every start on the machine's libvirtd, where
	// the baseline boots too, whichever host the last migration left it on.
	create := fmt.Sprintf("create Vm name=%s repository=lvrepo memory=128 kernel=Kernels/vmlinuz ramdisk=Kernels/initrd.gz extra=\"%s\"\n"+
		"edit Vm name=%s preferredServers=qemu1\n", guestVM, guestimage.Cmdline, guestVM)
	if _, err := g.m.goSSH(ctx, create, true); err != nil {
		return fmt.Errorf("create the VM: %w", err)
	}
	out, err := g.m.goSSH(ctx, "show Vm name="+guestVM, false)
	if err != nil {
		return err
	}
	if g.vmID = showField(out, "Id"); g.vmID == "" {
		return fmt.Errorf("show Vm has no Id: %s", oneLine(out))
	}
	g.base = baselinePrefix + strconv.Itoa(os.Getpid())
	g.baseLog = filepath.Join(g.dir, "baseline-console.log")
	return nil
}

// managerSample boots the VM through the manager to READY, migrates it
// when migrate, and kills it. A failure of the migration alone wraps
// errMigration.
func (g *guestRig) managerSample(ctx context.Context, migrate bool) (guestSample, error) {
	var s guestSample
	defer g.killVM()
	off := fileSize(g.vmLog)
	t0 := time.Now()
	var out bytes.Buffer
	cmd := g.b.ssh.command(g.m.port, "xenbench-libvirt", "admin", nil, "start Vm name="+guestVM)
	cmd.Stdout, cmd.Stderr = &out, &out
	d, err := runTimed(ctx, cmd)
	if err != nil {
		return s, fmt.Errorf("start Vm: %w", exitErr(err, out.Bytes()))
	}
	s.exec = d
	if g.vmLog == "" {
		if err := g.readVMDomain(); err != nil {
			return s, err
		}
	}
	if s.boot, s.host, err = bootTimes(ctx, g.vmLog, off, t0); err != nil {
		return s, fmt.Errorf("the manager's guest (%s): %w", domStats(systemURI, g.vmID), err)
	}
	if !migrate {
		return s, nil
	}
	out.Reset()
	cmd = g.b.ssh.command(g.m.port, "xenbench-libvirt", "admin", nil, "migrate Vm name="+guestVM+" destServer=qemu2")
	cmd.Stdout, cmd.Stderr = &out, &out
	if s.migrate, err = runTimed(ctx, cmd); err != nil {
		return s, fmt.Errorf("%w: migrate Vm: %w", errMigration, exitErr(err, out.Bytes()))
	}
	if s.job, err = g.runsOnSecond(ctx, g.vmID); err != nil {
		return s, fmt.Errorf("%w: after migrate Vm: %w", errMigration, err)
	}
	return s, nil
}

// baselineSample does what managerSample does with virsh and the baseline's
// domain.
func (g *guestRig) baselineSample(ctx context.Context, migrate bool) (guestSample, error) {
	var s guestSample
	defer g.stopBaseline()
	off := fileSize(g.baseLog)
	t0 := time.Now()
	var out bytes.Buffer
	cmd := exec.Command("virsh", "-q", "-c", systemURI, "start", g.base)
	cmd.Stdout, cmd.Stderr = &out, &out
	d, err := runTimed(ctx, cmd)
	if err != nil {
		return s, fmt.Errorf("virsh start: %w", exitErr(err, out.Bytes()))
	}
	s.exec = d
	if s.boot, s.host, err = bootTimes(ctx, g.baseLog, off, t0); err != nil {
		return s, fmt.Errorf("the baseline's guest (%s): %w", domStats(systemURI, g.base), err)
	}
	if !migrate {
		return s, nil
	}
	out.Reset()
	cmd = exec.Command("virsh", "-q", "-c", systemURI, "migrate", "--live", "--p2p", "--abort-on-error",
		g.base, g.second.URI, g.second.MigrateURI())
	cmd.Stdout, cmd.Stderr = &out, &out
	if s.migrate, err = runTimed(ctx, cmd); err != nil {
		return s, fmt.Errorf("virsh migrate: %w", exitErr(err, out.Bytes()))
	}
	if s.job, err = g.runsOnSecond(ctx, g.base); err != nil {
		return s, fmt.Errorf("after virsh migrate: %w", err)
	}
	return s, nil
}

// readVMDomain reads the running VM's domain XML as the agent built it and
// the console log it names.
func (g *guestRig) readVMDomain() error {
	dom, err := g.sys.DomainLookupByName(g.vmID)
	if err != nil {
		return fmt.Errorf("the VM's domain %s on the machine's libvirtd: %w", g.vmID, err)
	}
	x, err := g.sys.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		return fmt.Errorf("the VM's domain XML: %w", err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return fmt.Errorf("the VM's domain XML: %w", err)
	}
	if d.Devices == nil || len(d.Devices.Serials) == 0 || d.Devices.Serials[0].Log == nil || d.Devices.Serials[0].Log.File == "" {
		return errors.New("the VM's domain has no serial console log")
	}
	g.domXML, g.vmLog = x, d.Devices.Serials[0].Log.File
	return nil
}

// defineBaseline defines the baseline's persistent domain: the VM's own
// domain with another name and uuid, no metadata (the agent leaves it
// alone) and its own console log.
func (g *guestRig) defineBaseline(ctx context.Context) error {
	var d libvirtxml.Domain
	if err := d.Unmarshal(g.domXML); err != nil {
		return err
	}
	d.Name, d.UUID, d.ID, d.Title, d.Description, d.Metadata = g.base, "", nil, "", "", nil
	for i := range d.Devices.Serials {
		if d.Devices.Serials[i].Log != nil {
			d.Devices.Serials[i].Log.File = g.baseLog
		}
	}
	// libvirt shows the serial port's log on the console that mirrors it.
	for i := range d.Devices.Consoles {
		if d.Devices.Consoles[i].Log != nil {
			d.Devices.Consoles[i].Log.File = g.baseLog
		}
	}
	x, err := d.Marshal()
	if err != nil {
		return err
	}
	file := filepath.Join(g.dir, g.base+".xml")
	if err := os.WriteFile(file, []byte(x), 0o644); err != nil {
		return err
	}
	if out, err := virsh(ctx, systemURI, "define", file); err != nil {
		return fmt.Errorf("virsh define: %w: %s", err, out)
	}
	return nil
}

// runsOnSecond checks that domain runs on the second host, and returns how
// long libvirt's migration job took by its own clock (the completed job's
// "Time elapsed" on the destination; 0 when it does not say).
func (g *guestRig) runsOnSecond(ctx context.Context, domain string) (time.Duration, error) {
	out, err := virsh(ctx, g.second.URI, "domstate", domain)
	if err != nil || strings.TrimSpace(out) != "running" {
		return 0, fmt.Errorf("domain %s is not running on the second host: %v %s", domain, err, oneLine(out))
	}
	out, _ = virsh(ctx, g.second.URI, "domjobinfo", "--completed", domain)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Time elapsed:"); ok {
			if f := strings.Fields(v); len(f) == 2 && f[1] == "ms" {
				if n, err := strconv.Atoi(f[0]); err == nil {
					return time.Duration(n) * time.Millisecond, nil
				}
			}
		}
	}
	return 0, nil
}

// killVM kills the manager's VM wherever it runs (a stopped VM is left
// alone); when the manager cannot, virsh destroys its domain on both hosts.
func (g *guestRig) killVM() {
	if g.m == nil || g.vmID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := g.m.goSSH(ctx, "show Vm name="+guestVM, false)
	if err == nil && showField(out, "Status") == "Stopped" {
		return
	}
	if err == nil {
		if _, err = g.m.goSSH(ctx, "kill Vm name="+guestVM, false); err == nil {
			return
		}
	}
	// What the manager could not end is destroyed behind its back.
	fmt.Println("  kill Vm:", err)
	virsh(ctx, systemURI, "destroy", g.vmID)
	if g.second != nil {
		virsh(ctx, g.second.URI, "destroy", g.vmID)
	}
}

// stopBaseline destroys the baseline's domain on both hosts (it stays
// defined on the machine's libvirtd).
func (g *guestRig) stopBaseline() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	virsh(ctx, systemURI, "destroy", g.base)
	if g.second != nil {
		virsh(ctx, g.second.URI, "destroy", g.base)
	}
}

// removeDomain destroys and undefines a baseline's domain on the machine's
// libvirtd.
func removeDomain(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	virsh(ctx, systemURI, "destroy", name)
	virsh(ctx, systemURI, "undefine", name)
}

// removeStale removes the baseline domains that runs of the harness killed
// before their clean-up left behind (their pid is gone); a run going on
// beside this one keeps its own.
func (g *guestRig) removeStale() {
	doms, _, err := g.sys.ConnectListAllDomains(1, 0)
	if err != nil {
		return
	}
	for _, d := range doms {
		rest, ok := strings.CutPrefix(d.Name, baselinePrefix)
		if !ok {
			continue
		}
		if pid, err := strconv.Atoi(rest); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			removeDomain(d.Name)
		}
	}
}

// rivalWatch counts, every 250 ms, the QEMU processes on the machine that
// run none of the figure's guests: other users' guests, on any libvirt
// daemon, compete for the cores the figure's guests boot on.
type rivalWatch struct {
	quit chan struct{}
	done chan struct{}
	// Set by the watching goroutine before done closes.
	looks, busy, most int
}

// watchRivals starts watching; own are the domain names of the figure's
// guests (QEMU's -name guest=NAME).
func watchRivals(own ...string) *rivalWatch {
	w := &rivalWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			n := countRivals(own)
			w.looks++
			if n > 0 {
				w.busy++
			}
			w.most = max(w.most, n)
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop ends the watch (later calls return the same) and returns how many
// looks it took, in how many another guest ran, and the most at once.
func (w *rivalWatch) stop() (looks, busy, most int) {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	return w.looks, w.busy, w.most
}

// quietMax is how long a boot waits for other users' guests to end.
const quietMax = 30 * time.Second

// quietWait waits until no QEMU process runs a guest that is not one of
// own's, for at most quietMax, so that each side boots on as quiet a machine
// as can be had; false when others still run.
func quietWait(ctx context.Context, own ...string) bool {
	deadline := time.Now().Add(quietMax)
	for countRivals(own) > 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(250 * time.Millisecond) // polling /proc, bounded above
	}
	return true
}

// countRivals counts the QEMU processes running none of own.
func countRivals(own []string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || !bytes.HasPrefix(comm, []byte("qemu-system")) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		mine := false
		for _, name := range own {
			mine = mine || bytes.Contains(cmdline, []byte("guest="+name+","))
		}
		if !mine {
			n++
		}
	}
	return n
}

// close ends everything of the figure, also after a failure: the guests,
// the baseline's definition, the manager, the agents, the second host.
func (g *guestRig) close() {
	g.killVM()
	if g.base != "" {
		removeDomain(g.base)
	}
	if g.sys != nil {
		g.sys.Disconnect()
	}
	g.m.stop()
	for _, a := range g.agents {
		a.kill()
	}
	if g.second != nil {
		if err := g.second.Close(); err != nil {
			fmt.Println("  closing the second libvirt host:", err)
		}
	}
}

// libvirtAgent is a xenagent process with the libvirt driver.
type libvirtAgent struct {
	*agentProc
}

// kill stops the agent as an operator would (SIGINT, which closes its
// libvirt connection), and with SIGKILL when it has not ended within 10 s.
// (The driver disconnects before it ends its event subscription: the two
// racing made libvirtd 9.0.0 of Debian 12, shared by everything on the
// machine, segfault once while this figure stopped its agents.)
func (a *libvirtAgent) kill() {
	select {
	case <-a.exited:
	default:
		syscall.Kill(a.pid, syscall.SIGINT)
		t := time.NewTimer(10 * time.Second)
		select {
		case <-a.exited:
		case <-t.C:
			syscall.Kill(-a.pid, syscall.SIGKILL)
			<-a.exited
		}
		t.Stop()
	}
	procs.forget(a.cmd)
}

// startLibvirtAgent runs the xenagent binary with the libvirt driver on uri
// (extra flags after), named name, with data under dir.
func (b *bench) startLibvirtAgent(ctx context.Context, dir, name, uri string, extra ...string) (*libvirtAgent, error) {
	a, err := b.startAgentProc(ctx, dir, name, 10*time.Second,
		append([]string{"--hypervisor", "libvirt", "--libvirt-uri", uri, "--shutdown-timeout", "60s"}, extra...)...)
	if err != nil {
		return nil, err
	}
	return &libvirtAgent{agentProc: a}, nil
}

// bootTimes waits for a guest started at t0, its console logged to path
// (of size off before the start): its READY line, then its first heartbeat.
// It returns the time to READY, and the part of the time to the first
// heartbeat that the guest's own uptime does not cover: the client, libvirt
// and QEMU's start, then the firmware and the kernel's decompression
// (emulated, seconds under TCG), before the guest's clock starts.
func bootTimes(ctx context.Context, path string, off int64, t0 time.Time) (boot, host time.Duration, err error) {
	ready, _, err := waitConsole(ctx, path, off, guestimage.Ready, func(seen []byte) bool {
		return bytes.Contains(seen, []byte(guestimage.Ready))
	})
	if err != nil {
		return 0, 0, err
	}
	var uptime float64
	hb, _, err := waitConsole(ctx, path, off, guestimage.Heartbeat, func(seen []byte) bool {
		i := bytes.Index(seen, []byte(guestimage.Heartbeat))
		if i < 0 {
			return false
		}
		line, _, whole := bytes.Cut(seen[i:], []byte("\n"))
		var ok bool
		_, uptime, ok = guestimage.ParseHeartbeat(string(line))
		return whole && ok
	})
	if err != nil {
		return 0, 0, err
	}
	return ready.Sub(t0), hb.Sub(t0) - time.Duration(uptime*float64(time.Second)), nil
}

// waitConsole waits until found holds for what the console log at path
// holds after offset off (its size before the guest started), and returns
// when it did and that text; want names what is awaited in errors.
func waitConsole(ctx context.Context, path string, off int64, want string, found func([]byte) bool) (time.Time, []byte, error) {
	deadline := time.Now().Add(guestWait)
	var seen []byte
	pos := off
	for {
		if f, err := os.Open(path); err == nil {
			if st, err := f.Stat(); err == nil && st.Size() > pos {
				buf := make([]byte, st.Size()-pos)
				n, _ := f.ReadAt(buf, pos)
				seen = append(seen, buf[:n]...)
				pos += int64(n)
			}
			f.Close()
			if found(seen) {
				return time.Now(), seen, nil
			}
		}
		if ctx.Err() != nil {
			return time.Time{}, nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return time.Time{}, nil, fmt.Errorf("%w: no %q on the console within %s (%s): %q", errNoBoot, want, guestWait, path,
				oneLine(string(seen)))
		}
		time.Sleep(consolePoll) // polling a file an outside process writes, bounded above
	}
}

// diffsMS is a[i] - b[i] in milliseconds, for the pairs where b is known.
func diffsMS(a, b []time.Duration) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, ms(a[i]-b[i]))
		}
	}
	return out
}

// nonZeroMS is the durations of ds that are not 0, in milliseconds.
func nonZeroMS(ds []time.Duration) []float64 {
	var out []float64
	for _, d := range ds {
		if d > 0 {
			out = append(out, ms(d))
		}
	}
	return out
}

// fileSize is the size of path, 0 when it does not exist.
func fileSize(path string) int64 {
	if path == "" {
		return 0
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// virsh runs virsh on uri (untimed: set-up, checks, clean-up) and returns
// its output.
func virsh(ctx context.Context, uri string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", uri}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := procs.run(cmd)
	return out.String(), err
}

// showField is the value of "Key = value" in show output.
func showField(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok && k == key {
			return v
		}
	}
	return ""
}
