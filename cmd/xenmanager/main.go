// Command xenmanager is the manager daemon: an SSH command shell over a
// SQLite store that drives Xen servers through their agents.
//
//	xenmanager serve [--listen :10000] [--data DIR] [--demo N]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"xenmanager/backend"
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
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "xenmanager:", err)
			os.Exit(1)
		}
	case "prompt":
		// Hidden: the front-end of an interactive session, started by the
		// manager on the session's pty.
		os.Exit(prompt.Main())
	case "reference":
		// Hidden: writes docs/reference.md (make docs).
		fmt.Print(commands.Reference(commands.Default))
	case "help", "-h", "--help":
		usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "xenmanager: unknown subcommand %q\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: xenmanager <subcommand> [flags]

subcommands:
  serve    run the manager (xenmanager serve --help for its flags)
`)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", ":10000", "address of the SSH command shell")
	dataDir := fs.String("data", "xenmanager-data", "directory of the database, host key and secrets")
	demo := fs.Int("demo", 0, "start `N` simulated agents on loopback and put them in pool demo-pool")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	heartbeat := fs.Duration("heartbeat-interval", backend.DefaultHeartbeatInterval, "how often every server is asked for its events")
	cpuProfile := fs.String("cpuprofile", os.Getenv("XENMANAGER_CPUPROFILE"), "write a CPU profile to `FILE` until shutdown (or set XENMANAGER_CPUPROFILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *demo < 0 || *demo > 64 {
		return fmt.Errorf("--demo %d: use 0 to 64 agents", *demo)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	data, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	st, err := store.Open(ctx, filepath.Join(data, "manager.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	sealer, err := backend.LoadOrCreateSealer(filepath.Join(data, "secret.key"))
	if err != nil {
		return err
	}
	mgr, err := backend.New(ctx, backend.Config{Store: st, Sealer: sealer, Logger: log})
	if err != nil {
		return err
	}
	defer mgr.Close()
	if err := announceAdmin(ctx, mgr, data); err != nil {
		return err
	}

	var fleet *demoFleet
	if *demo > 0 {
		fleet, err = startDemo(ctx, mgr, data, *demo, log)
		if err != nil {
			return fmt.Errorf("demo fleet: %w", err)
		}
		defer fleet.stop()
	}

	// Jobs a previous run left Running died with it.
	if n, err := mgr.RecoverJobs(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("jobs left running by the previous run were marked failed", "jobs", n)
	}
	// VMs recorded running may have stopped while the manager was down.
	if n, err := mgr.Reconcile(ctx); err != nil {
		log.Warn("reconcile at start-up failed", "err", err)
	} else if n > 0 {
		log.Info("reconciled VM states with the agents", "changed", n)
	}

	go mgr.Watch(ctx, *heartbeat)

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find my own binary for the interactive front-end: %w", err)
	}
	srv, err := shell.New(shell.Config{HostKeyPath: filepath.Join(data, "ssh_host_ed25519_key"),
		Core: mgr, NewSession: sessionsOn(mgr), Registry: commands.Default, Logger: log, PromptCommand: []string{exe, "prompt"}})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	fmt.Printf("xenmanager listening on %s\n", l.Addr())
	fmt.Printf("connect with:  ssh admin@localhost -p %d\n", port)
	fmt.Printf("admin password: in %s\n", filepath.Join(data, "admin-password"))
	if fleet != nil {
		fmt.Printf("demo fleet: %d simulated servers in pool %s, repository %s\n", len(fleet.agents), demoPool, demoRepo)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	return nil
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
