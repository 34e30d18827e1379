package backend_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
)

// copiesSeen is the most copies the agents ran at once, as watched while a
// clone runs: on one server (its copy_file calls in flight, from its
// progress entries) and into the repository (the hidden temporary files of
// the copies being written, all of them seen in one directory read).
type copiesSeen struct {
	perServer []int // by agent
	inRepo    int
}

// watchCopies samples the agents' copies in flight and the repository's
// temporary files until stop is closed, then reports the most of each.
func (f *cloneFleet) watchCopies(stop <-chan struct{}) <-chan copiesSeen {
	out := make(chan copiesSeen, 1)
	go func() {
		seen := copiesSeen{perServer: make([]int, len(f.c.Agents))}
		tick := time.NewTicker(time.Millisecond) // a sampling period, not a synchronisation
		defer tick.Stop()
		for {
			for i, a := range f.c.Agents {
				seen.perServer[i] = max(seen.perServer[i], a.Host().RunningOperations(agentapi.ProgressCopy))
			}
			if entries, err := os.ReadDir(filepath.Join(f.repoDir, "VirtualDisks")); err == nil {
				n := 0
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
						n++
					}
				}
				seen.inRepo = max(seen.inRepo, n)
			}
			select {
			case <-stop:
				out <- seen
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// cloneParallelism* of edit Manager bound the copies a clone runs at once,
// with real agents whose copies are slowed (sim_set copy_mib_per_s) so
// that they overlap: the most copies seen at once on a server never
// exceeds cloneParallelismPerServer and reaches it, the most written into
// the repository never exceeds cloneParallelismPerRepository and reaches
// the smaller bound; with two servers, each runs as many as the server
// limit allows, more in all than one server may.
func TestCloneParallelismBoundsCopiesAtTheAgents(t *testing.T) {
	for _, tc := range []struct {
		name                string
		agents              int
		perServer, perRepo  int64
		copies              int
		wantServer, wantRep int // the most seen at once on one server and in the repository
	}{
		{"per server", 1, 2, 16, 6, 2, 2},
		{"per repository", 1, 8, 3, 6, 3, 3},
		{"per server, on each of two", 2, 2, 16, 8, 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCloneFleet(t, tc.agents)
			m, ctx := f.m, f.ctx
			if _, err := m.EditManager(ctx, backend.EditManagerRequest{CloneParallelismPerServer: new(tc.perServer),
				CloneParallelismPerRepository: new(tc.perRepo)}); err != nil {
				t.Fatal(err)
			}
			f.vmWithDisks(t, "src", 1, 4)
			// 4 MiB at 8 MiB/s: each copy lasts half a second at the agent.
			for i := range f.c.Agents {
				if err := f.c.AgentClient(i).Call(context.Background(), agentapi.MethodSimSet, nil, map[string]any{"copy_mib_per_s": 8}); err != nil {
					t.Fatal(err)
				}
			}
			stop := make(chan struct{})
			watched := f.watchCopies(stop)
			res, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{Name: "src"}, DestType: "Vm", DestName: "c",
				Copies: tc.copies})
			close(stop)
			seen := <-watched
			if err != nil {
				t.Fatalf("clone of %d copies: %v", tc.copies, err)
			}
			if len(res.Copies) != tc.copies {
				t.Fatalf("clone made %d copies, want %d", len(res.Copies), tc.copies)
			}
			t.Logf("most copies at once: %v by server, %d into the repository", seen.perServer, seen.inRepo)
			most := 0
			for i, n := range seen.perServer {
				if int64(n) > tc.perServer {
					t.Errorf("server %d ran %d copies at once; cloneParallelismPerServer=%d", i+1, n, tc.perServer)
				}
				most = max(most, n)
			}
			if seen.inRepo > int(tc.perRepo) {
				t.Errorf("%d copies were written into the repository at once; cloneParallelismPerRepository=%d", seen.inRepo, tc.perRepo)
			}
			if most != tc.wantServer || seen.inRepo != tc.wantRep {
				t.Errorf("at most %d copies at once on a server and %d into the repository; want %d and %d (the limits reached)",
					most, seen.inRepo, tc.wantServer, tc.wantRep)
			}
		})
	}
}
