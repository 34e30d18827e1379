package commands

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of TestGolden* under testdata/golden")

// goldenTime is every test report's time: 2026-11-21 10:20:23,345 UTC.
var goldenTime = time.Date(2026, 11, 21, 10, 20, 23, 345e6, time.UTC)

// The reports of the golden tests, one per kind of outcome.
func reportList() *Report {
	return &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Rows: []Row{
		{ID: "0004fb00000600007ea7a06224d83172", Name: "web1", Cols: []Prop{
			{"status", "Running"}, {"server", "ovs1"}, {"memory", "1024"}, {"cpus", "2"}, {"repository", "repo1"}}},
		{ID: "0004fb0000060000a5f0ebbf4ad8b8b8", Name: `db "main" <a&b>`, Cols: []Prop{
			{"status", "Stopped"}, {"server", ""}, {"memory", "8192"}, {"cpus", "8"}, {"repository", "repo1"}}},
		{ID: "0004fb00000600001c2e4d9f0a3b7c11", Name: "café", Cols: []Prop{
			{"status", "Running"}, {"server", "ovs2"}, {"memory", "512"}, {"cpus", "1"}, {"repository", "dépôt"}}},
	}}}
}

func reportShow() *Report {
	return &Report{Command: "show Vm name=web1", Time: goldenTime, Result: &Result{Props: []Prop{
		{"Name", "web1"},
		{"Id", "0004fb00000600007ea7a06224d83172"},
		{"Status", "Running"},
		{"Server", "0004fb00000400001c2e4d9f0a3b7c11  [ovs1]"},
		{"Server Pool", "0004fb0000020000c0ffee0000000001  [pool1]"},
		{"Repository", "0004fb0000030000c0ffee0000000002  [repo1]"},
		{"Memory (MB)", "1024"},
		{"Processors", "2"},
		{"Domain Type", "Xen HVM, PV Drivers"},
		{"description", `HR's "front" web server <prod> & co`},
	}}}
}

func reportFailure() *Report {
	return &Report{Command: "start Vm name=web9", Time: goldenTime, Code: CodeNotFound, Msg: `Vm "web9" not found`}
}

func reportSet() *Report {
	return &Report{Command: "set outputMode=Verbose", Time: goldenTime, Result: &Result{}}
}

func reportMultiFailure() *Report {
	return &Report{Command: "stop Vm name=web* multiple=Yes", Time: goldenTime,
		Code: CodeInvalidState, Msg: "1 of 3 Vms failed",
		Result: &Result{Rows: []Row{
			{ID: "0004fb00000600007ea7a06224d83172", Name: "web1", Cols: []Prop{{"job", "0004fb0000110000aaaa000000000001"}, {"result", "Success"}}},
			{ID: "0004fb0000060000b1b2b3b4b5b6b7b8", Name: "web2", Cols: []Prop{{"job", ""}, {"result", `XM_0412E: Vm "web2" is not running`}}},
			{ID: "0004fb0000060000c1c2c3c4c5c6c7c8", Name: "web3", Cols: []Prop{{"job", "0004fb0000110000aaaa000000000003"}, {"result", "Success"}}},
		}}}
}

func reportHelp() *Report {
	return &Report{Command: "help", Time: goldenTime, Result: &Result{Text: []string{
		"Commands (help <command> for more; <command> ? for its attributes):",
		"  list             List the objects of a type. (ServerPool|Server|Repository|Vm)",
		"",
		"  show             Show one object's attributes as 'Key = value' lines.",
	}}}
}

var goldenCases = []struct {
	name string
	rep  func() *Report
}{
	{"list", reportList},
	{"show", reportShow},
	{"failure", reportFailure},
	{"set", reportSet},
	{"multifail", reportMultiFailure},
	{"help", reportHelp},
}

var allModes = []string{ModeVerbose, ModeSparse, ModeJSON, ModeXML, ModeTable}

func renderReport(t *testing.T, f Format, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeReport(&b, f, r); err != nil {
		t.Fatalf("writeReport(%+v): %v", f, err)
	}
	return b.String()
}

