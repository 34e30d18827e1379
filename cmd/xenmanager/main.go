// Command xenmanager is the manager daemon: an SSH command shell over a
// SQLite (or PostgreSQL) store that drives Xen servers through their agents.
//
//	xenmanager serve [--config FILE] [--listen :10000] [--data DIR] [--database URL] [--demo N] [--metrics-listen ADDR] [--log-format text|json] ...
//	xenmanager --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/backend/membership"
	"xenmanager/backend/metrics"
	"xenmanager/cmd/internal/cli"
	"xenmanager/cmd/internal/monitor"
	"xenmanager/commands"
	"xenmanager/shell"
	"xenmanager/shell/prompt"
	"xenmanager/store"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	cli.Exit("xenmanager", runSubcommand(os.Args[1], os.Args[2:]))
}

// runSubcommand runs the subcommand name with its arguments; every one
// answers -h and --help on stdout.
func runSubcommand(name string, args []string) error {
	switch name {
	case "serve":
		return serve(args)
	case "prompt":
		// Hidden: the front-end of an interactive session, started by the
		// manager on the session's pty.
		if err := noFlags("prompt", "the front-end of an interactive session, which the manager starts on the session's pty; not for use by hand", args); err != nil {
			return err
		}
		os.Exit(prompt.Main())
	case "reference":
		// Hidden: writes docs/reference.md (make docs).
		if err := noFlags("reference", "print docs/reference.md, the reference of every command, from the command registry (make docs)", args); err != nil {
			return err
		}
		fmt.Print(commands.Reference(commands.Default))
	case "version", "--version", "-version":
		if err := noFlags("version", "print the version, the commit and the Go toolchain of this binary (also --version)", args); err != nil {
			return err
		}
		cli.PrintVersion(os.Stdout, "xenmanager")
	case "help", "-h", "--help", "-help":
		usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "xenmanager: unknown subcommand %q\n", name)
		usage(os.Stderr)
		return cli.ErrUsage
	}
	return nil
}

// usage lists the subcommands meant for people (not the hidden ones).
func usage(w io.Writer) {
	fmt.Fprint(w, `usage: xenmanager <subcommand> [flags]

subcommands:
  serve      run the manager (xenmanager serve --help for its flags)
  version    print the version, the commit and the Go toolchain (also --version)
  help       print this (also -h, --help)
`)
}

// noFlags parses the arguments of a subcommand that takes none, so that
// it too answers -h and --help (with about) and refuses anything else.
func noFlags(name, about string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "usage: xenmanager %s\n\n%s\n", name, about) }
	if err := cli.ParseFlags(fs, args, os.Stdout, os.Stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments: %v", name, fs.Args())
	}
	return nil
}

// serveOptions are the flags of serve.
type serveOptions struct {
	listen     string
	dataDir    string
	database   string // a PostgreSQL URL; "" for SQLite in dataDir
	demo       int
	logging    cli.Logging
	heartbeat  time.Duration
	cpuProfile string
	// secretKeyFile is the key sealing the database's secrets; "" is
	// <data>/secret.key.
	secretKeyFile string
	// metricsListen is the address of /metrics and /healthz; "" serves
	// neither.
	metricsListen string
	limits        shell.Limits  // connections and sessions the SSH server admits
	loginGrace    time.Duration // how long a connection may take to log in
	// passwordChecks bounds the bcrypt computations that run at once.
	passwordChecks int
	// tableDraws bounds the tables drawn at once (commands.SetTableDraws).
	tableDraws int
	// shownVMs bounds the show Vm lookups kept (backend.Config.ShownVMs);
	// 0 keeps none.
	shownVMs int
	// memberRenew, memberTimeout and leaderLease: how often this manager
	// renews its membership (and, leading, the lease), when a silent one
	// is dead, how long the leader lease lasts.
	memberRenew, memberTimeout, leaderLease time.Duration
}

