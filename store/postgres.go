package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The keys of the store's advisory locks on PostgreSQL, the same in every
// manager: "xm" and a word in ASCII, unlikely to meet another
// application's keys in the same database. writeLockKey serialises the
// write transactions of every manager (Write); migrateLockKey lets one
// manager at a time migrate (migrate).
const (
	writeLockKey   int64 = 0x786d_7772_6974_6500 // "xmwrite"
	migrateLockKey int64 = 0x786d_6d69_6772_6100 // "xmmigra"
)

// openPostgres opens the PostgreSQL database of the URL dsn (which
// pgx reads, with the PG* environment variables and ~/.pgpass for what it
// leaves out) through pgx's database/sql driver, so that the queries run
// as they do on SQLite: one writer connection, whose sessions ask for the
// servers' notices (generation.go); a pool of readers whose transactions
// are read-only (default_transaction_read_only); and a connection of its
// own that listens for other managers' changes to the servers
// (pgListener). Several managers may open one database at once: there is
// no file lock, the migrations run under an advisory lock, the writes
// under another (Write).
func openPostgres(ctx context.Context, dsn string, o openOptions) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// Not the parser's message: it may quote the URL, password and all.
		return nil, errors.New("open PostgreSQL: the database URL does not parse; give postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	s := &Store{engine: PostgreSQL, where: describeConfig(cfg), opts: o}
	wcfg := cfg.Copy()
	wcfg.RuntimeParams["application_name"] = "xenmanager"
	wcfg.RuntimeParams["xenmanager.writer"] = "on"
	wcfg.RuntimeParams["xenmanager.vm_list"] = "on" // the VMs changed, read at the commit (migration 0028)
	// Every write of the manager runs on this session, by key, the same
	// statements again and again: each is planned once, and through the
	// tables' indexes. Left to the plan cache, PostgreSQL planned a job's
	// intent or end for its values at each execution (140-450 us of
	// planning for 25-40 us of work: half of this process's CPU), or not,
	// depending on the tables' statistics when it decided; and a plan made
	// when a table was analyzed at a page (object_locks, jobs and vms after
	// autovacuum met them small) scanned it whole at every execution, while
	// a batch of 1,000 starts left object_locks hundreds of pages of dead
	// rows until the next analysis: twice the intent's time, 5 times the
	// pages read (docs/performance.md, "Session 18"). Where a statement
	// has no index to take, the scan is still made. Such a plan costs more
	// than 10^10, far above jit_above_cost: the server would compile it to
	// machine code at every execution (180 ms for the leader's prune of
	// the managers' table, a write every other write waits behind), so
	// the session compiles nothing (session 19).
	wcfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	wcfg.RuntimeParams["enable_seqscan"] = "off"
	wcfg.RuntimeParams["jit"] = "off"
	wcfg.OnNotice = s.noticed
	w := stdlib.OpenDB(*wcfg, stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		s.writerPID.Store(c.PgConn().PID())
		return nil
	}))
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", s.where, err)
	}
	if err := checkCollation(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", s.where, err)
	}
	s.write = w
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", s.where, err)
	}
	rcfg := cfg.Copy()
	rcfg.RuntimeParams["application_name"] = "xenmanager"
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	r := stdlib.OpenDB(*rcfg)
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	s.read = r
	lcfg := cfg.Copy()
	lcfg.RuntimeParams["application_name"] = "xenmanager listener"
	if s.pg, err = listenServers(ctx, lcfg, s); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open %s: %w", s.where, err)
	}
	s.start(0)
	return s, nil
}

// checkCollation refuses a database whose text does not sort by code
// point, as SQLite's does: names are listed in that order, and a name's
// prefix is looked up as a range (NamesWithPrefix), which a locale's
// collation would break. PostgreSQL fixes a database's collation when it
// is created.
func checkCollation(ctx context.Context, db *sql.DB) error {
	var name, collate, encoding string
	err := db.QueryRowContext(ctx, `SELECT datname, datcollate, pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()`).
		Scan(&name, &collate, &encoding)
	if err != nil {
		return fmt.Errorf("read the database's collation: %w", err)
	}
	if (collate != "C" && collate != "POSIX") || encoding != "UTF8" {
		return fmt.Errorf("database %s has encoding %s and collation %s; xenmanager needs UTF8 and C (text in code point order, as SQLite keeps it): "+
			"create it with CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'", name, encoding, collate, pgx.Identifier{name}.Sanitize())
	}
	return nil
}

// serversNotice is the notice the trigger of migration 0001 (PostgreSQL)
// sends the writer's session for each row of servers or server_pools its
// statement changes.
const serversNotice = "xenmanager: servers changed"

// noticed is the writer connections' notice handler: pgx calls it while
// the statement that raised the notice runs, before that statement
// returns, as SQLite calls its pre-update hook. (The VMs' triggers list
// their rows in the transaction instead, read at the commit: pgTx.Commit.)
func (s *Store) noticed(_ *pgconn.PgConn, n *pgconn.Notice) {
	if n.Message == serversNotice {
		s.inventoryChanged()
	}
}
