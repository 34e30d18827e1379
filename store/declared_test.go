package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"xenmanager/store/pgtest"
)

// holdWriter keeps the writer busy in a write of its own until the
// returned func is called, so that the writes queued meanwhile make one
// group.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Write(context.Background(), func(q *Queries) error { close(held); <-hold; return nil })
	}()
	<-held
	return func() {
		close(hold)
		if err := <-done; err != nil {
			t.Errorf("the holding write: %v", err)
		}
	}
}

// queueInOrder runs each of writes in a goroutine of its own, one after
// another once the previous one waits in the queue (the writer being
// held), so that the queue holds them in this order; it returns their
// errors once all have returned.
func queueInOrder(t *testing.T, s *Store, writes []func() error) func() []error {
	t.Helper()
	base := func() int { s.wmu.Lock(); defer s.wmu.Unlock(); return len(s.queue) }()
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w()
		}()
		waitQueued(t, s, base+i+1)
	}
	return func() []error { wg.Wait(); return errs }
}

func testJob(id string) Job {
	return Job{ID: id, Summary: "start Vm " + id, User: "admin", Objects: "obj-" + id, Status: "Running", ManagerID: "m1", CreatedAt: time.Now()}
}

// Declared writes of one group run in the order asked for, with fn writes
// between them: a job's step written after its row finds the row, an fn
// reads what the declared writes before it wrote, and the last step
// written is the one kept. On PostgreSQL the declared writes of the group
// take fewer round trips than there are writes (they are pipelined).
func TestDeclaredWritesKeepTheGroupOrder(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		var seen []string // what the fn writes read of job a's step, in the order they ran
		readStep := func() error {
			return s.Write(ctx, func(q *Queries) error {
				j, err := q.Job(ctx, "a")
				if err != nil {
					return err
				}
				seen = append(seen, j.Step)
				return nil
			})
		}
		step := func(v string) func() error { return func() error { return s.SetJobStep(ctx, "a", v) } }
		release := holdWriter(t, s)
		writes := []func() error{
			func() error { _, err := s.InsertJobAndLock(ctx, testJob("a"), []string{"obj-a"}); return err },
			step("1"), step("2"), readStep, step("3"),
		}
		for i := range 40 {
			writes = append(writes, step(fmt.Sprint(4+i)))
		}
		writes = append(writes, readStep, step("last"))
		wait := queueInOrder(t, s, writes)
		st0, rt0 := s.WriteStatements(), s.WriteRoundTrips()
		release()
		for i, err := range wait() {
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		st1, rt1 := s.WriteStatements(), s.WriteRoundTrips()
		j, err := s.Read().Job(ctx, "a")
		if err != nil || j.Step != "last" {
			t.Fatalf("job a: step %q, %v; want last", j.Step, err)
		}
		if len(seen) != 2 || seen[0] != "2" || seen[1] != "43" {
			t.Errorf("the fn writes read steps %q, want [2 43]", seen)
		}
		if db.engine == PostgreSQL && rt1-rt0 >= int64(len(writes)) {
			t.Errorf("%d writes took %d round trips (%d statements): not pipelined", len(writes), rt1-rt0, st1-st0)
		}
	})
}

// A declared write that fails in a pipelined run fails alone: a job's row
// whose id is taken (a constraint violation) and a step of a job that has
// ended (no row changed) fail, with nothing of them written, and every
// other write of the group commits.
func TestDeclaredWriteFailsAlone(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		if _, err := s.InsertJobAndLock(ctx, testJob("taken"), []string{"obj-taken"}); err != nil {
			t.Fatal(err)
		}
		if err := s.EndJobAndUnlock(ctx, "taken", "Success", "", "", time.Now()); err != nil {
			t.Fatal(err)
		}
		release := holdWriter(t, s)
		const n = 30
		var writes []func() error
		held := make([]*ObjectLock, n)
		for i := range n {
			id := fmt.Sprintf("j%02d", i)
			switch i {
			case 7: // the id is taken: a conflict
				writes = append(writes, func() error {
					j := testJob("taken")
					j.Summary = "again"
					var err error
					held[i], err = s.InsertJobAndLock(ctx, j, []string{"obj-" + id})
					return err
				})
			case 19: // the job has ended: no row changed
				writes = append(writes, func() error { return s.SetJobStep(ctx, "taken", "late") })
			default:
				writes = append(writes, func() error {
					var err error
					held[i], err = s.InsertJobAndLock(ctx, testJob(id), []string{"obj-" + id})
					return err
				})
			}
		}
		wait := queueInOrder(t, s, writes)
		release()
		errs := wait()
		for i := range n {
			id := fmt.Sprintf("j%02d", i)
			_, jerr := s.Read().Job(ctx, id)
			switch i {
			case 7:
				if !errors.Is(errs[i], ErrConflict) {
					t.Errorf("write %d: %v, want a conflict", i, errs[i])
				}
				if _, err := s.Read().ObjectLockHolder(ctx, "other", "obj-"+id); !errors.Is(err, ErrNotFound) {
					t.Errorf("write %d failed, but its lock is there (%v)", i, err)
				}
			case 19:
				if !errors.Is(errs[i], ErrNotFound) {
					t.Errorf("write %d: %v, want ErrNotFound", i, errs[i])
				}
			default:
				if errs[i] != nil || held[i] != nil || jerr != nil {
					t.Errorf("write %d: %v, held %v, job %v; want it written", i, errs[i], held[i], jerr)
				}
				if l, err := s.Read().ObjectLockHolder(ctx, "other", "obj-"+id); err != nil || l.JobID != id {
					t.Errorf("write %d: lock %+v, %v; want it held by %s", i, l, err, id)
				}
			}
		}
		j, err := s.Read().Job(ctx, "taken")
		if err != nil || j.Summary != "start Vm taken" || j.Step != "" {
			t.Errorf("job taken: %+v, %v; want it as it ended", j, err)
		}
	})
}

