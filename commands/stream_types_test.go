package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// This file checks that the listings of other types than Vm stream as
// list Vm does, through the real backend and store: the generic
// mechanism (streamed, streamedRows, writeStream) is one, so one type of
// each kind of listing stands for the others.

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// engines runs body on a manager core over SQLite and, when a server is
// configured, PostgreSQL.
func engines(t *testing.T, body func(t *testing.T, c *managertest.Core)) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			body(t, managertest.Open(t, managertest.Options{Postgres: pg}))
		})
	}
}

// insertPoolAndRepo records the pool "pool" and its repository "repo",
// with fixed ids.
func insertPoolAndRepo(ctx context.Context, q *store.Queries, at time.Time) (pool, repo string, err error) {
	pool, repo = fixedID(backend.TypeServerPool, 1), fixedID(backend.TypeRepository, 1)
	if err := q.InsertServerPool(ctx, store.ServerPool{ID: pool, Name: "pool", CreatedAt: at}); err != nil {
		return "", "", err
	}
	if err := q.InsertRepository(ctx, store.Repository{ID: repo, Name: "repo", PoolID: pool, FSLocation: "/srv/repo",
		MountPoint: "/OVS/Repositories/" + repo, CreatedAt: at}); err != nil {
		return "", "", err
	}
	return pool, repo, nil
}

