package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"xenmanager/store"
)

// Evacuation is what entering maintenance mode did with the VMs that ran
// on the server: one entry per VM, in the order they were found (by name).
type Evacuation struct {
	Server NamedRef
	Moves  []EvacuatedVM
}

// EvacuatedVM is one VM of an evacuation: the migrate job that moved it and
// where to, or why it stayed.
type EvacuatedVM struct {
	VM NamedRef
	// JobID is the VM's migrate job; "" when none was started (a paused
	// VM, a server that does not answer, an aborted evacuation).
	JobID string
	// To is where the VM runs now; zero when it stayed.
	To NamedRef
	// Err says why the VM stayed; nil when it moved.
	Err error
}

// Moved returns the VMs that left the server.
func (e Evacuation) Moved() []EvacuatedVM { return e.filter(true) }

// Stayed returns the VMs that could not leave the server.
func (e Evacuation) Stayed() []EvacuatedVM { return e.filter(false) }

func (e Evacuation) filter(moved bool) []EvacuatedVM {
	var out []EvacuatedVM
	for _, mv := range e.Moves {
		if (mv.Err == nil) == moved {
			out = append(out, mv)
		}
	}
	return out
}

// String is the evacuation in one line, the job's result: how many VMs
// left and where to, and which stayed (the first ten of each).
func (e Evacuation) String() string {
	if len(e.Moves) == 0 {
		return "no VM ran on " + e.Server.Name
	}
	var moved []string
	for i, mv := range e.Moved() {
		if i == 10 {
			moved = append(moved, fmt.Sprintf("and %d more", len(e.Moved())-10))
			break
		}
		if mv.To.Name == "" {
			moved = append(moved, mv.VM.Name+" stopped meanwhile")
			continue
		}
		moved = append(moved, mv.VM.Name+" to "+mv.To.Name)
	}
	s := fmt.Sprintf("%d of %d VMs left %s", len(e.Moved()), len(e.Moves), e.Server.Name)
	if len(moved) > 0 {
		s += " (" + strings.Join(moved, ", ") + ")"
	}
	if stayed := e.Stayed(); len(stayed) > 0 {
		var names []string
		for i, mv := range stayed {
			if i == 10 {
				names = append(names, fmt.Sprintf("and %d more", len(stayed)-10))
				break
			}
			names = append(names, mv.VM.Name)
		}
		s += "; stayed: " + strings.Join(names, ", ")
	}
	return s
}

// err is the evacuation's failure when a VM stayed: it says that the
// server is in maintenance mode all the same, and names each VM that
// stayed with why (the first ten); its kind is the first failure's.
func (e Evacuation) err() error {
	stayed := e.Stayed()
	if len(stayed) == 0 {
		return nil
	}
	var why []string
	for i, mv := range stayed {
		if i == 10 {
			why = append(why, fmt.Sprintf("and %d more (show Job lists their migrate jobs)", len(stayed)-10))
			break
		}
		why = append(why, "Vm "+mv.VM.Name+": "+Message(mv.Err))
	}
	return &Error{Kind: KindOf(stayed[0].Err), Cause: stayed[0].Err, Msg: fmt.Sprintf(
		"Server %s is in maintenance mode, but %d of %d VMs could not be migrated off it: %s", e.Server.Name, len(stayed), len(e.Moves),
		strings.Join(why, "; "))}
}

// evacuate live-migrates the VMs running on server s (in maintenance mode
// already, so that placement sends nothing new there) to other servers of
// its pool: one migrate job per VM, placement choosing the destination as
// for migrate without destServer, at most the manager's
// evacuationParallelism at once. A paused VM stays (migration moves running
// VMs; the operator decides whether to unpause or stop it), as do the VMs
// of a server that does not answer. VMs that reach the server while the
// evacuation runs (a start placed there before maintenance mode was
// recorded) are moved too. An abort of j starts no further migration; those
// in flight end. It returns the evacuation and its failure (Evacuation.err).
func (m *Manager) evacuate(ctx context.Context, j *jobRun, s store.Server) (Evacuation, error) {
	ev := Evacuation{Server: NamedRef{s.ID, s.Name}}
	settings, err := m.settings(ctx)
	if err != nil {
		return ev, err
	}
	tried := map[string]bool{}
	for {
		vms, err := m.st.Read().VMsOnServer(ctx, s.ID)
		if err != nil {
			return ev, &Error{Kind: KindInternal, Msg: "read the server's VMs", Cause: err}
		}
		var round []store.VM
		for _, v := range vms {
			if !tried[v.ID] {
				tried[v.ID] = true
				round = append(round, v)
			}
		}
		if len(round) == 0 {
			break
		}
		first := len(ev.Moves)
		ev.Moves = append(ev.Moves, make([]EvacuatedVM, len(round))...)
		m.evacuateRound(ctx, j, s, round, ev.Moves[first:], &ev, settings.EvacuationParallelism)
		if j.check() != nil {
			break
		}
	}
	if err := j.check(); err != nil {
		return ev, err
	}
	return ev, ev.err()
}