func serve(args []string) error {
	o, err := parseServeFlags(args, os.Environ())
	if err != nil {
		return err
	}
	log := o.logging.Logger(os.Stderr)
	data, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	target := o.database
	if target == "" {
		target = filepath.Join(data, "manager.db")
	}
	lock, l, err := claimDatabaseAndAddress(target, o.listen)
	if err != nil {
		return err
	}
	if lock != nil {
		defer lock.Release()
	}
	defer l.Close()
	var ml net.Listener // the monitoring address, bound before anything is read or written too
	if o.metricsListen != "" {
		if ml, err = monitor.Listen(o.metricsListen); err != nil {
			return err
		}
		defer ml.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		stopProfile, err := cli.StartCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	return runManager(ctx, o, data, lock, l, ml, log)
}

// parseServeFlags reads serve's flags, from the command line, the
// environment (XENMANAGER_...) and the --config file, and checks their
// values.
func parseServeFlags(args []string, environ []string) (serveOptions, error) {
	var o serveOptions
	fs := serveFlags(&o)
	if err := cli.ParseConfigured(fs, args, cli.Sources{EnvPrefix: "XENMANAGER_", Environ: environ}, os.Stdout, os.Stderr); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"max-startups-per-address", o.limits.StartupsPerAddress}, {"max-sessions", o.limits.Sessions},
		{"max-sessions-per-user", o.limits.SessionsPerUser}, {"max-sessions-per-conn", o.limits.SessionsPerConn},
		{"session-setups", o.limits.SessionSetups}, {"password-checks", o.passwordChecks}, {"table-draws", o.tableDraws}} {
		if f.n < 1 {
			return o, fmt.Errorf("--%s %d: use 1 or more", f.name, f.n)
		}
	}
	if o.shownVMs < 0 {
		return o, fmt.Errorf("--shown-vms %d: use 0 (keep none) or more", o.shownVMs)
	}
	if o.loginGrace <= 0 {
		return o, fmt.Errorf("--login-grace-time %s: use a positive duration, as 20s", o.loginGrace)
	}
	if err := membership.CheckTimes(o.memberRenew, o.memberTimeout, o.leaderLease); err != nil {
		return o, fmt.Errorf("--member-renew, --member-timeout, --leader-lease: %w", err)
	}
	if o.demo < 0 || o.demo > 64 {
		return o, fmt.Errorf("--demo %d: use 0 to 64 agents", o.demo)
	}
	// Never the value: the URL may hold a password.
	if o.database != "" && !store.IsPostgres(o.database) {
		return o, errors.New("--database: give a PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE (leave it out for SQLite in --data)")
	}
	if o.database != "" && o.demo > 0 {
		return o, errors.New("--demo with --database: the demo's agents live inside this manager and would die with it, out of reach of the database's other managers; start xenagent processes and add them instead")
	}
	return o, nil
}

// serveFlags defines serve's flags, which set o.
func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: xenmanager serve [flags]

Runs the manager: the SSH command shell on --listen, the database in
--data (or the PostgreSQL one --database names), whose secrets (agent
passwords, SSH host key) are sealed with the key in --secret-key-file.
One manager at a time runs on a SQLite database; several may share a
PostgreSQL one (docs/postgresql.md), each given the same secret key.

