package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"xenmanager/store/fulldisk"
)

// auditRows reads every audit row, oldest first.
func auditRows(t *testing.T, s *Store) []AuditRecord {
	t.Helper()
	recs, err := s.Read().AuditRecords(context.Background(), 1000)
	if err != nil {
		t.Fatalf("read audit records: %v", err)
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

// insertPool is a write that adds pool id.
func insertPool(ctx context.Context, id string) func(q *Queries) error {
	return func(q *Queries) error {
		return q.InsertServerPool(ctx, ServerPool{ID: id, Name: id, CreatedAt: time.Now()})
	}
}

// hasPool says whether pool id is in the store.
func hasPool(t *testing.T, s *Store, id string) bool {
	t.Helper()
	_, err := s.Read().ServerPool(context.Background(), id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatalf("read pool %s: %v", id, err)
	}
	return err == nil
}

// A command's audit row is written by its first change, in the change's
// transaction, and only once; SaveAudit then gives it the command's
// result; a command that changes nothing gets its row from SaveAudit.
func TestCommandAuditRow(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		writes []error // each write of the command adds a pool and then fails with this, or not
		result string  // End's, then SaveAudit
		want   []string
	}{
		{name: "a change", writes: []error{nil}, result: "Success", want: []string{"Success"}},
		{name: "three changes, one row", writes: []error{nil, nil, nil}, result: "Success", want: []string{"Success"}},
		{name: "a change, then a failure", writes: []error{nil, boom}, result: "XM_0500E", want: []string{"XM_0500E"}},
		{name: "a failed write writes no row; the next one does", writes: []error{boom, nil}, result: "Success", want: []string{"Success"}},
		{name: "no change", writes: []error{boom}, result: "XM_0400E", want: []string{"XM_0400E"}},
		{name: "a read", result: "Success", want: []string{"Success"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothEngines(t, func(t *testing.T, db testDB) {
				s := db.open(t)
				a := NewCommandAudit("admin", "127.0.0.1:1", "create ServerPool name=p", time.Now())
				ctx := WithCommandAudit(context.Background(), a)
				for i, fail := range tc.writes {
					id := fmt.Sprintf("p%d", i)
					err := s.Write(ctx, func(q *Queries) error {
						if err := insertPool(ctx, id)(q); err != nil {
							return err
						}
						return fail
					})
					if !errors.Is(err, fail) {
						t.Fatalf("write %d: %v, want %v", i, err, fail)
					}
					if hasPool(t, s, id) != (fail == nil) {
						t.Fatalf("write %d (%v): pool there = %v", i, fail, !(fail == nil))
					}
					if fail == nil {
						// The row is there with the change, the command not
						// yet ended.
						if rows := auditRows(t, s); len(rows) != 1 || rows[0].Result != AuditRunning {
							t.Fatalf("after write %d: rows %+v, want one Running", i, rows)
						}
					}
				}
				a.End(tc.result)
				if rows := auditRows(t, s); len(rows) > 0 && rows[0].Result != AuditRunning {
					t.Fatalf("rows %+v before SaveAudit, want the row Running", rows)
				}
				if err := s.Write(context.Background(), func(q *Queries) error { return q.SaveAudit(ctx, a) }); err != nil {
					t.Fatalf("SaveAudit: %v", err)
				}
				rows := auditRows(t, s)
				var got []string
				for _, r := range rows {
					got = append(got, r.Result)
					if r.User != "admin" || r.Remote != "127.0.0.1:1" || r.Command != "create ServerPool name=p" {
						t.Errorf("row %+v", r)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("results %v, want %v", got, tc.want)
				}
				if rec := a.Record(); rec.Seq != rows[0].Seq || rec.Result != tc.result {
					t.Errorf("Record() = %+v, want seq %d and %s", rec, rows[0].Seq, tc.result)
				}
				// Saving again adds nothing.
				if err := s.Write(context.Background(), func(q *Queries) error { return q.SaveAudit(ctx, a) }); err != nil {
					t.Fatal(err)
				}
				if len(auditRows(t, s)) != len(tc.want) {
					t.Errorf("a second SaveAudit added a row")
				}
			})
		})
	}
}

// A change a command makes after its end was recorded (a handler still
// running when the session stopped waiting) finds the row, or writes it
// with the result End gave: still one row per command.
func TestCommandAuditChangeAfterEnd(t *testing.T) {
	for _, saveFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("saved first %v", saveFirst), func(t *testing.T) {
			bothEngines(t, func(t *testing.T, db testDB) {
				s := db.open(t)
				a := NewCommandAudit("admin", "r", "start Vm name=v", time.Now())
				ctx := WithCommandAudit(context.Background(), a)
				a.End("XM_0408E")
				save := func() {
					t.Helper()
					if err := s.Write(context.Background(), func(q *Queries) error { return q.SaveAudit(ctx, a) }); err != nil {
						t.Fatal(err)
					}
				}
				if saveFirst {
					save()
				}
				if err := s.Write(ctx, insertPool(ctx, "late")); err != nil {
					t.Fatal(err)
				}
				save()
				if rows := auditRows(t, s); len(rows) != 1 || rows[0].Result != "XM_0408E" || a.Record().Seq != rows[0].Seq || a.Record().Result != "XM_0408E" {
					t.Fatalf("rows %+v, want one XM_0408E", rows)
				}
			})
		})
	}
}

