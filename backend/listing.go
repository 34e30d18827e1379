package backend

import (
	"context"
	"errors"
	"fmt"
	"iter"
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

// Listing is the rows of a list command, read when they are iterated:
// from one read transaction of the store (a point-in-time snapshot), one
// row at a time, each passed through the command's filter and the
// actor's scope as it is read. Nothing is read until All is iterated, and
// the transaction ends when the iteration does: a caller that prints the
// rows to a client must not wait on the client inside the loop for long
// (commands spills what the client has not taken yet to a file).
type Listing[T any] struct {
	// read calls yield with each row until it returns false; its error is
	// the listing's (KindInternal when the store failed).
	read func(ctx context.Context, yield func(T) bool) error
}

// All yields the rows with a nil error, then, if reading them failed,
// one zero row with the error, and nothing after it.
func (l Listing[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		stopped := false
		err := l.read(ctx, func(v T) bool {
			stopped = !yield(v, nil)
			return !stopped
		})
		if err != nil && !stopped {
			var zero T
			yield(zero, err)
		}
	}
}

// Collect reads every row into memory, for the callers that need them all
// at once (a repository's VMs before it is deleted); an empty listing is
// an empty, non-nil slice.
func (l Listing[T]) Collect(ctx context.Context) ([]T, error) {
	out := []T{}
	for v, err := range l.All(ctx) {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// streamed is the Listing of every list command whose rows may be many.
// When it is iterated, one snapshot of the store is taken and open reads
// with it what every row needs (the inventory of that moment, counts,
// mappings): it returns the store's rows, yielded one at a time, and the
// view that makes each into what the list shows, or leaves it out (false:
// the filter or the actor's scope). The filter and the scope are the
// caller's, worked out before (a filter naming nothing fails before any
// row): open and view run with the iteration's context, which carries no
// actor. A store error of the rows is KindInternal "read <what>"; an error
// of open or of view (a *Error already) ends the listing as it is.
func streamed[R, V any](m *Manager, what string,
	open func(ctx context.Context, q *store.Queries) (rows iter.Seq2[R, error], view func(R) (V, bool, error), err error)) Listing[V] {
	return Listing[V]{read: func(ctx context.Context, yield func(V) bool) error {
		return m.snapshot(ctx, func(q *store.Queries) error {
			rows, view, err := open(ctx, q)
			if err != nil {
				return err
			}
			for r, err := range rows {
				if err != nil {
					return &Error{Kind: KindInternal, Msg: "read " + what, Cause: err}
				}
				v, ok, err := view(r)
				if err != nil {
					return err
				}
				if ok && !yield(v) {
					return nil
				}
			}
			// A query whose context ended may end its rows without an
			// error (the driver closed them): the listing is then cut,
			// and must say so rather than look whole.
			if err := ctx.Err(); err != nil {
				return &Error{Kind: KindInternal, Msg: "read " + what, Cause: err}
			}
			return nil
		})
	}}
}

// eachOf yields the rows of a slice the snapshot read whole (the
// inventory's servers).
func eachOf[R any](rows []R) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// collected is a streamed listing read whole, for the callers that want
// every row at once (the []T forms of the list methods): nil on error.
func collected[T any](ctx context.Context, l Listing[T], err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return l.Collect(ctx)
}

// snapshot runs fn on one read transaction of the store (store.Snapshot);
// a store that cannot begin one is an internal error.
func (m *Manager) snapshot(ctx context.Context, fn func(q *store.Queries) error) error {
	err := m.st.Snapshot(ctx, fn)
	var be *Error
	if err != nil && !errors.As(err, &be) {
		return &Error{Kind: KindInternal, Msg: "read a snapshot of the store", Cause: err}
	}
	return err
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
