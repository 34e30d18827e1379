package xensim

// Live migration: setup_migration_target on the destination (this file),
// migrate_vm on the source (migrate_source.go), cleanup_migration_target on
// the destination after a failure.
//
// Simulated memory. A domain of memory_mib MiB has memory_mib*256 pages of
// 4 KiB. To keep the simulation cheap a page is not 4 KiB of bytes but a
// 64-bit version counter (domain.pages); its content is pageContent(uuid,
// index, version), 32 bytes of SHA-256. A write by the guest gives the page a
// new version, hence new content. The memory image is the concatenation of
// the page contents in page order, and memory_sha256 is its SHA-256.
//
// Pre-copy, as in the Xen papers. Round 1 sends every page; while it is
// sent, the guest keeps running and dirties pages at its dirty rate
// (sim_set dirty_pages_per_s for its uuid, else DefaultDirtyPagesPerS),
// chosen by a PRNG seeded from the uuid. Each later round sends the pages
// dirtied since they were last sent. Pre-copy stops when fewer than
// migrationStopPages pages are dirty (converged), or at Xen's limits: 29
// pre-copy rounds (so 30 with the last one) or three times the memory
// sent (not converged). Then the domain is paused and the last round sends
// what is left: the downtime. A non-live migration pauses first and sends
// everything in one round.
//
// The link. Every page record crosses a real TCP connection (TLS when
// ssl), but the sender paces itself as if each page were 4 KiB on a link
// of migration_mib_per_s (DefaultMigrationMiBPerS), so that migrations take
// a realistic time and the dirty rate means what it says.
//
// The stream, source to destination, after an optional TLS handshake (the
// destination tells TLS from plain by the first byte):
//
//	"XENSIM-MIGRATE 1\n"
//	hello: one line of JSON (migHello)              <- reply line (migReply)
//	per round: 'R', round uint32, count uint64, then count records of
//	  index uint64, version uint64, content [32]byte (big-endian)
//	'E', then one line of JSON (migFinal) with the source's memory_sha256
//	                                                <- reply line: verified or not
//	commit line (migCommit)                         <- reply line: the new domid
//
// The destination rebuilds the image from the records, checks that every
// page arrived and that its SHA-256 equals the source's, and says so. Only
// then does the source commit: it sends the commit line and, once written,
// removes its domain; the destination starts the domain (new domid, same
// uuid, CPU time and uptime carried) when the commit arrives. Any failure
// before the commit leaves the domain on the source, which unpauses it if
// it paused it, and makes the destination release its reservation.
//
// Who may send: when the destination's pool member list
// (set_pool_member_ip_list) is not empty, the source's address as the
// destination sees it on the migration connection must be in it (an IP
// address, or a host name that resolves to it); and when both servers are
// in a pool it must be the same pool. Otherwise migrate_vm fails with
// NotOwner. An empty list (a server in no pool) accepts any source that
// holds the single-use token of setup_migration_target.
//
// Progress: get_operation_progress "migrate:<vm_id>" on the source says
// "round N" with the pages of that round sent and its total, then
// "verifying memory"; the destination keeps the same key for its side
// ("receiving round N"). While the migration is in flight the domain on
// the source is Busy for every other change, and so is the VM on the
// destination (start_vm, restore_vm, configure_vm, delete_vm, another
// setup_migration_target).
//
// Fault injection (sim_set, see sim.go): corrupt_migration on the
// destination flips one page of the rebuilt image, break_migration cuts
// the stream half-way through round 1, migration_mib_per_s slows the
// source's link; dirty_pages_per_s sets a guest's dirty rate.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"net"
	"strings"
	"sync"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// Migration parameters.
