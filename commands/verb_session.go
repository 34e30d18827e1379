package commands

import (
	"context"
	"strconv"
	"strings"
	"time"

	"xenmanager/backend"
)

// Version is the manager's version, shown by showversion; release builds set
// it with -ldflags "-X xenmanager/commands.Version=...".
var Version = "0.1.0-dev"

func verbExit() *VerbInfo {
	return &VerbInfo{Name: "exit", Help: "End the session.", Specs: []*Spec{{
		Help: "End the session.",
		Run:  func(context.Context, *Exec) (*Result, error) { return &Result{Exit: true}, nil },
	}}}
}

func verbSet() *VerbInfo {
	return &VerbInfo{Name: "set", Help: "Change this session's settings.", Specs: []*Spec{{
		Help: "Change how this session prints and runs commands; showclisession shows the current values. Settings last for the session; outputMode and jsonVersion set in an interactive session are also remembered for your later ones, and lineEditor is a choice for your next interactive sessions.",
		Attrs: []Attr{
			{Name: "outputMode", Kind: AttrEnum, Enum: []string{ModeVerbose, ModeSparse, ModeXML, ModeJSON, ModeTable}, Help: "how results are printed (Table is the default on a terminal, Verbose otherwise)"},
			{Name: "commandMode", Kind: AttrEnum, Enum: []string{"Synchronous", "Asynchronous"}, Default: defaultSettings.CommandMode, Help: "wait for each command to finish, or return its job id at once"},
			{Name: "commandTimeout", Kind: AttrInt, Min: 1, Max: 43200, Default: strconv.Itoa(int(defaultSettings.CommandTimeout / time.Second)), Help: "seconds a command may take before it is reported as timed out"},
			{Name: "endLineChars", Kind: AttrEnum, Enum: []string{"LF", "CRLF", "CR"}, Default: defaultSettings.EndLineChars, Help: "line ending of the output"},
			{Name: "alphabetizeAttributes", Kind: AttrYesNo, Default: yesNo(defaultSettings.Alphabetize), Help: "sort show's attributes by name"},
			{Name: "stopOnError", Kind: AttrYesNo, Default: yesNo(defaultSettings.StopOnError), Help: "end a batch at its first failed command"},
			{Name: "jsonVersion", Kind: AttrEnum, Enum: JSONVersions, Default: strconv.Itoa(defaultSettings.JSONVersion), Help: "the form of the Json mode: 1, every value a string under its Verbose label; 2, typed values under the command language's attribute names (docs/output-formats.md)"},
			{Name: "lineEditor", Kind: AttrEnum, Enum: []string{"prompt", "simple"}, Default: "prompt", Help: "the interactive line editor of your next sessions: prompt (live completion) or simple (Tab completion)"},
		},
		Run: runSet,
	}}}
}

func runSet(ctx context.Context, x *Exec) (*Result, error) {
	if len(x.Cmd.Attrs) == 0 {
		return nil, failf(CodeMissingAttribute, "set needs at least one of: %s", strings.Join(attrNames(x.Cmd.Spec), ", "))
	}
	next := *x.Settings
	if v, ok := x.Cmd.Attrs["commandMode"]; ok {
		next.CommandMode = v
	}
	if _, ok := x.Cmd.Attrs["commandTimeout"]; ok {
		next.CommandTimeout = time.Duration(x.Int("commandTimeout")) * time.Second
	}
	if v, ok := x.Cmd.Attrs["endLineChars"]; ok {
		next.EndLineChars = v
	}
	if v, ok := x.Cmd.Attrs["alphabetizeAttributes"]; ok {
		next.Alphabetize = v == "Yes"
	}
	if v, ok := x.Cmd.Attrs["stopOnError"]; ok {
		next.StopOnError = v == "Yes"
	}
	if v, ok := x.Cmd.Attrs["lineEditor"]; ok {
		if err := x.Backend.SetUserSetting(ctx, x.Actor.User, "lineEditor", v); err != nil {
			return nil, err
		}
	}
	if v, ok := x.Cmd.Attrs["jsonVersion"]; ok {
		next.JSONVersion, _ = jsonVersionOf(v) // the parser checked v against JSONVersions
		if x.Session.opts.RememberSettings {
			if err := x.Backend.SetUserSetting(ctx, x.Actor.User, settingJSONVersion, v); err != nil {
				return nil, err
			}
		}
	}
	if v, ok := x.Cmd.Attrs["outputMode"]; ok {
		next.OutputMode = v
		if x.Session.opts.RememberSettings {
			if err := x.Backend.SetUserSetting(ctx, x.Actor.User, settingOutputMode, v); err != nil {
				return nil, err
			}
		}
	}
	*x.Settings = next
	return &Result{}, nil
}

func verbShowCLISession() *VerbInfo {
	return &VerbInfo{Name: "showclisession", Help: "Show this session's settings.", Specs: []*Spec{{
		Help: "Show who you are logged in as and this session's settings.",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			return &Result{Fields: sessionFields(x.Actor, x.Session.started, *x.Settings)}, nil
		},
	}}}
}

func verbShowVersion() *VerbInfo {
	return &VerbInfo{Name: "showversion", Help: "Show the manager's version.", Specs: []*Spec{{
		Help: "Show the manager's version and the agent protocol version it speaks.",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			return &Result{Fields: versionFields(x.Backend.UUID())}, nil
		},
	}}}
}

// sessionFields are what showclisession prints: who the session is, and
// its settings under the names set gives them.
func sessionFields(a backend.Actor, started time.Time, st Settings) []Field {
	return []Field{
		strField("User", "user", a.User),
		strField("Role", "role", a.Role),
		strField("Remote Address", "remoteAddress", a.Remote),
		timeField("Session Start", "sessionStart", started.UTC()),
		strField("Output Mode", "outputMode", st.OutputMode),
		intField("Json Version", "jsonVersion", int64(st.JSONVersion)),
		strField("Command Mode", "commandMode", st.CommandMode),
		intField("Command Timeout", "commandTimeout", int64(st.CommandTimeout/time.Second)),
		strField("End Line Chars", "endLineChars", st.EndLineChars),
		boolField("Alphabetize Attributes", "alphabetizeAttributes", st.Alphabetize),
		boolField("Stop On Error", "stopOnError", st.StopOnError),
	}
}

// versionFields are what showversion prints.
func versionFields(managerID string) []Field {
	return []Field{strField("Version", "version", Version), strField("Agent API Version", "agentApiVersion", backend.AgentAPIVersion),
		strField("Manager Id", "managerId", managerID)}
}
