package xmlrpcwire

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"strings"
	"testing"

	"github.com/kolo/xmlrpc"
)

func call(params string) string {
	return `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>` + params + `</params></methodCall>`
}

func param(v string) string { return "<param><value>" + v + "</value></param>" }

func TestDecodeCallValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"int", "<int>42</int>", int64(42)},
		{"i4 negative", "<i4>-7</i4>", int64(-7)},
		{"i8 large", "<i8>8589934592</i8>", int64(8589934592)},
		{"int beyond 32 bits", "<int>8589934592</int>", int64(8589934592)},
		{"int spaces", "<int> 5 </int>", int64(5)},
		{"boolean true", "<boolean>1</boolean>", true},
		{"boolean false", "<boolean>0</boolean>", false},
		{"string", "<string>a &amp; b &lt;c&gt;</string>", "a & b <c>"},
		{"empty string", "<string></string>", ""},
		{"self-closed string", "<string/>", ""},
		{"untyped", "plain text", "plain text"},
		{"untyped keeps spaces", "  x  ", "  x  "},
		{"empty value", "", ""},
		{"double", "<double>-1.5</double>", -1.5},
		{"base64", "<base64>aGVs\nbG8=</base64>", []byte("hello")},
		{"empty base64", "<base64></base64>", []byte{}},
		{"datetime", "<dateTime.iso8601>19980717T14:08:55</dateTime.iso8601>", "19980717T14:08:55"},
		{"struct", "<struct><member><name>a</name><value><int>1</int></value></member>" +
			"<member><name>b</name><value>x</value></member></struct>",
			map[string]any{"a": int64(1), "b": "x"}},
		{"empty struct", "<struct></struct>", map[string]any{}},
		{"array", "<array><data><value><int>1</int></value><value><string>s</string></value></data></array>",
			[]any{int64(1), "s"}},
		{"empty array", "<array><data/></array>", []any{}},
		{"whitespace between elements", "\n  <array>\n <data>\n <value> <boolean>1</boolean> </value>\n</data>\n</array>\n",
			[]any{true}},
		{"comment in value", "<!-- c --><int>3</int>", int64(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, params, err := DecodeCall(strings.NewReader(call(param(tt.in))))
			if err != nil {
				t.Fatalf("DecodeCall: %v", err)
			}
			if method != "m" {
				t.Errorf("method = %q, want %q", method, "m")
			}
			if len(params) != 1 {
				t.Fatalf("got %d params, want 1", len(params))
			}
			if !reflect.DeepEqual(params[0], tt.want) {
				t.Errorf("got %#v, want %#v", params[0], tt.want)
			}
		})
	}
}

func TestDecodeCallShapes(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		method string
		params []any
	}{
		{"no params element", `<methodCall><methodName>echo</methodName></methodCall>`, "echo", []any{}},
		{"empty params", `<methodCall><methodName> list_vms </methodName><params/></methodCall>`, "list_vms", []any{}},
		{"two params", `<methodCall><methodName>a.b</methodName><params>` + param("<int>1</int>") + param("x") +
			`</params></methodCall>`, "a.b", []any{int64(1), "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, params, err := DecodeCall(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("DecodeCall: %v", err)
			}
			if method != tt.method || !reflect.DeepEqual(params, tt.params) {
				t.Errorf("got %q %#v, want %q %#v", method, params, tt.method, tt.params)
			}
		})
	}
}

