package xmlrpcwire

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"
)

type inner struct {
	N int64 `xmlrpc:"n"`
}

type sample struct {
	Name    string   `xmlrpc:"name"`
	Count   int      `xmlrpc:"count"`
	Opt     string   `xmlrpc:"opt,omitempty"`
	Skip    string   `xmlrpc:"-"`
	Ptr     *inner   `xmlrpc:"ptr"`
	Any     any      `xmlrpc:"any"`
	List    []string `xmlrpc:"list"`
	private int
}

func TestEncodeValues(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"int", 42, "<int>42</int>"},
		{"int8", int8(-3), "<int>-3</int>"},
		{"uint32 max", uint32(math.MaxUint32), "<i8>4294967295</i8>"},
		{"int32 bounds", []int64{math.MaxInt32, math.MinInt32, math.MaxInt32 + 1}, "<array><data><value><int>2147483647</int></value><value><int>-2147483648</int></value><value><i8>2147483648</i8></value></data></array>"},
		{"float", 0.25, "<double>0.25</double>"},
		{"float big", 1e21, "<double>1000000000000000000000</double>"},
		{"bool", true, "<boolean>1</boolean>"},
		{"false", false, "<boolean>0</boolean>"},
		{"string escaped", `a<b>&"c"`, "<string>a&lt;b&gt;&amp;&#34;c&#34;</string>"},
		{"bytes", []byte("hi"), "<base64>aGk=</base64>"},
		{"nil slice", []string(nil), "<array><data></data></array>"},
		{"map sorted", map[string]string{"b": "2", "a": "1"}, "<struct><member><name>a</name><value><string>1</string></value></member><member><name>b</name><value><string>2</string></value></member></struct>"},
		{"map nil left out", map[string]any{"a": nil, "b": 1}, "<struct><member><name>b</name><value><int>1</int></value></member></struct>"},
		{"struct", sample{Name: "x", Count: 1, Skip: "s"}, "<struct><member><name>name</name><value><string>x</string></value></member><member><name>count</name><value><int>1</int></value></member><member><name>list</name><value><array><data></data></array></value></member></struct>"},
		{"struct full", &sample{Opt: "o", Ptr: &inner{N: 5}, Any: "v"}, "<struct><member><name>name</name><value><string></string></value></member><member><name>count</name><value><int>0</int></value></member><member><name>opt</name><value><string>o</string></value></member><member><name>ptr</name><value><struct><member><name>n</name><value><int>5</int></value></member></struct></value></member><member><name>any</name><value><string>v</string></value></member><member><name>list</name><value><array><data></data></array></value></member></struct>"},
		{"time", time.Date(1998, 7, 17, 14, 8, 55, 0, time.UTC), "<dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := EncodeResponse(&b, tt.in); err != nil {
				t.Fatalf("EncodeResponse: %v", err)
			}
			want := "<methodResponse><params><param><value>" + tt.want + "</value></param></params></methodResponse>"
			if got := b.String(); !strings.Contains(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, "nil value"},
		{"nil pointer", (*inner)(nil), "nil value"},
		{"nil in array", []any{1, nil}, "result[1]: nil value"},
		{"NaN", math.NaN(), "not a finite number"},
		{"uint64 overflow", uint64(math.MaxUint64), "does not fit"},
		{"int keys", map[int]string{1: "a"}, "map keys must be strings"},
		{"channel", make(chan int), "cannot encode chan int"},
		{"nested bad", map[string]any{"a": []any{func() {}}}, "result.a[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := EncodeResponse(&b, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %q on error, want nothing", b.String())
			}
		})
	}
}

// kResult is what a kolo/xmlrpc client decodes responses into.
type kResult struct {
	Name   string            `xmlrpc:"name"`
	Big    int64             `xmlrpc:"big"`
	Small  int               `xmlrpc:"small"`
	Ratio  float64           `xmlrpc:"ratio"`
	OK     bool              `xmlrpc:"ok"`
	Tags   []string          `xmlrpc:"tags"`
	Nested map[string]string `xmlrpc:"nested"`
	Gone   string            `xmlrpc:"gone"`
}

