package backend

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"xenmanager/store"
)

// DefaultShownVMs is how many show Vm lookups the manager keeps when
// Config.ShownVMs is zero.
const DefaultShownVMs = 10000

// shownVMCache keeps what show Vm read of VMs (the VM's row with its
// devices: store.VMShownByID, VMsShownByName), by id and by name, while
// the store's generations say it is current: each VM's own
// (Store.VMGeneration: its row changed, on this manager or, once its
// notification arrived, on another) and, for what a name found, the
// names' (Store.VMNamesGeneration: a VM inserted, deleted or renamed, a
// device or tag changed). On PostgreSQL a show Vm is then no round trip
// while the VM is unchanged; the view is built at each show from the
// kept rows and the current inventory. Bounded to a number of lookups
// (least recently used first out); nil keeps nothing.
type shownVMCache struct {
	st      *store.Store
	entries *lru.Cache[shownKey, *shownEntry] // safe for concurrent use
}

// shownKey is a lookup: by id, or by name.
type shownKey struct {
	byName bool
	key    string
}

// shownEntry is what a lookup found (none: a name no VM has), with the
// generations it was read at. Never changed once kept.
type shownEntry struct {
	names int64 // the names' generation
	gens  []int64
	vms   []store.VMShown
}

// newShownVMCache keeps up to n lookups; n < 1 keeps none.
func newShownVMCache(st *store.Store, n int) *shownVMCache {
	if n < 1 {
		return nil
	}
	c, err := lru.New[shownKey, *shownEntry](n)
	if err != nil {
		return nil // only for n < 1
	}
	return &shownVMCache{st: st, entries: c}
}

// current reports whether e is what its lookup would read now.
func (c *shownVMCache) current(e *shownEntry) bool {
	if c.st.VMNamesGeneration() != e.names {
		return false
	}
	for i, v := range e.vms {
		if c.st.VMGeneration(v.ID) != e.gens[i] {
			return false
		}
	}
	return true
}

// lookup returns the VMs of k: those kept while current, else read, and
// kept when nothing that show Vm reads changed during the read (a write
// in flight then would leave no trace in the generations taken after).
// The slice is the caller's; the VMs' devices are shared, never changed.
func (c *shownVMCache) lookup(ctx context.Context, k shownKey, read func(context.Context, string) ([]store.VMShown, error)) ([]store.VMShown, error) {
	if c == nil {
		return read(ctx, k.key)
	}
	if e, ok := c.entries.Get(k); ok && c.current(e) {
		return append([]store.VMShown(nil), e.vms...), nil
	}
	seq := c.st.VMChanges()
	vms, err := read(ctx, k.key)
	if err != nil {
		return nil, err
	}
	e := c.entry(c.st.VMNamesGeneration(), append([]store.VMShown(nil), vms...))
	if c.st.VMChanges() == seq {
		c.entries.Add(k, e)
	}
	return vms, nil
}

// entry is what a lookup that found vms keeps, with the names'
// generation it was read at and each VM's generation now; vms becomes
// the entry's.
func (c *shownVMCache) entry(names int64, vms []store.VMShown) *shownEntry {
	e := &shownEntry{names: names, gens: make([]int64, len(vms)), vms: vms}
	for i, v := range vms {
		e.gens[i] = c.st.VMGeneration(v.ID)
	}
	return e
}

// byID is VMShownByID through the cache.
func (c *shownVMCache) byID(q *store.Queries) func(context.Context, string) (store.VMShown, error) {
	return func(ctx context.Context, id string) (store.VMShown, error) {
		vms, err := c.lookup(ctx, shownKey{key: id}, func(ctx context.Context, id string) ([]store.VMShown, error) {
			v, err := q.VMShownByID(ctx, id)
			if err != nil {
				return nil, err
			}
			return []store.VMShown{v}, nil
		})
		if err != nil {
			return store.VMShown{}, err
		}
		return vms[0], nil
	}
}

// byName is VMsShownByName through the cache.
func (c *shownVMCache) byName(q *store.Queries) func(context.Context, string) ([]store.VMShown, error) {
	return func(ctx context.Context, name string) ([]store.VMShown, error) {
		return c.lookup(ctx, shownKey{byName: true, key: name}, q.VMsShownByName)
	}
}

// prefetch reads ahead the lookups of keys (ids, or names when byName)
// that are not kept current, store.MaxShownAtOnce in one read, and keeps
// them as lookup would have one by one: a batch of show Vm lines then
// costs a read per few hundred VMs, not one per VM (on PostgreSQL each
// read is a round trip). An id no VM has is not kept (lookup keeps no
// failed read); a name no VM has is kept as none, as lookup keeps it.
// Patterns and repeated keys are skipped. Nothing read is kept when a VM
// changed during the read.
func (c *shownVMCache) prefetch(ctx context.Context, q *store.Queries, byName bool, keys []string) error {
	if c == nil {
		return nil
	}
	var missing []string
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] || (byName && IsPattern(k)) {
			continue
		}
		seen[k] = true
		if e, ok := c.entries.Peek(shownKey{byName: byName, key: k}); ok && c.current(e) {
			continue
		}
		missing = append(missing, k)
	}
	read, keyOf := q.VMsShownByIDs, func(v store.VMShown) string { return v.ID }
	if byName {
		read, keyOf = q.VMsShownByNames, func(v store.VMShown) string { return v.Name }
	}
	for len(missing) > 0 {
		chunk := missing[:min(len(missing), store.MaxShownAtOnce)]
		missing = missing[len(chunk):]
		seq := c.st.VMChanges()
		vms, err := read(ctx, chunk)
		if err != nil {
			return err
		}
		names := c.st.VMNamesGeneration()
		found := make(map[string][]store.VMShown, len(chunk))
		for _, v := range vms { // by id, as lookup's reads return them
			found[keyOf(v)] = append(found[keyOf(v)], v)
		}
		entries := make([]*shownEntry, len(chunk))
		for i, k := range chunk {
			vms := found[k]
			if len(vms) == 0 && !byName {
				continue
			}
			entries[i] = c.entry(names, vms)
		}
		if c.st.VMChanges() != seq {
			return nil
		}
		for i, e := range entries {
			if e != nil {
				c.entries.Add(shownKey{byName: byName, key: chunk[i]}, e)
			}
		}
	}
	return nil
}

// PrefetchShownVMs reads ahead, a few hundred at a time, the VMs that the
// show Vm commands about to run name (by id, by name), and keeps them as
// show Vm keeps what it read (--shown-vms): the shell calls it with the
// lines a stdin batch has already sent. It shows and authorizes nothing;
// each show still looks its VM up, then from what was kept while the VM
// is unchanged. A failed read is the caller's to log: the shows read for
// themselves then.
func (m *Manager) PrefetchShownVMs(ctx context.Context, ids, names []string) error {
	q := m.st.Read()
	if err := m.shownVMs.prefetch(ctx, q, false, ids); err != nil {
		return fmt.Errorf("read ahead the VMs shown by id: %w", err)
	}
	var forms []string
	for _, n := range names {
		forms = append(forms, nameForms(n)...)
	}
	if err := m.shownVMs.prefetch(ctx, q, true, forms); err != nil {
		return fmt.Errorf("read ahead the VMs shown by name: %w", err)
	}
	return nil
}