func checkGolden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", file)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands -run Golden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test ./commands -run Golden -update rewrites it)\n got: %q\nwant: %q", file, got, want)
	}
}

// TestGoldenOutput: every mode x every kind of outcome, with "\n"; a CRLF
// and a CR variant; Alphabetize on a show.
func TestGoldenOutput(t *testing.T) {
	for _, mode := range allModes {
		m := strings.ToLower(mode)
		for _, c := range goldenCases {
			t.Run(m+"_"+c.name, func(t *testing.T) {
				checkGolden(t, m+"_"+c.name+".golden", renderReport(t, Format{Mode: mode, EOL: "\n"}, c.rep()))
			})
		}
		t.Run(m+"_multifail_crlf", func(t *testing.T) {
			checkGolden(t, m+"_multifail_crlf.golden", renderReport(t, Format{Mode: mode, EOL: "\r\n"}, reportMultiFailure()))
		})
		t.Run(m+"_list_cr", func(t *testing.T) {
			checkGolden(t, m+"_list_cr.golden", renderReport(t, Format{Mode: mode, EOL: "\r"}, reportList()))
		})
		t.Run(m+"_show_alpha", func(t *testing.T) {
			checkGolden(t, m+"_show_alpha.golden", renderReport(t, Format{Mode: mode, EOL: "\n", Alphabetize: true}, reportShow()))
		})
	}
}

// hostileReport has every kind of awkward text: control characters, an
// escape sequence, invalid UTF-8, XML and JSON metacharacters, U+2028.
func hostileReport(kind string) *Report {
	bad := "a\nb\rc\td\x1b[31mred\x00\x7f\xff\xfe\u2028\u0085]]></x>\"'&<{}\\é"
	r := &Report{Command: "show Vm name=" + bad, Time: goldenTime}
	switch kind {
	case "rows":
		r.Result = &Result{Rows: []Row{{ID: bad, Name: bad, Cols: []Prop{{bad, bad}, {"name", bad}, {"result", bad}}}}}
	case "props":
		r.Result = &Result{Props: []Prop{{bad, bad}, {bad, "twice"}, {"Name", bad}}}
	case "text":
		r.Result = &Result{Text: []string{bad, ""}}
	case "failure":
		r.Code, r.Msg = CodeInternal, bad
	}
	return r
}

var hostileKinds = []string{"rows", "props", "text", "failure"}

// TestEveryLineEndsWithEOL: whatever the mode and the data, the output is a
// sequence of lines each ended by EOL, with no other CR or LF, and (in the
// text modes) no control characters.
func TestEveryLineEndsWithEOL(t *testing.T) {
	var reps []*Report
	for _, c := range goldenCases {
		reps = append(reps, c.rep())
	}
	for _, k := range hostileKinds {
		reps = append(reps, hostileReport(k))
	}
	for _, mode := range allModes {
		for _, eol := range []string{"\n", "\r\n", "\r"} {
			for _, r := range reps {
				out := renderReport(t, Format{Mode: mode, EOL: eol}, r)
				if out == "" {
					continue
				}
				if !strings.HasSuffix(out, eol) {
					t.Errorf("%s %q: output does not end with EOL: %q", mode, r.Command, out)
				}
				for _, l := range strings.Split(strings.TrimSuffix(out, eol), eol) {
					for _, c := range l {
						// Tabs are kept, except in a table's cells.
						tabOK := c == '\t' && !(mode == ModeTable && strings.HasPrefix(l, "|"))
						if c < 0x20 && !tabOK || c == 0x7f || (c >= 0x80 && c < 0xa0) {
							t.Errorf("%s EOL %q %q: control character %U in line %q", mode, eol, r.Command, c, l)
							break
						}
					}
				}
			}
		}
	}
}

func TestEOLDefault(t *testing.T) {
	if got, want := renderReport(t, Format{Mode: ModeVerbose}, reportFailure()), renderReport(t, Format{Mode: ModeVerbose, EOL: "\n"}, reportFailure()); got != want {
		t.Errorf("empty EOL: got %q, want %q", got, want)
	}
	if got, want := renderReport(t, Format{Mode: "bogus", EOL: "\n"}, reportShow()), renderReport(t, Format{Mode: ModeVerbose, EOL: "\n"}, reportShow()); got != want {
		t.Errorf("unknown mode is not Verbose: %q", got)
	}
}

