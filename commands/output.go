package commands

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Row is one object of a list: "  id:<id>  name:<name>" in Verbose. Cols are
// further columns (status, server, memory...) that Table, Json and Xml show
// and Verbose and Sparse leave out, except for multi-object actions, whose
// per-object "result" column Verbose and Sparse show too. A row's columns
// are Fields when they have a machine form (every command's do), Cols
// when they are text alone; writeReport turns either into what the
// session's format prints.
type Row struct {
	ID, Name string
	Cols     []Prop
	Fields   []Field
}

// Prop is one "Key = value" line of show.
type Prop struct {
	Key, Value string
}

// Result is what a command produced, before formatting. A result carries one
// kind of data: Rows (list, created objects, per-object outcomes), Props
// (show) or Text (help, top's snapshot, a vm.cfg). Verbose, Sparse and Table
// print every kind present, each framed the same way;
// Json and Xml have room for one and take Text, then Rows, then Props. A
// non-nil empty Rows (a list that matched nothing) is "data":[] in Json and
// an empty <data/> in Xml; a nil one is no data at all.
type Result struct {
	Rows  []Row
	Props []Prop
	// Fields are attributes with their machine form (show's); a result
	// holds Props or Fields, and prints Props first should it hold both.
	Fields []Field
	// Text is free text (help, top's snapshot, a vm.cfg), one line each,
	// printed as data lines like the others: Verbose's frame holds it
	// too, so that a script finds "Status:" after every command.
	Text []string
	// Stream, when set, is a listing read while it is printed: the rows
	// come from it, not from Rows (writeStream).
	Stream RowStream
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

// resultCol is the Col of a multi-object action's row that holds the
// object's outcome ("Success" or the error); Verbose and Sparse print it.
const resultCol = "result"

// Report is one command's outcome as it is printed. A failed multi-object
// action has both a Result (one row per object) and a Code.
type Report struct {
	Command string
	Time    time.Time
	Result  *Result
	Code    Code // on failure
	Msg     string

	began time.Time // when the command began, for the log's duration
	cause error     // the failure behind Code, for the log: the user sees Msg
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
	Mode        string // one of the Mode constants; anything else is Verbose
	Alphabetize bool   // sort show's attributes by key
	EOL         string // line ending: "\n", "\r\n" or "\r"; "" is "\n"
	// JSONVersion is the form of the Json mode: 2 is the machine form
	// (typed values, the command language's names); anything else is 1,
	// the form Json had before version 2 existed.
	JSONVersion int
}

// machine reports whether f prints the machine form (Json version 2).
func (f Format) machine() bool { return f.Mode == ModeJSON && f.JSONVersion == 2 }

// reportBuffer is the most writeReport holds of a report before writing.
const reportBuffer = 64 << 10

// writeReport prints r in format f, in a single Write up to reportBuffer. Every mode builds
// lines without their ending; writeReport ends each with f.EOL, so that no
// mode writes a bare "\n" when the session asked for CRLF or CR.
func writeReport(w io.Writer, f Format, r *Report) error {
	r = prepareReport(f, r)
	var lines []string
	switch f.Mode {
	case ModeSparse:
		lines = sparseLines(r)
	case ModeJSON:
		if f.machine() {
			lines = jsonV2Lines(r)
		} else {
			lines = jsonLines(r)
		}
	case ModeXML:
		lines = xmlLines(r)
	case ModeTable:
		var err error
		if lines, err = tableLines(r); err != nil {
			// tablewriter refused the table (it should not, with string
			// cells): the outcome still reaches the user, in Verbose.
			lines = verboseLines(r)
		}
	default:
		lines = verboseLines(r)
	}
	eol := f.EOL
	if eol == "" {
		eol = "\n"
	}
	// A report up to reportBuffer is written from one slice of its exact
	// size; a longer one through a buffer of that size rather than one
	// string of the whole report: a list of 100,000 VMs is not copied once
	// more, and the channel still gets large writes.
	n := 0
	for _, l := range lines {
		n += len(l) + len(eol)
	}
	if n <= reportBuffer {
		b := make([]byte, 0, n)
		for _, l := range lines {
			b = append(append(b, l...), eol...)
		}
		_, err := w.Write(b)
		return err
	}
	bw := bufio.NewWriterSize(w, reportBuffer)
	for _, l := range lines {
		bw.WriteString(l)
		bw.WriteString(eol)
	}
	return bw.Flush()
}

// Failed reports whether the command failed.
func (r *Report) Failed() bool { return r.Code != "" }

func (r *Report) status() string {
	if r.Failed() {
		return StatusFailure
	}
	return StatusSuccess
}

// text returns the result's Text, or nil.
func (r *Report) text() []string {
	if r.Result == nil {
		return nil
	}
	return r.Result.Text
}

// prepareReport returns the report as f prints it: Fields and rows' Fields
// in the form f prints (their text form, Props and Cols, except in Json
// version 2, which prints Fields alone), then attributes sorted by key
// (case-insensitively, stable) when f.Alphabetize. The caller's report and
// slices are not modified.
func prepareReport(f Format, r *Report) *Report {
	if r.Result == nil {
		return r
	}
	res := *r.Result
	if f.machine() {
		res.Fields, res.Props = machineFields(res.Props, res.Fields), nil
		res.Rows = machineRows(res.Rows)
		if f.Alphabetize && len(res.Fields) > 1 {
			res.Fields = slices.Clone(res.Fields)
			sort.SliceStable(res.Fields, func(i, j int) bool {
				return strings.ToLower(res.Fields[i].Attr) < strings.ToLower(res.Fields[j].Attr)
			})
		}
	} else {
		res.Props, res.Fields = textProps(res.Props, res.Fields), nil
		res.Rows = textRows(res.Rows)
		if f.Alphabetize && len(res.Props) > 1 {
			res.Props = slices.Clone(res.Props)
			sort.SliceStable(res.Props, func(i, j int) bool {
				return strings.ToLower(res.Props[i].Key) < strings.ToLower(res.Props[j].Key)
			})
		}
	}
	c := *r
	c.Result = &res
	return &c
}

// termSafe makes s safe for a line of the text modes (Verbose, Sparse,
// Table): control characters other than tab (which could end a line early,
// move the cursor or start a terminal escape sequence) and invalid UTF-8
// become U+FFFD. Printable text and tabs are returned unchanged.
func termSafe(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || unicode.IsControl(r) && r != '\t' {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// resultOf returns the row's "result" Col.
func resultOf(row Row) (string, bool) {
	for _, c := range row.Cols {
		if strings.EqualFold(c.Key, resultCol) {
			return c.Value, true
		}
	}
	return "", false
}

// dataLines are the lines under Verbose's "Data:", without the two-space
// indent: "id:<id>  name:<name>[  result:<result>]", "Key = value" and the
// lines of Text as they are.
func dataLines(res *Result) []string {
	if res == nil {
		return nil
	}
	var out []string
	for _, row := range res.Rows {
		out = append(out, rowLine(row))
	}
	for _, p := range res.Props {
		out = append(out, termSafe(p.Key)+" = "+termSafe(p.Value))
	}
	for _, l := range res.Text {
		out = append(out, termSafe(l))
	}
	return out
}

// rowLine is a row as Verbose (indented) and Sparse print it:
// "id:<id>  name:<name>[  result:<result>]".
func rowLine(row Row) string {
	l := "id:" + termSafe(row.ID) + "  name:" + termSafe(row.Name)
	if v, ok := resultOf(row); ok {
		l += "  result:" + termSafe(v)
	}
	return l
}

func errorLine(r *Report) string {
	return fmt.Sprintf("Error Msg: %s: %s", termSafe(string(r.Code)), termSafe(r.Msg))
}

// headerLines are Verbose's (and Table's) first three lines.
func headerLines(r *Report) []string {
	return []string{
		"Command: " + termSafe(r.Command),
		"Status: " + r.status(),
		"Time: " + r.Time.UTC().Format(timeLayout),
	}
}

// verboseLines prints r in the Verbose format of Oracle VM Manager's CLI
// (docs/output-formats.md): the header, then "Data:" and the data lines
// indented by two spaces when there are any, then
// "Error Msg:" on failure. A failed multi-object action prints both.
func verboseLines(r *Report) []string {
	out := headerLines(r)
	if data := dataLines(r.Result); len(data) > 0 {
		out = append(out, "Data:")
		for _, l := range data {
			out = append(out, "  "+l)
		}
	}
	if r.Failed() {
		out = append(out, errorLine(r))
	}
	return out
}

// sparseLines prints the data lines alone, unindented; nothing for a
// successful command without data; the Error Msg line on failure (after the
// per-object lines of a failed multi-object action).
func sparseLines(r *Report) []string {
	out := dataLines(r.Result)
	if r.Failed() {
		out = append(out, errorLine(r))
	}
	return out
}
