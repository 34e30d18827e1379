package backend

import (
	"context"
	"fmt"
	"strings"

	"xenmanager/store"
)

// vmsOn returns the names of the VMs placed on server id (running, paused).
func (m *Manager) vmsOn(ctx context.Context, id string) ([]string, error) {
	vms, err := m.st.Read().VMsOnServer(ctx, id)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "read VMs", Cause: err}
	}
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
	}
	return names, nil
}

// Transitional server statuses: placement skips them.
const (
	ServerLeaving  = "Leaving"
	ServerStopping = "Stopping"
)

// fence takes a server out of placement (status) before a job checks that
// no VM runs there, so that no start can land on it in between; restore
// puts the status back when the job stops short.
func (m *Manager) fence(ctx context.Context, s store.Server, status string) (restore func(), err error) {
	reserved, err := m.place.exclude(s.ID, func() error { return m.setServerStatus(ctx, s.ID, status) })
	if reserved {
		return nil, errorf(KindConflict, "Server %s is receiving a VM right now; try again when it has started", s.Name)
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if err := m.setServerStatus(context.WithoutCancel(ctx), s.ID, s.Status); err != nil {
			m.log.Error("could not restore a server's status", "server", s.Name, "err", err)
		}
	}, nil
}

func refuseWhileVMs(s store.Server, verb string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	shown := names
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return errorf(KindInvalidState, "Server %s runs %d VMs (%s); %s needs none: stop or migrate them first", s.Name, len(names), strings.Join(shown, ", "), verb)
}

// setServerStatus records server id's status; the heartbeats' changes are
// refused to a leader that lost its lease (asLeader).
func (m *Manager) setServerStatus(ctx context.Context, id, status string) error {
	err := m.st.Write(ctx, func(q *store.Queries) error {
		if err := asLeader(ctx, q); err != nil {
			return err
		}
		return q.SetServerStatus(ctx, id, status)
	})
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "record server status", Cause: err}
	}
	return nil
}
