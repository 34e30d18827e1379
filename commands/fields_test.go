package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"xenmanager/backend"
)

// v2 is the Json version 2 format.
var v2 = Format{Mode: ModeJSON, EOL: "\n", JSONVersion: 2}

// decodeV2 decodes one Json version 2 document, checking it is one line.
func decodeV2(t *testing.T, out string) map[string]json.RawMessage {
	t.Helper()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("not one line: %q", out)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return doc
}

// Each kind's value in Json version 2, and the text the other modes print.
func TestJSONVersion2Kinds(t *testing.T) {
	at := time.Date(2026, 11, 21, 11, 20, 23, 345e6, time.FixedZone("CET", 3600))
	web1 := backend.NamedRef{ID: "0004fb00000600007ea7a06224d83172", Name: "web1"}
	db := backend.NamedRef{ID: "0004fb0000060000a5f0ebbf4ad8b8b8", Name: `db "1"`}
	cases := []struct {
		name  string
		field Field
		json  string // the value in version 2
		text  string // the value in the text modes
	}{
		{"string", strField("Name", "name", `a "b"`+"\n"), `"a \"b\"\n"`, `a "b"` + "\n"},
		{"empty string", strField("Kernel", "kernel", ""), `""`, ""},
		{"int", intField("Memory (MB)", "memory", 1024), `1024`, "1024"},
		{"negative int", intField("N", "n", -3), `-3`, "-3"},
		{"zero int", intField("N", "n", 0), `0`, "0"},
		{"absent int", slotField(backend.VirtualDisk{Slot: 2}), `null`, ""},
		{"present int", slotField(backend.VirtualDisk{Slot: 2, Vm: web1}), `2`, "2"},
		{"float", floatField("Processor Speed (GHz)", "processorSpeedGHz", 2.4, 3), `2.400`, "2.400"},
		{"true", boolField("High Availability", "highAvailability", true), `true`, "Yes"},
		{"false", boolField("High Availability", "highAvailability", false), `false`, "No"},
		{"time", timeField("Created", "created", at), `"2026-11-21T10:20:23.345Z"`, "2026-11-21 11:20:23,345 CET"},
		{"absent time", optTimeField("End Time", "endTime", time.Time{}), `null`, ""},
		{"ref", refField("Server", "server", web1), `{"id":"0004fb00000600007ea7a06224d83172","name":"web1"}`,
			"0004fb00000600007ea7a06224d83172  [web1]"},
		{"absent ref", refField("Server", "server", backend.NamedRef{}), `null`, ""},
		{"ref column", refCol("server", "server", db), `{"id":"0004fb0000060000a5f0ebbf4ad8b8b8","name":"db \"1\""}`, `db "1"`},
		{"refs", refsField("Vnics", "vnics", []backend.NamedRef{web1, db}),
			`[{"id":"0004fb00000600007ea7a06224d83172","name":"web1"},{"id":"0004fb0000060000a5f0ebbf4ad8b8b8","name":"db \"1\""}]`,
			`web1, db "1"`},
		{"no refs", refsField("Vnics", "vnics", nil), `[]`, ""},
		{"strings", stringsField("Objects", "objects", []string{"a", "b"}, " "), `["a","b"]`, "a b"},
		{"no strings", tagsField(nil), `[]`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := &Report{Command: "show X", Time: goldenTime, Result: &Result{Fields: []Field{c.field}}}
			want := `{"jsonVersion":2,"command":"show X","status":"Success","time":"2026-11-21T10:20:23.345Z","data":{"` +
				c.field.Attr + `":` + c.json + "}}\n"
			if got := renderReport(t, v2, rep); got != want {
				t.Errorf("version 2:\n got %s\nwant %s", got, want)
			}
			decodeV2(t, want) // the expected document is valid JSON
			wantText := "Command: show X\nStatus: Success\nTime: 2026-11-21 10:20:23,345 UTC\nData:\n  " + c.field.Key + " = " + termSafe(c.text) + "\n"
			if got := renderReport(t, Format{Mode: ModeVerbose}, rep); got != wantText {
				t.Errorf("Verbose:\n got %q\nwant %q", got, wantText)
			}
		})
	}
}

