package backend

import "context"

// JobRun is what an operation run by RunJob gets: the check it makes
// between agent calls, and a channel closed when the job is aborted.
type JobRun struct {
	Check   func() error
	Aborted <-chan struct{}
}

// RunJob runs op as a job on objects (Manager.job), as the actor of ctx,
// in no pool and as m's options say: the tests of package backend_test, which open the
// manager with managertest and so cannot be inside package backend, reach
// the job runner through it.
func (m *Manager) RunJob(ctx context.Context, summary string, objects []string, op func(ctx context.Context, j JobRun) (any, error)) (any, error) {
	return m.job(ctx, actorFrom(ctx), "", summary, objects, func(ctx context.Context, j *jobRun) (any, error) {
		return op(ctx, JobRun{Check: j.check, Aborted: j.abort.Done()})
	})
}
