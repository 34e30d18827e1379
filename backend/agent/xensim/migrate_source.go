package xensim

// The source side of a migration (migrate_vm); see migrate.go.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// parseDest splits a dest of SetupMigrationTarget.
func parseDest(dest string) (addr, token, pin string, err error) {
	addr, rest, ok1 := strings.Cut(dest, "/")
	token, pin, ok2 := strings.Cut(rest, "/")
	_, _, errAddr := net.SplitHostPort(addr)
	_, errTok := hex.DecodeString(token)
	_, errPin := hex.DecodeString(pin)
	if !ok1 || !ok2 || errAddr != nil || errTok != nil || errPin != nil || len(token) != 32 || len(pin) != 64 {
		return "", "", "", agentapi.Errorf(agentapi.FaultInvalidArgument,
			"dest %q is not what setup_migration_target returns (host:port/token/pin); call it on the destination and pass its answer unchanged", dest)
	}
	return addr, token, pin, nil
}

// CheckDest checks that dest is what SetupMigrationTarget returns.
func (h *Sim) CheckDest(dest string) error {
	_, _, _, err := parseDest(dest)
	return err
}

// countingConn counts the bytes written to the migration connection.
type countingConn struct {
	net.Conn
	n int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n += int64(n)
	return n, err
}

// outgoing is one migration from this host, run by the migrate_vm call's
// goroutine. While d.busy holds it, nothing else touches d.pages.
type outgoing struct {
	h            *Sim
	d            *domain
	key          string
	repoID, vmID string
	uuid, dest   string
	live         bool
	npages       uint64
	pages        []uint64
	dirty        []uint64 // a bit per page dirtied since it was last sent
	// content[i] is pageContent of page i at version contentVer[i]-1 (0:
	// not computed): the contents computed for sending, so that the
	// checksum at the end, taken while the domain is paused, derives only
	// the pages whose version has changed since.
	content    [][sha256.Size]byte
	contentVer []uint64
	prev       string // the domain's state before the migration
	paused     bool   // this migration paused the domain
	pausedAt   time.Time
	running    bool // the guest runs, so it dirties pages
	rng        *mrand.Rand
	carry      float64 // fraction of a page write not yet made
	lastDirty  time.Time
	sent       int64 // page records sent
	op         hypervisor.Operation
	ctx        context.Context
	raw        net.Conn
	bw         *bufio.Writer
	br         *bufio.Reader
}

// MigrateVM migrates the VM's domain to dest, from SetupMigrationTarget on
// the destination (migrate_vm; see the top of this file). The domain must
// run here (running, blocked or paused: InvalidState otherwise); while it
// migrates, other changes to it are Busy, and get_operation_progress
// "migrate:<vm_id>" tells the round and the pages sent in it. On success
// the domain has left this host; on any failure it stays here, in the
// state it was in, and the result is MigrationFailed (NotOwner when the
// destination does not accept this host as a pool member). ssl sends the
// stream over TLS, pinned to the certificate dest names. ctx ending before
// the commit abandons the migration.
func (h *Sim) MigrateVM(ctx context.Context, repoID, vmID, dest string, live, ssl bool) (agentapi.MigrationResult, error) {
	addr, token, pin, err := parseDest(dest)
	if err != nil {
		return agentapi.MigrationResult{}, err
	}
	poolUUID := h.pool.PoolUUID() // before h.mu: the host's lock comes first
	h.mu.Lock()
	key := domainKey(repoID, vmID)
	d, ok := h.domains[key]
	if !ok {
		h.mu.Unlock()
		return agentapi.MigrationResult{}, agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s of repository %s does not run on this server; migrate it from the server it runs on, or start it", vmID, repoID)
	}
	if d.busy != "" {
		h.mu.Unlock()
		return agentapi.MigrationResult{}, errBusy(d)
	}
	if !d.holdsMemory() {
		h.mu.Unlock()
		return agentapi.MigrationResult{}, agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is %s (domid %d) and cannot be migrated; only a running, blocked or paused domain can", vmID, d.state, d.domID)
	}
	npages := uint64(d.memoryMiB * pagesPerMiB)
	if uint64(len(d.pages)) != npages {
		pages := make([]uint64, npages) // first migration, or memory changed live
		copy(pages, d.pages)
		d.pages = pages
	}
	opKey := agentapi.ProgressMigrate + vmID
	d.busy = opKey
	m := &outgoing{
		h: h, d: d, key: key, repoID: repoID, vmID: vmID, uuid: d.uuid, dest: addr, live: live,
		npages: npages, pages: d.pages, prev: d.state, ctx: ctx,
		rng: mrand.New(mrand.NewPCG(uuidHash(d.uuid), uint64(d.domID))),
	}
	hello := migHello{Token: token, RepoID: repoID, VMID: vmID, UUID: d.uuid, MemoryMiB: d.memoryMiB, VCPUs: d.vcpus,
		Live: live, Source: h.hostname, PoolUUID: poolUUID}
	m.op = h.progress.Start(opKey, "connecting to "+addr, int64(npages))
	h.mu.Unlock()

	res, err := m.run(hello, pin, ssl)

	h.mu.Lock()
	d.busy = ""
	if err != nil && m.paused && h.domains[key] == d && d.state == agentapi.StatePaused {
		d.setState(m.prev, h.now())
	}
	h.mu.Unlock()
	m.op.Finish(err)
	return res, err
}

