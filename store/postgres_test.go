package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"xenmanager/store/pgtest"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A database migrated by a newer xenmanager is refused, saying so, and
// left as it is.
func TestNewerSchemaIsRefused(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		v, err := s.SchemaVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := db.raw(t).Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future.sql', 0)`, v+1); err != nil {
			t.Fatal(err)
		}
		_, err = Open(context.Background(), db.target)
		var newer *NewerSchemaError
		if !errors.As(err, &newer) || newer.Database != v+1 || newer.Binary != v || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("Open of a newer schema = %v; want a *NewerSchemaError %d > %d", err, v+1, v)
		}
	})
}

// Managers that start together on a new PostgreSQL database migrate it
// once: one runs the migrations under the migration lock while the others
// wait for it, then find nothing to do.
func TestManagersStartingTogetherMigrateOnce(t *testing.T) {
	db := testDB{engine: PostgreSQL, target: pgtest.Database(t)}
	const managers = 4
	var wg sync.WaitGroup
	errs := make([]error, managers)
	for i := range managers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), db.target)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("manager %d: %v", i, err)
		}
	}
	migs, err := loadMigrations(PostgreSQL)
	if err != nil {
		t.Fatal(err)
	}
	var n, max int
	if err := db.raw(t).QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != len(migs) || max != len(migs) {
		t.Fatalf("schema_migrations has %d rows up to %d; want each of the %d migrations once", n, max, len(migs))
	}
}

