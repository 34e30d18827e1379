package vmcfg

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		in   agentapi.VMParams
		want string
	}{
		{"known order then sorted", agentapi.VMParams{
			"zeta": "z", "memory": int64(1024), "name": "web1", "alpha": 1,
			"disk":  []string{"file:/OVS/Repositories/r/VirtualDisks/d.img,xvda,w"},
			"vcpus": 2, "uuid": "u-1",
		}, "name = 'web1'\nuuid = 'u-1'\nmemory = 1024\nvcpus = 2\n" +
			"disk = ['file:/OVS/Repositories/r/VirtualDisks/d.img,xvda,w']\nalpha = 1\nzeta = 'z'\n"},
		{"escapes", agentapi.VMParams{"OVM_description": "it's a \\ path\nnext\x01"},
			`OVM_description = 'it\'s a \\ path\nnext\x01'` + "\n"},
		{"utf8 kept", agentapi.VMParams{"name": "café"}, "name = 'café'\n"},
		{"list from xmlrpc", agentapi.VMParams{"vif": []any{"mac=00:21:f6:00:00:01,bridge=xenbr0", "b"}},
			"vif = ['mac=00:21:f6:00:00:01,bridge=xenbr0', 'b']\n"},
		{"empty list", agentapi.VMParams{"disk": []string{}}, "disk = []\n"},
		{"bool and negative", agentapi.VMParams{"OVM_high_availability": false, "x": int64(-3)},
			"OVM_high_availability = False\nx = -3\n"},
		{"nil left out", agentapi.VMParams{"name": nil, "memory": 512}, "memory = 512\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.in); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		in   agentapi.VMParams
		want string
	}{
		{"bad key", agentapi.VMParams{"a-b": 1}, `key "a-b" is not a valid name`},
		{"digit first", agentapi.VMParams{"1a": 1}, "not a valid name"},
		{"float", agentapi.VMParams{"memory": 1.5}, `"memory": cannot write a float64`},
		{"list of ints", agentapi.VMParams{"disk": []any{"a", int64(1)}}, "list item 1 is a int64"},
		{"map", agentapi.VMParams{"x": map[string]any{}}, "cannot write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %q on error", b.String())
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want agentapi.VMParams
	}{
		{"empty", "", agentapi.VMParams{}},
		{"comments and blanks", "# a VM\n\n  memory = 1024  # MiB\n\nname='web1'\n",
			agentapi.VMParams{"memory": int64(1024), "name": "web1"}},
		{"double quotes and escapes", `OVM_description = "say \"hi\"\t\\ it's\x41\101\q"`,
			agentapi.VMParams{"OVM_description": "say \"hi\"\t\\ it'sAA\\q"}},
		{"list", "disk = ['file:/a,xvda,w', \"file:/b,xvdb,r\",]\n",
			agentapi.VMParams{"disk": []string{"file:/a,xvda,w", "file:/b,xvdb,r"}}},
		{"multi-line list", "vif = [\n  'mac=1', # first\n  'mac=2'\n]\nvcpus = 2",
			agentapi.VMParams{"vif": []string{"mac=1", "mac=2"}, "vcpus": int64(2)}},
		{"empty list", "disk=[]", agentapi.VMParams{"disk": []string{}}},
		{"bools and negatives", "OVM_high_availability = True\nx = -5\ny=+6",
			agentapi.VMParams{"OVM_high_availability": true, "x": int64(-5), "y": int64(6)}},
		{"last wins", "memory = 1\nmemory = 2\n", agentapi.VMParams{"memory": int64(2)}},
		{"semicolons and CRLF", "a = 1; b = 'x'\r\nc = 3\r\n", agentapi.VMParams{"a": int64(1), "b": "x", "c": int64(3)}},
		{"big int", "maxmem = 9223372036854775807", agentapi.VMParams{"maxmem": int64(9223372036854775807)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no equals", "memory 1024", "line 1: want '=' after \"memory\""},
		{"no value", "\n\nmemory =\n", "line 3: want a value, got end of line"},
		{"unquoted word", "name = web1", `line 1: "web1" is not a value`},
		{"float", "memory = 1.5", "line 1: only decimal integers"},
		{"hex", "memory = 0x10", "only decimal integers"},
		{"overflow", "memory = 99999999999999999999", "not a 64-bit integer"},
		{"unclosed string", "a = 1\nname = 'web1\n", "line 2: string not closed"},
		{"unclosed list", "disk = ['a',\n'b'\n", "line 1: list not closed"},
		{"int in list", "disk = [1]", "list items must be quoted strings"},
		{"missing comma", "disk = ['a' 'b']", "want ',' or ']'"},
		{"trailing junk", "a = 1 2", "unexpected '2' after the value of \"a\""},
		{"bad escape", `a = '\xZZ'`, `\x needs two hex digits`},
		{"bad key", "-a = 1", "want a key name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	in := agentapi.VMParams{
		"name":                  "web1",
		"uuid":                  "0004fb00-0006-0000-1234-56789abcdef0",
		"OVM_simple_name":       "Web server #1",
		"OVM_description":       "quotes ' \" backslash \\ newline \n tab \t nul \x00 del \x7f é",
		"OVM_domain_type":       "xen_pvm",
		"OVM_high_availability": false,
		"memory":                int64(4096),
		"maxmem":                int64(1) << 40,
		"vcpus":                 int64(2),
		"cpus":                  "0-1",
		"disk":                  []string{"file:/OVS/Repositories/r1/VirtualDisks/d1.img,xvda,w"},
		"vif":                   []string{"mac=00:21:f6:00:00:01,bridge=xenbr0", "mac=00:21:f6:00:00:02,bridge=xenbr1"},
		"on_crash":              "restart",
		"extra_key":             int64(-1),
	}
	var b bytes.Buffer
	if err := Write(&b, in); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b.Bytes())
	if err != nil {
		t.Fatalf("Parse of written file: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got %#v\nwant %#v\nfile:\n%s", got, in, b.String())
	}
}

// FuzzParse checks that Parse never panics and that what it accepts writes
// back into a file that parses to the same values.
func FuzzParse(f *testing.F) {
	f.Add("memory = 1024\nname = 'web1'\ndisk = ['file:/a,xvda,w']\n")
	f.Add("# c\nx = \"a\\x00\\'b\" ; y = True\nvif = [\n'a',\n]\n")
	f.Add("a = '\\101\\q\\\n'")
	f.Fuzz(func(t *testing.T, in string) {
		params, err := Parse([]byte(in))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := Write(&b, params); err != nil {
			t.Fatalf("Write of parsed %#v: %v", params, err)
		}
		again, err := Parse(b.Bytes())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if !reflect.DeepEqual(again, params) {
			t.Fatalf("round trip changed values:\n got %#v\nwant %#v", again, params)
		}
	})
}