// TestRoundTripWithKolo checks that kolo/xmlrpc, the client the manager
// uses, decodes what EncodeResponse and EncodeFault write.
func TestRoundTripWithKolo(t *testing.T) {
	in := map[string]any{
		"name":   "a <b> & 'c' \"d\" \n é",
		"big":    int64(1) << 40,
		"small":  -12,
		"ratio":  12.75,
		"ok":     true,
		"tags":   []string{"x", "y"},
		"nested": map[string]string{"k": "v"},
		"gone":   nil,
	}
	var b bytes.Buffer
	if err := EncodeResponse(&b, in); err != nil {
		t.Fatal(err)
	}
	resp := xmlrpc.Response(b.Bytes())
	if err := resp.Err(); err != nil {
		t.Fatalf("kolo sees a fault: %v", err)
	}
	var got kResult
	if err := resp.Unmarshal(&got); err != nil {
		t.Fatalf("kolo Unmarshal: %v", err)
	}
	want := kResult{Name: in["name"].(string), Big: 1 << 40, Small: -12, Ratio: 12.75, OK: true,
		Tags: []string{"x", "y"}, Nested: map[string]string{"k": "v"}}
	if got.Name != want.Name || got.Big != want.Big || got.Small != want.Small || got.Ratio != want.Ratio ||
		got.OK != want.OK || strings.Join(got.Tags, ",") != "x,y" || got.Nested["k"] != "v" || got.Gone != "" {
		t.Errorf("kolo decoded %+v, want %+v", got, want)
	}

	b.Reset()
	if err := EncodeFault(&b, 1002, "NotFound: vm <x> & y"); err != nil {
		t.Fatal(err)
	}
	err := xmlrpc.Response(b.Bytes()).Err()
	fault, ok := err.(xmlrpc.FaultError)
	if !ok {
		t.Fatalf("kolo Err() = %#v, want a FaultError", err)
	}
	if fault.Code != 1002 || fault.String != "NotFound: vm <x> & y" {
		t.Errorf("fault = %+v, want code 1002 and the escaped string back", fault)
	}
}