// fail is a MigrationFailed fault for a failure of the source's side.
func (m *outgoing) fail(format string, args ...any) error {
	return agentapi.Errorf(agentapi.FaultMigrationFailed, "VM %s stays on server %s: %s", m.vmID, m.h.hostname, fmt.Sprintf(format, args...))
}

// broken explains a failed read or write of the stream: the migration was
// abandoned, or the destination said why, or the stream broke.
func (m *outgoing) broken(when string, err error) error {
	if m.ctx.Err() != nil {
		return m.fail("the migration was abandoned during %s (%v)", when, context.Cause(m.ctx))
	}
	if m.br != nil { // the destination may have said why it stopped
		_ = m.raw.SetDeadline(time.Now().Add(time.Second))
		var r migReply
		if readLine(m.br, &r) == nil && r.Code != 0 {
			return m.refused(r)
		}
	}
	return m.fail("the migration stream to %s broke during %s (%v); call cleanup_migration_target on the destination, then retry", m.dest, when, err)
}

// refused turns the destination's refusal into a fault: NotOwner stays,
// anything else is MigrationFailed.
func (m *outgoing) refused(r migReply) error {
	if agentapi.FaultCode(r.Code) == agentapi.FaultNotOwner {
		return agentapi.Errorf(agentapi.FaultNotOwner, "VM %s stays on server %s: %s", m.vmID, m.h.hostname, r.Message)
	}
	return m.fail("the destination %s refused: %s", m.dest, r.Message)
}

// exchange flushes what is buffered and reads the destination's reply.
func (m *outgoing) exchange(when string) (migReply, error) {
	var r migReply
	_ = m.raw.SetDeadline(time.Now().Add(migrationIOTimeout))
	if err := m.bw.Flush(); err != nil {
		return r, m.broken(when, err)
	}
	if err := readLine(m.br, &r); err != nil {
		return r, m.broken(when, err)
	}
	if r.Code != 0 {
		return r, m.refused(r)
	}
	return r, nil
}

