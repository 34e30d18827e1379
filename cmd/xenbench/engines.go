package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// engine is a database a figure's manager runs on: SQLite (the default, a
// file in its data directory) or a PostgreSQL database of the harness's
// server, at one durability setting.
type engine struct {
	key   string // short, for directories and SSH host key aliases: sqlite, pg, pgoff
	label string // in the table, with its durability
	dsn   string // the PostgreSQL database's URL; "" for SQLite
}

// The durability of each engine, as the table and the notes say it.
// SQLite's is the store's (WAL, synchronous=NORMAL: a commit survives the
// manager's crash, not always a power loss); PostgreSQL's default flushes
// the WAL at every commit (synchronous_commit=on); with
// synchronous_commit=off a commit survives the manager's and the server's
// crash but the last ones (within 3 x wal_writer_delay) may be lost to a
// power loss: the same promise as SQLite's, hence the equal-durability
// comparison.
const (
	sqliteLabel = "SQLite (WAL, synchronous=NORMAL)"
	pgLabel     = "PostgreSQL (synchronous_commit=on: fsync at every commit)"
	pgOffLabel  = "PostgreSQL (synchronous_commit=off: equal durability to SQLite's NORMAL)"
)

var sqliteEngine = engine{key: "sqlite", label: sqliteLabel}

// pgEngines creates the PostgreSQL databases a figure compares with
// SQLite, one per durability setting (the setting is a runtime parameter
// in the URL, which every connection of the manager sets), or says why
// there are none.
func (b *bench) pgEngines(ctx context.Context, what string) ([]engine, error) {
	if b.pg == nil {
		return nil, b.pgErr
	}
	on, err := b.pg.createDatabase(ctx, what+"_on", nil)
	if err != nil {
		return nil, err
	}
	off, err := b.pg.createDatabase(ctx, what+"_off", url.Values{"synchronous_commit": {"off"}})
	if err != nil {
		return nil, err
	}
	return []engine{{key: "pg", label: pgLabel, dsn: on}, {key: "pgoff", label: pgOffLabel, dsn: off}}, nil
}

// engineManager is a manager process on one engine and the alias its SSH
// host key has in the harness's known_hosts (the managers of one
// database present the same key).
type engineManager struct {
	engine
	*managerProc
	alias string
}

// startOn starts a manager on e with its data directory data, for the
// figure (or set-up) what, which names its host key alias; keyFrom,
// when not "", is the data directory of a manager already started on the
// same PostgreSQL database, whose secret key and admin password this one
// is given (every manager of a database needs the same key).
func (b *bench) startOn(ctx context.Context, e engine, what, data, keyFrom string, extra ...string) (*engineManager, error) {
	if e.dsn != "" {
		extra = append([]string{"--database", e.dsn}, extra...)
		if keyFrom != "" {
			if err := os.MkdirAll(data, 0o700); err != nil {
				return nil, err
			}
			pw, err := os.ReadFile(filepath.Join(keyFrom, "admin-password"))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(data, "admin-password"), pw, 0o600); err != nil {
				return nil, err
			}
			extra = append(extra, "--secret-key-file", filepath.Join(keyFrom, "secret.key"))
		}
	}
	m, err := startManager(ctx, b.bin, data, extra...)
	if err != nil {
		return nil, fmt.Errorf("manager on %s: %w", e.label, err)
	}
	return &engineManager{engine: e, managerProc: m, alias: "xenbench-" + what + "-" + e.key}, nil
}

func (em *engineManager) stop() {
	if em != nil {
		em.managerProc.stop()
	}
}

// vsSQLite is the row of a PostgreSQL figure beside the SQLite figure of
// the same run: its ratio and the target of issue 15 (within 1.5 x).
// higherIsBetter is for rates (the ratio is then SQLite's over
// PostgreSQL's, so that above 1 is always PostgreSQL's cost).
func vsSQLite(fig, measure string, e engine, v, sqlite float64, format func(float64) string, higherIsBetter bool) row {
	r := row{Fig: fig, Measure: measure + " on " + e.label, Value: format(v),
		Baseline: sqliteLabel + ": " + format(sqlite), Target: "<= 1.5 x SQLite"}
	x := v / sqlite
	if higherIsBetter {
		x = sqlite / v
	}
	r.Ratio = fmt.Sprintf("%.2f x", x)
	r.Met = yesNo(x <= 1.5)
	return r
}
