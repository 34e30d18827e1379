package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// newTestFlags is a flag set with a flag of each type the programs use.
func newTestFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.String("listen", ":10000", "address")
	fs.Int("demo", 0, "agents")
	fs.Duration("heartbeat-interval", 5e9, "heartbeat")
	fs.Bool("debug", false, "debug")
	fs.Float64("reboot-seconds", 2, "reboot delay")
	fs.String("password-file", "", "password file")
	fs.Bool("version", false, "print the version")
	var logging Logging
	logging.AddFlags(fs)
	return fs
}

// TestParseConfigured: the command line wins over the environment, which
// wins over the file, which wins over the defaults; every value goes
// through its flag; what is refused is named with where it came from and
// what is accepted.
func TestParseConfigured(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	full := write("full.toml", `# every type
listen = "127.0.0.1:2222"
demo = 3
heartbeat-interval = "1m30s"
debug = true
reboot-seconds = 0.5
password-file = "/etc/xenagent/password"
log-level = "warn"
log-format = "json"
`)
	other := write("other.toml", "listen = \"10.0.0.1:22\"\n")
	tests := []struct {
		name string
		args []string
		env  []string
		want map[string]string // flag values after parsing
		set  []string          // what fs.Visit reports as set, when checked
		err  string            // in the error; "" when accepted
	}{
		{name: "defaults without a file or variables",
			want: map[string]string{"listen": ":10000", "demo": "0", "heartbeat-interval": "5s", "debug": "false", "log-level": "info", "log-format": "text"},
			set:  []string{}},
		{name: "the file sets every type", args: []string{"--config", full},
			want: map[string]string{"listen": "127.0.0.1:2222", "demo": "3", "heartbeat-interval": "1m30s", "debug": "true",
				"reboot-seconds": "0.5", "password-file": "/etc/xenagent/password", "log-level": "warn", "log-format": "json"},
			set: []string{"config", "debug", "demo", "heartbeat-interval", "listen", "log-format", "log-level", "password-file", "reboot-seconds"}},
		{name: "the environment wins over the file", args: []string{"--config", full},
			env:  []string{"XENMANAGER_LISTEN=:3333", "XENMANAGER_HEARTBEAT_INTERVAL=7s", "XENMANAGER_LOG_FORMAT=text"},
			want: map[string]string{"listen": ":3333", "heartbeat-interval": "7s", "log-format": "text", "demo": "3"}},
		{name: "the command line wins over both", args: []string{"--config", full, "--listen", ":4444", "--demo=1"},
			env:  []string{"XENMANAGER_LISTEN=:3333", "XENMANAGER_DEMO=2"},
			want: map[string]string{"listen": ":4444", "demo": "1", "log-level": "warn"}},
		{name: "the environment alone", env: []string{"XENMANAGER_DEMO=5", "XENMANAGER_DEBUG=true", "XENMANAGER_LOG_LEVEL=DEBUG"},
			want: map[string]string{"demo": "5", "debug": "true", "log-level": "debug", "listen": ":10000"},
			set:  []string{"debug", "demo", "log-level"}},
		{name: "XENMANAGER_CONFIG names the file", env: []string{"XENMANAGER_CONFIG=" + full},
			want: map[string]string{"listen": "127.0.0.1:2222"}},
		{name: "--config wins over XENMANAGER_CONFIG", args: []string{"--config", other}, env: []string{"XENMANAGER_CONFIG=" + full},
			want: map[string]string{"listen": "10.0.0.1:22", "demo": "0"}},
		{name: "an empty variable is unset", args: []string{"--config", full}, env: []string{"XENMANAGER_LISTEN=", "XENMANAGER_CONFIG="},
			want: map[string]string{"listen": "127.0.0.1:2222"}},
		{name: "another program's variable with the prefix is left alone",
			env:  []string{"XENMANAGER_IMAGE_CACHE=/var/cache/x", "XENMANAGER_SERVICE_PORT=10000", "XENMANAGER_PORT=tcp://10.0.0.1:10000", "XENMANAGER_VERSION=1.2"},
			want: map[string]string{"listen": ":10000", "version": "false"}},
		{name: "--version reads neither the environment nor the file", args: []string{"--version", "--config", filepath.Join(dir, "missing.toml")},
			env: []string{"XENMANAGER_DEMO=many"}, want: map[string]string{"version": "true", "demo": "0"}, set: []string{"config", "version"}},
		{name: "a misspelt variable", env: []string{"XENMANAGER_LISTNE=:1"},
			err: "environment variable XENMANAGER_LISTNE names no setting; did you mean XENMANAGER_LISTEN? (variables: XENMANAGER_CONFIG, XENMANAGER_DEBUG, XENMANAGER_DEMO,"},
		{name: "a variable without its underscore", env: []string{"XENMANAGER_LOGLEVEL=debug"},
			err: "did you mean XENMANAGER_LOG_LEVEL?"},
		{name: "a misspelt XENMANAGER_CONFIG", env: []string{"XENMANAGER_CONFG=/etc/xenmanager/xenmanager.toml"},
			err: "did you mean XENMANAGER_CONFIG?"},
		{name: "a variable the flag refuses", env: []string{"XENMANAGER_DEMO=many"},
			err: `environment variable XENMANAGER_DEMO: invalid value "many" for --demo (an integer): parse error`},
		{name: "a duration without its unit", env: []string{"XENMANAGER_HEARTBEAT_INTERVAL=5"},
			err: `environment variable XENMANAGER_HEARTBEAT_INTERVAL: invalid value "5" for --heartbeat-interval (a duration such as 90s, 5m or 1h30m)`},
		{name: "a level the flag refuses", env: []string{"XENMANAGER_LOG_LEVEL=verbose"},
			err: `invalid value "verbose" for --log-level: use debug, info, warn or error`},
		{name: "a variable the command line overrides is not read", args: []string{"--demo", "2"}, env: []string{"XENMANAGER_DEMO=many"},
			want: map[string]string{"demo": "2"}},
		{name: "a misspelt key", args: []string{"--config", write("typo.toml", "lisen = \":1\"\n")},
			err: `/typo.toml: unknown key "lisen"; did you mean "listen"? (keys: debug, demo, heartbeat-interval, listen, log-format, log-level, password-file, reboot-seconds)`},
		{name: "a key of the command line only", args: []string{"--config", write("version.toml", "version = true\n")},
			err: `/version.toml: unknown key "version" (--version is given on the command line only)`},
		{name: "a file that names a file", args: []string{"--config", write("config.toml", "config = \"/etc/x.toml\"\n")},
			err: `unknown key "config" (--config is given on the command line only)`},
		{name: "a value the flag refuses", args: []string{"--config", write("duration.toml", "heartbeat-interval = \"5 parsecs\"\n")},
			err: `/duration.toml: key "heartbeat-interval": invalid value "5 parsecs" (a duration such as 90s, 5m or 1h30m): parse error`},
		{name: "a boolean as a word", args: []string{"--config", write("bool.toml", "debug = \"yes\"\n")},
			err: `key "debug": invalid value "yes" (true or false)`},
		{name: "a format the flag refuses", args: []string{"--config", write("format.toml", "log-format = \"xml\"\n")},
			err: `key "log-format": invalid value "xml": use text or json`},
		{name: "a section", args: []string{"--config", write("section.toml", "[log]\nlevel = \"debug\"\n")},
			err: `/section.toml: section [log]: the file has no sections, every key is a flag's name at the top level (keys: debug, demo,`},
		{name: "a section named as a flag", args: []string{"--config", write("table.toml", "listen = { port = 22 }\n")},
			err: `/table.toml: key "listen": a table is not accepted: the file has no sections`},
		{name: "an array", args: []string{"--config", write("array.toml", "listen = [\":1\", \":2\"]\n")},
			err: `key "listen": an array is not accepted`},
		{name: "a date", args: []string{"--config", write("date.toml", "listen = 2026-01-02\n")},
			err: `key "listen": a date or time is not accepted`},
		{name: "a wrong type is refused even where the command line wins", args: []string{"--config", write("array2.toml", "demo = [1]\n"), "--demo", "1"},
			err: `key "demo": an array is not accepted`},
		{name: "a key the command line overrides is not parsed", args: []string{"--config", write("demo.toml", "demo = \"many\"\n"), "--demo", "1"},
			want: map[string]string{"demo": "1"}},
		{name: "not TOML", args: []string{"--config", write("broken.toml", "listen = \n")},
			err: `/broken.toml: toml: line 1`},
		{name: "no such file", args: []string{"--config", filepath.Join(dir, "missing.toml")},
			err: "config file: open " + filepath.Join(dir, "missing.toml") + ": no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newTestFlags()
			var stdout, stderr bytes.Buffer
			src := Sources{EnvPrefix: "XENMANAGER_", Environ: append([]string{"HOME=/root", "PATH=/bin"}, tc.env...), CommandLineOnly: []string{"version"}}
			err := ParseConfigured(fs, tc.args, src, &stdout, &stderr)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v\nstderr: %s", err, stderr.String())
			}
			for name, want := range tc.want {
				if got := fs.Lookup(name).Value.String(); got != want {
					t.Errorf("--%s = %q, want %q", name, got, want)
				}
			}
			if tc.set != nil {
				set := []string{}
				fs.Visit(func(f *flag.Flag) { set = append(set, f.Name) })
				if !slices.Equal(set, tc.set) {
					t.Errorf("set flags %q, want %q", set, tc.set)
				}
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"LISTEN", "LISTEN", 0}, {"LISTNE", "LISTEN", 1}, {"LOGLEVEL", "LOG_LEVEL", 1}, {"PORT", "DEMO", 4}, {"", "DATA", 4}, {"CONFG", "CONFIG", 1},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
