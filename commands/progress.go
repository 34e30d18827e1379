package commands

import (
	"context"
	"fmt"
	"strings"

	"xenmanager/backend"
)

// drawProgress shows the jobs being waited for as a bar: one job's own
// progress, or for several (a multi-object action) how many have ended.
func (s *Session) drawProgress(ctx context.Context, ids []string) {
	ctx = backend.WithActor(ctx, s.actor)
	switch len(ids) {
	case 0:
		return
	case 1:
		j, err := s.backend.Job(ctx, ids[0])
		if err != nil {
			return
		}
		label := j.Summary
		if j.Message != "" {
			label += ": " + j.Message
		}
		s.opts.Progress(bar(j.Progress, label))
	default:
		ended, err := s.backend.JobsEnded(ctx, ids)
		if err != nil {
			return
		}
		s.opts.Progress(bar(ended*100/len(ids), fmt.Sprintf("%d of %d jobs done", ended, len(ids))))
	}
}

// bar draws pct as a 30-column bar followed by label.
func bar(pct int, label string) string {
	const width = 30
	pct = min(max(pct, 0), 100)
	filled := pct * width / 100
	return fmt.Sprintf("[%s%s] %3d%% %s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), pct, label)
}