// A declared write's command audit: a write whose command has no row yet
// writes it (the slow way), and when that write fails the row is not
// written, and the command's next write writes it, once; a declared
// write that fails in a pipelined run leaves the row its command has.
func TestDeclaredWriteAudit(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		if _, err := s.InsertJobAndLock(ctx, testJob("taken"), nil); err != nil {
			t.Fatal(err)
		}
		x := NewCommandAudit("admin", "1.2.3.4", "command x", time.Now())
		y := NewCommandAudit("admin", "1.2.3.4", "command y", time.Now())
		xctx, yctx := WithCommandAudit(ctx, x), WithCommandAudit(ctx, y)
		// y's row is written by a write of its own first.
		if _, err := s.InsertJobAndLock(yctx, testJob("y0"), nil); err != nil {
			t.Fatal(err)
		}
		release := holdWriter(t, s)
		wait := queueInOrder(t, s, []func() error{
			func() error { _, err := s.InsertJobAndLock(xctx, testJob("taken"), nil); return err }, // x's first write fails
			func() error { _, err := s.InsertJobAndLock(yctx, testJob("y1"), nil); return err },
			func() error { _, err := s.InsertJobAndLock(yctx, testJob("taken"), nil); return err }, // fails in the run
			func() error { _, err := s.InsertJobAndLock(yctx, testJob("y2"), nil); return err },
			func() error { _, err := s.InsertJobAndLock(xctx, testJob("x1"), nil); return err }, // writes x's row
			func() error { _, err := s.InsertJobAndLock(xctx, testJob("x2"), nil); return err },
		})
		release()
		errs := wait()
		for i, want := range []error{ErrConflict, nil, ErrConflict, nil, nil, nil} {
			if !errors.Is(errs[i], want) || (want == nil) != (errs[i] == nil) {
				t.Errorf("write %d: %v, want %v", i, errs[i], want)
			}
		}
		rows := auditRows(t, s)
		if len(rows) != 2 || rows[0].Command != "command y" || rows[1].Command != "command x" {
			t.Fatalf("rows %+v, want one of y, then one of x", rows)
		}
		if y.Record().Seq != rows[0].Seq || x.Record().Seq != rows[1].Seq {
			t.Errorf("y seq %d, x seq %d; rows %+v", y.Record().Seq, x.Record().Seq, rows)
		}
	})
}

// SaveAudits writes the rows of many commands at once, each record
// given the seq of its own row (on PostgreSQL from one multi-row insert),
// and sets the result of those whose row a change wrote.
func TestSaveAudits(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		changed := NewCommandAudit("admin", "r", "command changed", time.Now())
		if err := s.Write(WithCommandAudit(ctx, changed), insertPool(ctx, "p")); err != nil {
			t.Fatal(err)
		}
		changed.End("Success")
		var batch []*CommandAudit
		for i := range 50 {
			a := NewCommandAudit("admin", "r", fmt.Sprintf("command %02d", i), time.Now())
			a.End(fmt.Sprintf("result %02d", i))
			batch = append(batch, a)
			if i == 20 {
				batch = append(batch, changed, a) // a twice: one row
			}
		}
		if err := s.Write(ctx, func(q *Queries) error { return q.SaveAudits(ctx, batch) }); err != nil {
			t.Fatal(err)
		}
		rows := auditRows(t, s)
		if len(rows) != 51 {
			t.Fatalf("%d rows, want 51", len(rows))
		}
		bySeq := map[int64]AuditRecord{}
		for _, r := range rows {
			bySeq[r.Seq] = r
		}
		for _, a := range batch {
			rec := a.Record()
			row, ok := bySeq[rec.Seq]
			if !ok || row.Command != rec.Command || row.Result != rec.Result {
				t.Errorf("record %q (%s) has seq %d, row %+v", rec.Command, rec.Result, rec.Seq, row)
			}
		}
		if rows[0].Command != "command changed" || rows[0].Result != "Success" {
			t.Errorf("the changed command's row: %+v", rows[0])
		}
	})
}

