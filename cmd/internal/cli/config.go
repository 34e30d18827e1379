package cli

// This file lets every flag of a program come from the environment or a
// configuration file as well as from the command line, with one set of
// names and one parser: the flag's own.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ConfigFlag is the flag that names the configuration file; the variable
// <prefix>CONFIG names it when the command line does not.
const ConfigFlag = "config"

// Sources says where a program's flags come from besides its command line.
type Sources struct {
	// EnvPrefix begins the names of the program's environment variables:
	// with "XENMANAGER_", XENMANAGER_LISTEN sets --listen and
	// XENMANAGER_HEARTBEAT_INTERVAL sets --heartbeat-interval.
	EnvPrefix string
	// Environ is the environment, as os.Environ returns it.
	Environ []string
	// CommandLineOnly names the flags that ask for an answer rather than
	// set something, such as --version: neither the environment nor the
	// file sets them, and with one of them on the command line neither is
	// read, so that a broken file does not stand in the way of the answer.
	CommandLineOnly []string
}

// ParseConfigured parses args with fs as ParseFlags does, then gives each
// flag the command line left out its value from the environment, else from
// the TOML file that --config (or the variable <prefix>CONFIG) names, else
// leaves its default: the command line wins over the environment, which
// wins over the file. It defines --config on fs first.
//
// Variables and keys are the flags' names: <prefix> and the name in upper
// case with '-' as '_' for a variable (an empty one counts as unset), the
// name itself for a key of the file, whose values are strings, numbers or
// booleans. Every value goes through the flag's own Set, so that it is
// parsed and checked as on the command line. A key that names no flag,
// a value of a type no flag takes, a value the flag refuses, and a variable
// that misspells one of the program's (within two edits) are errors that
// name the file or the variable, the key and what is accepted; other
// variables with the prefix are not the program's and are left alone.
// An error quotes the value at fault: a flag never takes a secret itself,
// only the name of a file that holds it. (serve's --database, a URL that
// may hold a password, is a string flag, whose Set refuses nothing: no
// error here quotes it, and serve checks it without quoting it.)
func ParseConfigured(fs *flag.FlagSet, args []string, src Sources, stdout, stderr io.Writer) error {
	if fs.Lookup(ConfigFlag) == nil {
		fs.String(ConfigFlag, "", "read flags from the TOML `FILE`, a key per flag (or set "+src.EnvPrefix+"CONFIG)")
	}
	if err := ParseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	return src.apply(fs)
}

// ConfigUsage is the paragraph a program's usage adds to say where its
// flags may come from.
func ConfigUsage(envPrefix string) string {
	return "Every flag may also be set by a variable (" + envPrefix + "LISTEN for --listen)\n" +
		"or by a key of the TOML file --config names (listen = \"...\"): the command line\n" +
		"wins over the environment, the environment over the file (docs/guide.md,\n" +
		"Configuration).\n"
}

// apply sets, from the environment and then the file, every flag the
// command line did not set.
func (src Sources) apply(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range src.CommandLineOnly {
		if given[name] {
			return nil
		}
	}
	settable := map[string]*flag.Flag{} // by name: every flag but --config and the command line's own
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != ConfigFlag && !slices.Contains(src.CommandLineOnly, f.Name) {
			settable[f.Name] = f
		}
	})
	if err := src.applyEnvironment(fs, settable, given); err != nil {
		return err
	}
	path := fs.Lookup(ConfigFlag).Value.String()
	if !given[ConfigFlag] {
		path = src.variables()[src.variable(ConfigFlag)]
	}
	if path == "" {
		return nil
	}
	return applyFile(fs, path, settable, given)
}

