package xmlrpcserver

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// EncodeResponse writes a methodResponse carrying v. Values are encoded by
// reflection: structs by their `xmlrpc:"name[,omitempty]"` tags, maps with
// string keys as structs (keys sorted, so output is stable), slices and
// arrays as arrays ([]byte as base64), integers as <int> when they fit in 32
// bits and <i8> otherwise, floats as <double>, bools as <boolean>, strings as
// <string>, time.Time as <dateTime.iso8601>. Nil pointers and interfaces are
// left out of structs and maps, never sent as <nil/>. Nothing is written if v
// cannot be encoded.
func EncodeResponse(w io.Writer, v any) error {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.WriteString("<methodResponse><params><param>")
	if err := appendValue(&b, reflect.ValueOf(v), 0); err != nil {
		err = within(err, "result")
		return err
	}
	b.WriteString("</param></params></methodResponse>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// EncodeFault writes a methodResponse holding a fault with the given code and
// string.
func EncodeFault(w io.Writer, code int, faultString string) error {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.WriteString("<methodResponse><fault><value><struct>")
	b.WriteString("<member><name>faultCode</name><value><int>")
	b.WriteString(strconv.Itoa(code))
	b.WriteString("</int></value></member>")
	b.WriteString("<member><name>faultString</name><value><string>")
	escape(&b, faultString)
	b.WriteString("</string></value></member>")
	b.WriteString("</struct></value></fault></methodResponse>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// EncodeCall writes a methodCall; the agent never sends calls, but tests and
// fuzzing use it to check that what DecodeCall accepts encodes back.
func EncodeCall(w io.Writer, method string, params ...any) error {
	if !validMethodName(method) {
		return fmt.Errorf("invalid method name %q", method)
	}
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.WriteString("<methodCall><methodName>")
	b.WriteString(method)
	b.WriteString("</methodName><params>")
	for i, p := range params {
		b.WriteString("<param>")
		if err := appendValue(&b, reflect.ValueOf(p), 0); err != nil {
			err = within(err, fmt.Sprintf("param %d", i+1))
			return err
		}
		b.WriteString("</param>")
	}
	b.WriteString("</params></methodCall>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// escape writes s as XML text. Most strings an agent sends (ids, names,
// states) need no escaping: those are copied as they are, the rest go
// through xml.EscapeText.
func escape(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '&' || c == '<' || c == '>' || c == '"' || c == '\'' {
			if utf8.ValidString(s[i:]) && !needsXMLEscape(s[i:]) {
				break
			}
			// xml.EscapeText cannot fail on a bytes.Buffer.
			_ = xml.EscapeText(b, []byte(s))
			return
		}
	}
	b.WriteString(s)
}

// needsXMLEscape reports whether s holds a character xml.EscapeText would
// change (markup characters, controls, characters XML does not allow).
func needsXMLEscape(s string) bool {
	for _, r := range s {
		switch {
		case r == '&' || r == '<' || r == '>' || r == '"' || r == '\'' || r == '\t' || r == '\n' || r == '\r':
			return true
		case r < 0x20 || r == 0xFFFD || r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF:
			return true
		}
	}
	return false
}

var timeType = reflect.TypeFor[time.Time]()

// absent reports whether v is a nil pointer, interface or invalid value,
// which structs and maps leave out.
func absent(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// appendValue writes <value>...</value> for v.
func appendValue(b *bytes.Buffer, v reflect.Value, depth int) error {
	if depth > MaxDepth {
		return perr("nested deeper than %d", MaxDepth)
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && !v.IsNil() {
		v = v.Elem()
	}
	if absent(v) {
		return perr("nil value (XML-RPC has no nil)")
	}
	b.WriteString("<value>")
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			b.WriteString("<boolean>1</boolean>")
		} else {
			b.WriteString("<boolean>0</boolean>")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		appendInt(b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return perr("%d does not fit in a 64-bit signed integer", u)
		}
		appendInt(b, int64(u))
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return perr("%v is not a finite number", f)
		}
		b.WriteString("<double>")
		b.WriteString(strconv.FormatFloat(f, 'f', -1, 64))
		b.WriteString("</double>")
	case reflect.String:
		b.WriteString("<string>")
		escape(b, v.String())
		b.WriteString("</string>")
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b.WriteString("<base64>")
			raw := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(raw), v)
			b.WriteString(base64.StdEncoding.EncodeToString(raw))
			b.WriteString("</base64>")
			break
		}
		b.WriteString("<array><data>")
		for i := 0; i < v.Len(); i++ {
			// The element's path is built only when an error needs it.
			if err := appendValue(b, v.Index(i), depth+1); err != nil {
				return within(err, "["+strconv.Itoa(i)+"]")
			}
		}
		b.WriteString("</data></array>")
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return perr("map keys must be strings, not %s", v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(x.String(), y.String()) })
		b.WriteString("<struct>")
		for _, k := range keys {
			if err := appendMember(b, k.String(), v.MapIndex(k), depth); err != nil {
				return err
			}
		}
		b.WriteString("</struct>")
	case reflect.Struct:
		if v.Type() == timeType {
			b.WriteString("<dateTime.iso8601>")
			b.WriteString(v.Interface().(time.Time).UTC().Format("20060102T15:04:05"))
			b.WriteString("</dateTime.iso8601>")
			break
		}
		b.WriteString("<struct>")
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("xmlrpc"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if opts == "omitempty" && fv.IsZero() {
				continue
			}
			if err := appendMember(b, name, fv, depth); err != nil {
				return err
			}
		}
		b.WriteString("</struct>")
	default:
		return perr("cannot encode %s", v.Type())
	}
	b.WriteString("</value>")
	return nil
}

// appendMember writes one struct member, or nothing when the value is nil.
func appendMember(b *bytes.Buffer, name string, v reflect.Value, depth int) error {
	for v.IsValid() && v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if absent(v) {
		return nil
	}
	b.WriteString("<member><name>")
	escape(b, name)
	b.WriteString("</name>")
	if err := appendValue(b, v, depth+1); err != nil {
		return within(err, "."+name)
	}
	b.WriteString("</member>")
	return nil
}

func appendInt(b *bytes.Buffer, n int64) {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		b.WriteString("<int>")
		b.WriteString(strconv.FormatInt(n, 10))
		b.WriteString("</int>")
		return
	}
	b.WriteString("<i8>")
	b.WriteString(strconv.FormatInt(n, 10))
	b.WriteString("</i8>")
}

// pathError is an encoding error and where it happened. The path is built
// while the error unwinds (innermost segment first), so that encoding a
// value that has no error builds no path at all.
type pathError struct {
	segs []string // innermost first
	msg  string
}

func (e *pathError) Error() string {
	var b strings.Builder
	for i := len(e.segs) - 1; i >= 0; i-- {
		b.WriteString(e.segs[i])
	}
	return "encode " + b.String() + ": " + e.msg
}

func perr(format string, args ...any) error { return &pathError{msg: fmt.Sprintf(format, args...)} }

// within records that err happened inside seg.
func within(err error, seg string) error {
	if pe, ok := err.(*pathError); ok {
		pe.segs = append(pe.segs, seg)
	}
	return err
}
