package cli

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
)

// Logging is what the log flags both programs take choose: how severe a
// record must be to be written (--log-level) and how it is written
// (--log-format: text, key=value pairs a line, for people; json, one JSON
// object a line, for log collectors).
type Logging struct {
	Level slog.Level
	JSON  bool
}

// AddFlags defines --log-level and --log-format on fs, with the defaults
// info and text.
func (l *Logging) AddFlags(fs *flag.FlagSet) {
	l.Level = slog.LevelInfo
	fs.Var((*levelValue)(&l.Level), "log-level", "least severe `level` logged: debug, info (the default), warn or error")
	fs.Var((*formatValue)(&l.JSON), "log-format", "`format` of the log on stderr: text (key=value pairs, the default) or json (one JSON object a line)")
}

// Logger returns a logger writing to w at the chosen level and format.
func (l Logging) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// levelValue is --log-level: one of four names, in any case.
type levelValue slog.Level

var levelNames = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func (v *levelValue) Set(s string) error {
	level, ok := levelNames[strings.ToLower(s)]
	if !ok {
		return errors.New("use debug, info, warn or error")
	}
	*v = levelValue(level)
	return nil
}

func (v *levelValue) String() string { return strings.ToLower(slog.Level(*v).String()) }

// formatValue is --log-format: text (false) or json (true).
type formatValue bool

func (v *formatValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "text":
		*v = false
	case "json":
		*v = true
	default:
		return errors.New("use text or json")
	}
	return nil
}

func (v *formatValue) String() string {
	if *v {
		return "json"
	}
	return "text"
}
