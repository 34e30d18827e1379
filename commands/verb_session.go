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
		Help: "Change how this session prints and runs commands; showclisession shows the current values. Settings last for the session; outputMode set in an interactive session is also remembered for your later ones, and lineEditor is a choice for your next interactive sessions.",
		Attrs: []Attr{
			{Name: "outputMode", Kind: AttrEnum, Enum: []string{ModeVerbose, ModeSparse, ModeXML, ModeJSON, ModeTable}, Help: "how results are printed (Table is the default on a terminal, Verbose otherwise)"},
			{Name: "commandMode", Kind: AttrEnum, Enum: []string{"Synchronous", "Asynchronous"}, Default: defaultSettings.CommandMode, Help: "wait for each command to finish, or return its job id at once"},
			{Name: "commandTimeout", Kind: AttrInt, Min: 1, Max: 43200, Default: strconv.Itoa(int(defaultSettings.CommandTimeout / time.Second)), Help: "seconds a command may take before it is reported as timed out"},
			{Name: "endLineChars", Kind: AttrEnum, Enum: []string{"LF", "CRLF", "CR"}, Default: defaultSettings.EndLineChars, Help: "line ending of the output"},
			{Name: "alphabetizeAttributes", Kind: AttrYesNo, Default: yesNo(defaultSettings.Alphabetize), Help: "sort show's attributes by name"},
			{Name: "stopOnError", Kind: AttrYesNo, Default: yesNo(defaultSettings.StopOnError), Help: "end a batch at its first failed command"},
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
			st := *x.Settings
			return &Result{Props: []Prop{
				{"User", x.Actor.User},
				{"Role", x.Actor.Role},
				{"Remote Address", x.Actor.Remote},
				{"Session Start", x.Session.started.UTC().Format(timeLayout)},
				{"Output Mode", st.OutputMode},
				{"Command Mode", st.CommandMode},
				{"Command Timeout", strconv.Itoa(int(st.CommandTimeout / time.Second))},
				{"End Line Chars", st.EndLineChars},
				{"Alphabetize Attributes", yesNo(st.Alphabetize)},
				{"Stop On Error", yesNo(st.StopOnError)},
			}}, nil
		},
	}}}
}

func verbShowVersion() *VerbInfo {
	return &VerbInfo{Name: "showversion", Help: "Show the manager's version.", Specs: []*Spec{{
		Help: "Show the manager's version and the agent protocol version it speaks.",
		Run: func(_ context.Context, x *Exec) (*Result, error) {
			return &Result{Props: []Prop{{"Version", Version}, {"Agent API Version", backend.AgentAPIVersion},
				{"Manager Id", x.Backend.UUID()}}}, nil
		},
	}}}
}
