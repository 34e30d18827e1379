package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"xenmanager/backend"
	"xenmanager/backend/agent/libvirt/libvirthost"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

const (
	overheadMeasure = "agent overhead per lifecycle call (pause_vm, unpause_vm), libvirt test:///default"
	testURI         = "test:///default"
	// overheadWarm is how many pause/unpause pairs per side are not
	// counted (connections, caches).
	overheadWarm = 20
)

// agentOverhead is figure 8's third row: pause_vm then unpause_vm of one
// domain through a xenagent process with the libvirt driver (XML-RPC over
// HTTPS with agentclient, as the manager calls it), beside the same pause and
// resume straight through go-libvirt from the harness (look the domain up by
// name, suspend or resume it), on the same domain of libvirtd's test driver
// (test:///default, one instance shared by the daemon's connections to it:
// the agent's and the harness's), alternating pairs, each call timed. The
// test driver does no real work, so what is left is the agent's own cost.
func (b *bench) agentOverhead(ctx context.Context) {
	fmt.Println("\n== figure 8:", overheadMeasure)
	dir := filepath.Join(b.work, "libvirt-test")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.res.fail("8", overheadMeasure, err)
		return
	}
	// The harness's connection first: the test driver's state lives while
	// one connection to it stays open.
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(libvirthost.SystemSocket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.ConnectURI(testURI)); err != nil {
		b.res.fail("8", overheadMeasure, fmt.Errorf("connect to %s on the machine's libvirtd: %w", testURI, err))
		return
	}
	defer l.Disconnect()
	a, err := b.startLibvirtAgent(ctx, dir, "lvtest", testURI)
	if err != nil {
		b.res.fail("8", overheadMeasure, err)
		return
	}
	defer a.kill()
	c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: a.port, Password: a.password})
	if err != nil {
		b.res.fail("8", overheadMeasure, err)
		return
	}
	defer c.Close()
	repo, vm, err := startTestVM(ctx, c, filepath.Join(dir, "repository"))
	if err != nil {
		b.res.fail("8", overheadMeasure, fmt.Errorf("a domain through the agent: %w", err))
		return
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.StopVM(sctx, repo, vm, true)
	}()
	if _, err := l.DomainLookupByName(vm); err != nil {
		b.res.fail("8", overheadMeasure, fmt.Errorf("the agent's domain is not seen on the harness's connection to %s: %w", testURI, err))
		return
	}

	agentPair := func() (time.Duration, time.Duration, error) {
		t0 := time.Now()
		if err := c.PauseVM(ctx, repo, vm); err != nil {
			return 0, 0, fmt.Errorf("pause_vm: %w", err)
		}
		t1 := time.Now()
		if err := c.UnpauseVM(ctx, repo, vm); err != nil {
			return 0, 0, fmt.Errorf("unpause_vm: %w", err)
		}
		return t1.Sub(t0), time.Since(t1), nil
	}
	directPair := func() (time.Duration, time.Duration, error) {
		t0 := time.Now()
		dom, err := l.DomainLookupByName(vm)
		if err == nil {
			err = l.DomainSuspend(dom)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("virDomainSuspend: %w", err)
		}
		t1 := time.Now()
		dom, err = l.DomainLookupByName(vm)
		if err == nil {
			err = l.DomainResume(dom)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("virDomainResume: %w", err)
		}
		return t1.Sub(t0), time.Since(t1), nil
	}
	// An echo on the same client, after each agent pair: the XML-RPC round
	// trip over HTTPS alone, to tell it from the rest of the overhead.
	echo := func() (time.Duration, error) {
		t0 := time.Now()
		if _, err := c.Echo(ctx, "xenbench"); err != nil {
			return 0, fmt.Errorf("echo: %w", err)
		}
		return time.Since(t0), nil
	}
	var agentPause, agentUnpause, directPause, directUnpause, echoes []time.Duration
	var directErr error
	for i := 0; i < overheadWarm+b.plan.lifeCalls && ctx.Err() == nil; i++ {
		// Alternate which side goes first, so that neither always follows
		// the other.
		first, second := "agent", "direct"
		if i%2 == 1 {
			first, second = second, first
		}
		for _, side := range []string{first, second} {
			if side == "agent" {
				p, u, err := agentPair()
				if err != nil {
					b.res.fail("8", overheadMeasure, err)
					return
				}
				e, err := echo()
				if err != nil {
					b.res.fail("8", overheadMeasure, err)
					return
				}
				if i >= overheadWarm {
					agentPause, agentUnpause = append(agentPause, p), append(agentUnpause, u)
					echoes = append(echoes, e)
				}
			} else if directErr == nil {
				p, u, err := directPair()
				if err != nil {
					directErr = err
				} else if i >= overheadWarm {
					directPause, directUnpause = append(directPause, p), append(directUnpause, u)
				}
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	agentAll := durationsMS(append(append([]time.Duration(nil), agentPause...), agentUnpause...))
	v := median(agentAll)
	r := row{Fig: "8", Measure: overheadMeasure, Target: "< 2 ms of agent overhead per call"}
	if directErr != nil {
		r.Value = "agent " + fmtMS(v) + " per call"
		r.Baseline = "missing: " + oneLine(directErr.Error())
	} else {
		directAll := durationsMS(append(append([]time.Duration(nil), directPause...), directUnpause...))
		bv := median(directAll)
		r.Value = fmt.Sprintf("%s (agent %s per call)", fmtMS(v-bv), fmtMS(v))
		r.Baseline = "go-libvirt lookup + suspend/resume: " + fmtMS(bv)
		r.Ratio = ratio(v, bv)
		r.Met = yesNo(v-bv < 2)
		b.res.note("figure 8, agent overhead: %d pause_vm + %d unpause_vm calls per side after %d warm-up pairs, pairs "+
			"alternating sides (which goes first alternates too), each call timed; value = median agent call - median "+
			"direct call; ratio = agent / direct; medians pause/unpause: agent %s / %s, direct %s / %s; p90 agent %s, "+
			"direct %s; an echo on the same client and connection (after each agent pair) %s: the XML-RPC round trip alone. Agent: a xenagent process with --hypervisor libvirt --libvirt-uri %s, called by agentclient (XML-RPC "+
			"over HTTPS, keep-alive, as the manager calls it); it looks the domain up, reads its state "+
			"and suspends or resumes it: 3 libvirt calls where the direct side makes 2. Direct: go-libvirt from the harness on the same daemon's socket, virDomainLookupByName + "+
			"virDomainSuspend/virDomainResume, on the same domain (libvirtd's test driver, shared by both connections)",
			len(agentPause), len(agentUnpause), overheadWarm, fmtMS(median(durationsMS(agentPause))),
			fmtMS(median(durationsMS(agentUnpause))), fmtMS(median(durationsMS(directPause))),
			fmtMS(median(durationsMS(directUnpause))), fmtMS(percentile(agentAll, 90)), fmtMS(percentile(directAll, 90)),
			fmtMS(median(durationsMS(echoes))), testURI)
	}
	b.res.add(r)
}

// startTestVM takes ownership of the agent, creates a repository and starts
// one VM on it, as a manager would, and returns their ids.
func startTestVM(ctx context.Context, c *agentclient.Client, repoDir string) (string, string, error) {
	if err := c.TakeOwnership(ctx, backend.NewID(backend.TypeManager), "xenbench"); err != nil {
		return "", "", err
	}
	repo := backend.NewID(backend.TypeRepository)
	if err := c.CreateRepository(ctx, repoDir, backend.MountRoot+"/"+repo, repo, "lv-test-repo"); err != nil {
		return "", "", err
	}
	id := backend.NewID(backend.TypeVM)
	params := agentapi.VMParams{
		agentapi.KeyName: id, agentapi.KeyUUID: id, agentapi.KeySimpleName: "lifecycle",
		agentapi.KeyDomainType: "XEN_HVM", agentapi.KeyMemory: int64(128), agentapi.KeyMaxMem: int64(128),
		agentapi.KeyVCPUs: int64(1), agentapi.KeyMaxVCPUs: int64(1), agentapi.KeyDisk: []string{},
		agentapi.KeyVif: []string{}, agentapi.KeyBoot: "c", agentapi.KeyOnPoweroff: "destroy",
		agentapi.KeyOnReboot: "restart", agentapi.KeyOnCrash: "restart",
	}
	if err := c.CreateVM(ctx, repo, id, params); err != nil {
		return "", "", err
	}
	if err := c.StartVM(ctx, repo, id); err != nil {
		return "", "", err
	}
	return repo, id, nil
}
