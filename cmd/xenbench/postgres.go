package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresServer is the PostgreSQL server the PostgreSQL figures use: a
// throwaway cluster the harness started (as .ci/with-postgres does), or
// one it was given (--postgres, XENMANAGER_TEST_POSTGRES). Each figure
// creates databases of its own on it.
type postgresServer struct {
	admin   string   // URL of a role that may create databases
	version string   // the server's version, for the notes
	created []string // the databases createDatabase made that no figure has dropped (drop); stop drops them on a server the harness was given
	// Set only for a cluster the harness started.
	cmd    *exec.Cmd
	exited chan struct{}
	dir    string // the cluster's directory (data, socket, log), removed by stop
}

// startPostgres returns the server named by given (a postgres:// URL) or,
// when given is empty, starts a throwaway cluster: initdb into a temporary
// directory (as the user postgres when the harness runs as root: initdb
// refuses root), the server on a free loopback port with its socket in
// that directory; the server is the harness's own child. stop ends it by
// its PID and removes the directory.
func startPostgres(ctx context.Context, given string) (*postgresServer, error) {
	if given != "" {
		u, err := url.Parse(given)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, errors.New("the PostgreSQL server given is not a postgres:// URL") // not the URL: it may hold a password
		}
		s := &postgresServer{admin: given}
		s.version, err = s.serverVersion(ctx)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "xenbench-pg-")
	if err != nil {
		return nil, err
	}
	s := &postgresServer{dir: dir}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	// asOwner makes a command run as the user postgres when the harness
	// runs as root (initdb refuses root): its credentials, set on the
	// process itself, so that the server is the harness's own child (its
	// PID the postmaster's) with no runuser between them.
	asOwner := func(cmd *exec.Cmd) *exec.Cmd { return cmd }
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("initdb refuses root and there is no user postgres to run it as: %w", err)
		}
		uid, _ := strconv.ParseUint(pg.Uid, 10, 32)
		gid, _ := strconv.ParseUint(pg.Gid, 10, 32)
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			return nil, err
		}
		asOwner = func(cmd *exec.Cmd) *exec.Cmd {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOME="+dir)
			return cmd
		}
	}
	const role = "xenmanager"
	// Collation C: the store refuses a database that sorts otherwise.
	initdb := asOwner(exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-A", "trust", "-U", role, "--locale=C", "-E", "UTF8"))
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, exitErr(fmt.Errorf("initdb: %w", err), out)
	}
	// A port found free may be taken before the server binds it: try again.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := asOwner(exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"),
			"-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1"))
		logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		err = procs.start(cmd)
		logf.Close()
		if err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		s.cmd, s.exited = cmd, make(chan struct{})
		go func() { cmd.Wait(); procs.forget(cmd); close(s.exited) }()
		s.admin = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", role, port)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if s.version, err = s.serverVersion(ctx); err == nil {
				ok = true
				return s, nil
			}
			select {
			case <-s.exited:
			case <-time.After(100 * time.Millisecond):
				continue
			}
			break
		}
		select {
		case <-s.exited:
			if attempt < 5 {
				continue
			}
			return nil, fmt.Errorf("postgres did not start: %s", tail(filepath.Join(dir, "server.log")))
		default:
			return nil, fmt.Errorf("postgres did not answer within 30 s: %s", tail(filepath.Join(dir, "server.log")))
		}
	}
}

// postgresBin is the directory of PostgreSQL's server binaries: $PGBIN,
// pg_config's, or the newest /usr/lib/postgresql/*/bin.
func postgresBin() (string, error) {
	var dirs []string
	if d := os.Getenv("PGBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool { return versionOf(found[i]) > versionOf(found[j]) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) found (Debian: apt-get install postgresql; or set PGBIN, or give a server with --postgres URL)")
}

func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func (s *postgresServer) serverVersion(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.admin)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(cctx, `SHOW server_version`).Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}

