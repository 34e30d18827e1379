package backend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// newestJob returns the newest job whose summary starts with prefix,
// among the two newest: a job that shares its millisecond with the one
// before it is listed after it or before it, by id.
func newestJob(st *store.Store, prefix string) (store.Job, error) {
	jobs, err := st.Read().Jobs(context.Background(), 2)
	if err != nil {
		return store.Job{}, err
	}
	for _, j := range jobs {
		if strings.HasPrefix(j.Summary, prefix) {
			return j, nil
		}
	}
	return store.Job{}, fmt.Errorf("none of the two newest jobs is %q: %v", prefix, jobs)
}

// A start is placed before its job begins, and its job's row records the
// intent and the step together: one write, one commit, before the
// start_vm call (the step names the server the call goes to).
func TestStartRecordsItsStepWithItsIntent(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	for _, name := range []string{"warm", "planned"} {
		if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
			MemoryMiB: 256, CPUCount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The first start asks the agent what it has free; the second finds
	// it known, and makes no call but start_vm.
	if _, err := c.Manager.StartVM(ctx, backend.Ref{Name: "warm"}); err != nil {
		t.Fatal(err)
	}
	sim := c.Agents[0].Sim()
	before, _ := c.Store.WriteStats()
	if err := sim.SimSet(map[string]any{"hang": true}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Manager.StartVM(ctx, backend.Ref{Name: "planned"})
		done <- err
	}()
	waitFor(t, "the start_vm call to reach the hung agent", func() bool { return sim.HungCalls() > 0 })
	writes, _ := c.Store.WriteStats()
	job, err := newestJob(c.Store, "start Vm planned")
	if err != nil {
		t.Fatalf("the planned start's job: %v", err)
	}
	if n := writes - before; n != 1 {
		t.Errorf("%d writes before the start_vm call; want 1 (the job's row with its step)", n)
	}
	if !strings.Contains(job.Step, `"call":"`+agentapi.MethodStartVM+`"`) || job.Status != backend.JobRunning {
		t.Errorf("the start's job during its call: %s, step %q; want Running with the start_vm step", job.Status, job.Step)
	}
	if err := sim.SimSet(map[string]any{"hang": false}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var step struct{ Server string }
	if err := json.Unmarshal([]byte(job.Step), &step); err != nil {
		t.Fatal(err)
	}
	if got := c.Manager.ReservedMiB(step.Server); got != 0 {
		t.Errorf("%d MiB still reserved on the server after the start; want 0", got)
	}
}

// A start placed before its job takes that placement only when the VM is
// still as it was placed once the job holds the VM's lock. A VM changed
// while the start waited for the lock is placed again (a preferred server
// set meanwhile is where it starts; a rename changes no placement), or
// fails the state check (recorded Running meanwhile, or deleted: no agent
// is asked to start it); either way nothing stays reserved.
func TestStartPlacedBeforeItsLockPlacesAgainWhenTheVMChanged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(q *store.Queries, v store.VM, other string) error
		wantErr string
		moved   bool
	}{
		{name: "unchanged", change: func(*store.Queries, store.VM, string) error { return nil }},
		{name: "preferred server set", change: func(q *store.Queries, v store.VM, other string) error {
			v.PreferredServers = other
			return q.UpdateVM(context.Background(), v)
		}, moved: true},
		{name: "started meanwhile", change: func(q *store.Queries, v store.VM, other string) error {
			return q.SetVMState(context.Background(), v.ID, other, backend.VMRunning)
		}, wantErr: "Running"},
		{name: "deleted meanwhile", change: func(q *store.Queries, v store.VM, _ string) error {
			return q.DeleteVM(context.Background(), v.ID)
		}, wantErr: "deleted meanwhile"},
		{name: "renamed meanwhile", change: func(q *store.Queries, v store.VM, _ string) error {
			v.Name = "renamed"
			return q.UpdateVM(context.Background(), v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := managertest.Ready(t, managertest.Options{Agents: 2})
			ctx := c.Admin()
			v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "waiter", Repository: backend.Ref{Name: managertest.Repo},
				MemoryMiB: 256, CPUCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			servers, err := c.Store.Read().Servers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// A job of the test holds the VM's lock until release.
			release, holding := make(chan struct{}), make(chan struct{})
			held := make(chan error, 1)
			go func() {
				_, err := c.Manager.RunJob(ctx, "hold Vm waiter", []string{v.ID}, func(context.Context, backend.JobRun) (any, error) {
					close(holding)
					<-release
					return nil, nil
				})
				held <- err
			}()
			<-holding
			done := make(chan error, 1)
			go func() {
				_, err := c.Manager.StartVM(ctx, backend.Ref{Name: "waiter"})
				done <- err
			}()
			var planned string
			waitFor(t, "the start's job to record its planned step", func() bool {
				j, err := newestJob(c.Store, "start Vm")
				if err != nil || j.Step == "" {
					return false
				}
				for _, s := range servers {
					if strings.Contains(j.Step, `"server":"`+s.ID+`"`) {
						planned = s.ID
					}
				}
				return true
			})
			other := servers[0].ID
			if other == planned {
				other = servers[1].ID
			}
			if err := c.Store.Write(context.Background(), func(q *store.Queries) error {
				cur, err := q.VM(context.Background(), v.ID)
				if err != nil {
					return err
				}
				return tc.change(q, cur, other)
			}); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			err = <-done
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("start: %v; want a failure saying %s", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			default:
				got, err := c.Manager.VM(ctx, backend.Ref{ID: v.ID})
				if err != nil {
					t.Fatal(err)
				}
				want := planned
				if tc.moved {
					want = other
				}
				if got.Status != backend.VMRunning || got.Server.ID != want {
					t.Errorf("VM %s on %s; want Running on %s", got.Status, got.Server.ID, want)
				}
			}
			running := 0
			for _, a := range c.Agents {
				running += a.RunningDomains(t)
			}
			if want := map[bool]int{true: 0, false: 1}[tc.wantErr != ""]; running != want {
				t.Errorf("%d domains run on the agents; want %d", running, want)
			}
			for _, s := range servers {
				if mib := c.Manager.ReservedMiB(s.ID); mib != 0 {
					t.Errorf("server %s: %d MiB still reserved after the start; want 0", s.Name, mib)
				}
			}
		})
	}
}

// A multi-object action's read of its VMs' rows keeps the row of each VM
// that no write touched while the rows were read, whatever happened to
// the others (its own earlier jobs change them as it runs), and none when
// a VM was deleted or renamed meanwhile (which moves no single VM's
// generation): a job never takes a row that is no longer the VM's.
func TestFoundRowsKeepEachVMNotChangedDuringTheRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during func(q *store.Queries, vms map[string]store.VM) error
		want   []string
	}{
		{name: "nothing changed", during: func(*store.Queries, map[string]store.VM) error { return nil },
			want: []string{"a", "b", "c"}},
		{name: "one VM's state changed", during: func(q *store.Queries, vms map[string]store.VM) error {
			return q.SetVMState(context.Background(), vms["b"].ID, "", backend.VMStopped)
		}, want: []string{"a", "c"}},
		{name: "another VM deleted", during: func(q *store.Queries, vms map[string]store.VM) error {
			return q.DeleteVM(context.Background(), vms["other"].ID)
		}},
		{name: "a VM renamed", during: func(q *store.Queries, vms map[string]store.VM) error {
			v := vms["c"]
			v.Name = "c2"
			return q.UpdateVM(context.Background(), v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := managertest.Ready(t, managertest.Options{Agents: 1})
			ctx := c.Admin()
			vms := map[string]store.VM{}
			var ids []string
			for _, name := range []string{"a", "b", "c", "other"} {
				v, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: name, Repository: backend.Ref{Name: managertest.Repo},
					MemoryMiB: 256, CPUCount: 1})
				if err != nil {
					t.Fatal(err)
				}
				row, err := c.Store.Read().VM(context.Background(), v.ID)
				if err != nil {
					t.Fatal(err)
				}
				vms[name] = row
				if name != "other" {
					ids = append(ids, v.ID)
				}
			}
			kept, err := c.Manager.FoundRows(context.Background(), ids, func() {
				if err := c.Store.Write(context.Background(), func(q *store.Queries) error { return tc.during(q, vms) }); err != nil {
					t.Fatal(err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for id, name := range kept {
				if vms[name].ID != id {
					t.Errorf("row %s kept as %s", id, name)
				}
				got = append(got, name)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("rows kept: %v; want %v", got, tc.want)
			}
		})
	}
}