`+cli.ConfigUsage("XENMANAGER_")+`
flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.listen, "listen", ":10000", "address of the SSH command shell (the default listens on every interface)")
	fs.StringVar(&o.dataDir, "data", "xenmanager-data", "directory of the database, the secret key (unless --secret-key-file says otherwise), the first admin password and the backups")
	fs.StringVar(&o.database, "database", "", "the PostgreSQL database, as a `URL` postgres://USER:PASSWORD@HOST:PORT/DATABASE, that several managers may share "+
		"(never printed; the password may also come from ~/.pgpass or PGPASSWORD); empty: SQLite in --data")
	fs.StringVar(&o.secretKeyFile, "secret-key-file", "", "the secret key sealing the agent passwords and the SSH host key in the database, mode 0600; "+
		"every manager of one database must be given the same `FILE` (default <data>/secret.key, created on a database's first start)")
	fs.IntVar(&o.demo, "demo", 0, "start `N` simulated agents on loopback and put them in pool demo-pool")
	o.logging.AddFlags(fs)
	fs.DurationVar(&o.heartbeat, "heartbeat-interval", backend.DefaultHeartbeatInterval, "how often every server is asked for its events")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics and /healthz over plain HTTP on `ADDRESS` (such as 127.0.0.1:9100); empty serves neither")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` until shutdown")
	o.limits = shell.DefaultLimits()
	fs.Var(&o.limits.Startups, "max-startups", "unauthenticated connections, as OpenSSH's MaxStartups `start:rate:full`: from start on, "+
		"a new one is refused with a probability of rate %, rising to 100 % at full (one number N: refuse past N)")
	fs.IntVar(&o.limits.StartupsPerAddress, "max-startups-per-address", o.limits.StartupsPerAddress,
		"unauthenticated connections from one address; connections that logged in are not counted per address")
	fs.IntVar(&o.limits.Sessions, "max-sessions", o.limits.Sessions,
		"sessions in all (a connection that logged in counts as one session until its first opens)")
	fs.IntVar(&o.limits.SessionsPerUser, "max-sessions-per-user", o.limits.SessionsPerUser,
		"sessions of one user, counted as --max-sessions counts them")
	fs.IntVar(&o.limits.SessionsPerConn, "max-sessions-per-conn", o.limits.SessionsPerConn,
		"sessions open at once on one connection (OpenSSH's MaxSessions)")
	fs.IntVar(&o.limits.SessionSetups, "session-setups", o.limits.SessionSetups,
		"login checks (password or key) and interactive session setups (the front-end process started, its first prompt answered) "+
			"at once, all together; more wait "+
			"their turn, so that a storm of logins leaves jobs and commands a processor (default: the processors Go runs on, less one, at least 1)")
	fs.DurationVar(&o.loginGrace, "login-grace-time", shell.DefaultLoginGraceTime,
		"a connection that has not logged in within this time is closed")
	fs.IntVar(&o.passwordChecks, "password-checks", backend.DefaultPasswordChecks(),
		"password hashes (bcrypt) computed at once, for logins and new passwords; more wait their turn, so that a storm of password "+
			"logins leaves jobs and commands a processor (default: the processors Go runs on, less one, at least 1)")
	fs.IntVar(&o.shownVMs, "shown-vms", backend.DefaultShownVMs,
		"show Vm lookups kept while the VMs they found are unchanged (a change seen at once on this manager, and from another "+
			"manager of a PostgreSQL database when its notification arrives), least recently used out first; 0 keeps none")
	fs.IntVar(&o.tableDraws, "table-draws", commands.DefaultTableDraws(),
		"tables drawn at once for output in Table mode; more wait their turn, so that many sessions listing at once leave jobs a "+
			"processor (default: the processors Go runs on, less one, at least 1)")
	fs.DurationVar(&o.memberRenew, "member-renew", membership.DefaultRenew,
		"how often this manager renews its row among the database's managers and, when it leads, the leader lease")
	fs.DurationVar(&o.memberTimeout, "member-timeout", membership.DefaultTimeout,
		"a manager silent for this long is dead: the leader ends its running jobs (at least 3 renewals)")
	fs.DurationVar(&o.leaderLease, "leader-lease", membership.DefaultLease,
		"how long the leader lease lasts from a renewal; a leader that cannot renew it stops leading a renewal before it ends (at least 3 renewals)")
	return fs
}

// claimDatabaseAndAddress takes the database's lock, then binds the SSH
// address, before serve reads or writes anything, starts an agent or
// calls one: a second manager on a database (a second make run) would
// otherwise rediscover the demo servers at its own agents' addresses and
// end the first manager's running jobs as if they were left over, and
// only then fail to bind. The lock comes first so that the refusal names
// the manager that holds the database, not the port it took. The caller
// releases both when it ends. A PostgreSQL database has no lock to take
// (several managers share it): the lock is nil then.
func claimDatabaseAndAddress(target, listen string) (*store.Lock, net.Listener, error) {
	if store.IsPostgres(target) {
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, nil, fmt.Errorf("listen on %s: %w", listen, err)
		}
		return nil, l, nil
	}
	lock, err := store.LockDatabase(target)
	if err != nil {
		var held *store.LockedError
		if errors.As(err, &held) {
			return nil, nil, fmt.Errorf("%w: stop it first, or start this one with another --data", err)
		}
		return nil, nil, err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		lock.Release()
		return nil, nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	return lock, l, nil
}

