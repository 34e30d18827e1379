package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"time"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
)

const (
	rpcClients = 8  // concurrent clients, one connection each
	rpcDomains = 20 // live domains on the agent, so that list_vms has rows
)

// agentRPC is figure 7: XML-RPC calls per second (echo, list_vms) from 8
// concurrent clients with keep-alive against one xenagent process, beside
// the same calls from the same load generator against a minimal Python
// SimpleXMLRPCServer with ThreadingMixIn, which answers plain HTTP (no TLS,
// no basic auth: that favours the baseline) and returns, for list_vms, the
// very list the agent returns.
//
// On a machine of 2 cores or more, with taskset, the load generator (a
// child process, xenbench rpc-load) runs on core 0 and each server on core
// 1, the same for both servers: the figure is then what one core of server
// does, not how the server and the client share the cores. The same
// measurement unpinned (a second agent and Python server started without
// taskset) is in the notes.
func (b *bench) agentRPC(ctx context.Context) {
	fmt.Println("\n== figure 7: agent XML-RPC calls per second")
	dir := filepath.Join(b.work, "rpc")
	pin, pinErr := rpcPinning()
	// sides is one agent and one Python server, pinned or not, and what
	// was measured of them by method.
	type sides struct {
		pinned    bool
		agent, py rpcServer
		pyErr     error
		label     string
		serverPin []string
		clientPin []string
		rates     map[string]*rpcRates
	}
	var all []*sides
	if pinErr == nil {
		all = append(all, &sides{pinned: true, label: "pinned", serverPin: pin.server, clientPin: pin.client})
	} else {
		b.res.note("figure 7: server and load generator not pinned to cores (%s): the rows are the unpinned measurement", pinErr)
	}
	all = append(all, &sides{label: "unpinned"})
	var listXML []byte
	for i, s := range all {
		sub := filepath.Join(dir, s.label)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			b.res.fail("7", "agent XML-RPC calls/s", err)
			return
		}
		var err error
		s.agent, err = b.startRPCAgent(ctx, sub, s.serverPin)
		if err != nil {
			b.res.fail("7", "agent XML-RPC calls/s", fmt.Errorf("%s agent: %w", s.label, err))
			return
		}
		defer s.agent.stop()
		if i == 0 {
			if listXML, err = rawCall(s.agent.url, agentapi.MethodListVMs); err != nil {
				b.res.fail("7", "agent XML-RPC calls/s", err)
				return
			}
		}
		s.py, s.pyErr = startPythonRPC(ctx, sub, listXML, s.serverPin)
		if s.pyErr == nil {
			defer s.py.stop()
		}
		s.rates = map[string]*rpcRates{}
	}
	methods := []string{agentapi.MethodEcho, agentapi.MethodListVMs}
	// The sides take turns: each repetition measures every method on the
	// agent and on Python, pinned and unpinned, so that a change in the
	// machine's load falls on all of them.
	for range b.plan.rpcReps {
		for _, method := range methods {
			for _, s := range all {
				r := s.rates[method]
				if r == nil {
					r = &rpcRates{}
					s.rates[method] = r
				}
				m, err := b.callRate(ctx, s.agent, method, s.clientPin)
				if err != nil {
					b.res.fail("7", fmt.Sprintf("agent `%s` calls/s (%s)", method, s.label), err)
					return
				}
				r.agent = append(r.agent, m)
				if s.pyErr == nil {
					m, err := b.callRate(ctx, s.py, method, s.clientPin)
					if err != nil {
						s.pyErr = err
					} else {
						r.py = append(r.py, m)
					}
				}
			}
		}
	}
	shown := all[0] // the rows: pinned when it could be
	how := "HTTPS keep-alive"
	if shown.pinned {
		how += fmt.Sprintf(", server on core %s, load generator on core %s", pin.serverCore, pin.clientCore)
	}
	for _, method := range methods {
		measure := fmt.Sprintf("agent `%s` calls/s, %d clients, %s", method, rpcClients, how)
		r := shown.rates[method]
		v := median(r.rates(r.agent))
		row := row{Fig: "7", Measure: measure, Value: fmtRate(v), Target: ">= 5 x Python"}
		if shown.pyErr != nil {
			row.Baseline = "missing: " + oneLine(shown.pyErr.Error())
		} else {
			bv := median(r.rates(r.py))
			row.Baseline = "Python SimpleXMLRPCServer+ThreadingMixIn, plain HTTP: " + fmtRate(bv)
			if shown.pinned {
				row.Baseline = "Python SimpleXMLRPCServer+ThreadingMixIn, plain HTTP, same pinning: " + fmtRate(bv)
			}
			row.Ratio = ratio(v, bv)
			row.Met = yesNo(v >= 5*bv)
		}
		b.res.add(row)
		for _, s := range all {
			r := s.rates[method]
			if s.pyErr != nil {
				b.res.note("figure 7, %s, %s: agent %.0f calls/s (Python missing)", method, s.label, median(r.rates(r.agent)))
				continue
			}
			b.res.note("figure 7, %s, %s: agent %.0f calls/s, Python %.0f (%s); per CPU-second of the server (utime+stime): agent %.0f, Python %.0f (%s); "+
				"busy: agent %.0f %% of a core with its load generator at %.0f %%, Python %.0f %% with its load generator at %.0f %%",
				method, s.label, median(r.rates(r.agent)), median(r.rates(r.py)), ratio(median(r.rates(r.agent)), median(r.rates(r.py))),
				median(r.perCPU(r.agent)), median(r.perCPU(r.py)), ratio(median(r.perCPU(r.agent)), median(r.perCPU(r.py))),
				median(r.serverBusy(r.agent)), median(r.clientBusy(r.agent)), median(r.serverBusy(r.py)), median(r.clientBusy(r.py)))
		}
	}
	b.res.note("figure 7: one xenagent process with %d live domains (list_vms returns %d bytes of XML); "+
		"the load generator is a child process (xenbench rpc-load) with %d goroutines, each writing the call on its own keep-alive connection "+
		"and reading the whole answer by its Content-Length (checked for HTTP 200, a methodResponse and no fault, not decoded); "+
		"call for %s per measurement, %d measurements, the sides in turn; the Python server speaks HTTP/1.1 keep-alive without TLS or auth",
		rpcDomains, len(listXML), rpcClients, b.plan.rpcWindow, b.plan.rpcReps)
	if shown.pinned {
		b.res.note("figure 7, pinned: `taskset -c %s` for each server, `taskset -c %s` for the load generator (other processes of the machine are not pinned)",
			pin.serverCore, pin.clientCore)
	}
}