// The writes of commands that share a transaction (a group) write one row
// per command: the first write of a command that commits writes it, one
// that rolls back alone takes its row with it and the next write of the
// command writes it again.
func TestCommandAuditInGroup(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		x := NewCommandAudit("admin", "r", "command x", time.Now())
		y := NewCommandAudit("admin", "r", "command y", time.Now())
		ctxX, ctxY := WithCommandAudit(context.Background(), x), WithCommandAudit(context.Background(), y)
		boom := errors.New("boom")
		writes := []struct {
			ctx  context.Context
			pool string
			fail error
		}{
			{ctxX, "x1", boom}, // writes x's row, then rolls back alone
			{ctxX, "x2", nil},  // writes x's row again
			{ctxY, "y1", nil},
			{ctxX, "x3", nil}, // finds x's row in the transaction
			{ctxY, "y2", boom},
			{context.Background(), "none", nil},
		}
		// Hold the writer in a write of its own while the others queue, one
		// after the other, so that they make one group in this order.
		hold, held := make(chan struct{}), make(chan struct{})
		go s.Write(context.Background(), func(q *Queries) error { close(held); <-hold; return nil })
		<-held
		errs := make([]error, len(writes))
		var wg sync.WaitGroup
		for i, w := range writes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Write(w.ctx, func(q *Queries) error {
					if err := insertPool(w.ctx, w.pool)(q); err != nil {
						return err
					}
					return w.fail
				})
			}()
			waitQueued(t, s, i+1)
		}
		_, tx0 := s.WriteStats()
		close(hold)
		wg.Wait()
		if _, tx1 := s.WriteStats(); tx1-tx0 != 2 { // the holder's and the group's
			t.Fatalf("%d transactions, want the group in one", tx1-tx0-1)
		}
		for i, w := range writes {
			if !errors.Is(errs[i], w.fail) || hasPool(t, s, w.pool) != (w.fail == nil) {
				t.Errorf("write %d (%s): %v, pool there %v", i, w.pool, errs[i], hasPool(t, s, w.pool))
			}
		}
		rows := auditRows(t, s)
		if len(rows) != 2 || rows[0].Command != "command x" || rows[1].Command != "command y" {
			t.Fatalf("rows %+v, want one of x, then one of y", rows)
		}
		if x.Record().Seq != rows[0].Seq || y.Record().Seq != rows[1].Seq {
			t.Errorf("x seq %d, y seq %d; rows %+v", x.Record().Seq, y.Record().Seq, rows)
		}
	})
}

// waitQueued waits until n writes wait in the store's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.wmu.Lock()
		q := len(s.queue)
		s.wmu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued after 10 s, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A change whose audit row cannot be written is not made: the write fails
// (ErrAudit) and its change is rolled back. Here the table is broken
// behind the store's back.
func TestChangeFailsWithoutItsAuditRow(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		raw := db.raw(t)
		if _, err := raw.Exec(`ALTER TABLE audit_records RENAME TO audit_records_gone`); err != nil {
			t.Fatal(err)
		}
		a := NewCommandAudit("admin", "r", "create ServerPool name=p", time.Now())
		ctx := WithCommandAudit(context.Background(), a)
		err := s.Write(ctx, insertPool(ctx, "p"))
		if !errors.Is(err, ErrAudit) {
			t.Fatalf("write: %v, want ErrAudit", err)
		}
		if hasPool(t, s, "p") {
			t.Fatal("the change was made without its audit row")
		}
		// A write of no command is not held up.
		if err := s.Write(context.Background(), insertPool(context.Background(), "q")); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`ALTER TABLE audit_records_gone RENAME TO audit_records`); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, insertPool(ctx, "p")); err != nil {
			t.Fatalf("write once the table is back: %v", err)
		}
		if rows := auditRows(t, s); len(rows) != 1 || !hasPool(t, s, "p") {
			t.Fatalf("rows %+v, pool there %v", rows, hasPool(t, s, "p"))
		}
	})
}

// On a full disk a change fails with ErrDiskFull and leaves nothing, its
// audit row neither; once there is room again the same change is made
// with its row.
func TestChangeOnFullDisk(t *testing.T) {
	disk := fulldisk.Mount(t, 4)
	s, err := Open(context.Background(), filepath.Join(disk.Dir, "manager.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := NewCommandAudit("admin", "r", "create ServerPool name=p", time.Now())
	ctx := WithCommandAudit(context.Background(), a)
	disk.Fill()
	err = s.Write(ctx, insertPool(ctx, "p"))
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write on a full disk: %v, want ErrDiskFull", err)
	}
	t.Logf("on a full disk: %v", err)
	if hasPool(t, s, "p") || len(auditRows(t, s)) != 0 || a.Record().Seq != 0 {
		t.Fatalf("a failed write left pool %v, rows %+v", hasPool(t, s, "p"), auditRows(t, s))
	}
	disk.Free()
	if err := s.Write(ctx, insertPool(ctx, "p")); err != nil {
		t.Fatalf("write once there is room: %v", err)
	}
	if rows := auditRows(t, s); len(rows) != 1 || !hasPool(t, s, "p") || a.Record().Seq != rows[0].Seq {
		t.Fatalf("rows %+v, pool there %v", rows, hasPool(t, s, "p"))
	}
}
