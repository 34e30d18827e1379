package shell

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend/agentapi"
)

// runTyped types line into an interactive session and waits (a bounded
// wait) until its result and the next prompt have arrived; it returns the
// output since the line was typed. It may run in any goroutine.
func (tc *termClient) runTyped(line string) (string, error) {
	mark := len(tc.out.String())
	if _, err := tc.stdin.Write([]byte(line + "\r")); err != nil {
		return "", fmt.Errorf("type %q: %w", line, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := tc.out.String()[mark:]
		if i := strings.Index(out, "Status: "); i >= 0 && strings.Contains(out[i:], "OVM> ") {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%q: no result and prompt within 60 s", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A small load with the default limits: 20 interactive sessions (each with
// its front-end process) from 4 addresses run 5 commands each while a batch
// starts 50 VMs on two simulated agents that answer start_vm 200 ms late.
// Nothing is refused, no command fails, the batch succeeds, and the OS
// threads come back to within maxExtraThreads of where they were.
// cmd/xenbench's figure 9 is the full load (200 sessions x 20 commands
// during a 500-VM batch), with latencies and memory.
func TestLoadSessionsDuringBatch(t *testing.T) {
	const sessions, addresses, commandsEach, vms = 20, 4, 5, 50
	e := newEnv(t, 2, 65536)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	var create strings.Builder
	for i := range vms {
		fmt.Fprintf(&create, "create Vm name=load-%d repository=repo1 memory=256 cpuCount=1\n", i)
	}
	if out, st := e.batch(create.String()); st != 0 {
		t.Fatalf("create the VMs: exit %d\n%s", st, firstLines(out, 20))
	}
	srv, addr := e.startServer(func(c *Config) { c.PromptCommand = frontEnd(roleRealPrompt) }, nil)
	warm := e.openTerm(t, addr, 120, 40)
	warm.waitText("OVM> ", 1)
	warm.typeText("exit\r")
	warm.waitEnd()
	before := osThreads(t)

	// The operators log in one after another from their addresses.
	terms := make([]*termClient, sessions)
	for i := range terms {
		terms[i] = e.openTermFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%addresses), addr, 120, 40)
	}
	for _, tc := range terms {
		tc.waitText("OVM> ", 1)
	}
	for _, a := range e.agents {
		if err := a.Sim().SimSet(map[string]any{"latency_ms": map[string]any{agentapi.MethodStartVM: int64(200)}}); err != nil {
			t.Fatal(err)
		}
	}
	batch := make(chan error, 1)
	go func() {
		batch <- execFrom("127.0.0.1", addr, "admin", e.password, "start Vm name=load-* multiple=Yes")
	}()

	var wg sync.WaitGroup
	errs := make(chan error, sessions*commandsEach)
	for i, tc := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines := []string{"list Vm", fmt.Sprintf("show Vm name=load-%d", i), "list Server", "list Job", "showclisession"}
			for _, line := range lines[:commandsEach] {
				out, err := tc.runTyped(line)
				switch {
				case err != nil:
					errs <- fmt.Errorf("session %d: %w", i, err)
					return
				case !strings.Contains(out, "Status: Success"):
					errs <- fmt.Errorf("session %d: %q did not succeed:\n%s", i, line, firstLines(out, 10))
				}
			}
			tc.stdin.Write([]byte("exit\r"))
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatalf("%d errors under load:\n%v", len(all), err)
	}
	if err := <-batch; err != nil {
		t.Fatalf("the batch start under load: %v", err)
	}
	for _, tc := range terms {
		if st := tc.waitEnd(); st != 0 {
			t.Fatalf("a session ended with status %d", st)
		}
	}
	eventually(t, "every front-end process ended", func() bool { return srv.frontEnds() == 0 })
	if after := osThreads(t); after > before+maxExtraThreads {
		t.Fatalf("OS threads: %d before the load, %d after; want at most %d more", before, after, maxExtraThreads)
	}
}

// execFrom runs command by exec as user from the loopback address src; an
// error unless it exits 0. It may run in any goroutine.
func execFrom(src, addr, user, password, command string) error {
	c, err := sshFrom(src, addr, user, gossh.Password(password))
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.CombinedOutput(command)
	if err != nil {
		return fmt.Errorf("%q: %w\n%s", command, err, firstLines(string(out), 20))
	}
	return nil
}

// firstLines is the start of s, for a failure message.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