// isJSONNumber accepts what a JSON decoder reads as a number, within the
// syntax the constructors print (no exponent).
func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "-1": true, "1024": true, "2.400": true, "-0.5": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e3": false, "NaN": false, "+1": false, "1 ": false} {
		if got := isJSONNumber(s); got != want {
			t.Errorf("isJSONNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

// The frame of version 2: jsonVersion first, then the keys of version 1,
// and the error object with the exit status its code ends a session with.
func TestJSONVersion2Frame(t *testing.T) {
	cases := []struct {
		rep  *Report
		want string
	}{
		{reportSet(), `{"jsonVersion":2,"command":"set outputMode=Verbose","status":"Success","time":"2026-11-21T10:20:23.345Z"}`},
		{reportFailure(), `{"jsonVersion":2,"command":"start Vm name=web9","status":"Failure","time":"2026-11-21T10:20:23.345Z",` +
			`"error":{"code":"XM_0404E","message":"Vm \"web9\" not found","exitStatus":1}}`},
		{&Report{Command: "strat", Time: goldenTime, Code: CodeUnknownCommand, Msg: "unknown command 'strat'"},
			`{"jsonVersion":2,"command":"strat","status":"Failure","time":"2026-11-21T10:20:23.345Z",` +
				`"error":{"code":"XM_0001E","message":"unknown command 'strat'","exitStatus":2}}`},
		{&Report{Command: "stop Vm name=web1", Time: goldenTime, Code: CodePermission, Msg: "not allowed"},
			`{"jsonVersion":2,"command":"stop Vm name=web1","status":"Failure","time":"2026-11-21T10:20:23.345Z",` +
				`"error":{"code":"XM_0403E","message":"not allowed","exitStatus":3}}`},
		{&Report{Command: "help", Time: goldenTime, Result: &Result{Text: []string{"a", ""}}},
			`{"jsonVersion":2,"command":"help","status":"Success","time":"2026-11-21T10:20:23.345Z","data":{"text":["a",""]}}`},
		{&Report{Command: "list Vm", Time: goldenTime, Result: &Result{Rows: []Row{}}},
			`{"jsonVersion":2,"command":"list Vm","status":"Success","time":"2026-11-21T10:20:23.345Z","data":[]}`},
	}
	for _, c := range cases {
		if got := renderReport(t, v2, c.rep); got != c.want+"\n" {
			t.Errorf("%s:\n got %s\nwant %s", c.rep.Command, got, c.want)
		}
	}
}

// typedShow and typedList are the golden show and list of format_test.go
// built as the commands build them, with fields.
func typedShow() *Report {
	r := reportShow()
	r.Result = &Result{Fields: []Field{
		strField("Name", "name", "web1"),
		strField("Id", "id", "0004fb00000600007ea7a06224d83172"),
		strField("Status", "status", "Running"),
		refField("Server", "server", backend.NamedRef{ID: "0004fb00000400001c2e4d9f0a3b7c11", Name: "ovs1"}),
		refField("Server Pool", "serverPool", backend.NamedRef{ID: "0004fb0000020000c0ffee0000000001", Name: "pool1"}),
		refField("Repository", "repository", backend.NamedRef{ID: "0004fb0000030000c0ffee0000000002", Name: "repo1"}),
		intField("Memory (MB)", "memory", 1024),
		intField("Processors", "cpuCount", 2),
		strField("Domain Type", "domainType", "Xen HVM, PV Drivers"),
		strField("description", "description", `HR's "front" web server <prod> & co`),
	}}
	return r
}

func typedList() *Report {
	r := reportList()
	rows := make([]Row, len(r.Result.Rows))
	for i, row := range r.Result.Rows {
		val := func(k string) string { return row.Cols[index(row.Cols, k)].Value }
		mem, cpus := int64(0), int64(0)
		fmt.Sscan(val("memory"), &mem)
		fmt.Sscan(val("cpus"), &cpus)
		server := backend.NamedRef{Name: val("server")}
		if server.Name != "" {
			server.ID = fmt.Sprintf("0004fb0000040000000000000000000%d", i)
		}
		rows[i] = Row{ID: row.ID, Name: row.Name, Fields: []Field{strField("status", "status", val("status")), refCol("server", "server", server),
			intField("memory", "memory", mem), intField("cpus", "cpuCount", cpus),
			refCol("repository", "repository", backend.NamedRef{ID: "0004fb0000030000c0ffee0000000002", Name: val("repository")})}}
	}
	r.Result = &Result{Rows: rows}
	return r
}

func index(props []Prop, key string) int {
	for i, p := range props {
		if p.Key == key {
			return i
		}
	}
	panic("no column " + key)
}

// typedMultiFailure is a failed multi-object action as vmAction builds it.
func typedMultiFailure() *Report {
	r := reportMultiFailure()
	failed := &backend.Error{Kind: backend.KindInvalidState, Msg: `Vm "web2" is not running`}
	r.Result = &Result{Rows: []Row{
		{ID: "0004fb00000600007ea7a06224d83172", Name: "web1", Fields: outcomeFields(StatusSuccess, nil)},
		{ID: "0004fb0000060000b1b2b3b4b5b6b7b8", Name: "web2", Fields: outcomeFields(StatusSuccess, failed)},
		{ID: "0004fb0000060000c1c2c3c4c5c6c7c8", Name: "web3", Fields: startedFields("0004fb0000110000aaaa000000000003")},
	}}
	return r
}

// Results built with fields print in every mode but Json version 2 exactly
// as the same results built of text alone: the golden files of the text
// form are those of TestGoldenOutput, byte for byte.
func TestFieldsPrintAsTextInVersion1AndOtherModes(t *testing.T) {
	for _, mode := range allModes {
		for _, f := range []Format{{Mode: mode, EOL: "\n"}, {Mode: mode, EOL: "\n", JSONVersion: 1}, {Mode: mode, EOL: "\n", Alphabetize: true}} {
			if mode != ModeJSON && f.JSONVersion == 1 {
				continue
			}
			for _, c := range []struct{ text, typed *Report }{{reportShow(), typedShow()}, {reportList(), typedList()}} {
				if got, want := renderReport(t, f, c.typed), renderReport(t, f, c.text); got != want {
					t.Errorf("%+v %s:\n got %q\nwant %q", f, c.text.Command, got, want)
				}
			}
			// Format{Mode: ModeXML, JSONVersion: 2} is Xml: the version is Json's alone.
			f.JSONVersion = 2
			if mode != ModeJSON {
				if got, want := renderReport(t, f, typedShow()), renderReport(t, Format{Mode: mode, EOL: "\n", Alphabetize: f.Alphabetize}, reportShow()); got != want {
					t.Errorf("%s with JSONVersion 2:\n got %q\nwant %q", mode, got, want)
				}
			}
		}
	}
	// The multi-object action's text form: Success, the error, the job.
	out := renderReport(t, Format{Mode: ModeVerbose}, typedMultiFailure())
	for _, want := range []string{"name:web1  result:Success\n", `name:web2  result:XM_0412E: Vm "web2" is not running` + "\n",
		"name:web3  result:Job 0004fb0000110000aaaa000000000003\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("Verbose lacks %q:\n%s", want, out)
		}
	}
}

// The golden files of version 2: a show, a list, a failed multi-object
// action, in order and with alphabetizeAttributes=Yes (sorted by key).
func TestGoldenOutputVersion2(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Format
		rep  func() *Report
	}{
		{"show", v2, typedShow},
		{"show_alpha", Format{Mode: ModeJSON, EOL: "\n", JSONVersion: 2, Alphabetize: true}, typedShow},
		{"list", v2, typedList},
		{"list_crlf", Format{Mode: ModeJSON, EOL: "\r\n", JSONVersion: 2}, typedList},
		{"multifail", v2, typedMultiFailure},
		{"untyped_show", v2, reportShow},
		{"untyped_list", v2, reportList},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := renderReport(t, c.f, c.rep())
			checkGolden(t, "json2_"+c.name+".golden", got)
			decodeV2(t, strings.ReplaceAll(got, "\r\n", "\n"))
		})
	}
}

