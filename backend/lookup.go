package backend

import (
	"context"
	"errors"
	"fmt"

	"xenmanager/backend/names"
	"xenmanager/store"
)

// kind describes how to look up objects of one type, so that resolution,
// patterns and visibility are written once for all types.
type kind[T any] struct {
	name   string
	byID   func(context.Context, string) (T, error)
	byName func(context.Context, string) ([]T, error)
	all    func(context.Context) ([]T, error)
	nameOf func(T) string
	idOf   func(T) string
	poolOf func(T) string // "" for objects in no pool
}

func (m *Manager) vmKind() kind[store.VM] {
	q := m.st.Read()
	return kind[store.VM]{"Vm", q.VM, q.VMsByName, q.VMs,
		func(x store.VM) string { return x.Name }, func(x store.VM) string { return x.ID }, func(x store.VM) string { return x.PoolID }}
}

// vmShownKind looks VMs up as show Vm reads them: by id or name, each with
// its devices in the same query (on PostgreSQL one round trip for the
// whole show), or from what the manager kept of an earlier read while
// the VMs are unchanged (shownVMCache); a pattern reads the records alone
// (WithDevices false).
func (m *Manager) vmShownKind() kind[store.VMShown] {
	q := m.st.Read()
	all := func(ctx context.Context) ([]store.VMShown, error) {
		vms, err := q.VMs(ctx)
		out := make([]store.VMShown, len(vms))
		for i, v := range vms {
			out[i] = store.VMShown{VM: v}
		}
		return out, err
	}
	return kind[store.VMShown]{"Vm", m.shownVMs.byID(q), m.shownVMs.byName(q), all,
		func(x store.VMShown) string { return x.Name }, func(x store.VMShown) string { return x.ID },
		func(x store.VMShown) string { return x.PoolID }}
}

func (m *Manager) serverKind() kind[store.Server] {
	q := m.st.Read()
	return kind[store.Server]{"Server", q.Server, q.ServersByName, q.Servers,
		func(x store.Server) string { return x.Name }, func(x store.Server) string { return x.ID }, func(x store.Server) string { return x.PoolID }}
}

func (m *Manager) poolKind() kind[store.ServerPool] {
	q := m.st.Read()
	return kind[store.ServerPool]{"ServerPool", q.ServerPool, q.ServerPoolsByName, q.ServerPools,
		func(x store.ServerPool) string { return x.Name }, func(x store.ServerPool) string { return x.ID }, func(x store.ServerPool) string { return x.ID }}
}

func (m *Manager) repoKind() kind[store.Repository] {
	q := m.st.Read()
	return kind[store.Repository]{"Repository", q.Repository, q.RepositoriesByName, q.Repositories,
		func(x store.Repository) string { return x.Name }, func(x store.Repository) string { return x.ID }, func(x store.Repository) string { return x.PoolID }}
}

// resolveAll returns every object ref names that the actor may see: the one
// with its id, those called its name, or those matching its pattern. None is
// NotFound; objects the actor may not see read as not found.
func resolveAll[T any](ctx context.Context, m *Manager, k kind[T], ref Ref) ([]T, error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return nil, err
	}
	var found []T
	switch {
	case ref.ID != "":
		v, err := k.byID(ctx, ref.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, &Error{Kind: KindInternal, Msg: "read " + k.name, Cause: err}
		}
		if err == nil {
			found = []T{v}
		}
	case IsPattern(ref.Name):
		if _, err := matchName(ref.Name, ""); err != nil {
			return nil, err
		}
		every, err := k.all(ctx)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read " + k.name, Cause: err}
		}
		for _, v := range every {
			if ok, _ := matchName(ref.Name, k.nameOf(v)); ok {
				found = append(found, v)
			}
		}
	default:
		// The name as stored (NFC), and as given when that differs: a name
		// stored before names were normalised is found as it was given.
		for _, name := range nameForms(ref.Name) {
			more, err := k.byName(ctx, name)
			if err != nil {
				return nil, &Error{Kind: KindInternal, Msg: "read " + k.name, Cause: err}
			}
			found = append(found, more...)
		}
	}
	visible := found[:0]
	for _, v := range found {
		if sc.sees(k.poolOf(v)) {
			visible = append(visible, v)
		}
	}
	if len(visible) == 0 {
		switch {
		case ref.ID != "":
			return nil, errorf(KindNotFound, "%s id=%s not found", k.name, ref.ID)
		case IsPattern(ref.Name):
			return nil, errorf(KindNotFound, "no %s matches %q", k.name, ref.Name)
		}
		return nil, errorf(KindNotFound, "%s %q not found", k.name, ref.Name)
	}
	return visible, nil
}

// resolve finds the one object ref names, or fails with NotFound or
// Ambiguous (listing the ids, so that the operator can pick one).
func resolve[T any](ctx context.Context, m *Manager, k kind[T], ref Ref) (T, error) {
	var zero T
	found, err := resolveAll(ctx, m, k, ref)
	if err != nil {
		return zero, err
	}
	if len(found) == 1 {
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = k.idOf(f)
	}
	what := fmt.Sprintf("name %q", ref.Name)
	if IsPattern(ref.Name) {
		what = fmt.Sprintf("pattern %q", ref.Name)
	}
	return zero, errorf(KindAmbiguous, "%s matches %d %s objects (%s); name one with id=", what, len(found), k.name, joinComma(ids))
}

// nameForms are the names a lookup of name reads: its NFC form, the one
// names are stored in, and name itself when that differs.
func nameForms(name string) []string {
	if nfc := names.Normalize(name); nfc != name {
		return []string{nfc, name}
	}
	return []string{name}
}
