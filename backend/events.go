package backend

import (
	"context"
	"errors"
	"time"

	"xenmanager/store"
)

// Event is an event as the operator sees it.
type Event struct {
	ID, Severity, Kind         string
	ObjectType, ObjectID, Name string
	Description                string
	Acknowledged               bool
	CreatedAt                  time.Time
}

// event records an event; failures to record are logged, never returned:
// an event is about another failure and must not replace it.
func (m *Manager) event(ctx context.Context, severity, kind, objType, objID, objName, poolID, desc string) {
	e := store.Event{ID: NewID(TypeEvent), Severity: severity, Kind: kind, ObjectType: objType, ObjectID: objID,
		ObjectName: objName, PoolID: poolID, Description: desc, CreatedAt: time.Now()}
	ctx = context.WithoutCancel(ctx)
	if err := m.st.Write(ctx, func(q *store.Queries) error { return q.InsertEvent(ctx, e) }); err != nil {
		m.log.Error("record event", "kind", kind, "err", err)
	}
}

// Events returns the newest events first; unacknowledged ones only when
// unackedOnly.
func (m *Manager) Events(ctx context.Context, unackedOnly bool, limit int) ([]Event, error) {
	l, err := m.StreamEvents(ctx, unackedOnly, limit)
	return collected(ctx, l, err)
}

// AckEvent acknowledges an event of a pool the actor sees (Operators and
// Administrators).
func (m *Manager) AckEvent(ctx context.Context, id string) error {
	if err := m.authorize(ctx, PermVMLifecycle); err != nil {
		return err
	}
	sc, err := m.scope(ctx)
	if err != nil {
		return err
	}
	if e, err := m.st.Read().Event(ctx, id); err == nil && !sc.sees(e.PoolID) {
		return errorf(KindNotFound, "Event id=%s not found", id)
	}
	err = m.st.Write(ctx, func(q *store.Queries) error { return q.AckEvent(ctx, id) })
	if errors.Is(err, store.ErrNotFound) {
		return errorf(KindNotFound, "Event id=%s not found", id)
	}
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "acknowledge event", Cause: err}
	}
	return nil
}
