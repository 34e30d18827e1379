package libvirt

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Live migration between two libvirt hosts is peer to peer: the source
// agent asks its libvirtd to migrate the domain, and that daemon talks to
// the destination's libvirtd itself (at the destination's MigrationURI)
// and streams the memory to the destination's MigrationHost. The agents
// only agree on where: setup_migration_target on the destination returns
// dest = "libvirt:<kind>;<libvirt URI>;<migrate_uri>".

// migrationTargetTTL is how long a target set up here waits for its
// domain, as on the simulated host.
const migrationTargetTTL = 60 * time.Second

// destPrefix starts every dest this driver makes.
const destPrefix = "libvirt:"

// migrationDest is a parsed dest.
type migrationDest struct {
	kind       string
	uri        string // the destination libvirtd, as the source libvirtd reaches it
	migrateURI string // where the memory stream goes (tcp://host[:port]); "" lets libvirt choose
}

func (m migrationDest) String() string {
	return destPrefix + m.kind + ";" + m.uri + ";" + m.migrateURI
}

// parseDest reads a dest of setup_migration_target: InvalidArgument, with
// what is accepted, when it is not one of this driver's.
func parseDest(dest string) (migrationDest, error) {
	bad := func(why string) (migrationDest, error) {
		return migrationDest{}, agentapi.Errorf(agentapi.FaultInvalidArgument,
			"migrate_vm: dest %q %s; pass on unchanged the dest a libvirt agent's setup_migration_target returned", trim(dest), why)
	}
	rest, ok := strings.CutPrefix(dest, destPrefix)
	if !ok {
		return bad("is not a libvirt host's (a simulated host cannot migrate to or from a libvirt one)")
	}
	if len(dest) > 1024 || strings.ContainsAny(dest, " \t\r\n\x00") {
		return bad("is too long or holds blanks")
	}
	parts := strings.Split(rest, ";")
	if len(parts) != 3 {
		return bad("does not have three parts")
	}
	m := migrationDest{kind: parts[0], uri: parts[1], migrateURI: parts[2]}
	if _, err := kindOf(m.uri); err != nil {
		return bad("has no libvirt URI")
	}
	if u, err := url.Parse(m.uri); err != nil || u.Host == "" {
		return bad("has a libvirt URI without a host")
	}
	if m.migrateURI != "" {
		if u, err := url.Parse(m.migrateURI); err != nil || u.Scheme != "tcp" || u.Host == "" {
			return bad("has a migrate_uri that is not tcp://host[:port]")
		}
	}
	return m, nil
}

// trim shortens what is echoed of a bad value.
func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// CheckDest checks a dest before anything else of a migrate_vm call: it
// must be a libvirt host's of this driver's hypervisor type.
func (d *Driver) CheckDest(dest string) error {
	m, err := parseDest(dest)
	if err != nil {
		return err
	}
	if m.kind != d.kind {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"migrate_vm: the destination runs %s and this server %s; a domain migrates only between hosts of one hypervisor", m.kind, d.kind)
	}
	return nil
}