// On PostgreSQL a group that opens with declared writes takes two round
// trips: BEGIN, the write lock and savepoint w go with its writes, and
// the commit with the read of the VMs it changed. A lone declared write
// takes the same two.
func TestDeclaredGroupInTwoRoundTrips(t *testing.T) {
	s := testDB{engine: PostgreSQL, target: pgtest.Database(t)}.open(t)
	ctx := context.Background()
	if _, err := s.InsertJobAndLock(ctx, testJob("a"), []string{"obj-a"}); err != nil {
		t.Fatal(err)
	}
	rt0 := s.WriteRoundTrips()
	if err := s.SetJobStep(ctx, "a", "alone"); err != nil {
		t.Fatal(err)
	}
	if n := s.WriteRoundTrips() - rt0; n != 2 {
		t.Errorf("a lone declared write took %d round trips, want 2", n)
	}
	release := holdWriter(t, s) // a write of its own, begun: its commit is left
	var writes []func() error
	for i := range 10 {
		writes = append(writes, func() error { return s.SetJobStep(ctx, "a", fmt.Sprint(i)) })
	}
	wait := queueInOrder(t, s, writes)
	rt0 = s.WriteRoundTrips()
	release()
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if n := s.WriteRoundTrips() - rt0; n != 1+2 {
		t.Errorf("the holding write's commit and a group of 10 declared writes took %d round trips, want 1 + 2", n)
	}
	if j, err := s.Read().Job(ctx, "a"); err != nil || j.Step != "9" {
		t.Errorf("job a: step %q, %v; want 9, the group's last", j.Step, err)
	}
}

// explainPrepared returns the plan the writer's session, q's, holds for its
// prepared statement name of params parameters, as EXPLAIN EXECUTE prints
// it: the generic plan, whatever the arguments, so NULLs will do.
func explainPrepared(ctx context.Context, q *Queries, name string, params int) (string, error) {
	explain := `EXPLAIN EXECUTE ` + name
	if params > 0 {
		explain += `(` + strings.TrimSuffix(strings.Repeat("NULL, ", params), ", ") + `)`
	}
	plan, err := queryAll(ctx, q.db, func(r scanner) (string, error) { var l string; return l, r.Scan(&l) }, explain)
	if err != nil {
		return "", fmt.Errorf("explain %s: %w", name, err)
	}
	return strings.Join(plan, "\n"), nil
}

