package backend

import "context"

// HAAgentFenced is haAgentFenced, for the test of what the heartbeat does
// with an ha_fenced event.
func (m *Manager) HAAgentFenced(ctx context.Context, serverID, detail string) error {
	s, err := m.st.Read().Server(ctx, serverID)
	if err != nil {
		return err
	}
	c, err := m.clients.get(s)
	if err != nil {
		return err
	}
	m.haAgentFenced(ctx, s, c, detail)
	return nil
}
