package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeFile writes text to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serve takes its settings from the command line, then the environment,
// then the --config file (named here by XENMANAGER_CONFIG): each of the
// three wins where it should, and the settings take effect.
func TestServeTakesSettingsFromEnvironmentAndFile(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "from-file")
	config := writeFile(t, dir, "xenmanager.toml", `# the file's values
data = "`+data+`"
demo = 3
log-format = "text"
listen = "127.0.0.1:99999"
`)
	profile := filepath.Join(dir, "cpu.prof")
	m := startManagerWith(t, data, []string{
		"XENMANAGER_CONFIG=" + config,
		"XENMANAGER_DEMO=1",                 // wins over the file's 3
		"XENMANAGER_LOG_FORMAT=json",        // wins over the file's text
		"XENMANAGER_LISTEN=127.0.0.1:99999", // loses to --listen
		"XENMANAGER_CPUPROFILE=" + profile,
	}, "--listen", "127.0.0.1:0")

	out, status := m.ssh("", false, "list Server")
	if status != 0 || strings.Count(out, "  id:") != 1 {
		t.Fatalf("list Server: exit %d, want the one demo server of XENMANAGER_DEMO=1 (the file says 3)\n%s", status, out)
	}
	if out, status := m.ssh("show Server name=ovs1\n", false); status != 0 {
		t.Fatalf("a batch of show Server: exit %d\n%s", status, out)
	}
	m.stop()
	// The demo's simulated agents listen on loopback only, wherever the
	// manager listens.
	if servers := serverAddresses(t, openForInspection(t, filepath.Join(data, "manager.db"))); !regexp.MustCompile(`^ovs1=127\.0\.0\.1:\d+ $`).MatchString(servers) {
		t.Errorf("the demo server is at %q, want 127.0.0.1", servers)
	}

	var commands []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(m.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON (XENMANAGER_LOG_FORMAT=json): %v\n%s", err, line)
		}
		if rec["msg"] == "command" {
			commands = append(commands, rec)
		}
	}
	want := []struct{ command, session string }{{"list Server", "exec"}, {"show Server name=ovs1", "batch"}}
	if len(commands) != len(want) {
		t.Fatalf("%d command lines in the log, want %d:\n%s", len(commands), len(want), m.stderr)
	}
	for i, w := range want {
		rec := commands[i]
		remote, _ := rec["remote"].(string)
		if _, isNumber := rec["duration_ms"].(float64); rec["command"] != w.command || rec["session"] != w.session || rec["status"] != "ok" ||
			rec["user"] != "admin" || !strings.HasPrefix(remote, "127.0.0.1:") || !isNumber {
			t.Errorf("the log's command line is %v; want %s, %s, ok, admin, from 127.0.0.1, with duration_ms", rec, w.command, w.session)
		}
	}
	if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
		t.Errorf("XENMANAGER_CPUPROFILE wrote no profile: %v", err)
	}
}

// xenagent takes its settings from the environment and its --config file,
// named here on the command line: the manager discovers it under the host
// name the environment gives (over the file's), with the memory the file
// gives, at the address the file gives; its log is JSON.
func TestAgentTakesSettingsFromEnvironmentAndFile(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	pw := writeFile(t, dir, "agent.pw", "file-secret\n")
	config := writeFile(t, dir, "xenagent.toml", `listen = "127.0.0.1:0"
data = "`+filepath.Join(dir, "agent")+`"
password-file = "`+pw+`"
hostname = "from-file"
memory-mib = 3072
cpus = 3
log-format = "text"
`)
	cmd := exec.Command(buildBinary(t, "xenagent"), "--config", config)
	cmd.Env = append(os.Environ(), "XENAGENT_HOSTNAME=from-env", "XENAGENT_LOG_FORMAT=json",
		"XENAGENT_CONFIG="+filepath.Join(dir, "missing.toml")) // --config wins
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	port := ""
	sc := bufio.NewScanner(stdout)
	for port == "" && sc.Scan() {
		if m := agentListenRx.FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
		}
	}
	if port == "" {
		t.Fatalf("xenagent did not listen on the file's 127.0.0.1:0:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	m := startManager(t, filepath.Join(dir, "data"), 0)
	out, status := m.ssh("discoverServer ipAddress=127.0.0.1 port="+port+" password=file-secret\nshow Server name=from-env\n", false)
	if status != 0 || !strings.Contains(out, "Memory (MiB) = 3072") {
		t.Fatalf("discover the agent and show Server name=from-env: exit %d, want the file's 3072 MiB\n%s", status, out)
	}
	stop()
	warned := false
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("an agent log line is not JSON (XENAGENT_LOG_FORMAT=json): %v\n%s", err, line)
		}
		warned = warned || rec["level"] == "WARN" && strings.HasPrefix(rec["msg"].(string), "THIS AGENT SIMULATES ITS HYPERVISOR")
	}
	if !warned {
		t.Errorf("the agent's log lacks its simulation warning:\n%s", stderr.String())
	}
}