// Fields of one form only: Json version 2 leaves out the text-only ones
// (show ServerPool's "Server 1" lines), every other mode the machine-only
// ones (their array).
func TestFieldForms(t *testing.T) {
	p := backend.ServerPool{ID: "p", Name: "pool1", Servers: []backend.NamedRef{{ID: "s1", Name: "ovs1"}, {ID: "s2", Name: "ovs2"}}}
	rep := &Report{Command: "show ServerPool name=pool1", Time: goldenTime, Result: &Result{Fields: poolFields(p)}}
	doc := decodeV2(t, renderReport(t, v2, rep))
	var data map[string]json.RawMessage
	if err := json.Unmarshal(doc["data"], &data); err != nil {
		t.Fatal(err)
	}
	if string(data["servers"]) != `[{"id":"s1","name":"ovs1"},{"id":"s2","name":"ovs2"}]` || string(data["repositories"]) != "[]" {
		t.Errorf("version 2 data: %s", doc["data"])
	}
	for k := range data {
		if strings.Contains(k, " ") {
			t.Errorf("version 2 prints the text-only key %q", k)
		}
	}
	verbose := renderReport(t, Format{Mode: ModeVerbose}, rep)
	if !strings.Contains(verbose, "  Server 1 = s1  [ovs1]\n  Server 2 = s2  [ovs2]\n  Master Server = \n") || strings.Contains(verbose, "servers") {
		t.Errorf("Verbose:\n%s", verbose)
	}
}

