package backend

import (
	"errors"
	"testing"

	"xenmanager/store"
)

// optional keeps a missing row the zero value without an error, and turns
// any other read error into an internal error that wraps it.
func TestOptional(t *testing.T) {
	failing := errors.New("disk I/O error")
	for _, tc := range []struct {
		name    string
		v       store.Network
		err     error
		want    store.Network
		wantErr error
	}{
		{name: "found", v: store.Network{ID: "n1", Name: "net1"}, want: store.Network{ID: "n1", Name: "net1"}},
		{name: "missing", v: store.Network{ID: "partial"}, err: store.ErrNotFound},
		{name: "failing", v: store.Network{ID: "partial"}, err: failing, wantErr: failing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := optional(tc.v, tc.err)
			if got != tc.want {
				t.Errorf("value = %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || KindOf(err) != KindInternal):
				t.Errorf("err = %v (kind %v), want an internal error wrapping %v", err, KindOf(err), tc.wantErr)
			case tc.wantErr != nil && err.Error() != "read Network: disk I/O error":
				t.Errorf("err = %q, want it to name the row's type", err)
			}
		})
	}
}