// TestVerboseUnchanged pins the Verbose output of docs/output-formats.md, byte for byte.
func TestVerboseUnchanged(t *testing.T) {
	r := &Report{Command: "show Vm name=web1", Time: goldenTime, Result: &Result{Props: []Prop{
		{"Name", "web1"}, {"Id", "0004fb0000060000a5f0ebbf4ad8b8b8"}, {"Memory (MB)", "1024"}}}}
	want := "Command: show Vm name=web1\nStatus: Success\nTime: 2026-11-21 10:20:23,345 UTC\nData:\n" +
		"  Name = web1\n  Id = 0004fb0000060000a5f0ebbf4ad8b8b8\n  Memory (MB) = 1024\n"
	if got := renderReport(t, Format{Mode: ModeVerbose, EOL: "\n"}, r); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	want = "Command: list Vm\nStatus: Success\nTime: 2026-11-21 10:20:23,345 UTC\nData:\n" +
		"  id:0004fb00000600007ea7a06224d83172  name:web1\n"
	r = &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Rows: []Row{{ID: "0004fb00000600007ea7a06224d83172", Name: "web1", Cols: []Prop{{"status", "Running"}}}}}}
	if got := renderReport(t, Format{Mode: ModeVerbose, EOL: "\n"}, r); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	want = "Command: start Vm name=web9\nStatus: Failure\nTime: 2026-11-21 10:20:23,345 UTC\nError Msg: XM_0404E: Vm \"web9\" not found\n"
	if got := renderReport(t, Format{Mode: ModeVerbose, EOL: "\n"}, reportFailure()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A nil Result prints as an empty one.
	for _, mode := range allModes {
		a := renderReport(t, Format{Mode: mode, EOL: "\n"}, &Report{Command: "set outputMode=Json", Time: goldenTime})
		b := renderReport(t, Format{Mode: mode, EOL: "\n"}, reportSet())
		if strings.Replace(b, "set outputMode=Verbose", "set outputMode=Json", 1) != a {
			t.Errorf("%s: nil Result %q, empty Result %q", mode, a, b)
		}
	}
}

// TestOracleStyleParser reads Verbose show output as scripts written for
// Oracle VM's CLI do: wait for "Status: Success", then split each line
// after "Data:" on " = ".
func TestOracleStyleParser(t *testing.T) {
	out := renderReport(t, Format{Mode: ModeVerbose, EOL: "\r\n"}, reportShow())
	attrs := map[string]string{}
	status, inData := "", false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "Status: "):
			status = strings.TrimPrefix(line, "Status: ")
		case line == "Data:":
			inData = true
		case inData:
			kv := strings.SplitN(strings.TrimSpace(line), " = ", 2)
			if len(kv) != 2 {
				t.Fatalf("data line without ' = ': %q", line)
			}
			attrs[kv[0]] = kv[1]
		}
	}
	if status != "Success" {
		t.Errorf("Status = %q", status)
	}
	want := map[string]string{"Name": "web1", "Id": "0004fb00000600007ea7a06224d83172", "Status": "Running",
		"Memory (MB)": "1024", "Server": "0004fb00000400001c2e4d9f0a3b7c11  [ovs1]"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
}

func TestAlphabetize(t *testing.T) {
	r := reportShow()
	orig := append([]Prop(nil), r.Result.Props...)
	for _, mode := range allModes {
		renderReport(t, Format{Mode: mode, EOL: "\n", Alphabetize: true}, r)
	}
	if !reflect.DeepEqual(r.Result.Props, orig) {
		t.Error("Alphabetize changed the caller's Props")
	}
	out := renderReport(t, Format{Mode: ModeSparse, EOL: "\n", Alphabetize: true}, &Report{Result: &Result{Props: []Prop{
		{"b", "1"}, {"Name", "x"}, {"a", "1"}, {"B", "2"}, {"Id", "y"}, {"A", "2"}}}})
	want := "a = 1\nA = 2\nb = 1\nB = 2\nId = y\nName = x\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestSparse(t *testing.T) {
	if out := renderReport(t, Format{Mode: ModeSparse, EOL: "\n"}, reportSet()); out != "" {
		t.Errorf("set without data printed %q", out)
	}
	if out := renderReport(t, Format{Mode: ModeSparse, EOL: "\n"}, reportFailure()); out != "Error Msg: XM_0404E: Vm \"web9\" not found\n" {
		t.Errorf("failure printed %q", out)
	}
}