// seedDisks records n disks in one pool and repository.
func seedDisks(t testing.TB, st *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	err := st.Write(ctx, func(q *store.Queries) error {
		_, repo, err := insertPoolAndRepo(ctx, q, at)
		if err != nil {
			return err
		}
		for i := range n {
			if err := q.InsertVirtualDisk(ctx, store.VirtualDisk{ID: fixedID(backend.TypeVirtualDisk, i+1), Name: fmt.Sprintf("disk-%05d", i),
				RepoID: repo, SizeMiB: 1024, CreatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hookedList is a registry whose one verb is list on typ, the real one,
// but for hook, which sees each row (its index) before the session
// prints it.
func hookedList(t *testing.T, typ string, hook func(ctx context.Context, i int)) *Registry {
	t.Helper()
	v, _ := Default.Verb("list")
	orig, ok := v.Spec(typ)
	if !ok {
		t.Fatalf("no list %s", typ)
	}
	spec := *orig
	spec.Run = func(ctx context.Context, x *Exec) (*Result, error) {
		res, err := orig.Run(ctx, x)
		if err != nil || res.Stream == nil {
			return res, err
		}
		inner := res.Stream
		res.Stream = func(ctx context.Context) iter.Seq2[Row, error] {
			return func(yield func(Row, error) bool) {
				i := 0
				for row, err := range inner(ctx) {
					if err == nil {
						hook(ctx, i)
						i++
					}
					if !yield(row, err) {
						return
					}
				}
			}
		}
		return res, nil
	}
	reg := newRegistry()
	reg.add(&VerbInfo{Name: "list", Specs: []*Spec{&spec}})
	return reg
}

var admin = backend.Actor{User: "admin", Role: backend.RoleAdministrator}

// TestListingSlowClientSpills: list Event to a client that reads nothing
// is read to its end (its snapshot ends) with more output than the
// manager's queue holds, the rest spilled; the client then gets byte for
// byte what a client that reads at once gets.
func TestListingSlowClientSpills(t *testing.T) {
	engines(t, func(t *testing.T, c *managertest.Core) {
		const n = 10000
		seedEvents(t, c.Store, n)
		ctx := context.Background()
		line := fmt.Sprintf("list Event all=Yes limit=%d", n)
		for _, f := range []Format{{Mode: ModeJSON, JSONVersion: 2}, {Mode: ModeTable}} {
			t.Run(formatName(f), func(t *testing.T) {
				var want bytes.Buffer
				s := NewSession(ctx, Default, c.Manager, admin, &want, Options{Log: quietLog})
				s.now = func() time.Time { return goldenTime }
				s.settings.OutputMode, s.settings.JSONVersion = f.Mode, max(f.JSONVersion, 1)
				if o := s.RunLine(ctx, line); o != OK {
					t.Fatalf("outcome %d:\n%.500s", o, want.String())
				}
				if want.Len() <= spillQueue*spillChunk {
					t.Fatalf("%d bytes fit the manager's queue: the listing would not spill", want.Len())
				}
				read := make(chan struct{}) // closed when the last row was read
				reg := hookedList(t, "Event", func(_ context.Context, i int) {
					if i == n-1 {
						close(read)
					}
				})
				w := &blockedWriter{release: make(chan struct{}), keep: true}
				s = NewSession(ctx, reg, c.Manager, admin, w, Options{Log: quietLog})
				s.now = func() time.Time { return goldenTime }
				s.settings.OutputMode, s.settings.JSONVersion = f.Mode, max(f.JSONVersion, 1)
				done := make(chan Outcome, 1)
				go func() { done <- s.RunLine(ctx, line) }()
				select {
				case <-read:
				case o := <-done:
					t.Fatalf("the command ended (outcome %d) before its rows were read", o)
				}
				close(w.release)
				if o := <-done; o != OK {
					t.Fatalf("outcome %d", o)
				}
				if w.buf.String() != want.String() {
					t.Fatalf("the slow client got %d bytes, want the %d of the listing read at once", w.buf.Len(), want.Len())
				}
			})
		}
	})
}

// TestListingTimeoutMidStream: a listing whose commandTimeout passes while
// its rows are being read (here list VirtualDisk, held at its fourth row
// until the deadline) is not cut silently: after "Status: Success" and
// the rows read so far comes an Error Msg line with XM_0408E, and the
// command fails; an interruption (the session's context) ends it the same
// way, saying so.
func TestListingTimeoutMidStream(t *testing.T) {
	engines(t, func(t *testing.T, c *managertest.Core) {
		const n = 50
		seedDisks(t, c.Store, n)
		for _, tc := range []struct {
			name, msg string
			interrupt bool
		}{
			{"commandTimeout", "the listing did not finish within commandTimeout=", false},
			{"interrupted", "interrupted; the listing stopped", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				reg := hookedList(t, "VirtualDisk", func(ctx context.Context, i int) {
					if i == 3 {
						if tc.interrupt {
							cancel()
						}
						<-ctx.Done()
					}
				})
				var out bytes.Buffer
				s := NewSession(ctx, reg, c.Manager, admin, &out, Options{Log: quietLog})
				if !tc.interrupt {
					s.settings.CommandTimeout = 200 * time.Millisecond
				}
				if o := s.RunLine(ctx, "list VirtualDisk"); o != Failed {
					t.Fatalf("outcome %d, want %d:\n%s", o, Failed, out.String())
				}
				lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
				rows := strings.Count(out.String(), "name:disk-")
				if lines[1] != "Status: Success" || rows < 4 || rows >= n ||
					!strings.HasPrefix(lines[len(lines)-1], "Error Msg: "+string(CodeTimeout)+": "+tc.msg) {
					t.Fatalf("%d rows; output:\n%s", rows, out.String())
				}
			})
		}
	})
}

// TestListAuditRecordAsBefore: list AuditRecord and getAuditLog, which
// stream, print what the records the store returns whole
// (Queries.AuditRecords, what they printed before) print as a report, in
// every mode. The records are the store's own, written by the session
// that ran the commands above; the list runs without a session, so that
// it adds none of its own.
func TestListAuditRecordAsBefore(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	ctx := backend.WithActor(context.Background(), admin)
	var out bytes.Buffer
	s := NewSession(ctx, Default, c.Manager, admin, &out, Options{Log: quietLog})
	for _, line := range []string{"list Vm", "list Tag name=[", "set outputMode=Json", "list Server", "show Manager"} {
		s.RunLine(ctx, line)
	}
	for _, line := range []string{"list AuditRecord limit=3", "list AuditRecord", "getAuditLog limit=100000"} {
		cmd, perr := Default.Parse(line)
		if perr != nil {
			t.Fatal(perr)
		}
		res, err := cmd.Spec.Run(ctx, &Exec{Cmd: cmd, Backend: c.Manager, Actor: admin, Registry: Default})
		if err != nil || res.Stream == nil {
			t.Fatalf("%s: %v, stream %v", line, err, res != nil && res.Stream != nil)
		}
		limit := 100
		if n := cmd.Attrs["limit"]; n != "" {
			fmt.Sscan(n, &limit)
		}
		recs, err := c.Store.Read().AuditRecords(context.Background(), limit)
		if err != nil || len(recs) < 3 {
			t.Fatalf("%d records, %v", len(recs), err)
		}
		rows := []Row{}
		for _, r := range recs {
			rows = append(rows, auditRow(backend.AuditRecord{Seq: r.Seq, User: r.User, Remote: r.Remote, Command: r.Command, Result: r.Result, CreatedAt: r.CreatedAt}))
		}
		for _, f := range allFormats {
			var got, want bytes.Buffer
			writeReport(&want, f, &Report{Command: line, Time: goldenTime, Result: &Result{Rows: rows}})
			rep := &Report{Command: line, Time: goldenTime, Result: &Result{Stream: res.Stream}}
			if lerr, werr := writeStream(context.Background(), &got, f, rep); lerr != nil || werr != nil {
				t.Fatal(lerr, werr)
			}
			if got.String() != want.String() {
				t.Fatalf("%s in %s:\n%s\nwant\n%s", line, formatName(f), got.String(), want.String())
			}
		}
	}
}
