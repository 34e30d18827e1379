package main

import "runtime"

// minProcs is the fewest Ps (GOMAXPROCS) the agent runs with. Go gives a
// process one P per CPU it may use, so one on a machine, cgroup or
// taskset of one CPU. With one P, a thread that the kernel stops while it
// holds it (preempted for another process sharing the core, or in the
// middle of the write(2) of an answer) stops every call until the kernel
// runs it again; with two, another thread takes the next call meanwhile,
// and the agent's calls compete for the core as two threads, not one. On
// a core shared with other sessions' work (figure 7 pinned to one core,
// docs/performance.md), one P left the agent's core busy a third of the
// time and runnable but waiting the rest; two doubled its calls per
// second at the same CPU per call. More Ps cost more thread hand-offs per
// call (four: a third more CPU per call) and gained less.
const minProcs = 2

// raiseProcs sets GOMAXPROCS to minProcs when the runtime chose fewer,
// unless the environment variable GOMAXPROCS (getenv) sets it: an
// operator's choice stands.
func raiseProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") != "" {
		return
	}
	if runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}