func (m *outgoing) run(hello migHello, pin string, ssl bool) (agentapi.MigrationResult, error) {
	var res agentapi.MigrationResult
	start := time.Now()
	raw, err := (&net.Dialer{Timeout: migrationDial}).DialContext(m.ctx, "tcp", m.dest)
	if err != nil {
		if m.ctx.Err() != nil {
			return res, m.fail("the migration was abandoned while connecting (%v)", context.Cause(m.ctx))
		}
		return res, m.fail("cannot connect to the destination %s (%v): its target may have expired (valid %v) or been cleaned up; call setup_migration_target on the destination again",
			m.dest, err, MigrationTargetTTL)
	}
	defer raw.Close()
	m.raw = raw
	stopCancel := context.AfterFunc(m.ctx, func() { raw.Close() })
	defer stopCancel()
	cc := &countingConn{Conn: raw}
	var conn net.Conn = cc
	if ssl {
		tc := tls.Client(cc, &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, // trust comes from the pin, checked below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate")
				}
				sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
				if hex.EncodeToString(sum[:]) != pin {
					return errors.New("the destination's certificate is not the one its dest names")
				}
				return nil
			},
		})
		_ = raw.SetDeadline(time.Now().Add(migrationIOTimeout))
		if err := tc.HandshakeContext(m.ctx); err != nil {
			if m.ctx.Err() != nil {
				return res, m.fail("the migration was abandoned during the TLS handshake (%v)", context.Cause(m.ctx))
			}
			return res, m.fail("the TLS handshake with the destination %s failed (%v); call setup_migration_target on the destination again", m.dest, err)
		}
		conn = tc
	}
	m.bw = bufio.NewWriterSize(conn, 64<<10)
	m.br = bufio.NewReaderSize(conn, maxMigrationLine)
	m.bw.WriteString(migrationMagic)
	b, _ := json.Marshal(hello)
	m.bw.Write(append(b, '\n'))
	if _, err := m.exchange("the hello"); err != nil {
		return res, err
	}

	m.content = make([][sha256.Size]byte, m.npages)
	m.contentVer = make([]uint64, m.npages)
	m.dirty = make([]uint64, (m.npages+63)/64)
	for i := range m.dirty {
		m.dirty[i] = ^uint64(0)
	}
	if tail := m.npages % 64; tail != 0 {
		m.dirty[len(m.dirty)-1] = 1<<tail - 1
	}
	m.lastDirty = time.Now()
	converged := true
	var rounds int64
	if !m.live {
		if err := m.pause(); err != nil {
			return res, err
		}
	} else {
		m.h.mu.Lock()
		m.running = m.d.state == agentapi.StateRunning
		m.h.mu.Unlock()
	}
	rounds++
	if err := m.sendRound(rounds); err != nil {
		return res, err
	}
	if m.live {
		for {
			stop, conv := precopyDone(rounds, m.dirtyCount(), m.sent, int64(m.npages))
			if stop {
				converged = conv
				break
			}
			rounds++
			if err := m.sendRound(rounds); err != nil {
				return res, err
			}
		}
		if err := m.pause(); err != nil {
			return res, err
		}
		rounds++
		if err := m.sendRound(rounds); err != nil {
			return res, err
		}
	}

	m.op.SetRound("verifying memory", int64(m.npages), int64(m.npages))
	sum := m.imageSHA256()
	m.h.mu.Lock()
	if m.h.domains[m.key] != m.d || m.d.state != agentapi.StatePaused {
		m.h.mu.Unlock()
		return res, m.endedError()
	}
	now := m.h.now()
	d := m.d
	final := migFinal{
		MemorySHA256: sum, Rounds: rounds, Name: d.name, State: m.prev,
		MemoryMiB: d.memoryMiB, MaxMemMiB: d.maxMemMiB, VCPUs: d.vcpus, MaxVCPUs: d.maxVCPUs, DiskMiB: d.diskMiB,
		CPUTimeS: d.cpuTimeAt(now), RunTimeS: d.runTimeAt(now), UptimeS: now.Sub(d.booted).Seconds(),
		OSType: d.osType, OnCrash: d.onCrash,
	}
	m.h.mu.Unlock()
	m.bw.WriteByte('E')
	b, _ = json.Marshal(final)
	m.bw.Write(append(b, '\n'))
	if _, err := m.exchange("the memory check"); err != nil {
		return res, err
	}

	// Commit: from the moment the commit line is written the domain belongs
	// to the destination.
	m.h.mu.Lock()
	gone := m.h.domains[m.key] != m.d || m.d.state != agentapi.StatePaused
	m.h.mu.Unlock()
	if gone {
		_ = writeLine(m.bw, migCommit{Abort: "the domain ended on the source"})
		return res, m.endedError()
	}
	_ = raw.SetDeadline(time.Now().Add(migrationIOTimeout))
	if err := writeLine(m.bw, migCommit{Commit: true}); err != nil {
		return res, m.broken("the commit", err)
	}
	stopCancel() // committed: no abandoning now
	m.h.mu.Lock()
	if m.h.domains[m.key] == m.d {
		m.h.removeDomainLocked(m.key)
	}
	m.h.mu.Unlock()
	var done migReply
	err = readLine(m.br, &done)
	if err == nil && done.Code != 0 {
		err = errors.New(done.Message)
	}
	if err != nil {
		return res, agentapi.Errorf(agentapi.FaultMigrationFailed,
			"VM %s left server %s for %s, which did not confirm that it runs there (%v); check list_vms on the destination and start the VM if it runs nowhere",
			m.vmID, m.h.hostname, m.dest, err)
	}
	end := time.Now()
	res = agentapi.MigrationResult{
		Rounds:       rounds,
		BytesSent:    cc.n,
		DurationMS:   end.Sub(start).Milliseconds(),
		DowntimeMS:   end.Sub(m.pausedAt).Milliseconds(),
		Converged:    converged,
		MemorySHA256: sum,
	}
	return res, nil
}

// imageSHA256 is memoryImageSHA256 of the domain's memory as it is now,
// from the page versions, which are the truth (a page the guest wrote but
// the dirty tracking missed would show); contents computed for sending
// are reused where the version is unchanged.
func (m *outgoing) imageSHA256() string {
	hs := sha256.New()
	for i, v := range m.pages {
		if m.contentVer[i] != v+1 {
			m.content[i] = pageContent(m.uuid, uint64(i), v)
			m.contentVer[i] = v + 1
		}
		hs.Write(m.content[i][:])
	}
	return hex.EncodeToString(hs.Sum(nil))
}

// endedError is the failure of a domain that crashed or went away while it
// migrated.
func (m *outgoing) endedError() error {
	return agentapi.Errorf(agentapi.FaultMigrationFailed,
		"VM %s crashed or was destroyed on server %s while it migrated; nothing was moved, call cleanup_migration_target on the destination", m.vmID, m.h.hostname)
}