// applyEnvironment sets from their variables the settable flags not in
// given, and adds them to given.
func (src Sources) applyEnvironment(fs *flag.FlagSet, settable map[string]*flag.Flag, given map[string]bool) error {
	byVariable := map[string]*flag.Flag{}
	for name, f := range settable {
		byVariable[src.variable(name)] = f
	}
	ours := map[string]bool{} // the program's variables, by name without the prefix
	for name := range byVariable {
		ours[strings.TrimPrefix(name, src.EnvPrefix)] = true
	}
	ours[strings.TrimPrefix(src.variable(ConfigFlag), src.EnvPrefix)] = true
	vars := src.variables()
	for _, name := range sortedKeys(vars) {
		f, ok := byVariable[name]
		if !ok {
			bare := strings.TrimPrefix(name, src.EnvPrefix)
			if ours[bare] || slices.ContainsFunc(src.CommandLineOnly, func(flag string) bool { return src.variable(flag) == name }) {
				continue // --config's, read by apply; or a command-line flag's, which no variable sets
			}
			if near := nearest(bare, ours); near != "" {
				return fmt.Errorf("environment variable %s names no setting; did you mean %s%s? (variables: %s%s)",
					name, src.EnvPrefix, near, src.EnvPrefix, strings.Join(sortedKeys(ours), ", "+src.EnvPrefix))
			}
			continue // not the program's: a variable of something else with the same prefix
		}
		if given[f.Name] {
			continue
		}
		if err := fs.Set(f.Name, vars[name]); err != nil {
			return fmt.Errorf("environment variable %s: invalid value %q for --%s%s: %w", name, vars[name], f.Name, accepted(f), err)
		}
		given[f.Name] = true
	}
	return nil
}

// applyFile sets from the TOML file at path the settable flags not in
// given; a key that names no settable flag is an error whatever the other
// sources say.
func applyFile(fs *flag.FlagSet, path string, settable map[string]*flag.Flag, given map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if _, err := toml.Decode(string(data), &values); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for _, key := range sortedKeys(values) {
		f, ok := settable[key]
		if _, section := values[key].(map[string]any); section && !ok {
			return fmt.Errorf("config file %s: section [%s]: the file has no sections, every key is a flag's name at the top level (keys: %s)",
				path, key, strings.Join(sortedKeys(settable), ", "))
		}
		if !ok {
			hint := ""
			if fs.Lookup(key) != nil {
				hint = fmt.Sprintf(" (--%s is given on the command line only)", key)
			} else if near := nearest(key, settable); near != "" {
				hint = fmt.Sprintf("; did you mean %q?", near)
			}
			return fmt.Errorf("config file %s: unknown key %q%s (keys: %s)", path, key, hint, strings.Join(sortedKeys(settable), ", "))
		}
		text, err := flagText(values[key])
		if err != nil {
			return fmt.Errorf("config file %s: key %q: %w", path, key, err)
		}
		if given[key] {
			continue
		}
		if err := fs.Set(key, text); err != nil {
			return fmt.Errorf("config file %s: key %q: invalid value %q%s: %w", path, key, text, accepted(f), err)
		}
	}
	return nil
}

// flagText is a value of the file as the command line would give it.
func flagText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	case map[string]any:
		return "", errors.New("a table is not accepted: the file has no sections, every key is a flag's name at the top level")
	case []any:
		return "", errors.New("an array is not accepted: give a string, a number or true/false, as the flag takes")
	}
	return "", errors.New("a date or time is not accepted: give a string, a number or true/false, as the flag takes")
}

// accepted says, after a flag's name in an error, what kind of value it
// takes, when the flag package knows ("" for flags of other types, whose
// Set says it).
func accepted(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(&flag.Flag{Value: f.Value})
	switch name {
	case "":
		return " (true or false)"
	case "int":
		return " (an integer)"
	case "uint":
		return " (an integer, 0 or more)"
	case "float":
		return " (a number)"
	case "duration":
		return " (a duration such as 90s, 5m or 1h30m)"
	}
	return ""
}

// variable is the name of the environment variable of the flag name.
func (src Sources) variable(name string) string {
	return src.EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// variables returns the non-empty variables of the environment that begin
// with the prefix.
func (src Sources) variables() map[string]string {
	vars := map[string]string{}
	for _, kv := range src.Environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && value != "" && strings.HasPrefix(name, src.EnvPrefix) {
			vars[name] = value
		}
	}
	return vars
}

// nearest returns the name among candidates that name misspells (within
// two edits, one for names of four letters or fewer), or "".
func nearest[V any](name string, candidates map[string]V) string {
	best, bestDistance := "", 0
	for _, c := range sortedKeys(candidates) {
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if d := editDistance(name, c); d <= limit && (best == "" || d < bestDistance) {
			best, bestDistance = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