// rpcPin is how figure 7 pins its processes: command prefixes that run a
// program on one core.
type rpcPin struct {
	server, client         []string
	serverCore, clientCore string
}

// rpcPinning finds taskset and two cores; the error says why the figure
// cannot be pinned.
func rpcPinning() (rpcPin, error) {
	p := rpcPin{serverCore: "1", clientCore: "0"}
	if runtime.NumCPU() < 2 {
		return p, fmt.Errorf("%d core", runtime.NumCPU())
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return p, fmt.Errorf("taskset not installed (Debian: util-linux)")
	}
	p.server = []string{ts, "-c", p.serverCore}
	p.client = []string{ts, "-c", p.clientCore}
	return p, nil
}

// rpcServer is a server of figure 7: its URL (with credentials), its
// process and how to stop it.
type rpcServer struct {
	url  string
	pid  int
	stop func()
}

// rpcMeasure is one measurement of callRate.
type rpcMeasure struct {
	calls              int64
	seconds            float64 // wall time of the window
	serverCPU, loadCPU float64 // CPU seconds of the server and of the load generator in the window
}

// rpcRates are the measurements of one method on one pair of servers.
type rpcRates struct{ agent, py []rpcMeasure }

func (rpcRates) rates(ms []rpcMeasure) []float64 {
	return mapMeasures(ms, func(m rpcMeasure) float64 { return float64(m.calls) / m.seconds })
}

func (rpcRates) perCPU(ms []rpcMeasure) []float64 {
	return mapMeasures(ms, func(m rpcMeasure) float64 {
		if m.serverCPU <= 0 {
			return 0
		}
		return float64(m.calls) / m.serverCPU
	})
}

func (rpcRates) serverBusy(ms []rpcMeasure) []float64 {
	return mapMeasures(ms, func(m rpcMeasure) float64 { return 100 * m.serverCPU / m.seconds })
}

func (rpcRates) clientBusy(ms []rpcMeasure) []float64 {
	return mapMeasures(ms, func(m rpcMeasure) float64 { return 100 * m.loadCPU / m.seconds })
}

func mapMeasures(ms []rpcMeasure, f func(rpcMeasure) float64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}

var agentListenRx = regexp.MustCompile(`xenagent listening on 127\.0\.0\.1:(\d+)`)

// startRPCAgent runs the xenagent binary on a free port with rpcDomains
// running domains, under the command prefix pin (taskset) when given.
func (b *bench) startRPCAgent(ctx context.Context, dir string, pin []string) (rpcServer, error) {
	data := filepath.Join(dir, "agent")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return rpcServer{}, err
	}
	pwFile := filepath.Join(dir, "agent-password")
	password := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return rpcServer{}, err
	}
	args := []string{filepath.Join(b.bin, "xenagent"), "--listen", "127.0.0.1:0", "--data", data,
		"--password-file", pwFile, "--hostname", "rpc-agent", "--cpus", "64", "--memory-mib", "262144"}
	if b.profile != "" {
		args = append(args, "--cpuprofile", filepath.Join(b.profile, "fig7-agent-"+filepath.Base(dir)+".pprof"))
	}
	args = append(slices.Clone(pin), args...)
	cmd := exec.Command(args[0], args[1:]...)
	l, err := startListener(ctx, cmd, "xenagent", filepath.Join(dir, "agent.log"), agentListenRx, 30*time.Second, 5*time.Second)
	if err != nil {
		return rpcServer{}, err
	}
	stop, port := l.stop, l.port
	c, err := agentclient.New(agentclient.Config{Address: "127.0.0.1", Port: port, Password: password})
	if err != nil {
		stop()
		return rpcServer{}, err
	}
	defer c.Close()
	if err := populateAgent(ctx, c, filepath.Join(dir, "repository")); err != nil {
		stop()
		return rpcServer{}, fmt.Errorf("give the agent %d domains: %w", rpcDomains, err)
	}
	return rpcServer{url: fmt.Sprintf("https://%s:%s@127.0.0.1:%d%s", agentapi.AgentUser, password, port, agentapi.Path), pid: l.pid, stop: stop}, nil
}