// pause stops the guest for the last round (the downtime starts).
func (m *outgoing) pause() error {
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	m.pausedAt = time.Now()
	m.running = false
	if m.h.domains[m.key] != m.d || !m.d.holdsMemory() {
		return m.endedError()
	}
	if m.d.state != agentapi.StatePaused {
		m.d.setState(agentapi.StatePaused, m.h.now())
		m.paused = true
	}
	return nil
}

func (m *outgoing) dirtyCount() int64 {
	var n int
	for _, w := range m.dirty {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// sendRound sends the pages dirty now, clearing their bits as they go, at
// the link's pace; meanwhile a running guest dirties more.
func (m *outgoing) sendRound(round int64) error {
	snap := slices.Clone(m.dirty)
	var count int64
	for _, w := range snap {
		count += int64(bits.OnesCount64(w))
	}
	phase := fmt.Sprintf("round %d", round)
	if m.running {
		m.applyDirt() // the time spent between rounds
	}
	m.op.SetRound(phase, 0, count)
	pps := m.h.migrationPagesPerS()
	rate := m.h.migrationDirtyRate(m.uuid, m.vmID)
	breakAt := int64(-1)
	if round == 1 && m.h.takeMigrationFault(false, m.uuid, m.vmID) {
		breakAt = count / 2
	}
	var head [13]byte
	head[0] = 'R'
	binary.BigEndian.PutUint32(head[1:5], uint32(round))
	binary.BigEndian.PutUint64(head[5:], uint64(count))
	_ = m.raw.SetDeadline(time.Now().Add(migrationIOTimeout))
	if _, err := m.bw.Write(head[:]); err != nil {
		return m.broken(phase, err)
	}
	start := time.Now()
	var done int64
	var rec [pageRecordSize]byte
	for w, word := range snap {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			idx := uint64(w)*64 + uint64(b)
			m.dirty[w] &^= 1 << b
			v := m.pages[idx]
			binary.BigEndian.PutUint64(rec[:8], idx)
			binary.BigEndian.PutUint64(rec[8:16], v)
			m.content[idx] = pageContent(m.uuid, idx, v)
			m.contentVer[idx] = v + 1
			copy(rec[16:], m.content[idx][:])
			if done == breakAt {
				m.raw.Close()
				return m.fail("server %s cut the migration stream to %s in round 1 (simulated, %s); call cleanup_migration_target on the destination, then retry",
					m.h.hostname, m.dest, SimBreakMigration)
			}
			if _, err := m.bw.Write(rec[:]); err != nil {
				return m.broken(phase, err)
			}
			done++
			m.sent++
			if done%migrationBatch == 0 {
				if err := m.pace(start, done, pps); err != nil {
					return err
				}
				if m.running {
					m.applyDirtAt(rate)
				}
				m.op.SetRound(phase, done, count)
				_ = m.raw.SetDeadline(time.Now().Add(migrationIOTimeout))
			}
		}
	}
	if err := m.pace(start, done, pps); err != nil {
		return err
	}
	if m.running {
		m.applyDirtAt(rate)
	}
	m.op.SetRound(phase, done, count)
	if err := m.bw.Flush(); err != nil {
		return m.broken(phase, err)
	}
	return nil
}

// pace waits until the simulated link could have carried done pages since
// start.
func (m *outgoing) pace(start time.Time, done, pps int64) error {
	due := start.Add(time.Duration(float64(done) / float64(pps) * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-m.ctx.Done():
		return m.fail("the migration was abandoned (%v)", context.Cause(m.ctx))
	}
}

func (m *outgoing) applyDirt() { m.applyDirtAt(m.h.migrationDirtyRate(m.uuid, m.vmID)) }

// applyDirtAt makes the guest's page writes since the last call, at rate
// pages per second: each write bumps a pseudo-random page's version and
// marks it dirty.
func (m *outgoing) applyDirtAt(rate int64) {
	now := time.Now()
	writes := float64(rate)*now.Sub(m.lastDirty).Seconds() + m.carry
	m.lastDirty = now
	n := uint64(writes)
	m.carry = writes - float64(n)
	if n >= 4*m.npages { // every page written, most several times
		for i := range m.pages {
			m.pages[i]++
		}
		for i := range m.dirty {
			m.dirty[i] = ^uint64(0)
		}
		if tail := m.npages % 64; tail != 0 {
			m.dirty[len(m.dirty)-1] = 1<<tail - 1
		}
		return
	}
	for range n {
		i := m.rng.Uint64N(m.npages)
		m.pages[i]++
		m.dirty[i/64] |= 1 << (i % 64)
	}
}
