package libvirt

// endLedger tells a domain's stop this driver caused (stop, kill, save,
// migration away) from one it did not, by name. libvirt delivers
// lifecycle events on their own connection, after the call that caused
// them has returned and possibly after the driver has made a new run of
// the same domain (a checkpoint's restore, a restart): so each expected
// stop stays pending until its event arrives, in order, and a new run
// does not drop what an earlier run still owes. It is not safe for
// concurrent use; the driver's mu guards it.
type endLedger map[string]*domainEnds

// domainEnds are one domain's expected stops, oldest first; current says
// whether the last of them is the current run's.
type domainEnds struct {
	pending []string
	current bool
}

// expect records that the current run of name is about to be ended by
// the driver, for why; false when that run's stop was already expected
// (a shutdown that falls back to destroy).
func (e endLedger) expect(name, why string) bool {
	de := e[name]
	if de == nil {
		de = &domainEnds{}
		e[name] = de
	}
	if de.current {
		return false
	}
	de.pending = append(de.pending, why)
	de.current = true
	return true
}

// withdraw drops the current run's expected stop after the call that
// would have caused it failed.
func (e endLedger) withdraw(name string) {
	de := e[name]
	if de == nil || !de.current {
		return
	}
	de.pending = de.pending[:len(de.pending)-1]
	de.current = false
	e.tidy(name)
}

// newRun records that name runs again (started, restored, arrived):
// stops expected of its earlier runs stay owed, the new run's is not.
func (e endLedger) newRun(name string) {
	if de := e[name]; de != nil {
		de.current = false
		e.tidy(name)
	}
}

// stopped consumes the oldest expected stop of name when its stop event
// arrives: why and true when the driver caused it.
func (e endLedger) stopped(name string) (string, bool) {
	de := e[name]
	if de == nil || len(de.pending) == 0 {
		return "", false
	}
	why := de.pending[0]
	de.pending = de.pending[1:]
	if len(de.pending) == 0 {
		de.current = false
	}
	e.tidy(name)
	return why, true
}

// reset forgets every expectation: after the event connection was lost,
// the events they waited for may never come.
func (e endLedger) reset() {
	clear(e)
}

func (e endLedger) tidy(name string) {
	if de := e[name]; de != nil && len(de.pending) == 0 && !de.current {
		delete(e, name)
	}
}