// The writes of several managers on one PostgreSQL database run one at a
// time, as SQLite's do: a write that reads a counter and writes it plus
// one, made many times at once from two stores, loses no increment.
func TestWritesOfTwoManagersSerialise(t *testing.T) {
	db := testDB{engine: PostgreSQL, target: pgtest.Database(t)}
	stores := []*Store{db.open(t), db.open(t)}
	ctx := context.Background()
	const writers, each = 8, 25 // per store
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for _, s := range stores {
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					err := s.Write(ctx, func(q *Queries) error {
						n := 0
						v, err := q.GetMeta(ctx, "counter")
						if err == nil {
							n, _ = strconv.Atoi(v)
						} else if !errors.Is(err, ErrNotFound) {
							return err
						}
						return q.SetMeta(ctx, "counter", strconv.Itoa(n+1))
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := stores[0].Read().GetMeta(ctx, "counter")
	if want := strconv.Itoa(2 * writers * each); err != nil || got != want {
		t.Fatalf("counter = %s, %v; want %s (increments were lost)", got, err, want)
	}
}

// A manager's servers' generation changes when another manager changes a
// server pool; when its listening connection is lost, it changes at once,
// the listener connects again, and later changes are seen as before.
func TestInventoryGenerationFollowsOtherManagers(t *testing.T) {
	db := testDB{engine: PostgreSQL, target: pgtest.Database(t)}
	a, b := db.open(t), db.open(t)
	ctx := context.Background()
	pool := func(id string) {
		t.Helper()
		if err := a.Write(ctx, func(q *Queries) error {
			return q.InsertServerPool(ctx, ServerPool{ID: id, Name: id, CreatedAt: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	g0 := b.InventoryGeneration()
	pool("p1")
	waitFor(t, "the other manager's new pool left the generation as it was", func() bool { return b.InventoryGeneration() != g0 })

	pid := b.pg.listenerPID()
	if pid == 0 {
		t.Fatal("no listening session")
	}
	g1 := b.InventoryGeneration()
	if _, err := db.raw(t).Exec(`SELECT pg_terminate_backend($1)`, int64(pid)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the generation stayed as it was when its listening connection was lost", func() bool { return b.InventoryGeneration() != g1 })
	waitFor(t, "the listener did not connect again", func() bool {
		p := b.pg.listenerPID()
		return p != 0 && p != pid && b.pg.listening.Load()
	})
	g2 := b.InventoryGeneration()
	if b.InventoryGeneration() != g2 {
		t.Fatal("the generation changes at every call while the listener listens")
	}
	pool("p2")
	waitFor(t, "a new pool after the listener came back left the generation as it was", func() bool { return b.InventoryGeneration() != g2 })
}

// While no listener listens, nothing read of the servers may be kept: the
// generation is new at every call.
func TestInventoryGenerationWithoutListener(t *testing.T) {
	s := testDB{engine: PostgreSQL, target: pgtest.Database(t)}.open(t)
	s.pg.listening.Store(false)
	defer s.pg.listening.Store(true)
	if g := s.InventoryGeneration(); s.InventoryGeneration() == g {
		t.Fatal("the generation stays while nothing listens")
	}
}

// A write whose fn goes on after one of its statements failed: on SQLite
// the failed statement changed nothing and the rest is committed; on
// PostgreSQL, which aborts the transaction, the write fails with
// ErrWentOnAfterFailure and leaves nothing, alone and in a group, where
// the group's other writes are committed.
func TestWriteThatGoesOnAfterAFailedStatement(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		if err := s.Write(ctx, insertPool(ctx, "taken")); err != nil {
			t.Fatal(err)
		}
		goesOn := func(id string) func(q *Queries) error {
			return func(q *Queries) error {
				if err := insertPool(ctx, "taken")(q); !errors.Is(err, ErrConflict) {
					return fmt.Errorf("insert of a taken id = %v, want ErrConflict", err)
				}
				q.InsertServerPool(ctx, ServerPool{ID: id, Name: id, CreatedAt: time.Now()}) // its error ignored too
				return nil
			}
		}
		check := func(err error, id string) {
			t.Helper()
			if db.engine == SQLite {
				if err != nil || !hasPool(t, s, id) {
					t.Fatalf("SQLite: write = %v, pool %s there %v; want it written", err, id, hasPool(t, s, id))
				}
				return
			}
			if !errors.Is(err, ErrWentOnAfterFailure) || hasPool(t, s, id) {
				t.Fatalf("PostgreSQL: write = %v, pool %s there %v; want ErrWentOnAfterFailure and nothing written", err, id, hasPool(t, s, id))
			}
		}
		check(s.Write(ctx, goesOn("alone")), "alone")

		hold, held := make(chan struct{}), make(chan struct{})
		go s.Write(ctx, func(q *Queries) error { close(held); <-hold; return nil })
		<-held
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i, fn := range []func(q *Queries) error{insertPool(ctx, "before"), goesOn("grouped"), insertPool(ctx, "after")} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.Write(ctx, fn) }()
			waitQueued(t, s, i+1)
		}
		close(hold)
		wg.Wait()
		check(errs[1], "grouped")
		for _, i := range []int{0, 2} {
			if id := []string{"before", "", "after"}[i]; errs[i] != nil || !hasPool(t, s, id) {
				t.Fatalf("the group's write of %s = %v, there %v; want it committed", id, errs[i], hasPool(t, s, id))
			}
		}
	})
}

// Go bools go into the schema's 0/1 columns on both engines (pgx alone
// refuses a bool for a bigint) and come back as bools.
func TestBoolArguments(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		writeVMs(t, s) // the pool and repository alone
		for _, sparse := range []bool{true, false} {
			d := VirtualDisk{ID: fmt.Sprintf("d-%v", sparse), Name: "disk", RepoID: "r1", SizeMiB: 1, Sparse: sparse, Shareable: !sparse, CreatedAt: now}
			if err := s.Write(ctx, func(q *Queries) error { return q.InsertVirtualDisk(ctx, d) }); err != nil {
				t.Fatalf("insert a disk with sparse=%v: %v", sparse, err)
			}
			got, err := s.Read().VirtualDisk(ctx, d.ID)
			if err != nil || got.Sparse != sparse || got.Shareable != !sparse {
				t.Fatalf("disk read back = %+v, %v; want sparse %v, shareable %v", got, err, sparse, !sparse)
			}
		}
	})
}

func TestPortableArgs(t *testing.T) {
	for _, tc := range []struct {
		in, want []any
	}{
		{nil, nil},
		{[]any{"a", 1}, []any{"a", 1}},
		{[]any{true}, []any{int64(1)}},
		{[]any{"x", false, int64(7), true}, []any{"x", int64(0), int64(7), int64(1)}},
	} {
		got := portableArgs(tc.in)
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
			t.Errorf("portableArgs(%#v) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	in := []any{true}
	portableArgs(in)
	if in[0] != true {
		t.Error("portableArgs changed its caller's slice")
	}
}

// The engines' errors map to the store's: a broken constraint (SQLite's
// text, PostgreSQL's SQLSTATE class 23, the mapping trigger's error) is
// ErrConflict, a full disk ErrDiskFull, anything else stays as it is.
func TestErrorsOfBothEngines(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	for _, tc := range []struct {
		name               string
		err                error
		conflict, diskFull bool
	}{
		{"sqlite constraint", errors.New("constraint failed: UNIQUE constraint failed: users.name (2067)"), true, false},
		{"unique violation", pg("23505"), true, false},
		{"foreign key violation", pg("23503"), true, false},
		{"check violation", pg("23514"), true, false},
		{"not null violation", pg("23502"), true, false},
		{"disk full", pg("53100"), false, true},
		{"syntax error", pg("42601"), false, false},
		{"plain error", errors.New("boom"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(translate(tc.err), ErrConflict); got != tc.conflict {
				t.Errorf("translate: conflict %v, want %v", got, tc.conflict)
			}
			if got := errors.Is(diskFull(tc.err), ErrDiskFull); got != tc.diskFull {
				t.Errorf("diskFull: %v, want %v", got, tc.diskFull)
			}
			if !errors.Is(translate(tc.err), tc.err) || !errors.Is(diskFull(tc.err), tc.err) {
				t.Error("the driver's error is not kept")
			}
		})
	}
}

// A PostgreSQL URL is never shown with its password: not by Describe, not
// in the error of a URL that does not parse, nor of a server that does
// not answer.
func TestPostgresPasswordIsNeverShown(t *testing.T) {
	const pw = "s3cret-pw"
	target := "postgres://xm:" + pw + "@127.0.0.1:1/fleet?sslmode=disable&connect_timeout=5"
	if d := Describe(target); strings.Contains(d, pw) || !strings.Contains(d, "fleet") || !strings.Contains(d, "127.0.0.1:1") {
		t.Errorf("Describe = %q; want host, port and database without the password", d)
	}
	for _, bad := range []string{target, "postgres://xm:" + pw + "@127.0.0.1:notaport/fleet", "postgresql://xm:" + pw + "@[::1/fleet"} {
		_, err := Open(context.Background(), bad)
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("Open(%s) = %v; want an error without the password", Describe(bad), err)
		}
	}
}

// A database whose text does not sort in code point order (a locale's
// collation) is refused, saying how to create one that does.
func TestPostgresCollationIsChecked(t *testing.T) {
	target := pgtest.Database(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "xm_collation_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.utf8'`); err != nil {
		t.Skipf("the server has no locale C.utf8 to test with: %v", err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`) })
	u, _ := url.Parse(target)
	u.Path = "/" + name
	_, err = Open(ctx, u.String())
	if err == nil || !strings.Contains(err.Error(), "LOCALE 'C'") {
		t.Fatalf("Open of a database with collation C.utf8 = %v; want a refusal saying how to create one", err)
	}
}