// The writer's session plans each statement once, by key (openPostgres):
// a job's declared writes, executed again and again, run the one generic
// plan from their first execution, and that plan, made while the tables
// were a page each, reads them through their indexes. Left to the plan
// cache PostgreSQL planned each of the first five executions for its
// values, and might go on doing so for good (140 to 450 us a plan, several
// times what the statement takes); and the plan it kept, made on tables of
// a page, scanned object_locks whole at every intent and end, as a batch
// left it hundreds of pages of dead rows (docs/performance.md, "Session
// 18").
func TestWriterPlansEachStatementOnceByKey(t *testing.T) {
	s := testDB{engine: PostgreSQL, target: pgtest.Database(t)}.open(t)
	ctx := context.Background()
	vms := []string{"vm1", "vm2", "vm3", "vm4", "vm5", "vm6", "vm7", "vm8"}
	writeVMs(t, s, vms...)
	// The tables analyzed as they are, a page each (as autovacuum did
	// after a figure's 1,000 create Vm): left to its costs, the planner
	// then scans a table of a page whole rather than through an index.
	if err := s.Write(ctx, func(q *Queries) error { return q.exec(ctx, `ANALYZE jobs, vms, object_locks`) }); err != nil {
		t.Fatal(err)
	}
	for i, vm := range vms {
		job := testJob("job-" + vm)
		var held *ObjectLock
		var err error
		if i%2 == 0 {
			held, err = s.InsertJobAndLock(ctx, job, []string{vm})
		} else {
			var read *VMAtLock
			held, read, err = s.InsertVMJobAndLock(ctx, job, []string{vm}, vm)
			if err == nil && (read == nil || !read.Found) {
				t.Fatalf("intent of %s read %+v, want its VM", job.ID, read)
			}
		}
		if err != nil || held != nil {
			t.Fatalf("intent of %s: held by %v, %v", job.ID, held, err)
		}
		if i%4 < 2 {
			if running, err := s.SetVMStateAndEndJob(ctx, vm, "", "Stopped", job.ID, "Success", "", "", time.Now()); err != nil || !running {
				t.Fatalf("end of %s: running %v, %v", job.ID, running, err)
			}
		} else if err := s.EndJobAndUnlock(ctx, job.ID, "Success", "", "", time.Now()); err != nil {
			t.Fatalf("end of %s: %v", job.ID, err)
		}
	}
	type statement struct {
		name, text      string
		params          int
		custom, generic int64
	}
	var stmts []statement
	var plans []string
	err := s.Write(ctx, func(q *Queries) error {
		rows, err := q.db.QueryContext(ctx, `
			SELECT name, statement, cardinality(parameter_types), custom_plans, generic_plans FROM pg_prepared_statements
			WHERE statement LIKE '%object_locks%' AND statement NOT LIKE '%pg_prepared_statements%'`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st statement
			if err := rows.Scan(&st.name, &st.text, &st.params, &st.custom, &st.generic); err != nil {
				return err
			}
			stmts = append(stmts, st)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, st := range stmts {
			plan, err := explainPrepared(ctx, q, st.name, st.params)
			if err != nil {
				return err
			}
			plans = append(plans, plan)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 4 {
		t.Fatalf("the writer's session holds %d statements on object_locks, want the 2 intents and 2 ends", len(stmts))
	}
	for i, st := range stmts {
		if st.custom != 0 || st.generic == 0 {
			t.Errorf("%.60q...: executed with a plan for its values %d times, with the generic plan %d times; want only the generic plan",
				strings.Join(strings.Fields(st.text), " "), st.custom, st.generic)
		}
		if strings.Contains(plans[i], "Seq Scan") {
			t.Errorf("%.60q... scans a table whole:\n%s", strings.Join(strings.Fields(st.text), " "), plans[i])
		}
	}
}

// The writer's session compiles no statement (openPostgres). With scans
// priced out (enable_seqscan off), a write that has no index to take,
// such as the leader's prune of the managers' table, has a plan above
// jit_above_cost, and the server compiled it at every execution: 180 ms
// of a connection every write waits for (docs/performance.md, "Session
// 19"). Every statement the session prepared is explained as it would
// run; none may show a JIT section.
func TestWriterCompilesNoStatement(t *testing.T) {
	s := testDB{engine: PostgreSQL, target: pgtest.Database(t)}.open(t)
	ctx := context.Background()
	var available bool
	if err := s.Read().db.QueryRowContext(ctx, `SELECT pg_jit_available()`).Scan(&available); err != nil {
		t.Fatal(err)
	}
	if !available {
		t.Skip("SKIP: this PostgreSQL server has no JIT compiler (Debian's postgresql package has one): nothing to check")
	}
	writeVMs(t, s, "vm1")
	err := s.Write(ctx, func(q *Queries) error {
		_, err := q.PruneMembers(ctx, time.Now().Add(-24*time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var jitted []string
	err = s.Write(ctx, func(q *Queries) error {
		type statement struct {
			name, text string
			params     int
		}
		stmts, err := queryAll(ctx, q.db, func(r scanner) (statement, error) {
			var st statement
			return st, r.Scan(&st.name, &st.text, &st.params)
		}, `SELECT name, statement, cardinality(parameter_types) FROM pg_prepared_statements
			WHERE statement NOT LIKE '%pg_prepared_statements%'`)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(stmts, func(st statement) bool { return strings.Contains(st.text, "DELETE FROM managers") }) {
			return fmt.Errorf("the prune of the managers is not among the writer's %d prepared statements", len(stmts))
		}
		for _, st := range stmts {
			plan, err := explainPrepared(ctx, q, st.name, st.params)
			if err != nil {
				return err
			}
			if strings.Contains(plan, "JIT:") {
				jitted = append(jitted, fmt.Sprintf("%.80q:\n%s", strings.Join(strings.Fields(st.text), " "), plan))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jitted {
		t.Errorf("the writer compiles a statement at each execution: %s", j)
	}
}