// A setting from the environment or the file that the program refuses
// ends it at once with exit status 1, naming the variable or the file and
// key, and what is accepted.
func TestConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		program string
		args    []string
		env     []string
		want    string // in stderr
	}{
		{"xenmanager", []string{"serve"}, []string{"XENMANAGER_DEMO=lots"},
			`xenmanager: environment variable XENMANAGER_DEMO: invalid value "lots" for --demo (an integer): parse error`},
		{"xenmanager", []string{"serve"}, []string{"XENMANAGER_LISTNE=:2222"}, "did you mean XENMANAGER_LISTEN?"},
		{"xenmanager", []string{"serve", "--config", writeFile(t, dir, "m.toml", "lissten = \":1\"\n")}, nil,
			`m.toml: unknown key "lissten"; did you mean "listen"?`},
		{"xenmanager", []string{"serve"}, []string{"XENMANAGER_CONFIG=" + writeFile(t, dir, "level.toml", "log-level = \"loud\"\n")},
			`level.toml: key "log-level": invalid value "loud": use debug, info, warn or error`},
		{"xenmanager", []string{"serve"}, []string{"XENMANAGER_DEMO=65"}, "--demo 65: use 0 to 64 agents"},
		{"xenagent", nil, []string{"XENAGENT_MEMORY_MIB=32G"}, `environment variable XENAGENT_MEMORY_MIB: invalid value "32G" for --memory-mib (an integer)`},
		{"xenagent", []string{"--config", writeFile(t, dir, "a.toml", "hypervisor = \"libvirt\"\ncpus = 4\n")}, nil,
			"--cpus: not used with --hypervisor libvirt"},
		{"xenagent", []string{"--config", filepath.Join(dir, "none.toml")}, nil, "config file: open " + filepath.Join(dir, "none.toml")},
	}
	for _, tc := range tests {
		cmd := exec.Command(buildBinary(t, tc.program), tc.args...)
		cmd.Env = append(os.Environ(), tc.env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s %v with %v: %v, want exit status 1 and %q\nstderr: %s\nstdout: %s", tc.program, tc.args, tc.env, err, tc.want, stderr.String(), stdout.String())
		}
	}
}

// The example configuration files of docs/examples are accepted by their
// program and name every flag it takes (set, or commented out with its
// default), so that they stay a full example as flags are added.
func TestExampleConfigFiles(t *testing.T) {
	example := "../../docs/examples/xenmanager.toml"
	if _, err := parseServeFlags([]string{"--config", example}, nil); err != nil {
		t.Fatalf("serve refuses %s: %v", example, err)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	serveFlags(&serveOptions{}).VisitAll(func(f *flag.Flag) {
		if !regexp.MustCompile(`(?m)^#? ?` + regexp.QuoteMeta(f.Name) + ` = `).Match(text) {
			t.Errorf("%s does not name --%s: add it, commented out with its default if the example leaves it", example, f.Name)
		}
	})
}
