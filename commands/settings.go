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
}

// DefaultCommandTimeout bounds one command unless "set commandTimeout=" says
// otherwise.
const DefaultCommandTimeout = time.Hour

// defaultSettings are a session's settings before any set (interactive
// sessions then take the output mode their user chose last); set declares
// its attributes' defaults from them.
var defaultSettings = Settings{OutputMode: ModeVerbose, CommandMode: "Synchronous", CommandTimeout: DefaultCommandTimeout,
	EndLineChars: "LF"}

// settingOutputMode is the key of the remembered output mode.
const settingOutputMode = "outputMode"

// format is the output format the session's settings ask for.
func (s *Session) format() Format {
	eol := map[string]string{"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[s.settings.EndLineChars]
	return Format{Mode: s.settings.OutputMode, Alphabetize: s.settings.Alphabetize, EOL: eol}
}
