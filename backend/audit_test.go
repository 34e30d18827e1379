package backend_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// logBuffer is a manager's log, read by the test while the manager writes.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openLogged opens a core whose log the test reads.
func openLogged(t *testing.T) (*managertest.Core, *logBuffer) {
	t.Helper()
	log := &logBuffer{}
	return managertest.Open(t, managertest.Options{Logger: slog.New(slog.NewTextHandler(log, nil))}), log
}

// mendTable undoes breakTable.
func mendTable(t *testing.T, c *managertest.Core, table string) {
	t.Helper()
	behind(t, c, `ALTER TABLE `+table+`_gone RENAME TO `+table)
}

// auditLog reads the whole audit log, oldest first.
func auditLog(t *testing.T, c *managertest.Core) []backend.AuditRecord {
	t.Helper()
	recs, err := c.Manager.AuditLog(c.Admin(), 100000)
	if err != nil {
		t.Fatalf("AuditLog: %v", err)
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

// admin is the actor of the commands of these tests.
var admin = backend.Actor{User: "admin", Role: backend.RoleAdministrator, Remote: "192.0.2.1:5000"}

// A change whose audit record cannot be written is not made: the operation
// fails, saying so, and leaves nothing; once the record can be written the
// same change is made, with one record that gets the command's result.
func TestChangeNeedsItsAuditRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ctx context.Context, m *backend.Manager) error
		made   func(ctx context.Context, m *backend.Manager) bool
	}{
		{name: "create ServerPool",
			change: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.CreateServerPool(ctx, "p1", "")
				return err
			},
			made: func(ctx context.Context, m *backend.Manager) bool {
				_, err := m.ServerPool(ctx, backend.Ref{Name: "p1"})
				return err == nil
			}},
		{name: "create Tag",
			change: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.CreateTag(ctx, "t1", "")
				return err
			},
			made: func(ctx context.Context, m *backend.Manager) bool {
				_, err := m.Tag(ctx, backend.Ref{Name: "t1"})
				return err == nil
			}},
		{name: "a job: its row is the first change",
			change: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.RunJob(ctx, "audited job", nil, func(context.Context, backend.JobRun) (any, error) { return nil, nil })
				return err
			},
			made: func(ctx context.Context, m *backend.Manager) bool {
				jobs, err := m.Jobs(ctx, 10)
				return err == nil && len(jobs) == 1
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := openLogged(t)
			m := c.Manager
			breakTable(t, c, "audit_records")
			rec := m.BeginAudit(admin, tc.name)
			ctx := backend.WithAudit(c.Admin(), rec)
			err := tc.change(ctx, m)
			if err == nil || !strings.Contains(backend.Message(err), "audit record could not be written, so its change was not made") {
				t.Fatalf("with the audit table broken: err = %v (%q), want the audit record's failure", err, backend.Message(err))
			}
			if tc.made(c.Admin(), m) {
				t.Fatal("the change was made without its audit record")
			}
			mendTable(t, c, "audit_records")
			if err := tc.change(ctx, m); err != nil {
				t.Fatalf("once the table is back: %v", err)
			}
			if !tc.made(c.Admin(), m) {
				t.Fatal("the change was not made")
			}
			// The record is there with the change, before the command ends.
			recs := auditLog(t, c)
			if len(recs) != 1 || recs[0].Result != "Running" || recs[0].Command != tc.name || recs[0].User != "admin" ||
				recs[0].Remote != admin.Remote {
				t.Fatalf("records %+v, want one Running of the command", recs)
			}
			m.EndAudit(rec, "Success")
			if recs := auditLog(t, c); len(recs) != 1 || recs[0].Result != "Success" {
				t.Fatalf("records %+v, want the one record, Success", recs)
			}
		})
	}
}

// An asynchronous job's command ends while the job runs: the command's
// record was written with the job's row, and the job's own changes after
// the command ended add none.
func TestJobChangesBelongToTheirCommand(t *testing.T) {
	c, _ := openLogged(t)
	m := c.Manager.With(backend.RunOptions{Async: true})
	rec := m.BeginAudit(admin, "create Tag name=late (as a job)")
	ctx := backend.WithAudit(c.Admin(), rec)
	release, done := make(chan struct{}), make(chan error, 1)
	_, err := m.RunJob(ctx, "tag later", nil, func(ctx context.Context, _ backend.JobRun) (any, error) {
		<-release
		_, err := m.CreateTag(ctx, "late", "")
		done <- err
		return nil, err
	})
	if backend.KindOf(err) != backend.KindStillRunning {
		t.Fatalf("RunJob: %v, want the job running", err)
	}
	m.EndAudit(rec, "Success") // the session answered with the job's id
	if recs := auditLog(t, c); len(recs) != 1 || recs[0].Result != "Success" {
		t.Fatalf("records %+v, want the command's, Success", recs)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the job's change: %v", err)
	}
	if recs := auditLog(t, c); len(recs) != 1 || recs[0].Result != "Success" {
		t.Fatalf("records after the job's change %+v, want the command's alone", recs)
	}
}