const (
	// PageSize is the size of a simulated guest page.
	PageSize    = 4096
	pagesPerMiB = 1 << 20 / PageSize
	// MigrationTargetTTL is how long a target of setup_migration_target
	// waits for its source.
	MigrationTargetTTL = 60 * time.Second
	// DefaultDirtyPagesPerS is the dirty rate of a guest no sim_set
	// dirty_pages_per_s names: a mostly idle guest (1 MiB/s).
	DefaultDirtyPagesPerS = 256
	// DefaultMigrationMiBPerS is the speed of the simulated migration link,
	// about a 40 Gb/s network.
	DefaultMigrationMiBPerS = 4096

	migrationMaxRounds = 30 // Xen's max_iters, the last round included
	migrationMaxFactor = 3  // Xen's max_factor: stop once 3x the memory is sent
	migrationStopPages = 50 // fewer dirty pages than this: stop and copy
	migrationBatch     = 1024
	// migrationIOTimeout is how long either end waits for the other before
	// it counts the stream as broken.
	migrationIOTimeout = 30 * time.Second
	migrationDial      = 10 * time.Second
	migrationMagic     = "XENSIM-MIGRATE 1\n"
	pageRecordSize     = 8 + 8 + sha256.Size
	maxMigrationLine   = 64 << 10
)

// pageContent is the simulated content of page index at version of the
// domain with uuid.
func pageContent(uuid string, index, version uint64) [sha256.Size]byte {
	var b [64]byte
	n := copy(b[:], "xensim-page\x00")
	in := append(b[:n], uuid...)
	in = binary.BigEndian.AppendUint64(in, index)
	in = binary.BigEndian.AppendUint64(in, version)
	return sha256.Sum256(in)
}

// memoryImageSHA256 is the hex SHA-256 of a domain's memory image: its
// pages' contents in page order. pages nil is npages pages at version 0.
func memoryImageSHA256(uuid string, pages []uint64, npages int64) string {
	hs := sha256.New()
	for i := range npages {
		var v uint64
		if pages != nil {
			v = pages[i]
		}
		c := pageContent(uuid, uint64(i), v)
		hs.Write(c[:])
	}
	return hex.EncodeToString(hs.Sum(nil))
}

// MemorySHA256 is the checksum of the memory image of the VM's domain here,
// as migrate_vm computes it; tests compare both ends with it.
func (h *Sim) MemorySHA256(repoID, vmID string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.domains[domainKey(repoID, vmID)]
	if !ok {
		return "", hypervisor.ErrNotRunning(repoID, vmID)
	}
	if d.busy != "" {
		return "", errBusy(d)
	}
	return memoryImageSHA256(d.uuid, d.pages, d.memoryMiB*pagesPerMiB), nil
}

// precopyDone decides, after pre-copy round rounds, whether to stop and
// copy now, and whether that is convergence (few dirty pages left) rather
// than a limit (rounds, or sent pages against the memory's npages).
func precopyDone(rounds, dirty, sent, npages int64) (stop, converged bool) {
	switch {
	case dirty < migrationStopPages:
		return true, true
	case rounds >= migrationMaxRounds-1, sent >= migrationMaxFactor*npages:
		return true, false
	}
	return false, false
}