// TestDecodeKoloCall checks that calls encoded by kolo/xmlrpc decode.
func TestDecodeKoloCall(t *testing.T) {
	type params struct {
		Memory int64    `xmlrpc:"memory"`
		Disk   []string `xmlrpc:"disk"`
	}
	body, err := xmlrpc.EncodeMethodCall("create_vm", "repo", "vm<1>", params{Memory: 1 << 33, Disk: []string{"file:/a,xvda,w"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	method, got, err := DecodeCall(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("DecodeCall(%s): %v", body, err)
	}
	if method != "create_vm" || len(got) != 4 {
		t.Fatalf("got %q with %d params", method, len(got))
	}
	m := got[2].(map[string]any)
	if got[0] != "repo" || got[1] != "vm<1>" || m["memory"] != int64(1<<33) || m["disk"].([]any)[0] != "file:/a,xvda,w" || got[3] != true {
		t.Errorf("decoded %#v", got)
	}
}

// checkFastEncodingAgrees fails unless appendAny, with its cases for the
// common types, encodes v exactly as appendValue does by reflection, errors
// included.
func checkFastEncodingAgrees(t *testing.T, v any) {
	t.Helper()
	fast, fastErr := appendAny(nil, v, 0)
	slow, slowErr := appendValue(nil, reflect.ValueOf(v), 0)
	if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
		t.Fatalf("%#v: appendAny fails with %v, appendValue with %v", v, fastErr, slowErr)
	}
	if fastErr == nil && !bytes.Equal(fast, slow) {
		t.Fatalf("%#v:\nappendAny   %s\nappendValue %s", v, fast, slow)
	}
}

func TestFastEncodingAgrees(t *testing.T) {
	nested := func(depth int, leaf any) any {
		v := leaf
		for range depth {
			v = []any{v}
		}
		return v
	}
	values := []any{
		"a <b> & 'c'", "", true, false, 7, -1 << 40, int64(math.MinInt32), 1.5, math.Inf(1), math.NaN(),
		[]string{"x", "y&z"}, []string(nil), []any{}, []any{1, "s", nil}, []any{(*inner)(nil)},
		map[string]any{"b": 1, "a": "x", "nil": nil, "ptr": (*inner)(nil), "in": &inner{N: 2}, "<k>": []string{"v"}},
		map[string]any{"deep": map[string]any{"list": []any{map[string]any{}, []byte("hi")}}},
		[]any{sample{Name: "n", Any: map[string]any{"x": 1.25}}},
		map[string]any{"bad": []any{func() {}}},
	}
	for _, d := range []int{MaxDepth - 2, MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		values = append(values, nested(d, "s"), nested(d, []string{"s"}), nested(d, []string{}),
			nested(d, map[string]any{"k": "v"}), nested(d, map[string]any{"k": nil}))
	}
	for _, v := range values {
		checkFastEncodingAgrees(t, v)
	}
}

// plainKinds is a struct of every plain kind appendStruct appends
// straight, with and without omitempty.
type plainKinds struct {
	S   string  `xmlrpc:"s"`
	SO  string  `xmlrpc:"so,omitempty"`
	I   int64   `xmlrpc:"i"`
	IO  int8    `xmlrpc:"io,omitempty"`
	F   float64 `xmlrpc:"f"`
	FO  float32 `xmlrpc:"fo,omitempty"`
	B   bool    `xmlrpc:"b"`
	BO  bool    `xmlrpc:"bo,omitempty"`
	P   *inner  `xmlrpc:"p"`
	U   uint16  `xmlrpc:"u"`
	Esc string  `xmlrpc:"a&b"`
}

// memberByMember is what appendStruct did before its plain kinds were
// appended straight: every field through appendNamedMember.
func memberByMember(b []byte, v reflect.Value, depth int) ([]byte, error) {
	b = append(b, "<value><struct>"...)
	for _, f := range structFields(v.Type()) {
		fv := v.Field(f.index)
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		var err error
		if b, err = appendNamedMember(b, f.open, f.name, fv, depth); err != nil {
			return b, err
		}
	}
	return append(b, "</struct></value>"...), nil
}

// Plain fields appended straight encode as they did member by member,
// errors and the depth limit included, alone and in slices.
func TestStructPlainFieldsAgree(t *testing.T) {
	values := []plainKinds{
		{},
		{S: "x<y", SO: "o", I: -1 << 40, IO: -3, F: 0.5, FO: 1.25, B: true, BO: true, P: &inner{N: 1}, U: 7, Esc: "e"},
		{F: math.Copysign(0, -1), FO: float32(math.Copysign(0, -1))},
		{F: math.Inf(1)},
		{FO: float32(math.NaN())},
	}
	for _, pk := range values {
		for _, depth := range []int{0, MaxDepth - 1, MaxDepth} {
			v := reflect.ValueOf(pk)
			fast, fastErr := appendStruct(nil, v, structFields(v.Type()), depth)
			slow, slowErr := memberByMember(nil, v, depth)
			if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) || fastErr == nil && !bytes.Equal(fast, slow) {
				t.Errorf("%+v at depth %d:\nstraight     %s (%v)\nby member    %s (%v)", pk, depth, fast, fastErr, slow, slowErr)
			}
		}
	}
	for _, depth := range []int{0, MaxDepth - 2, MaxDepth - 1, MaxDepth} {
		list := reflect.ValueOf(values)
		got, gotErr := appendValue(nil, list, depth)
		want := []byte("<value><array><data>")
		var wantErr error
		for i := range values {
			if depth+1 > MaxDepth {
				wantErr = within(errTooDeep(), "["+fmt.Sprint(i)+"]")
				break
			}
			if want, wantErr = memberByMember(want, list.Index(i), depth+1); wantErr != nil {
				wantErr = within(wantErr, "["+fmt.Sprint(i)+"]")
				break
			}
		}
		want = append(want, "</data></array></value>"...)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || gotErr == nil && !bytes.Equal(got, want) {
			t.Errorf("slice at depth %d:\ngot  %s (%v)\nwant %s (%v)", depth, got, gotErr, want, wantErr)
		}
	}
}