// SetupMigrationTarget prepares this host to receive the VM: the VM must
// have no domain here, fit, and its files must resolve here (the
// repository is shared). The target lasts migrationTargetTTL, or until
// the domain arrives.
func (d *Driver) SetupMigrationTarget(spec hypervisor.Spec, listenHost string) (string, error) {
	if d.kind == hypervisor.TypeTest {
		return "", agentapi.Errorf(agentapi.FaultInvalidState, "libvirt's test driver cannot receive migrations")
	}
	if dom, ok, err := d.Domain(spec.RepoID, spec.VMID); err != nil {
		return "", err
	} else if ok {
		return "", agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s already has a domain on this server (domid %d, %s)", spec.VMID, dom.DomID, dom.State)
	}
	dom, err := d.domainXML(spec) // its files must resolve here
	if err != nil {
		return "", err
	}
	memory, vcpus := specSize(spec)
	if err := d.do("receive VM "+spec.VMID, func(l *golibvirt.Libvirt) error {
		return d.checkFits(l, spec.VMID, memory, 0, vcpus)
	}); err != nil {
		return "", err
	}
	meta := metaOfVM(spec.RepoID, spec.VMID, spec.Params)
	m := migrationDest{kind: d.kind, uri: d.cfg.MigrationURI}
	if m.uri == "" {
		if listenHost == "" {
			return "", agentapi.Errorf(agentapi.FaultInvalidState,
				"this agent does not know the address its libvirtd is reached at; start it with --libvirt-migration-uri")
		}
		m.uri = fmt.Sprintf("%s+tcp://%s/system", d.kind, hostForURI(listenHost))
	}
	if host := d.cfg.MigrationHost; host != "" || listenHost != "" {
		if host == "" {
			host = listenHost
		}
		m.migrateURI = "tcp://" + hostForURI(host)
	}
	d.mu.Lock()
	d.targets[dom.Name] = d.env.Now().Add(migrationTargetTTL)
	d.known[dom.Name] = meta
	d.mu.Unlock()
	return m.String(), nil
}

// hostForURI brackets an IPv6 address for a URI's host part.
func hostForURI(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[" + host + "]"
	}
	return host
}

// CleanupMigrationTarget releases the VM's incoming migration, if any.
func (d *Driver) CleanupMigrationTarget(repoID, vmID string) error {
	d.mu.Lock()
	delete(d.targets, domainName(vmID))
	d.mu.Unlock()
	return nil
}

// MigrateVM migrates the VM's domain to dest, peer to peer, live when
// live (the guest runs until the last round) and over TLS when ssl;
// progress goes to get_operation_progress "migrate:<vm_id>". ctx ending
// before the end aborts the migration, and a migration that fails leaves
// the domain running here (libvirt's guarantee); either is
// MigrationFailed.
func (d *Driver) MigrateVM(ctx context.Context, repoID, vmID, dest string, live, ssl bool) (agentapi.MigrationResult, error) {
	m, err := parseDest(dest)
	if err != nil {
		return agentapi.MigrationResult{}, err
	}
	flags := golibvirt.MigratePeer2peer | golibvirt.MigrateAbortOnError
	if live {
		flags |= golibvirt.MigrateLive
	}
	if ssl {
		flags |= golibvirt.MigrateTLS
	}
	var params []golibvirt.TypedParam
	if m.migrateURI != "" {
		params = append(params, golibvirt.TypedParam{Field: golibvirt.MigrateParamURI, Value: *golibvirt.NewTypedParamValueString(m.migrateURI)})
	}
	op := d.env.Progress.Start(agentapi.ProgressMigrate+vmID, "connecting to "+m.uri, 0)
	began := time.Now()
	var job jobWatch
	err = d.doWithin(0, "migrate VM "+vmID, func(l *golibvirt.Libvirt) error {
		dom, _, err := d.lookup(l, repoID, vmID)
		if err != nil {
			return err
		}
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return err
		}
		if s := stateOf(golibvirt.DomainState(state)); !hypervisor.HoldsMemory(s) {
			return agentapi.Errorf(agentapi.FaultInvalidState, "VM %s is %s and cannot be migrated; only a running or paused domain can", vmID, s)
		}
		stop := make(chan struct{})
		defer close(stop)
		job.kick = followIterations(l, dom.Name, stop)
		go job.follow(l, dom, op, "", stop)
		go func() {
			select {
			case <-ctx.Done():
				d.log.Warn("migration abandoned; aborting it", "vm", vmID, "cause", context.Cause(ctx))
				_ = l.DomainAbortJob(dom)
			case <-stop:
			}
		}()
		d.expectEnd(dom.Name, "migrated")
		_, err = l.DomainMigratePerform3Params(dom, golibvirt.OptString{m.uri}, params, nil, flags)
		if err != nil {
			d.forgetEnd(dom.Name)
		}
		return err
	})
	if err != nil {
		op.Finish(err)
		if f, ok := agentapi.AsFault(err); ok && (f.Code == agentapi.FaultNotFound || f.Code == agentapi.FaultInvalidState) {
			return agentapi.MigrationResult{}, err
		}
		return agentapi.MigrationResult{}, agentapi.Errorf(agentapi.FaultMigrationFailed,
			"migration of VM %s to %s failed; the VM still runs on this server (%s)", vmID, m.uri, faultMessage(err))
	}
	op.Finish(nil)
	res := job.result()
	res.DurationMS = time.Since(began).Milliseconds()
	res.Converged = true
	return res, nil
}

