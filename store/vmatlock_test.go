package store

import (
	"context"
	"testing"
	"time"
)

// A VM job's intent reads the VM as the writes before it left it, the job's
// locks taken: a VM recorded, one changed by a write queued just before the
// intent (in its group on PostgreSQL, where it is sent with it), one not
// recorded (Found false, the job and its lock written all the same), and
// one another manager's Running job holds (its lock returned, nothing read).
// Both ways the writer runs it: pipelined (Store.InsertVMJobAndLock) and in
// a write's fn (Queries.InsertVMJobAndLock, its slow way).
func TestVMJobReadsItsVMAtLock(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		writeVMs(t, s, "vm-free", "vm-changed", "vm-held", "vm-free2", "vm-changed2", "vm-held2")
		for _, vm := range []string{"vm-held", "vm-held2"} {
			other := testJob("other-" + vm)
			other.ManagerID = "m2"
			if held, err := s.InsertJobAndLock(ctx, other, []string{vm}); err != nil || held != nil {
				t.Fatalf("the other manager's lock on %s: held by %v, %v", vm, held, err)
			}
		}
		inFn := func(j Job, vm string) (held *ObjectLock, read *VMAtLock, err error) {
			err = s.Write(ctx, func(q *Queries) error {
				var err error
				held, read, err = q.InsertVMJobAndLock(ctx, j, []string{vm}, vm)
				return err
			})
			return held, read, err
		}
		pipelined := func(j Job, vm string) (*ObjectLock, *VMAtLock, error) {
			return s.InsertVMJobAndLock(ctx, j, []string{vm}, vm)
		}
		tests := []struct {
			name, vm string
			intent   func(j Job, vm string) (*ObjectLock, *VMAtLock, error)
			change   bool   // set the VM Running on s1 in the write queued before
			want     string // the status read; "" when none read
			found    bool
			heldBy   string
		}{
			{"recorded", "vm-free", pipelined, false, "Stopped", true, ""},
			{"changed just before", "vm-changed", pipelined, true, "Running", true, ""},
			{"not recorded", "vm-gone", pipelined, false, "", false, ""},
			{"held by another manager", "vm-held", pipelined, false, "", false, "other-vm-held"},
			{"recorded, in an fn", "vm-free2", inFn, false, "Stopped", true, ""},
			{"changed just before, in an fn", "vm-changed2", inFn, true, "Running", true, ""},
			{"not recorded, in an fn", "vm-gone2", inFn, false, "", false, ""},
			{"held by another manager, in an fn", "vm-held2", inFn, false, "", false, "other-vm-held2"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				j := testJob("job-" + tc.vm)
				var writes []func() error
				if tc.change {
					writes = append(writes, func() error {
						return s.Write(ctx, func(q *Queries) error { return q.SetVMState(ctx, tc.vm, "", "Running") })
					})
				}
				var held *ObjectLock
				var read *VMAtLock
				writes = append(writes, func() error {
					var err error
					held, read, err = tc.intent(j, tc.vm)
					return err
				})
				release := holdWriter(t, s)
				wait := queueInOrder(t, s, writes)
				release()
				for i, err := range wait() {
					if err != nil {
						t.Fatalf("write %d: %v", i, err)
					}
				}
				if _, err := s.Read().Job(ctx, j.ID); err != nil {
					t.Errorf("the job's row: %v, want it written", err)
				}
				if tc.heldBy != "" {
					if held == nil || held.JobID != tc.heldBy || read != nil {
						t.Fatalf("held by %+v, read %+v; want held by %s and nothing read", held, read, tc.heldBy)
					}
					return
				}
				if held != nil || read == nil || read.Found != tc.found {
					t.Fatalf("held by %+v, read %+v; want none held and the VM found %v", held, read, tc.found)
				}
				if l, err := s.Read().ObjectLockHolder(ctx, "other", tc.vm); err != nil || l.JobID != j.ID {
					t.Errorf("the lock on %s: %+v, %v; want it held by %s", tc.vm, l, err, j.ID)
				}
				if !tc.found {
					return
				}
				want, err := s.Read().VM(ctx, tc.vm)
				if err != nil {
					t.Fatal(err)
				}
				if read.VM != want || read.VM.Status != tc.want {
					t.Errorf("read %+v, want %+v (status %s)", read.VM, want, tc.want)
				}
			})
		}
	})
}

// valuesRow assigns what the drivers give for each column type the scan
// functions read, NULL as the zero value, and refuses what it cannot.
func TestValuesRowScan(t *testing.T) {
	var str string
	var num int64
	var flag bool
	tests := []struct {
		name    string
		dest    any
		value   any
		want    any
		wantErr bool
	}{
		{"string", &str, "a", "a", false},
		{"bytes as a string", &str, []byte("b"), "b", false},
		{"NULL string", &str, nil, "", false},
		{"int64", &num, int64(7), int64(7), false},
		{"int32", &num, int32(8), int64(8), false},
		{"NULL int64", &num, nil, int64(0), false},
		{"bool", &flag, true, true, false},
		{"bigint as a bool", &flag, int64(1), true, false},
		{"NULL bool", &flag, nil, false, false},
		{"a string for an int64", &num, "9", nil, true},
		{"a time for a string", &str, time.Unix(0, 0), nil, true},
		{"an unknown destination", new(float64), 1.5, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := valuesRow{tc.value}.Scan(tc.dest)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Scan of %T into %T: no error", tc.value, tc.dest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got any
			switch d := tc.dest.(type) {
			case *string:
				got = *d
			case *int64:
				got = *d
			case *bool:
				got = *d
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if err := (valuesRow{"a", "b"}).Scan(&str); err == nil {
		t.Error("two columns into one destination: no error")
	}
}
