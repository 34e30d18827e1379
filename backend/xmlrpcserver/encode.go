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
	if err := appendValue(&b, reflect.ValueOf(v), "result", 0); err != nil {
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
		if err := appendValue(&b, reflect.ValueOf(p), fmt.Sprintf("param %d", i+1), 0); err != nil {
			return err
		}
		b.WriteString("</param>")
	}
	b.WriteString("</params></methodCall>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func escape(b *bytes.Buffer, s string) {
	// xml.EscapeText cannot fail on a bytes.Buffer.
	_ = xml.EscapeText(b, []byte(s))
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

// appendValue writes <value>...</value> for v; path names v in errors.
func appendValue(b *bytes.Buffer, v reflect.Value, path string, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("encode %s: nested deeper than %d", path, MaxDepth)
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && !v.IsNil() {
		v = v.Elem()
	}
	if absent(v) {
		return fmt.Errorf("encode %s: nil value (XML-RPC has no nil)", path)
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
			return fmt.Errorf("encode %s: %d does not fit in a 64-bit signed integer", path, u)
		}
		appendInt(b, int64(u))
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("encode %s: %v is not a finite number", path, f)
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
			if err := appendValue(b, v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		b.WriteString("</data></array>")
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("encode %s: map keys must be strings, not %s", path, v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(x.String(), y.String()) })
		b.WriteString("<struct>")
		for _, k := range keys {
			if err := appendMember(b, k.String(), v.MapIndex(k), path, depth); err != nil {
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
			if err := appendMember(b, name, fv, path, depth); err != nil {
				return err
			}
		}
		b.WriteString("</struct>")
	default:
		return fmt.Errorf("encode %s: cannot encode %s", path, v.Type())
	}
	b.WriteString("</value>")
	return nil
}

// appendMember writes one struct member, or nothing when the value is nil.
func appendMember(b *bytes.Buffer, name string, v reflect.Value, path string, depth int) error {
	for v.IsValid() && v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if absent(v) {
		return nil
	}
	b.WriteString("<member><name>")
	escape(b, name)
	b.WriteString("</name>")
	if err := appendValue(b, v, path+"."+name, depth+1); err != nil {
		return err
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
