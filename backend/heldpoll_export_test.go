package backend

// HeldBy reports whether a held get_events follows server id now, for the
// tests of holdEvents.
func (m *Manager) HeldBy(id string) bool { return m.heldBy(id) }

// ProbedWithoutWait reports whether the watcher asked server id's agent
// and found it without agentapi.ExtEventsWait.
func (m *Manager) ProbedWithoutWait(id string) bool {
	m.hb.mu.Lock()
	defer m.hb.mu.Unlock()
	p, ok := m.hb.probed[id]
	return ok && !p.has
}
