package backend

import (
	"context"
	"fmt"
	"time"

	"xenmanager/backend/agentclient"
)

// followProgressEvery is how often a long agent call's progress is asked for.
const followProgressEvery = 250 * time.Millisecond

// followProgress asks c for the progress of the long call under key while
// it runs and maps it onto the job's from..to percent, labelled with what.
// The returned stop ends the polling; call it when the long call returns.
func followProgress(ctx context.Context, j *jobRun, c *agentclient.Client, key, what string, from, to int) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(followProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p, err := c.GetOperationProgress(ctx, key)
			if err == nil && p.Total > 0 {
				j.progress(from+int(int64(to-from)*p.Done/p.Total), fmt.Sprintf("%s: %s", what, p.Phase))
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}