// evacuateRound migrates vms off s, at most parallel at once, writing each
// outcome into out (out[i] for vms[i]) and the job's progress over all of
// ev's VMs.
func (m *Manager) evacuateRound(ctx context.Context, j *jobRun, s store.Server, vms []store.VM, out []EvacuatedVM, ev *Evacuation, parallel int) {
	var mu sync.Mutex // guards done and the progress reported
	done := len(ev.Moves) - len(vms)
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		done++
		j.progress(done*100/len(ev.Moves), fmt.Sprintf("%d of %d VMs done off %s", done, len(ev.Moves), s.Name))
	}
	j.progress(done*100/len(ev.Moves), fmt.Sprintf("migrating %d VMs off %s", len(ev.Moves)-done, s.Name))
	slots := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, v := range vms {
		out[i].VM = NamedRef{v.ID, v.Name}
		if err := m.cannotEvacuate(s, v); err != nil {
			out[i].Err = err
			report()
			continue
		}
		slots <- struct{}{}
		if err := j.check(); err != nil {
			<-slots
			out[i].Err = errorf(KindConflict, "not migrated: the evacuation of %s was aborted", s.Name)
			report()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			out[i].JobID, out[i].To, out[i].Err = m.evacuateVM(ctx, s, v)
			report()
		}()
	}
	wg.Wait()
}

// cannotEvacuate says why v is not migrated off s without trying: s does
// not answer, or v is paused; nil when it may go.
func (m *Manager) cannotEvacuate(s store.Server, v store.VM) error {
	switch {
	case s.Status != ServerRunning:
		return errorf(KindInvalidState, "Server %s is %s, so Vm %s cannot be migrated off it; once the server is off, record the VM stopped with stop Vm id=%s force=Yes",
			s.Name, s.Status, v.Name, v.ID)
	case v.Status == VMPaused:
		return errorf(KindInvalidState, "Vm %s is Paused and evacuation migrates running VMs: unpause it and put the server in maintenance mode again, or stop it",
			v.Name)
	}
	return nil
}

// evacuateVM migrates v off s where placement sends it, as a migrate job
// of its own (locking the VM, checking its state again), and returns the
// job, the destination and the job's failure. A VM that left s otherwise
// meanwhile (stopped, migrated by someone else) is not a failure: To is
// then where it is now, zero when it is not running.
func (m *Manager) evacuateVM(ctx context.Context, s store.Server, v store.VM) (jobID string, to NamedRef, err error) {
	var mu sync.Mutex // guards jobID: Observe is called from the job runner
	child := m.With(RunOptions{Terse: true, Observe: func(id string) {
		mu.Lock()
		jobID = id
		mu.Unlock()
	}})
	_, mig, err := child.MigrateVM(ctx, Ref{ID: v.ID}, Ref{})
	mu.Lock()
	defer mu.Unlock()
	if err == nil {
		return jobID, mig.To, nil
	}
	cur, rerr := m.st.Read().VM(ctx, v.ID)
	switch {
	case errors.Is(rerr, store.ErrNotFound):
		return jobID, NamedRef{}, nil // deleted meanwhile
	case rerr != nil || cur.ServerID == s.ID:
		return jobID, NamedRef{}, err
	}
	if cur.ServerID != "" {
		if where, serr := m.st.Read().Server(ctx, cur.ServerID); serr == nil {
			to = NamedRef{where.ID, where.Name}
		}
	}
	return jobID, to, nil
}
