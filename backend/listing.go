package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"xenmanager/store"
)

// optional takes the result of reading one row that a view or a message
// refers to but that may be gone: a missing row (store.ErrNotFound) gives
// the zero value, so that the view shows the empty name it always has for
// a reference deleted meanwhile; any other error means the store failed and
// is returned, so that a failing database is never shown as an empty field.
// It takes a read's two results as they come, optional(q.VM(ctx, id)), and
// names the row's type in the error.
func optional[T any](v T, err error) (T, error) {
	var zero T
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, store.ErrNotFound):
		return zero, nil
	}
	return zero, &Error{Kind: KindInternal, Msg: "read " + strings.TrimPrefix(fmt.Sprintf("%T", zero), "store."), Cause: err}
}

// counted wraps the error of a count the store could not make, so that a
// failing store is never shown as a count of zero.
func counted(n int, err error) (int, error) {
	if err != nil {
		return 0, &Error{Kind: KindInternal, Msg: "count references", Cause: err}
	}
	return n, nil
}

// listing is how every list command starts: it compiles the filter (which
// may name objects that do not exist) and reads the inventory once for all
// the rows the list shows.
func (m *Manager) listing(ctx context.Context, f Filter) (*compiled, *inventory, error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, inv, nil
}

// viewsOf builds the view of every row keep passes, in order; one view
// that fails (the store failed) fails the whole list, so that a list never
// shows a row with fields it could not read.
func viewsOf[T, V any](rows []T, keep func(T) bool, view func(T) (V, error)) ([]V, error) {
	out := make([]V, 0, len(rows))
	for _, r := range rows {
		if !keep(r) {
			continue
		}
		v, err := view(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// show is how the show commands of the objects the inventory holds read
// one: resolve ref, then build its view with the inventory's names.
func show[T, V any](ctx context.Context, m *Manager, k kind[T], ref Ref, view func(*inventory, T) (V, error)) (V, error) {
	var zero V
	x, err := resolve(ctx, m, k, ref)
	if err != nil {
		return zero, err
	}
	inv, err := m.inventory(ctx)
	if err != nil {
		return zero, err
	}
	return view(inv, x)
}

// findFor resolves ref, then checks that the actor holds perm: the start of
// every command that changes one named object. Resolving first keeps an
// unknown name a NotFound rather than a refusal, as the commands always
// answered.
func findFor[T any](ctx context.Context, m *Manager, k kind[T], ref Ref, perm Permission) (T, error) {
	x, err := resolve(ctx, m, k, ref)
	if err != nil {
		var zero T
		return zero, err
	}
	if err := m.authorize(ctx, perm); err != nil {
		var zero T
		return zero, err
	}
	return x, nil
}

// devicesScope is how the lists of a VM's devices start: the id of the VM
// vm names ("" when vm is empty: every VM) and the pools the actor sees,
// by which the devices of other VMs are left out.
func (m *Manager) devicesScope(ctx context.Context, vm Ref) (only string, sc scope, err error) {
	if vm != (Ref{}) {
		v, err := m.findVM(ctx, vm)
		if err != nil {
			return "", scope{}, err
		}
		only = v.ID
	}
	if sc, err = m.scope(ctx); err != nil {
		return "", scope{}, err
	}
	return only, sc, nil
}