// Every type's machine form is declared and coherent: show's and list's
// fields have a key each, unique within the object and not a row's id or
// name; a key that both print has one type; the attributes create and edit
// take come back under their own names in show.
func TestMachineFormsDeclared(t *testing.T) {
	// Attributes of create and edit that show prints under another key, or
	// not at all, and why.
	notShown := map[string]bool{
		"password":                true, // secret
		"Vm networks":             true, // create Vm makes a Vnic on each: show Vm's vnics
		"SshKey key":              true, // the public key: show SshKey prints its fingerprint
		"VirtualDisk size":        true, // GiB on create; show prints sizeMiB
		"VmDiskMapping virtualCd": true, // Oracle VM 3's spelling; show and list print virtualCdrom
	}
	for _, typ := range objectTypes {
		t.Run(typ.Name, func(t *testing.T) {
			if (typ.Show != nil) != (typ.ShowFields != nil) {
				t.Fatalf("Show declared %v, ShowFields %v", typ.Show != nil, typ.ShowFields != nil)
			}
			if typ.List == nil && typ.ListFields != nil {
				t.Fatal("ListFields without a List")
			}
			show := map[string]Field{}
			for _, f := range machineOnes(typ.showFields()) {
				if f.Attr == "" || show[f.Attr].Attr != "" {
					t.Errorf("show: key %q (%s) empty or repeated", f.Attr, f.Key)
				}
				show[f.Attr] = f
			}
			for _, f := range typ.showFields() {
				if f.Form != machineOnly && f.Key == "" {
					t.Errorf("show: %s has no text label", f.Attr)
				}
			}
			if typ.ListFields != nil {
				seen := map[string]bool{"id": true, "name": true}
				for _, f := range machineOnes(typ.ListFields()) {
					if f.Attr == "" || seen[f.Attr] {
						t.Errorf("list: key %q (%s) empty, repeated or the row's own", f.Attr, f.Key)
					}
					seen[f.Attr] = true
					if s, ok := show[f.Attr]; ok && s.Kind != f.Kind {
						t.Errorf("%s is %s in show, %s in list", f.Attr, s.Kind, f.Kind)
					}
				}
			}
			if typ.Show == nil {
				return
			}
			for _, verb := range []string{"create", "edit"} {
				v, _ := Default.Verb(verb)
				s, ok := v.Spec(typ.Name)
				if !ok {
					continue
				}
				for _, a := range s.Attrs {
					if a.Kind == AttrSecret || notShown[typ.Name+" "+a.Name] {
						continue
					}
					if _, ok := show[a.Name]; !ok {
						t.Errorf("%s %s takes %s, which show prints under no key of that name", verb, typ.Name, a.Name)
					}
				}
			}
		})
	}
	for _, r := range otherResults {
		seen := map[string]bool{}
		for _, f := range machineOnes(r.Fields()) {
			if f.Attr == "" || seen[f.Attr] {
				t.Errorf("%s: key %q empty or repeated", r.Of, f.Attr)
			}
			seen[f.Attr] = true
		}
	}
}

// An untyped Prop (a result no command builds with fields) keeps its Json
// version 1 key and is a string in version 2; errors.New stands for any
// failure in outcomeFields.
func TestUntypedFallback(t *testing.T) {
	rep := &Report{Command: "x", Time: goldenTime, Result: &Result{Props: []Prop{{"Memory (MB)", "1024"}, {"Memory (MB)", "2"}}}}
	doc := decodeV2(t, renderReport(t, v2, rep))
	if string(doc["data"]) != `{"Memory (MB)":"1024","Memory (MB) (2)":"2"}` {
		t.Errorf("data %s", doc["data"])
	}
	fields := outcomeFields(StatusSuccess, errors.New("boom"))
	if len(fields) != 3 || !strings.HasPrefix(fields[0].Value, "XM_0500E: ") || fields[0].Form != textOnly ||
		fields[1].Value != StatusFailure || fields[2].Kind != KindError || fields[2].Raw.(errorValue).Code != CodeInternal {
		t.Errorf("outcome of an internal error: %+v", fields)
	}
}
