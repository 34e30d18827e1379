package xmlrpcwire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// What the agent encodes decodes back, by the fast tokenizer and, for the
// same response written in a way it leaves to encoding/xml (a comment, a
// CDATA section), by encoding/xml, to the same values.
func TestDecodeResponseValues(t *testing.T) {
	in := map[string]any{
		"next":     int64(1) << 40,
		"instance": "a <b> & 'c' \"d\" \n é",
		"events": []any{
			map[string]any{"seq": int64(7), "kind": "vm_crashed", "cpu": 1.5, "ok": true},
		},
		"empty": []any{},
	}
	var b bytes.Buffer
	if err := EncodeResponse(&b, in); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, data string }{
		{"as the agent writes it", b.String()},
		{"with a comment", strings.Replace(b.String(), "<methodResponse>", "<methodResponse><!-- hi -->", 1)},
	} {
		got, err := DecodeResponse([]byte(tc.data))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("%s: decoded %#v, want %#v", tc.name, got, in)
		}
	}
	cdata := `<?xml version="1.0"?><methodResponse><params><param><value><string><![CDATA[x<y]]></string></value></param></params></methodResponse>`
	if got, err := DecodeResponse([]byte(cdata)); err != nil || got != "x<y" {
		t.Errorf("CDATA: %#v, %v; want x<y", got, err)
	}
}

func TestDecodeResponseFault(t *testing.T) {
	var b bytes.Buffer
	if err := EncodeFault(&b, 1002, "NotFound: vm <x> & y"); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeResponse(b.Bytes())
	var f *Fault
	if !errors.As(err, &f) || f.Code != 1002 || f.String != "NotFound: vm <x> & y" {
		t.Fatalf("DecodeResponse(fault) = %v, want fault 1002 with its string", err)
	}
}

// A response that is not one is an error that names no part of it: what a
// hostile agent sends is not echoed.
func TestDecodeResponseErrors(t *testing.T) {
	const secret = "SECRETTEXT"
	value := func(v string) string {
		return `<?xml version="1.0"?><methodResponse><params><param><value>` + v + `</value></param></params></methodResponse>`
	}
	tests := []struct{ name, data string }{
		{"empty", ""},
		{"not XML", secret},
		{"a call", `<?xml version="1.0"?><methodCall><methodName>` + secret + `</methodName></methodCall>`},
		{"truncated", value("<string>" + secret + "</string>")[:80]},
		{"bad integer", value("<int>" + secret + "</int>")},
		{"unknown type", value("<" + secret + ">1</" + secret + ">")},
		{"nil", value("<nil/>")},
		{"data after the response", value("<string>x</string>") + "<" + secret + "/>"},
		{"two params", strings.Replace(value("<string>x</string>"), "</params>", "<param><value>"+secret+"</value></param></params>", 1)},
		{"fault without a code", `<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultString</name><value>` + secret +
			`</value></member></struct></value></fault></methodResponse>`},
		{"nested too deep", value(strings.Repeat("<array><data><value>", MaxDepth+1) + strings.Repeat("</value></data></array>", MaxDepth+1))},
		{"too large", value("<string>" + strings.Repeat("x", MaxResponseBytes) + "</string>")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeResponse([]byte(tc.data))
			if err == nil {
				t.Fatalf("DecodeResponse = %#v, want an error", v)
			}
			var f *Fault
			if errors.As(err, &f) {
				t.Fatalf("DecodeResponse = fault %v, want a decoding error", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q quotes the response", err)
			}
		})
	}
}