// createDatabase creates a new database xenbench_<what>_<random> as the
// store requires it (UTF8, collation C) and returns its URL, with the
// runtime parameters params (e.g. synchronous_commit=off) that every
// connection of a manager opened on that URL sets.
func (s *postgresServer) createDatabase(ctx context.Context, what string, params url.Values) (string, error) {
	var r [4]byte
	rand.Read(r[:])
	name := "xenbench_" + what + "_" + hex.EncodeToString(r[:])
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'`); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	s.created = append(s.created, name)
	u, _ := url.Parse(s.admin)
	u.Path = "/" + name
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// stop ends a cluster the harness started: SIGINT to the server's own
// process (PostgreSQL's fast shutdown), SIGKILL to its group after 15 s,
// then removes its directory. On a server it was given, it drops the
// databases it created (the managers on them have stopped).
func (s *postgresServer) stop() {
	if s == nil {
		return
	}
	if s.dir == "" {
		s.dropCreated()
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			fmt.Println("  PostgreSQL did not stop in 15 s: SIGKILL")
			procs.stop(s.cmd, 0, s.exited)
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// where says which server it is, for the output (never the URL, which
// may hold a password).
func (s *postgresServer) where() string {
	u, err := url.Parse(s.admin)
	if err != nil {
		return "(given)"
	}
	if s.dir != "" {
		return "started by the harness on " + u.Host + " (data in " + s.dir + ")"
	}
	return "given, on " + u.Host
}

// analyze gathers the planner's statistics of the database at dsn. The
// harness writes its inventory straight into the tables and measures at
// once, before autovacuum has analysed them; without statistics the
// planner takes `vms` for a table of unknown shape (a sequential scan of
// 10,000 rows for `WHERE server_id IS NOT NULL`, which SQLite answers from
// its index), where a database filled over time would have them.
func analyze(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// settleWait bounds how long settle waits for autovacuum to finish.
const settleWait = time.Minute

// settle readies the server for a measurement: an immediate CHECKPOINT,
// so that the dirty pages the set-up (or an earlier figure) left are not
// written out by a timed checkpoint during the measurement (the next is
// due checkpoint_timeout, 5 minutes, later; a figure's turns take less),
// then a wait, of at most settleWait, for the autovacuum workers the
// set-up's inserts started. A full run met a timed checkpoint of figure
// 3's 200,000 rows in the middle of figure 4. What it did, or could not
// do (CHECKPOINT needs a superuser or pg_checkpoint on a server given
// with --postgres), is printed; the measurement goes on either way.
func (s *postgresServer) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, settleWait+time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		fmt.Printf("  PostgreSQL not settled: %v\n", err)
		return
	}
	defer conn.Close(context.Background())
	t0 := time.Now()
	if _, err := conn.Exec(ctx, `CHECKPOINT`); err != nil {
		fmt.Printf("  PostgreSQL not checkpointed before the measurement: %v\n", err)
	}
	deadline := time.Now().Add(settleWait)
	for {
		var workers int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`).Scan(&workers); err != nil {
			fmt.Printf("  PostgreSQL autovacuum not watched: %v\n", err)
			return
		}
		if workers == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Printf("  PostgreSQL: %d autovacuum workers still run after %s; measuring anyway\n", workers, settleWait)
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Printf("  PostgreSQL checkpointed, autovacuum idle, in %s\n", time.Since(t0).Round(time.Millisecond))
}

// drop drops the databases at dsns, which a figure is done with (their
// managers stopped), so that the figures after it do not share the server
// with their autovacuum and their dirty pages.
func (s *postgresServer) drop(ctx context.Context, dsns ...string) {
	var names []string
	for _, dsn := range dsns {
		if u, err := url.Parse(dsn); err == nil {
			names = append(names, strings.TrimPrefix(u.Path, "/"))
		}
	}
	s.dropNamed(ctx, names)
}

// dropCreated drops the databases createDatabase made and no figure has
// dropped, saying which it could not.
func (s *postgresServer) dropCreated() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.dropNamed(ctx, slices.Clone(s.created))
}

// dropNamed drops the databases names and forgets them (created), saying
// which it could not drop.
func (s *postgresServer) dropNamed(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		fmt.Printf("  could not drop the databases %s: %v\n", strings.Join(names, ", "), err)
		return
	}
	defer conn.Close(context.Background())
	for _, name := range names {
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			fmt.Printf("  could not drop the database %s: %v\n", name, err)
			continue
		}
		s.created = slices.DeleteFunc(s.created, func(c string) bool { return c == name })
	}
}
