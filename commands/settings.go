package commands

// This file holds a session's state: the settings "set" changes and
// showclisession shows, and what they mean for the output.

import "time"

// Settings are a session's "set" values.
type Settings struct {
	OutputMode     string // a Mode constant
	CommandMode    string // Synchronous (Asynchronous needs jobs)
	CommandTimeout time.Duration
	EndLineChars   string // LF, CRLF or CR
	Alphabetize    bool
	StopOnError    bool
	// JSONVersion is the form of the Json mode: 1 (every value a string,
	// Verbose's labels) or 2 (the machine form).
	JSONVersion int
}

// DefaultCommandTimeout bounds one command unless "set commandTimeout=" says
// otherwise.
const DefaultCommandTimeout = time.Hour

// defaultSettings are a session's settings before any set (interactive
// sessions then take the output mode their user chose last); set declares
// its attributes' defaults from them.
var defaultSettings = Settings{OutputMode: ModeVerbose, CommandMode: "Synchronous", CommandTimeout: DefaultCommandTimeout,
	EndLineChars: "LF", JSONVersion: 1}

// The keys of the settings remembered for a user's interactive sessions:
// the output mode and the form of its Json.
const (
	settingOutputMode  = "outputMode"
	settingJSONVersion = "jsonVersion"
)

// jsonVersionOf reads a jsonVersion value (1 or 2, as set checked it, or as
// remembered); false for anything else.
func jsonVersionOf(s string) (int, bool) {
	switch s {
	case "1":
		return 1, true
	case "2":
		return 2, true
	}
	return 0, false
}

// format is the output format the session's settings ask for.
func (s *Session) format() Format {
	eol := map[string]string{"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[s.settings.EndLineChars]
	return Format{Mode: s.settings.OutputMode, Alphabetize: s.settings.Alphabetize, EOL: eol, JSONVersion: s.settings.JSONVersion}
}
