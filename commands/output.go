package commands

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Row is one object of a list: "  id:<id>  name:<name>" in Verbose. Cols are
// further columns (status, server, memory...) that Table, Json and Xml show
// and Verbose and Sparse leave out, except for multi-object actions, whose
// per-object "result" column Verbose shows too.
type Row struct {
	ID, Name string
	Cols     []Prop
}

// Prop is one "Key = value" line of show.
type Prop struct {
	Key, Value string
}

// Result is what a command produced, before formatting.
type Result struct {
	Rows  []Row
	Props []Prop
	// Text is free text (help) printed as it is, without the
	// Command/Status/Time header: it is for people, not scripts.
	Text []string
	// Exit ends the session after this command.
	Exit bool
}

// Status line values.
const (
	StatusSuccess = "Success"
	StatusFailure = "Failure"
)

// timeLayout is Oracle VM's "2026-11-21 10:20:23,345 UTC".
const timeLayout = "2006-01-02 15:04:05,000 MST"

// Report is one command's outcome as it is printed. A failed multi-object
// action has both a Result (one row per object) and a Code.
type Report struct {
	Command string
	Time    time.Time
	Result  *Result
	Code    Code // on failure
	Msg     string
}

// Output modes of "set outputMode=".
const (
	ModeVerbose = "Verbose"
	ModeSparse  = "Sparse"
	ModeXML     = "Xml"
	ModeJSON    = "Json"
	ModeTable   = "Table"
)

// Format is how a session prints reports.
type Format struct {
	Mode        string // one of the Mode constants
	Alphabetize bool   // sort show's attributes by key
	EOL         string // line ending: "\n", "\r\n" or "\r"
}

// writeReport prints r in format f.
func writeReport(w io.Writer, f Format, r *Report) error {
	return writeVerbose(w, r)
}

// Failed reports whether the command failed.
func (r *Report) Failed() bool { return r.Code != "" }

// writeVerbose prints r in the Verbose format of CLI.md.
func writeVerbose(w io.Writer, r *Report) error {
	if r.Result != nil && len(r.Result.Text) > 0 {
		_, err := io.WriteString(w, strings.Join(r.Result.Text, "\n")+"\n")
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Command: %s\n", r.Command)
	if r.Failed() {
		b.WriteString("Status: " + StatusFailure + "\n")
	} else {
		b.WriteString("Status: " + StatusSuccess + "\n")
	}
	fmt.Fprintf(&b, "Time: %s\n", r.Time.UTC().Format(timeLayout))
	if r.Failed() {
		fmt.Fprintf(&b, "Error Msg: %s: %s\n", r.Code, r.Msg)
	} else if res := r.Result; res != nil && (len(res.Rows) > 0 || len(res.Props) > 0) {
		b.WriteString("Data:\n")
		for _, row := range res.Rows {
			fmt.Fprintf(&b, "  id:%s  name:%s\n", row.ID, row.Name)
		}
		for _, p := range res.Props {
			fmt.Fprintf(&b, "  %s = %s\n", p.Key, p.Value)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