func TestDecodeCallErrors(t *testing.T) {
	deep := strings.Repeat("<value><array><data>", MaxDepth+2) + strings.Repeat("</data></array></value>", MaxDepth+2)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "unexpected EOF"},
		{"not xml", "hello", "want <methodCall>"},
		{"response", `<methodResponse></methodResponse>`, "want <methodCall>"},
		{"bad method name", `<methodCall><methodName>a b</methodName></methodCall>`, "invalid method name"},
		{"empty method name", `<methodCall><methodName></methodName></methodCall>`, "invalid method name"},
		{"nil", call(param("<nil/>")), "<nil/> is not allowed"},
		{"bad int", call(param("<int>x</int>")), "not a 64-bit integer"},
		{"int overflow", call(param("<i8>9223372036854775808</i8>")), "not a 64-bit integer"},
		{"bad boolean", call(param("<boolean>true</boolean>")), "neither 0 nor 1"},
		{"bad double", call(param("<double>NaN</double>")), "not a finite number"},
		{"bad base64", call(param("<base64>!!</base64>")), "<base64>"},
		{"unknown type", call(param("<float>1</float>")), "unknown value type <float>"},
		{"text before type", call(param("x<int>1</int>")), "text before <int>"},
		{"two types", call(param("<int>1</int><int>2</int>")), "want </value>"},
		{"duplicate member", call(param("<struct><member><name>a</name><value/></member><member><name>a</name><value/></member></struct>")), "given twice"},
		{"member without value", call(param("<struct><member><name>a</name></member></struct>")), "want <value>"},
		{"array without data", call(param("<array><value/></array>")), "want <data>"},
		{"element in string", call(param("<string><b>x</b></string>")), "unexpected <b>"},
		{"truncated", `<methodCall><methodName>m</methodName><params><param><value><int>1`, "unexpected EOF"},
		{"too deep", call("<param>" + deep + "</param>"), "nested deeper"},
		{"mismatched", `<methodCall><methodName>m</methodName><params></param></methodCall>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeCall(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("DecodeCall(%q) succeeded, want an error containing %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeCallTooLarge(t *testing.T) {
	big := call(param("<string>" + strings.Repeat("x", MaxCallBytes) + "</string>"))
	_, _, err := DecodeCall(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

// decodeWith decodes data with the given tokenizer alone, without the
// fallback of DecodeCall.
func decodeWith(toks tokenizer) (string, []any, error) {
	d := &decoder{toks: toks}
	return d.call()
}

func decodeFast(data []byte) (string, []any, error) { return decodeWith(&fastTokens{data: data}) }

func decodeXML(data []byte) (string, []any, error) {
	return decodeWith(xmlTokens{xml.NewDecoder(bytes.NewReader(data))})
}

// checkFastAgrees fails unless the fast tokenizer, where it decodes in, gives
// what encoding/xml gives.
func checkFastAgrees(t *testing.T, in []byte) (fast bool) {
	t.Helper()
	method, params, err := decodeFast(in)
	if err != nil {
		return false
	}
	method2, params2, err := decodeXML(in)
	if err != nil {
		t.Fatalf("the fast tokenizer accepts %q, encoding/xml does not: %v", in, err)
	}
	if method2 != method || !reflect.DeepEqual(params2, params) {
		t.Fatalf("the fast tokenizer decodes %q as\n %q %#v\nencoding/xml as\n %q %#v", in, method, params, method2, params2)
	}
	return true
}

// TestFastTokens checks that calls as clients write them take the fast
// way and decode as with encoding/xml, and that what the fast tokenizer
// does not know is left to encoding/xml.
func TestFastTokens(t *testing.T) {
	kolo, err := xmlrpc.EncodeMethodCall("create_vm", "r1", "vm <1> & 'x' \"y\"\n\tz é", map[string]any{
		"memory": 512, "disk": []string{"file:/a,xvda,w"}, "ok": true, "ratio": 1.5, "raw": []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	fast := map[string]string{
		"kolo":           string(kolo),
		"go":             `<?xml version="1.0"?><methodCall><methodName>echo</methodName><params><param><value><string>xenbench</string></value></param></params></methodCall>`,
		"python":         "<?xml version='1.0'?>\n<methodCall>\n<methodName>echo</methodName>\n<params>\n<param>\n<value><string>a &amp; b</string></value>\n</param>\n</params>\n</methodCall>\n",
		"no declaration": `<methodCall><methodName>list_vms</methodName><params/></methodCall>`,
		"self-closed":    call(param("<string/>") + param("<struct/>") + param("<array><data/></array>")),
		"untyped":        call(param("  a  ") + param("")),
		"references":     call(param("<string>&#34;&#x27;&#xA;&#9;&#xD;&#x20AC;&#128512;</string>")),
		"utf-8":          call(param("<string>é € 😀</string>")),
		"trailing":       `<methodCall><methodName>m</methodName></methodCall><<garbage`,
	}
	for name, in := range fast {
		t.Run(name, func(t *testing.T) {
			if !checkFastAgrees(t, []byte(in)) {
				_, _, err := decodeFast([]byte(in))
				t.Errorf("%q does not take the fast way: %v", in, err)
			}
		})
	}
	slow := map[string]string{
		"comment":          call(param("<!-- c --><int>3</int>")),
		"cdata":            call(param("<string><![CDATA[<x>]]></string>")),
		"carriage return":  "<methodCall><methodName>m</methodName><params><param><value>a\r\nb</value></param></params></methodCall>",
		"attribute":        `<methodCall a="1"><methodName>m</methodName></methodCall>`,
		"prefix":           `<x:methodCall><methodName>m</methodName></x:methodCall>`,
		"latin-1":          `<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>m</methodName></methodCall>`,
		"unknown entity":   call(param("<string>&nbsp;</string>")),
		"bad reference":    call(param("<string>&#0;</string>")),
		"invalid utf-8":    call(param("<string>\xff</string>")),
		"space in element": call(param("<string >x</string >")),
		"]]>":              call(param("<string>]]></string>")),
	}
	for name, in := range slow {
		t.Run(name, func(t *testing.T) {
			if checkFastAgrees(t, []byte(in)) {
				t.Errorf("%q takes the fast way, want encoding/xml", in)
			}
		})
	}
}

// FuzzDecodeCall checks that DecodeCall never panics, that whatever it
// accepts encodes back into a call that decodes to the same values (and
// encodes the same with and without appendAny's shortcuts), and that where
// its fast tokenizer decodes a call, encoding/xml decodes it the same.
func FuzzDecodeCall(f *testing.F) {
	f.Add(call(param("<int>1</int>")))
	f.Add(call(param("<struct><member><name>a</name><value><array><data><value>x</value></data></array></value></member></struct>")))
	f.Add(call(param("<base64>aGk=</base64>") + param("<boolean>1</boolean>") + param("<double>2.5</double>")))
	f.Add(call(param("<string>&#xD;&lt;</string>") + param("<dateTime.iso8601>x</dateTime.iso8601>")))
	f.Add(`<methodCall><methodName>echo</methodName></methodCall>`)
	f.Add("<?xml version='1.0'?>\n<methodCall>\n<methodName>m</methodName>\n<params>\n<param>\n<value><i4>-2</i4></value>\n</param>\n</params>\n</methodCall>\n")
	f.Add(`<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>m</methodName><params><param><value><string>a]]&gt;&#34;é&#x1F600;</string></value></param></params></methodCall>`)
	f.Add(call(param("<struct/>") + param("<array><data/></array>") + param("<string/>") + param(" x ")))
	f.Fuzz(func(t *testing.T, in string) {
		checkFastAgrees(t, []byte(in))
		method, params, err := DecodeCall(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range params {
			checkFastEncodingAgrees(t, p)
		}
		var b bytes.Buffer
		if err := EncodeCall(&b, method, params...); err != nil {
			t.Fatalf("EncodeCall of decoded %#v: %v", params, err)
		}
		method2, params2, err := DecodeCall(&b)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", b.String(), err)
		}
		if method2 != method || !reflect.DeepEqual(params2, params) {
			t.Fatalf("round trip changed the call:\n got %q %#v\nwant %q %#v", method2, params2, method, params)
		}
	})
}