// Commands that change nothing are recorded through the spool: while the
// database cannot take them they wait (show Manager counts them), and are
// written once it can; none is lost.
func TestSpoolWaitsForTheDatabase(t *testing.T) {
	c, log := openLogged(t)
	m := c.Manager
	breakTable(t, c, "audit_records")
	for i := range 5 {
		m.Audit(context.Background(), admin, fmt.Sprintf("show Vm name=v%d", i), "Success")
	}
	if _, err := m.AuditLog(c.Admin(), 10); err == nil {
		t.Fatal("AuditLog read a broken table")
	}
	info, err := m.Info(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	if info.Audit.Waiting != 5 || info.Audit.Lost != 0 {
		t.Fatalf("audit stats %+v, want 5 waiting, none lost", info.Audit)
	}
	if !strings.Contains(log.String(), "audit records not written yet; retrying") {
		t.Errorf("the failing writes were not logged:\n%s", log)
	}
	mendTable(t, c, "audit_records")
	recs := auditLog(t, c)
	if len(recs) != 5 || recs[0].Command != "show Vm name=v0" || recs[4].Command != "show Vm name=v4" {
		t.Fatalf("records %+v, want the 5 commands in order", recs)
	}
	if info, _ := m.Info(c.Admin()); info.Audit != (backend.AuditStats{}) {
		t.Errorf("audit stats %+v once written, want none waiting or lost", info.Audit)
	}
}

// A spool that is full drops the next record: it is counted (show
// Manager), logged in full, and, once the database can be written, a row
// of the audit log tells how many were lost. The records left when the
// manager stops are logged as lost too.
func TestSpoolLossIsNeverSilent(t *testing.T) {
	c, log := openLogged(t)
	m := c.Manager
	breakTable(t, c, "audit_records")
	const spoolMax = 20
	m.LimitAuditSpool(spoolMax)
	for i := range spoolMax {
		m.Audit(context.Background(), admin, fmt.Sprintf("list Vm %d", i), "Success")
	}
	m.Audit(context.Background(), admin, "show Vm name=dropped", "XM_0404E")
	info, err := m.Info(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	if info.Audit.Waiting != spoolMax || info.Audit.Lost != 1 {
		t.Fatalf("audit stats %+v, want %d waiting and 1 lost", info.Audit, spoolMax)
	}
	if l := log.String(); !strings.Contains(l, "audit record lost") || !strings.Contains(l, `command="show Vm name=dropped"`) ||
		!strings.Contains(l, "result=XM_0404E") || !strings.Contains(l, "user=admin") {
		t.Fatalf("the lost record is not in the log:\n%s", lastLines(l, 5))
	}
	mendTable(t, c, "audit_records")
	recs := auditLog(t, c)
	if len(recs) != spoolMax+1 {
		t.Fatalf("%d records, want %d and the row of the loss", len(recs), spoolMax+1)
	}
	if last := recs[spoolMax]; last.Result != backend.AuditLost || !strings.HasPrefix(last.Command, "1 audit records lost") {
		t.Fatalf("the last record is %+v, want the row of the loss", last)
	}

	// Stopping with records that cannot be written loses them, loudly:
	// a read's, and the result of a change whose row says Running.
	rec := m.BeginAudit(admin, "create Tag name=t1")
	if _, err := m.CreateTag(backend.WithAudit(c.Admin(), rec), "t1", ""); err != nil {
		t.Fatal(err)
	}
	breakTable(t, c, "audit_records")
	m.Audit(context.Background(), admin, "showversion", "Success")
	m.EndAudit(rec, "XM_0502E")
	m.Close()
	l := log.String()
	if !strings.Contains(l, "audit record lost: the manager stopped") || !strings.Contains(l, `command=showversion`) {
		t.Fatalf("the record left at Close is not in the log:\n%s", lastLines(l, 5))
	}
	if !regexp.MustCompile(`audit record lost: the manager stopped.* command="create Tag name=t1" result=XM_0502E .*row=[1-9]`).MatchString(l) {
		t.Fatalf("the lost result of the change is not in the log with its row:\n%s", lastLines(l, 5))
	}
	if info, _ := m.Info(c.Admin()); info.Audit.Lost != 3 || info.Audit.Waiting != 0 {
		t.Errorf("audit stats %+v after Close, want 3 lost", info.Audit)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