// populateAgent takes ownership of the agent, creates a repository and
// starts rpcDomains VMs on it, as a manager would.
func populateAgent(ctx context.Context, c *agentclient.Client, repoDir string) error {
	if err := c.TakeOwnership(ctx, backend.NewID(backend.TypeManager), "xenbench"); err != nil {
		return err
	}
	repo := backend.NewID(backend.TypeRepository)
	if err := c.CreateRepository(ctx, repoDir, backend.MountRoot+"/"+repo, repo, "rpc-repo"); err != nil {
		return err
	}
	for i := range rpcDomains {
		id := backend.NewID(backend.TypeVM)
		params := agentapi.VMParams{
			agentapi.KeyName: id, agentapi.KeyUUID: id, agentapi.KeySimpleName: fmt.Sprintf("rpc-vm-%d", i),
			agentapi.KeyDomainType: "XEN_HVM", agentapi.KeyMemory: int64(512), agentapi.KeyMaxMem: int64(512),
			agentapi.KeyVCPUs: int64(1), agentapi.KeyMaxVCPUs: int64(1), agentapi.KeyDisk: []string{},
			agentapi.KeyVif: []string{}, agentapi.KeyBoot: "c", agentapi.KeyOnPoweroff: "destroy",
			agentapi.KeyOnReboot: "restart", agentapi.KeyOnCrash: "restart",
		}
		if err := c.CreateVM(ctx, repo, id, params); err != nil {
			return err
		}
		if err := c.StartVM(ctx, repo, id); err != nil {
			return err
		}
	}
	return nil
}

// insecureTLS: the agent's certificate is self-signed; the benchmark does
// not pin it.
var insecureTLS = &tls.Config{InsecureSkipVerify: true}

// rawCall posts a call and returns the response body, the XML the Python
// server hands back verbatim for list_vms.
func rawCall(url, method string) ([]byte, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS}, Timeout: 30 * time.Second}
	resp, err := hc.Post(url, "text/xml", bytes.NewReader(callBody(method)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("<methodResponse>")) {
		return nil, fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, oneLine(string(b)))
	}
	return b, nil
}

// callBody is the XML-RPC request of method.
func callBody(method string) []byte {
	params := ""
	if method == agentapi.MethodEcho {
		params = "<param><value><string>xenbench</string></value></param>"
	}
	return []byte(fmt.Sprintf(`<?xml version="1.0"?><methodCall><methodName>%s</methodName><params>%s</params></methodCall>`, method, params))
}

// callRate runs the load generator (xenbench rpc-load, under the command
// prefix pin when given) against srv for the plan's window and returns what
// it measured, with the CPU the server process used meanwhile. The load
// generator says "start" once its connections are open and warm, and the
// server's CPU is read then and when it reports.
func (b *bench) callRate(ctx context.Context, srv rpcServer, method string, pin []string) (rpcMeasure, error) {
	self, err := os.Executable()
	if err != nil {
		return rpcMeasure{}, err
	}
	args := append(slices.Clone(pin), self, rpcLoadCmd, "--method", method,
		"--clients", strconv.Itoa(rpcClients), "--window", b.plan.rpcWindow.String())
	ctx, cancel := context.WithTimeout(ctx, b.plan.rpcWindow+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), rpcLoadURLEnv+"="+srv.url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return rpcMeasure{}, err
	}
	if err := procs.start(cmd); err != nil {
		return rpcMeasure{}, fmt.Errorf("start the load generator: %w", err)
	}
	defer procs.forget(cmd)
	var m rpcMeasure
	var cpu0, cpu1 treeCPU
	var sampleErr error
	sc := bufio.NewScanner(stdout)
	var got bool
	for sc.Scan() {
		line := sc.Text()
		if line == "start" {
			cpu0, sampleErr = sampleTreeCPU(srv.pid, false)
			continue
		}
		var secs, cpu float64
		if _, err := fmt.Sscanf(line, "calls %d seconds %g cpu %g", &m.calls, &secs, &cpu); err == nil {
			cpu1, err = sampleTreeCPU(srv.pid, false)
			if sampleErr == nil {
				sampleErr = err
			}
			m.seconds, m.loadCPU, got = secs, cpu, true
		}
	}
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return rpcMeasure{}, ctx.Err()
	}
	if waitErr != nil || !got {
		return rpcMeasure{}, fmt.Errorf("%s: load generator: %v: %s", method, waitErr, oneLine(stderr.String()))
	}
	if sampleErr != nil {
		return rpcMeasure{}, sampleErr
	}
	m.serverCPU = cpuPercent(cpu0, cpu1) / 100 * cpu1.at.Sub(cpu0.at).Seconds()
	return m, nil
}