// runManager runs the manager on the database whose lock it holds (none
// on PostgreSQL: o.database) and the listener it bound, until ctx ends: it
// opens and migrates the store,
// builds the core, serves /metrics and /healthz on ml (when not nil),
// starts the demo fleet, joins the database's managers and, leading
// (alone on SQLite: at once), ends the jobs of managers that stopped,
// reconciles the VMs with the agents and starts the heartbeat; then it
// serves SSH on l.
func runManager(ctx context.Context, o serveOptions, data string, lock *store.Lock, l, ml net.Listener, log *slog.Logger) error {
	var st *store.Store
	var err error
	keyFile := o.secretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(data, "secret.key")
	}
	// A manager given another secret key must not even migrate the schema.
	keyCheck := backend.CheckSecretKeyBeforeMigrating(keyFile)
	if lock != nil {
		st, err = store.OpenLocked(ctx, lock, keyCheck)
	} else {
		st, err = store.Open(ctx, o.database, keyCheck)
	}
	if errors.Is(err, backend.ErrWrongSecretKey) {
		return secretKeyError(err, keyFile)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	sealer, created, err := backend.LoadSecretKey(ctx, st, keyFile)
	if err != nil {
		return secretKeyError(err, keyFile)
	}
	if created {
		log.Info("created the secret key: keep a copy with the backups, and give one to every other manager of this database (--secret-key-file)", "file", keyFile)
	}
	var mx *metrics.Manager // nil: no metrics
	if ml != nil {
		mx = metrics.NewManager()
	}
	commands.SetTableDraws(o.tableDraws)
	mgr, err := backend.New(ctx, backend.Config{Store: st, Sealer: sealer, Logger: log, Metrics: mx, DataDir: data,
		PasswordChecks: o.passwordChecks, ShownVMs: shownVMs(o.shownVMs)})
	if err != nil {
		return secretKeyError(err, keyFile)
	}
	defer mgr.Close()
	hostKey, err := loadHostKey(ctx, mgr, filepath.Join(data, "ssh_host_ed25519_key"), log)
	if err != nil {
		return err
	}
	health := &managerHealth{st: st}
	if ml != nil {
		stopMonitor := serveMonitor(ml, mx.Gatherer(), health.check, log)
		defer stopMonitor()
	}
	if err := announceAdmin(ctx, mgr, data); err != nil {
		return err
	}

	var fleet *demoFleet
	if o.demo > 0 {
		fleet, err = startDemo(ctx, mgr, data, o.demo, log)
		if err != nil {
			return fmt.Errorf("demo fleet: %w", err)
		}
		defer fleet.stop()
	}

	// The managers of the database: this one leads the fleet-wide work
	// (heartbeats, reconciliation, HA, the recovery of dead managers'
	// jobs) while it holds the lease; alone on SQLite, at once. The demo's
	// jobs ran before it joined: they have ended, and on SQLite no other
	// manager could take them for a dead one's.
	member, err := mgr.Join(ctx, memberConfig(o, l, lock != nil))
	if err != nil {
		return err
	}
	memberCtx, stopMember := context.WithCancel(ctx)
	memberDone := make(chan struct{})
	go func() {
		defer close(memberDone)
		member.Run(memberCtx)
	}()
	defer func() { stopMember(); <-memberDone }() // before the store closes
	if err := member.Ready(ctx); err != nil {
		return err
	}

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find my own binary for the interactive front-end: %w", err)
	}
	srv, err := shell.New(shell.Config{HostKey: hostKey,
		Core: mgr, NewSession: sessionsOn(mgr), Registry: commands.Default, Logger: log, PromptCommand: []string{exe, "prompt"},
		Metrics: mx, Limits: o.limits, LoginTimeout: o.loginGrace})
	if err != nil {
		return err
	}
	// Serve first, then say so: what serve prints (the admin password's
	// line is the last before the demo's) and /healthz both mean that the
	// shell answers.
	errc := make(chan error, 1)
	health.ssh.Store(sshServing)
	go func() { errc <- srv.Serve(l) }()
	port := l.Addr().(*net.TCPAddr).Port
	fmt.Printf("xenmanager listening on %s\n", l.Addr())
	fmt.Printf("connect with:  ssh admin@localhost -p %d\n", port)
	fmt.Printf("host key:      %s\n", fingerprintLine(srv.HostKey()))
	fmt.Printf("database:      %s\n", st) // without a password
	fmt.Printf("admin password: in %s\n", filepath.Join(data, "admin-password"))
	if fleet != nil {
		fmt.Printf("demo fleet: %d simulated servers in pool %s, repository %s\n", len(fleet.agents), demoPool, demoRepo)
	}

	select {
	case err := <-errc:
		health.ssh.Store(sshStopping)
		return err
	case <-ctx.Done():
	}
	health.ssh.Store(sshStopping)
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	return nil
}