// jsonReport is the Json schema of docs/output-formats.md.
type jsonReport struct {
	Command string          `json:"command"`
	Status  string          `json:"status"`
	Time    string          `json:"time"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeJSON(t *testing.T, out string) jsonReport {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("not one line: %q", out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var j jsonReport
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one value: %q", out)
	}
	return j
}

// orderedObject decodes a JSON object keeping its keys in order.
func orderedObject(t *testing.T, raw []byte) []Prop {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var out []Prop
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("value of %v is not a string: %v", k, err)
		}
		out = append(out, Prop{k.(string), v})
	}
	return out
}

func TestJSONParses(t *testing.T) {
	for _, c := range goldenCases {
		r := c.rep()
		j := decodeJSON(t, renderReport(t, Format{Mode: ModeJSON, EOL: "\n"}, r))
		if j.Command != r.Command || j.Status != r.status() || j.Time != "2026-11-21T10:20:23.345Z" {
			t.Errorf("%s: header %+v", c.name, j)
		}
		if tm, err := time.Parse(time.RFC3339Nano, j.Time); err != nil || !tm.Equal(goldenTime) {
			t.Errorf("%s: time %q: %v", c.name, j.Time, err)
		}
		if r.Failed() != (j.Error != nil) || r.Failed() && (j.Error.Code != string(r.Code) || j.Error.Message != r.Msg) {
			t.Errorf("%s: error %+v", c.name, j.Error)
		}
		res := r.Result
		switch {
		case res == nil || dataKind(res) == dataNone:
			if j.Data != nil {
				t.Errorf("%s: data %s, want none", c.name, j.Data)
			}
		case len(res.Text) > 0:
			var d struct {
				Text []string `json:"text"`
			}
			if err := json.Unmarshal(j.Data, &d); err != nil || !reflect.DeepEqual(d.Text, res.Text) {
				t.Errorf("%s: text %s (%v)", c.name, j.Data, err)
			}
		case len(res.Rows) > 0:
			var rows []json.RawMessage
			if err := json.Unmarshal(j.Data, &rows); err != nil || len(rows) != len(res.Rows) {
				t.Fatalf("%s: rows %s (%v)", c.name, j.Data, err)
			}
			for i, raw := range rows {
				got := orderedObject(t, raw)
				want := []Prop{{"id", res.Rows[i].ID}, {"name", res.Rows[i].Name}}
				want = append(want, res.Rows[i].Cols...) // keys already lowerCamel
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s row %d: got %v, want %v", c.name, i, got, want)
				}
			}
		case len(res.Props) > 0:
			if got := orderedObject(t, j.Data); !reflect.DeepEqual(got, res.Props) {
				t.Errorf("%s: props %v, want %v", c.name, got, res.Props)
			}
		}
	}
	for _, k := range hostileKinds {
		j := decodeJSON(t, renderReport(t, Format{Mode: ModeJSON, EOL: "\r\n"}, hostileReport(k)))
		if !strings.HasPrefix(j.Command, "show Vm name=a\nb\rc\td\x1b[31mred\x00\x7f\ufffd\ufffd\u2028\u0085]]></x>\"'&<{}\\é") {
			t.Errorf("%s: command %q", k, j.Command)
		}
	}
	// An empty list is an empty array; set's empty result has no data.
	j := decodeJSON(t, renderReport(t, Format{Mode: ModeJSON, EOL: "\n"}, &Report{Command: "list Vm", Time: goldenTime, Result: &Result{Rows: []Row{}}}))
	if string(j.Data) != "[]" {
		t.Errorf("empty list: data %s", j.Data)
	}
}

// xmlReport is the Xml schema of docs/output-formats.md.
type xmlReport struct {
	XMLName xml.Name `xml:"result"`
	Command string   `xml:"command"`
	Status  string   `xml:"status"`
	Time    string   `xml:"time"`
	Data    *struct {
		Objects []struct {
			ID   string    `xml:"id,attr"`
			Name string    `xml:"name,attr"`
			Cols []xmlProp `xml:"col"`
		} `xml:"object"`
		Attributes []xmlProp `xml:"attribute"`
		Text       *struct {
			Lines []string `xml:"line"`
		} `xml:"text"`
	} `xml:"data"`
	Error *struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	} `xml:"error"`
}

type xmlProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

func decodeXML(t *testing.T, out string) xmlReport {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || !strings.HasPrefix(out, xmlDecl) {
		t.Fatalf("not one line with the declaration: %q", out)
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	dec.Strict = true
	var x xmlReport
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return x
}

func TestXMLParses(t *testing.T) {
	for _, c := range goldenCases {
		r := c.rep()
		x := decodeXML(t, renderReport(t, Format{Mode: ModeXML, EOL: "\n"}, r))
		if x.Command != r.Command || x.Status != r.status() || x.Time != "2026-11-21T10:20:23.345Z" {
			t.Errorf("%s: header %+v", c.name, x)
		}
		if r.Failed() != (x.Error != nil) || r.Failed() && (x.Error.Code != string(r.Code) || x.Error.Message != r.Msg) {
			t.Errorf("%s: error %+v", c.name, x.Error)
		}
		res := r.Result
		if res == nil || dataKind(res) == dataNone {
			if x.Data != nil {
				t.Errorf("%s: data present", c.name)
			}
			continue
		}
		if x.Data == nil {
			t.Fatalf("%s: no data", c.name)
		}
		switch {
		case len(res.Text) > 0:
			if x.Data.Text == nil || !reflect.DeepEqual(x.Data.Text.Lines, res.Text) {
				t.Errorf("%s: text %+v", c.name, x.Data.Text)
			}
		case len(res.Rows) > 0:
			if len(x.Data.Objects) != len(res.Rows) {
				t.Fatalf("%s: %d objects", c.name, len(x.Data.Objects))
			}
			for i, o := range x.Data.Objects {
				row := res.Rows[i]
				if o.ID != row.ID || o.Name != row.Name || len(o.Cols) != len(row.Cols) {
					t.Fatalf("%s: object %+v", c.name, o)
				}
				for k, col := range o.Cols {
					if col.Name != row.Cols[k].Key || col.Value != row.Cols[k].Value {
						t.Errorf("%s: col %+v, want %+v", c.name, col, row.Cols[k])
					}
				}
			}
		case len(res.Props) > 0:
			if len(x.Data.Attributes) != len(res.Props) {
				t.Fatalf("%s: %d attributes", c.name, len(x.Data.Attributes))
			}
			for i, a := range x.Data.Attributes {
				if a.Name != res.Props[i].Key || a.Value != res.Props[i].Value {
					t.Errorf("%s: attribute %+v, want %+v", c.name, a, res.Props[i])
				}
			}
		}
	}
	for _, k := range hostileKinds {
		x := decodeXML(t, renderReport(t, Format{Mode: ModeXML, EOL: "\r\n"}, hostileReport(k)))
		// Newlines, tabs, CRs, DEL and C1 survive as character references;
		// other control characters and invalid UTF-8 become U+FFFD.
		want := "show Vm name=a\nb\rc\td\ufffd[31mred\ufffd\x7f\ufffd\ufffd\u2028\u0085]]></x>\"'&<{}\\é"
		if x.Command != want {
			t.Errorf("%s: command %q, want %q", k, x.Command, want)
		}
	}
}

func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{
		"status": "status", "memoryMiB": "memoryMiB", "serverPool": "serverPool", "Id": "id",
		"Memory (MB)": "memoryMb", "IP Address": "ipAddress", "CPUCount": "cpuCount", "MB": "mb",
		"Processor Speed (GHz)": "processorSpeedGHz", "result": "result", "fsLocation": "fsLocation",
		"server_pool": "serverPool", "--": "col", "": "col", "Été": "été",
	} {
		if got := lowerCamel(in); got != want {
			t.Errorf("lowerCamel(%q) = %q, want %q", in, got, want)
		}
	}
	keys := colKeys(Row{Cols: []Prop{{"name", ""}, {"Status", ""}, {"status", ""}, {"id", ""}}})
	if want := []string{"name2", "status", "status2", "id2"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("colKeys = %v, want %v", keys, want)
	}
	// The cache answers rows of other columns afresh.
	var cache colKeyCache
	for _, row := range []Row{
		{Cols: []Prop{{"status", "a"}, {"memory", "b"}}},
		{Cols: []Prop{{"status", "c"}, {"memory", "d"}}},
		{Cols: []Prop{{"status", "e"}}},
		{Cols: []Prop{{"status", ""}, {"Status", ""}}},
		{Cols: []Prop{{"status", ""}, {"memory", ""}}},
	} {
		if got, want := cache.keys(row), colKeys(row); !reflect.DeepEqual(got, want) {
			t.Errorf("cached keys of %v = %v, want %v", row.Cols, got, want)
		}
	}
	if got := propKeys([]Prop{{"A", ""}, {"A", ""}, {"A", ""}}); !reflect.DeepEqual(got, []string{"A", "A (2)", "A (3)"}) {
		t.Errorf("propKeys = %v", got)
	}
}

func TestTable(t *testing.T) {
	out := renderReport(t, Format{Mode: ModeTable, EOL: "\n"}, reportMultiFailure())
	if strings.Contains(out, "\x1b") {
		t.Error("colour codes in Table output")
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "Command: stop Vm name=web* multiple=Yes" || lines[1] != "Status: Failure" ||
		lines[2] != "Time: 2026-11-21 10:20:23,345 UTC" || lines[len(lines)-2] != "Error Msg: XM_0412E: 1 of 3 Vms failed" {
		t.Errorf("header or error line missing:\n%s", out)
	}
	// Rows whose Cols differ: the first row's order, then later keys.
	h, cells := rowTable([]Row{{ID: "1", Name: "a", Cols: []Prop{{"b", "1"}, {"a", "2"}}}, {ID: "2", Name: "b", Cols: []Prop{{"c", "3"}, {"b", "4"}}}})
	if !reflect.DeepEqual(h, []string{"Name", "Id", "B", "A", "C"}) ||
		!reflect.DeepEqual(cells, [][]string{{"a", "1", "1", "2", ""}, {"b", "2", "4", "", "3"}}) {
		t.Errorf("rowTable = %v %v", h, cells)
	}
}

// TestTextIsFramed: text data (help, <command> ?, top's snapshot, a
// vm.cfg) is framed like any other data in every mode: Verbose and Table
// print the header, "Data:" and the lines indented; Sparse the lines alone;
// Json and Xml their document; a failure ends with Error Msg.
func TestTextIsFramed(t *testing.T) {
	text := &Report{Command: "getVmCfgFileContent Vm name=web1", Time: goldenTime, Result: &Result{Text: []string{"name = 'web1'", "", "memory = 1024"}}}
	framed := "Command: getVmCfgFileContent Vm name=web1\nStatus: Success\nTime: 2026-11-21 10:20:23,345 UTC\nData:\n" +
		"  name = 'web1'\n  \n  memory = 1024\n"
	tests := []struct {
		mode string
		want string
	}{
		{ModeVerbose, framed},
		{ModeTable, framed},
		{ModeSparse, "name = 'web1'\n\nmemory = 1024\n"},
		{ModeJSON, `{"command":"getVmCfgFileContent Vm name=web1","status":"Success","time":"2026-11-21T10:20:23.345Z","data":{"text":["name = 'web1'","","memory = 1024"]}}` + "\n"},
		{ModeXML, xmlDecl + `<result><command>getVmCfgFileContent Vm name=web1</command><status>Success</status><time>2026-11-21T10:20:23.345Z</time>` +
			`<data><text><line>name = &#39;web1&#39;</line><line></line><line>memory = 1024</line></text></data></result>` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			if got := renderReport(t, Format{Mode: tc.mode, EOL: "\n"}, text); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