// The control lines of the stream.
type (
	migHello struct {
		Token     string `json:"token"`
		RepoID    string `json:"repo_id"`
		VMID      string `json:"vm_id"`
		UUID      string `json:"uuid"`
		MemoryMiB int64  `json:"memory_mib"`
		VCPUs     int64  `json:"vcpus"`
		Live      bool   `json:"live"`
		Source    string `json:"source"`    // the source's hostname, for messages
		PoolUUID  string `json:"pool_uuid"` // the source's pool, "" when none
	}
	// migReply answers hello, final and commit: Code 0 is success.
	migReply struct {
		Code    int64  `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
		DomID   int64  `json:"domid,omitempty"`
	}
	migFinal struct {
		MemorySHA256 string  `json:"memory_sha256"`
		Rounds       int64   `json:"rounds"`
		Name         string  `json:"name"`
		State        string  `json:"state"` // to resume in on the destination
		MemoryMiB    int64   `json:"memory_mib"`
		MaxMemMiB    int64   `json:"maxmem_mib"`
		VCPUs        int64   `json:"vcpus"`
		MaxVCPUs     int64   `json:"maxvcpus"`
		DiskMiB      int64   `json:"disk_mib"`
		CPUTimeS     float64 `json:"cpu_time_s"`
		RunTimeS     float64 `json:"run_time_s"`
		UptimeS      float64 `json:"uptime_s"`
		// OSType is the OS type the guest booted with; absent from the
		// final message of a source of an earlier version.
		OSType string `json:"os_type,omitempty"`
		// OnCrash is the domain's on_crash action; absent for Xen's
		// default and from a source of an earlier version.
		OnCrash string `json:"on_crash,omitempty"`
	}
	migCommit struct {
		Commit bool   `json:"commit"`
		Abort  string `json:"abort,omitempty"`
	}
)

func writeLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Write(b)
	w.WriteByte('\n')
	return w.Flush()
}

func readLine(r *bufio.Reader, v any) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return errors.New("a control line is too long")
		}
		return err
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("unreadable control line: %v", err)
	}
	return nil
}

// migrationTLS is the host's certificate for ssl migration streams, made
// on first use; its SPKI hash travels in the dest string, so the source
// pins it.
type migrationTLS struct {
	once sync.Once
	cert tls.Certificate
	pin  string
	err  error
}

func (h *Sim) migrationCert() (tls.Certificate, string, error) {
	m := &h.migTLS
	m.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			m.err = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: h.hostname + " migration"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().AddDate(20, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			m.err = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			m.err = err
			return
		}
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		m.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		m.pin = hex.EncodeToString(sum[:])
	})
	if m.err != nil {
		return tls.Certificate{}, "", agentapi.Errorf(agentapi.FaultInternalError, "make the migration certificate: %v", m.err)
	}
	return m.cert, m.pin, nil
}

// migTarget is an incoming migration set up on this host: memory reserved,
// a listener waiting for the source. Its fields are guarded by h.mu.
type migTarget struct {
	repoID, vmID, uuid string
	memoryMiB, vcpus   int64
	token              string
	l                  net.Listener
	timer              *time.Timer // expiry
	claimed            bool        // a connection presented the token: it is used
	conn               net.Conn    // the claiming connection, cut by release
	released           bool
}

// releaseTargetLocked ends a target: its reservation, listener, timer and
// stream. h.mu must be held.
func (h *Sim) releaseTargetLocked(t *migTarget) {
	if t.released {
		return
	}
	t.released = true
	if key := domainKey(t.repoID, t.vmID); h.targets[key] == t {
		delete(h.targets, key)
	}
	t.timer.Stop()
	t.l.Close()
	if t.conn != nil {
		t.conn.Close()
	}
}

// releaseTargetsLocked ends every target (a host going down). h.mu must be
// held.
func (h *Sim) releaseTargetsLocked() {
	for _, t := range h.targets {
		h.releaseTargetLocked(t)
	}
}

// Close ends every incoming migration and releases its reservation; the
// agent calls it when it shuts down.
func (h *Sim) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseTargetsLocked()
}

// CheckNoIncoming refuses a change of a VM's files while the VM is
// migrating to this host.
func (h *Sim) CheckNoIncoming(repoID, vmID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checkNoTargetLocked(repoID, vmID)
}

// checkNoTargetLocked refuses a change of a VM that is migrating to this
// host. h.mu must be held.
func (h *Sim) checkNoTargetLocked(repoID, vmID string) error {
	if _, ok := h.targets[domainKey(repoID, vmID)]; ok {
		return agentapi.Errorf(agentapi.FaultBusy,
			"VM %s is being migrated to this server (setup_migration_target); wait for the migration to end, or call cleanup_migration_target", vmID)
	}
	return nil
}

// SetupMigrationTarget prepares this host to receive the VM (setup_migration_target)
// from spec, its vm.cfg as this host reads it (the repository is shared): it must
// not be a domain here (InvalidState), its memory and vCPUs must fit
// (InsufficientResources). The memory is reserved and a TCP listener opened
// on listenHost (the address the call came in on), port 0. The result, the
// opaque dest of migrate_vm, is "host:port/token/pin": the token is single
// use and valid for MigrationTargetTTL; pin is the SHA-256 of the public key
// an ssl stream's certificate has. A target of the VM that no source has
// connected to yet is replaced; one receiving a stream is Busy.
func (h *Sim) SetupMigrationTarget(spec hypervisor.Spec, listenHost string) (string, error) {
	repoID, vmID := spec.RepoID, spec.VMID
	memory, vcpus := specSize(spec)
	uuid := spec.Params.String(agentapi.KeyUUID)
	if uuid == "" {
		uuid = vmID
	}
	_, pin, err := h.migrationCert()
	if err != nil {
		return "", err
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	token := hex.EncodeToString(raw[:])

	h.mu.Lock()
	defer h.mu.Unlock()
	key := domainKey(repoID, vmID)
	if d, ok := h.domains[key]; ok {
		return "", agentapi.Errorf(agentapi.FaultInvalidState,
			"VM %s is already %s on this server (domid %d); it cannot migrate here", vmID, d.state, d.domID)
	}
	if old, ok := h.targets[key]; ok {
		if old.claimed {
			return "", agentapi.Errorf(agentapi.FaultBusy,
				"VM %s is migrating to this server now; wait for it to end, or call cleanup_migration_target to cut it", vmID)
		}
		h.releaseTargetLocked(old) // an unused target: the caller starts over
	}
	if vcpus > h.cpus {
		return "", agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d vCPUs, server %s has %d CPUs", vmID, vcpus, h.hostname, h.cpus)
	}
	if free := h.freeLocked(); memory > free {
		return "", agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d MiB, %d MiB free on server %s", vmID, memory, free, h.hostname)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(listenHost, "0"))
	if err != nil {
		return "", agentapi.Errorf(agentapi.FaultInternalError, "open a migration listener on %q: %v", listenHost, err)
	}
	t := &migTarget{repoID: repoID, vmID: vmID, uuid: uuid, memoryMiB: memory, vcpus: vcpus, token: token, l: l}
	t.timer = time.AfterFunc(h.migTTL, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !t.claimed {
			h.releaseTargetLocked(t)
		}
	})
	h.targets[key] = t
	go h.acceptMigrations(t)
	host := listenHost
	if host == "" {
		host = h.hostname
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return net.JoinHostPort(host, port) + "/" + token + "/" + pin, nil
}

// CleanupMigrationTarget releases the VM's incoming migration, if any
// (cleanup_migration_target): its reservation, its listener, and a stream
// in flight, which is cut. Releasing nothing succeeds.
func (h *Sim) CleanupMigrationTarget(repoID, vmID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.targets[domainKey(repoID, vmID)]; ok {
		h.releaseTargetLocked(t)
	}
	return nil
}

// acceptMigrations serves connections to t's listener until it closes:
// when a source claims the target, when it is released, or when it
// expires.
func (h *Sim) acceptMigrations(t *migTarget) {
	for {
		conn, err := t.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				h.mu.Lock()
				h.releaseTargetLocked(t)
				h.mu.Unlock()
			}
			return
		}
		go h.receiveMigration(t, conn)
	}
}

// peekedConn reads through the reader that peeked at its first byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// refusal is a failure the destination reports to the source.
type refusal struct {
	code agentapi.FaultCode
	msg  string
}

func (r *refusal) Error() string { return r.msg }

func refuse(code agentapi.FaultCode, format string, args ...any) *refusal {
	return &refusal{code, fmt.Sprintf(format, args...)}
}

// receiveMigration is the destination's side of one connection.
func (h *Sim) receiveMigration(t *migTarget, raw net.Conn) {
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(migrationIOTimeout))
	br := bufio.NewReaderSize(raw, maxMigrationLine)
	var conn net.Conn = raw
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	if first[0] == 0x16 { // a TLS handshake record
		cert, _, err := h.migrationCert()
		if err != nil {
			return
		}
		tc := tls.Server(peekedConn{raw, br}, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		if err := tc.Handshake(); err != nil {
			return
		}
		conn = tc
		br = bufio.NewReaderSize(tc, maxMigrationLine)
	}
	bw := bufio.NewWriterSize(conn, 4096)
	reply := func(err error) {
		var r *refusal
		if !errors.As(err, &r) {
			r = refuse(agentapi.FaultMigrationFailed, "%v", err)
		}
		_ = writeLine(bw, migReply{Code: int64(r.code), Message: r.msg})
	}

	hello, err := h.readHello(t, raw, br)
	if err != nil {
		reply(err)
		return
	}
	// The target is ours from here on: any failure releases it.
	op := h.progress.Start(agentapi.ProgressMigrate+t.vmID, "receiving round 1", hello.MemoryMiB*pagesPerMiB)
	domID, err := h.receiveStream(t, hello, raw, br, bw, op)
	if err != nil {
		reply(err) // before the release cuts the connection
		h.mu.Lock()
		h.releaseTargetLocked(t)
		h.mu.Unlock()
		op.Finish(err)
		return
	}
	op.Finish(nil)
	_ = writeLine(bw, migReply{DomID: domID})
}

// readHello reads and checks the source's hello and claims t for this
// connection. A wrong token does not use the target up.
func (h *Sim) readHello(t *migTarget, raw net.Conn, br *bufio.Reader) (migHello, error) {
	var hello migHello
	magic := make([]byte, len(migrationMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != migrationMagic {
		return hello, refuse(agentapi.FaultMigrationFailed, "this is a migration port of server %s; the stream does not start with %q", h.hostname, strings.TrimSpace(migrationMagic))
	}
	if err := readLine(br, &hello); err != nil {
		return hello, refuse(agentapi.FaultMigrationFailed, "reading the hello: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(hello.Token), []byte(t.token)) != 1 {
		return hello, refuse(agentapi.FaultMigrationFailed,
			"server %s: the migration token is wrong; pass migrate_vm the dest that setup_migration_target returned", h.hostname)
	}
	if hello.RepoID != t.repoID || hello.VMID != t.vmID {
		return hello, refuse(agentapi.FaultMigrationFailed,
			"server %s set this target up for VM %s of repository %s, not VM %s of repository %s; call setup_migration_target for that VM",
			h.hostname, t.vmID, t.repoID, hello.VMID, hello.RepoID)
	}
	if err := h.checkMigrationSource(raw.RemoteAddr(), hello); err != nil {
		h.mu.Lock()
		h.releaseTargetLocked(t)
		h.mu.Unlock()
		return hello, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case t.released:
		return hello, refuse(agentapi.FaultMigrationFailed,
			"server %s: the migration target of VM %s expired (it is valid %v) or was cleaned up; call setup_migration_target again", h.hostname, t.vmID, h.migTTL)
	case t.claimed:
		return hello, refuse(agentapi.FaultMigrationFailed,
			"server %s: the migration target of VM %s is already in use (a dest is good for one migrate_vm); call setup_migration_target again", h.hostname, t.vmID)
	}
	t.claimed, t.conn = true, raw
	t.timer.Stop()
	t.l.Close()
	fail := func(r *refusal) (migHello, error) {
		t.conn = nil // the refusal still has to go out
		h.releaseTargetLocked(t)
		return hello, r
	}
	if hello.UUID != t.uuid {
		return fail(refuse(agentapi.FaultMigrationFailed,
			"server %s reads uuid %s for VM %s from its vm.cfg, the source runs uuid %s: the servers do not see the same repository %s",
			h.hostname, t.uuid, t.vmID, hello.UUID, t.repoID))
	}
	if hello.MemoryMiB <= 0 || hello.VCPUs <= 0 {
		return fail(refuse(agentapi.FaultMigrationFailed, "the source announced %d MiB and %d vCPUs", hello.MemoryMiB, hello.VCPUs))
	}
	if hello.VCPUs > h.cpus {
		return fail(refuse(agentapi.FaultInsufficientResources,
			"VM %s runs with %d vCPUs, server %s has %d CPUs", t.vmID, hello.VCPUs, h.hostname, h.cpus))
	}
	if grow := hello.MemoryMiB - t.memoryMiB; grow > 0 {
		if free := h.freeLocked(); grow > free {
			return fail(refuse(agentapi.FaultInsufficientResources,
				"VM %s runs with %d MiB, server %s reserved %d MiB and has %d MiB more free", t.vmID, hello.MemoryMiB, h.hostname, t.memoryMiB, free))
		}
	}
	t.memoryMiB = hello.MemoryMiB
	return hello, nil
}

// checkMigrationSource applies the pool rules (see the top of this file)
// to a source at remote.
func (h *Sim) checkMigrationSource(remote net.Addr, hello migHello) error {
	members := h.pool.PoolMembers()
	pool := h.pool.PoolUUID()
	if pool != "" && hello.PoolUUID != "" && hello.PoolUUID != pool {
		return refuse(agentapi.FaultNotOwner,
			"server %s is in pool %s, the source %s in pool %s; migrate only between servers of one pool", h.hostname, pool, hello.Source, hello.PoolUUID)
	}
	if len(members) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(remote.String())
	if err != nil {
		host = remote.String()
	}
	ip := net.ParseIP(host)
	for _, m := range members {
		if mip := net.ParseIP(m); mip != nil {
			if mip.Equal(ip) {
				return nil
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, m)
		cancel()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return nil
			}
		}
	}
	return refuse(agentapi.FaultNotOwner,
		"server %s accepts migrations only from its pool members (%s); the source %s connected from %s, which is not one: add it with set_pool_member_ip_list",
		h.hostname, strings.Join(members, ", "), hello.Source, host)
}

// receiveStream receives the rounds, checks the memory image, waits for the
// commit and starts the domain; it returns the new domid.
func (h *Sim) receiveStream(t *migTarget, hello migHello, raw net.Conn, br *bufio.Reader, bw *bufio.Writer, op hypervisor.Operation) (int64, error) {
	if err := writeLine(bw, migReply{}); err != nil {
		return 0, err
	}
	npages := uint64(hello.MemoryMiB * pagesPerMiB)
	contents := make([][sha256.Size]byte, npages)
	versions := make([]uint64, npages)
	seen := make([]uint64, (npages+63)/64)
	var got uint64 // distinct pages received
	breakAt := uint64(0)
	if h.takeMigrationFault(false, hello.UUID, hello.VMID) {
		breakAt = npages / 2
	}
	var rec [pageRecordSize]byte
	var round uint32
	var records uint64
	broken := func(what string, err error) error {
		return refuse(agentapi.FaultMigrationFailed, "the migration stream from %s broke in %s: %v", hello.Source, what, err)
	}
	for {
		_ = raw.SetDeadline(time.Now().Add(migrationIOTimeout))
		kind, err := br.ReadByte()
		if err != nil {
			return 0, broken(fmt.Sprintf("round %d", round+1), err)
		}
		if kind == 'E' {
			break
		}
		if kind != 'R' {
			return 0, refuse(agentapi.FaultMigrationFailed, "protocol error in the migration stream: frame %q after round %d", kind, round)
		}
		var head [12]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return 0, broken(fmt.Sprintf("round %d", round+1), err)
		}
		if r := binary.BigEndian.Uint32(head[:4]); r != round+1 {
			return 0, refuse(agentapi.FaultMigrationFailed, "protocol error in the migration stream: round %d after round %d", r, round)
		}
		round++
		count := binary.BigEndian.Uint64(head[4:])
		phase := fmt.Sprintf("receiving round %d", round)
		op.SetRound(phase, 0, int64(count))
		for i := range count {
			if i%migrationBatch == 0 {
				_ = raw.SetDeadline(time.Now().Add(migrationIOTimeout))
				op.SetRound(phase, int64(i), int64(count))
			}
			if breakAt > 0 && records == breakAt {
				raw.Close()
				return 0, refuse(agentapi.FaultMigrationFailed, "server %s cut the migration stream in round %d (simulated, %s)", h.hostname, round, SimBreakMigration)
			}
			if _, err := io.ReadFull(br, rec[:]); err != nil {
				return 0, broken(fmt.Sprintf("round %d", round), err)
			}
			records++
			idx := binary.BigEndian.Uint64(rec[:8])
			if idx >= npages {
				return 0, refuse(agentapi.FaultMigrationFailed, "protocol error in the migration stream: page %d of a %d-page domain", idx, npages)
			}
			versions[idx] = binary.BigEndian.Uint64(rec[8:16])
			copy(contents[idx][:], rec[16:])
			if w, b := idx/64, uint64(1)<<(idx%64); seen[w]&b == 0 {
				seen[w] |= b
				got++
			}
		}
	}
	var final migFinal
	if err := readLine(br, &final); err != nil {
		return 0, broken("the final message", err)
	}
	op.SetRound("verifying memory", int64(got), int64(npages))
	if got != npages {
		for w, word := range seen {
			if word != ^uint64(0) {
				idx := uint64(w)*64 + uint64(bits.TrailingZeros64(^word))
				return 0, refuse(agentapi.FaultMigrationFailed,
					"after %d rounds the destination lacks %d of %d pages (the first is page %d): the source sent an incomplete image", round, npages-got, npages, idx)
			}
		}
	}
	if h.takeMigrationFault(true, hello.UUID, hello.VMID) {
		contents[npages/2][0] ^= 0x01 // simulated damage (corrupt_migration)
	}
	hs := sha256.New()
	for i := range contents {
		hs.Write(contents[i][:])
	}
	sum := hex.EncodeToString(hs.Sum(nil))
	if sum != final.MemorySHA256 {
		return 0, refuse(agentapi.FaultMigrationFailed,
			"memory checksum mismatch after %d rounds: server %s rebuilt an image with SHA-256 %s, the source's is %s; the VM keeps running on the source, retry the migration (the destination released its reservation)",
			round, h.hostname, sum, final.MemorySHA256)
	}
	if final.MemoryMiB != hello.MemoryMiB {
		return 0, refuse(agentapi.FaultMigrationFailed, "the source announced %d MiB, then sent a %d MiB domain", hello.MemoryMiB, final.MemoryMiB)
	}
	op.SetRound("waiting for the source to commit", int64(npages), int64(npages))
	if err := writeLine(bw, migReply{}); err != nil {
		return 0, broken("the verification answer", err)
	}
	_ = raw.SetDeadline(time.Now().Add(migrationIOTimeout))
	var commit migCommit
	if err := readLine(br, &commit); err != nil {
		return 0, broken("the commit", err)
	}
	if !commit.Commit {
		return 0, refuse(agentapi.FaultMigrationFailed, "the source abandoned the migration: %s", commit.Abort)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	key := domainKey(t.repoID, t.vmID)
	if t.released {
		return 0, refuse(agentapi.FaultMigrationFailed, "server %s released the target (cleanup_migration_target or a reboot) before the commit", h.hostname)
	}
	if d, ok := h.domains[key]; ok {
		return 0, refuse(agentapi.FaultMigrationFailed, "VM %s is %s on server %s already (domid %d)", t.vmID, d.state, h.hostname, d.domID)
	}
	t.conn = nil // the answer still has to go out
	h.releaseTargetLocked(t)
	now := h.now()
	d := &domain{
		repoID: t.repoID, vmID: t.vmID, uuid: hello.UUID, name: final.Name,
		domID: h.nextDomID, state: final.State,
		memoryMiB: final.MemoryMiB, vcpus: final.VCPUs,
		maxMemMiB: max(final.MaxMemMiB, final.MemoryMiB), maxVCPUs: max(final.MaxVCPUs, final.VCPUs),
		cpuTime: final.CPUTimeS, runTime: final.RunTimeS, since: now,
		booted:  now.Add(-time.Duration(final.UptimeS * float64(time.Second))),
		diskMiB: final.DiskMiB,
		osType:  final.OSType,
		onCrash: final.OnCrash,
		pages:   versions,
		gone:    make(chan struct{}),
	}
	if d.state != agentapi.StatePaused && d.state != agentapi.StateBlocked {
		d.state = agentapi.StateRunning
	}
	h.nextDomID++
	h.domains[key] = d
	return d.domID, nil
}