// memberConfig is how this manager is a member of the database's
// managers: what list Manager shows of it, the renewal times and the
// heartbeat interval of the work it leads. sole: the database's lock is
// this process's, so no other manager runs on it.
func memberConfig(o serveOptions, l net.Listener, sole bool) backend.MemberConfig {
	host, _ := os.Hostname()
	return backend.MemberConfig{Hostname: host, Address: listenAddress(l.Addr(), host), PID: os.Getpid(), Version: commands.Version,
		Renew: o.memberRenew, Timeout: o.memberTimeout, Lease: o.leaderLease, Heartbeat: o.heartbeat, Sole: sole}
}

// listenAddress is the address the SSH server listens on as another
// machine would reach it: an unspecified IP (every interface) becomes the
// host's name.
func listenAddress(a net.Addr, host string) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() || host == "" {
		return a.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// secretKeyError says how to mend a start refused for its secret key: the
// manager was given another key than its database's (or none).
func secretKeyError(err error, keyFile string) error {
	if errors.Is(err, backend.ErrWrongSecretKey) {
		return fmt.Errorf("%w: give every manager of this database the same --secret-key-file, the one the database was set up with (this manager was given %s)", err, keyFile)
	}
	return err
}

// loadHostKey returns the manager's SSH host key, which the database
// keeps; on the first start of an install from before, it imports the
// key file the manager used to keep in its data directory, so that the
// clients' known_hosts still hold, and says that the file is no longer
// used.
func loadHostKey(ctx context.Context, mgr *backend.Manager, oldFile string, log *slog.Logger) (gossh.Signer, error) {
	hostKey, origin, err := mgr.HostKey(ctx, oldFile)
	if err != nil {
		return nil, err
	}
	switch origin {
	case backend.HostKeyImported:
		log.Info("imported the SSH host key into the database: every manager of the database presents it, and the file is no longer used",
			"file", oldFile, "fingerprint", gossh.FingerprintSHA256(hostKey.PublicKey()))
	case backend.HostKeyGenerated:
		log.Info("generated the SSH host key into the database", "fingerprint", gossh.FingerprintSHA256(hostKey.PublicKey()))
	}
	return hostKey, nil
}

// fingerprintLine says which host key the manager presents as ssh says it
// on the first connection ("ED25519 key fingerprint is SHA256:..."), so
// that the operator can check the first ssh against it.
func fingerprintLine(key gossh.PublicKey) string {
	kind := strings.ToUpper(strings.TrimPrefix(key.Type(), "ssh-"))
	if strings.HasPrefix(key.Type(), "ecdsa-") {
		kind = "ECDSA"
	}
	return kind + " key fingerprint is " + gossh.FingerprintSHA256(key)
}

// announceAdmin creates user admin on the first start and shows its password
// once; it is also written (0600) to <data>/admin-password.
func announceAdmin(ctx context.Context, mgr *backend.Manager, data string) error {
	path := filepath.Join(data, "admin-password")
	password, created, err := mgr.EnsureAdmin(ctx, func(password string) error {
		if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if !created {
		return nil
	}
	fmt.Printf("created user admin with password %s (also in %s)\n", password, path)
	return nil
}

// sessionsOn makes the SSH server's command sessions run on mgr: shell
// knows the core only as shell.Core, and the commands it hands lines to
// carry them out on the manager.
func sessionsOn(mgr *backend.Manager) shell.NewSessionFunc {
	return func(ctx context.Context, reg *commands.Registry, actor backend.Actor, out io.Writer, opts commands.Options) *commands.Session {
		return commands.NewSession(ctx, reg, mgr, actor, out, opts)
	}
}

// shownVMs is backend.Config.ShownVMs for --shown-vms n: 0 keeps none.
func shownVMs(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
