package backend

import (
	"context"

	"xenmanager/store"
)

// SelectVMs returns the VMs a multi-object action acts on: those ref names
// (by id, name or pattern; every VM the actor sees when ref is zero) that
// pass f, as list Vm would show them. The selection is made once, here,
// before anything acts: a VM that starts to match afterwards is not in it,
// and each VM of it is then acted on by id, authorised and checked under
// its lock as if named alone. A ref that matches nothing is NotFound, as
// for FindVMs; filters that leave nothing give an empty selection, which
// the caller reports in its own words.
func (m *Manager) SelectVMs(ctx context.Context, ref Ref, f Filter) ([]NamedRef, error) {
	var c *compiled
	if f != (Filter{}) {
		var err error
		if c, err = m.compile(ctx, f); err != nil {
			return nil, err
		}
	}
	var found []store.VMSummary
	if ref == (Ref{}) {
		if c == nil {
			return nil, errorf(KindInvalidArgument, "select VMs by id=, name= or a filter")
		}
		all, err := m.st.Read().VMSummaries(ctx)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Msg: "read VMs", Cause: err}
		}
		found = all // c.match leaves out the VMs the actor may not see
	} else {
		var err error
		if found, err = resolveAll(ctx, m, m.vmSummaryKind(), ref); err != nil {
			return nil, err
		}
	}
	out := make([]NamedRef, 0, len(found))
	keep := make([]jobVM, 0, len(found))
	for _, v := range found {
		if c != nil && !c.match(v.ID, v.Name, v.Status, v.ServerID, v.PoolID, v.RepoID) {
			continue
		}
		out = append(out, NamedRef{ID: v.ID, Name: v.Name})
		keep = append(keep, jobVM{ID: v.ID, Name: v.Name, PoolID: v.PoolID})
	}
	if fv := m.opts.Found; fv != nil {
		fv.mu.Lock()
		fv.chunk(keep)
		for _, v := range keep {
			fv.vms[v.ID] = v
		}
		fv.mu.Unlock()
	}
	return out, nil
}