// faultMessage is the message of a fault, or the error's text.
func faultMessage(err error) string {
	if f, ok := agentapi.AsFault(err); ok {
		return f.Message
	}
	return err.Error()
}

// jobWatch follows a job's statistics; a migration's last sample makes its
// result, since the source's domain is gone when the call returns.
type jobWatch struct {
	// kick, when set, asks for a sample at once: a migration's new round
	// began (libvirt's migration-iteration event). A small guest's memory
	// is sent between two timed samples; the one taken when the last
	// round begins still sees it, since the domain stays until the
	// destination has it.
	kick <-chan int64

	mu        sync.Mutex // guards the fields below
	rounds    int64
	processed int64
	downtime  int64
}

// follow samples the domain's job (a migration, a save) every 250 ms, and
// at each kick, into op and w until stop closes; phase names it in op,
// "round <n>" when "".
func (w *jobWatch) follow(l *golibvirt.Libvirt, dom golibvirt.Domain, op hypervisor.Operation, phase string, stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var round int64 // the newest round a kick announced
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case round = <-w.kick:
		}
		_, params, err := l.DomainGetJobStats(dom, 0)
		if err != nil {
			continue
		}
		var total, processed, iteration, downtime uint64
		for _, p := range params {
			v, _ := p.Value.I.(uint64)
			switch p.Field {
			case "memory_total":
				total = v
			case "memory_processed":
				processed = v
			case "memory_iteration":
				iteration = v
			case "downtime":
				downtime = v
			}
		}
		w.mu.Lock()
		w.rounds, w.processed, w.downtime = max(int64(iteration), round), int64(processed), int64(downtime)
		w.mu.Unlock()
		if total > 0 {
			name := phase
			if name == "" {
				name = fmt.Sprintf("round %d", max(iteration, 1))
			}
			op.SetRound(name, int64(processed), int64(total))
		}
	}
}

// followIterations subscribes to libvirt's migration-iteration events of
// the domain named name until stop closes, and sends each new round's
// number on the channel it returns (nil when libvirt refuses: the timed
// samples alone then). The job-completed event, which has the job's
// final statistics, cannot be used: go-libvirt drops every event with
// typed parameters (its event decoder lacks their decoding).
func followIterations(l *golibvirt.Libvirt, name string, stop <-chan struct{}) <-chan int64 {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := l.SubscribeEvents(ctx, golibvirt.DomainEventIDMigrationIteration, golibvirt.OptDomain{})
	if err != nil {
		cancel()
		return nil
	}
	kick := make(chan int64, 1)
	go func() {
		<-stop
		cancel()
	}()
	go func() {
		// Read until the subscription ends: go-libvirt blocks on an
		// unread event.
		for ev := range ch {
			m, ok := ev.(*golibvirt.DomainEventCallbackMigrationIterationMsg)
			if !ok || m.Dom.Name != name {
				continue
			}
			select {
			case kick <- int64(m.Iteration):
			case <-stop:
			}
		}
	}()
	return kick
}

// result is what the job's last sample said: rounds, bytes sent and the
// expected downtime, zero where libvirt reported nothing.
func (w *jobWatch) result() agentapi.MigrationResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return agentapi.MigrationResult{Rounds: w.rounds, BytesSent: w.processed, DowntimeMS: w.downtime}
}
