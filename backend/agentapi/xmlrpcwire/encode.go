package xmlrpcwire

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// EncodeResponse writes a methodResponse carrying v, in one Write; see
// AppendResponse. Nothing is written if v cannot be encoded.
func EncodeResponse(w io.Writer, v any) error {
	buf := getBuffer()
	defer putBuffer(buf)
	b, err := AppendResponse(*buf, v)
	*buf = b
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// AppendResponse appends a methodResponse carrying v to dst. Values are
// encoded by reflection: structs by their `xmlrpc:"name[,omitempty]"` tags,
// maps with string keys as structs (keys sorted, so output is stable),
// slices and arrays as arrays ([]byte as base64), integers as <int> when
// they fit in 32 bits and <i8> otherwise, floats as <double>, bools as
// <boolean>, strings as <string>, time.Time as <dateTime.iso8601>. Nil
// pointers and interfaces are left out of structs and maps, never sent as
// <nil/>. If v cannot be encoded, dst is returned as it was, with the error.
func AppendResponse(dst []byte, v any) ([]byte, error) {
	b := append(dst, xmlHeader...)
	b = append(b, "<methodResponse><params><param>"...)
	b, err := appendAny(b, v, 0)
	if err != nil {
		return dst, within(err, "result")
	}
	return append(b, "</param></params></methodResponse>\n"...), nil
}

// EncodeFault writes a methodResponse holding a fault with the given code and
// string.
func EncodeFault(w io.Writer, code int, faultString string) error {
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = AppendFault(*buf, code, faultString)
	_, err := w.Write(*buf)
	return err
}

// AppendFault appends a methodResponse holding a fault with the given code
// and string to dst.
func AppendFault(dst []byte, code int, faultString string) []byte {
	b := append(dst, xmlHeader...)
	b = append(b, "<methodResponse><fault><value><struct>"...)
	b = append(b, "<member><name>faultCode</name><value><int>"...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, "</int></value></member>"...)
	b = append(b, "<member><name>faultString</name><value><string>"...)
	b = escape(b, faultString)
	b = append(b, "</string></value></member>"...)
	return append(b, "</struct></value></fault></methodResponse>\n"...)
}

// EncodeCall writes a methodCall: the manager's client sends the watcher's
// calls with it (the agent never sends calls), and tests and fuzzing use it
// to check that what DecodeCall accepts encodes back.
func EncodeCall(w io.Writer, method string, params ...any) error {
	if !validMethodName(method) {
		return fmt.Errorf("invalid method name %q", method)
	}
	b := append([]byte(xmlHeader), "<methodCall><methodName>"...)
	b = append(b, method...)
	b = append(b, "</methodName><params>"...)
	for i, p := range params {
		b = append(b, "<param>"...)
		var err error
		if b, err = appendAny(b, p, 0); err != nil {
			return within(err, fmt.Sprintf("param %d", i+1))
		}
		b = append(b, "</param>"...)
	}
	b = append(b, "</params></methodCall>\n"...)
	_, err := w.Write(b)
	return err
}

// escape appends s as XML text. Most strings an agent sends (ids, names,
// states) need no escaping: those are copied as they are, the rest go
// through xml.EscapeText.
func escape(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainXML[s[i]] {
			if utf8.ValidString(s[i:]) && !needsXMLEscape(s[i:]) {
				break
			}
			w := appendWriter{b}
			_ = xml.EscapeText(&w, []byte(s)) // appendWriter never fails
			return w.b
		}
	}
	return append(b, s...)
}

// plainXML tells the bytes that are XML text as they are: printable ASCII
// but for the markup characters xml.EscapeText escapes.
var plainXML = func() (t [256]bool) {
	for c := ' '; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`&<>"'`, c)
	}
	return t
}()

// appendWriter is an io.Writer that appends to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
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

func errTooDeep() error { return perr("nested deeper than %d", MaxDepth) }

// appendAny appends <value>...</value> for v. The types methods return
// most are encoded without reflection, exactly as appendValue would.
func appendAny(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, errTooDeep()
	}
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case bool:
		return appendBool(b, x), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case float64:
		return appendFloat(b, x)
	case []string:
		b = append(b, "<value><array><data>"...)
		for i, s := range x {
			if depth+1 > MaxDepth {
				return b, within(errTooDeep(), "["+strconv.Itoa(i)+"]")
			}
			b = appendString(b, s)
		}
		return append(b, "</data></array></value>"...), nil
	case []any:
		b = append(b, "<value><array><data>"...)
		for i, item := range x {
			var err error
			if b, err = appendAny(b, item, depth+1); err != nil {
				return b, within(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return append(b, "</data></array></value>"...), nil
	case map[string]any:
		b = append(b, "<value><struct>"...)
		for _, k := range slices.Sorted(maps.Keys(x)) {
			var err error
			if b, err = appendMemberAny(b, k, x[k], depth); err != nil {
				return b, err
			}
		}
		return append(b, "</struct></value>"...), nil
	}
	return appendValue(b, reflect.ValueOf(v), depth)
}

// appendMemberAny appends one struct member, or nothing when v is nil.
func appendMemberAny(b []byte, name string, v any, depth int) ([]byte, error) {
	switch v.(type) {
	case nil:
		return b, nil
	case string, bool, int, int64, float64, []string, []any, map[string]any:
	default:
		return appendMember(b, name, reflect.ValueOf(v), depth)
	}
	b = append(b, "<member><name>"...)
	b = escape(b, name)
	b = append(b, "</name>"...)
	b, err := appendAny(b, v, depth+1)
	if err != nil {
		return b, within(err, "."+name)
	}
	return append(b, "</member>"...), nil
}

func appendString(b []byte, s string) []byte {
	b = append(b, "<value><string>"...)
	b = escape(b, s)
	return append(b, "</string></value>"...)
}

func appendBool(b []byte, x bool) []byte {
	if x {
		return append(b, "<value><boolean>1</boolean></value>"...)
	}
	return append(b, "<value><boolean>0</boolean></value>"...)
}

func appendInt(b []byte, n int64) []byte {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		b = append(b, "<value><int>"...)
		b = strconv.AppendInt(b, n, 10)
		return append(b, "</int></value>"...)
	}
	b = append(b, "<value><i8>"...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "</i8></value>"...)
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, perr("%v is not a finite number", f)
	}
	b = append(b, "<value><double>"...)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	return append(b, "</double></value>"...), nil
}

// appendValue appends <value>...</value> for v, by reflection.
func appendValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, errTooDeep()
	}
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && !v.IsNil() {
		v = v.Elem()
	}
	if absent(v) {
		return b, perr("nil value (XML-RPC has no nil)")
	}
	switch v.Kind() {
	case reflect.Bool:
		return appendBool(b, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(b, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return b, perr("%d does not fit in a 64-bit signed integer", u)
		}
		return appendInt(b, int64(u)), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(b, v.Float())
	case reflect.String:
		return appendString(b, v.String()), nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			raw := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(raw), v)
			b = append(b, "<value><base64>"...)
			b = base64.StdEncoding.AppendEncode(b, raw)
			return append(b, "</base64></value>"...), nil
		}
		b = append(b, "<value><array><data>"...)
		// Structs of one type (list_vms's domains) have their fields
		// looked up once for the whole slice.
		var fields []field
		if et := v.Type().Elem(); et.Kind() == reflect.Struct && et != timeType && depth+1 <= MaxDepth {
			fields = structFields(et)
		}
		for i := 0; i < v.Len(); i++ {
			var err error
			// The element's path is built only when an error needs it.
			if fields != nil {
				b, err = appendStruct(b, v.Index(i), fields, depth+1)
			} else {
				b, err = appendValue(b, v.Index(i), depth+1)
			}
			if err != nil {
				return b, within(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return append(b, "</data></array></value>"...), nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return b, perr("map keys must be strings, not %s", v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(x.String(), y.String()) })
		b = append(b, "<value><struct>"...)
		for _, k := range keys {
			var err error
			if b, err = appendMember(b, k.String(), v.MapIndex(k), depth); err != nil {
				return b, err
			}
		}
		return append(b, "</struct></value>"...), nil
	case reflect.Struct:
		if v.Type() == timeType {
			b = append(b, "<value><dateTime.iso8601>"...)
			b = v.Interface().(time.Time).UTC().AppendFormat(b, "20060102T15:04:05")
			return append(b, "</dateTime.iso8601></value>"...), nil
		}
		return appendStruct(b, v, structFields(v.Type()), depth)
	}
	return b, perr("cannot encode %s", v.Type())
}

// appendStruct appends <value><struct>...</struct></value> for v, a struct
// whose encoded fields are fields. Fields of a plain kind (string,
// integer, float, bool) are appended straight: they cannot be nil, and
// going through appendNamedMember and appendValue for each was most of
// list_vms's encoding.
func appendStruct(b []byte, v reflect.Value, fields []field, depth int) ([]byte, error) {
	b = append(b, "<value><struct>"...)
	for _, f := range fields {
		fv := v.Field(f.index)
		var err error
		if depth+1 > MaxDepth && f.kind != reflect.Interface && f.kind != reflect.Pointer && !(f.omitEmpty && fv.IsZero()) {
			// A member's value one level too deep, as appendValue says.
			return b, within(errTooDeep(), "."+f.name)
		}
		switch f.kind {
		case reflect.String:
			s := fv.String()
			if f.omitEmpty && s == "" {
				continue
			}
			b = append(b, f.open...)
			b = appendString(b, s)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n := fv.Int()
			if f.omitEmpty && n == 0 {
				continue
			}
			b = append(b, f.open...)
			b = appendInt(b, n)
		case reflect.Float32, reflect.Float64:
			x := fv.Float()
			if f.omitEmpty && x == 0 { // -0 too, as reflect.Value.IsZero
				continue
			}
			b = append(b, f.open...)
			if b, err = appendFloat(b, x); err != nil {
				return b, within(err, "."+f.name)
			}
		case reflect.Bool:
			t := fv.Bool()
			if f.omitEmpty && !t {
				continue
			}
			b = append(b, f.open...)
			b = appendBool(b, t)
		default:
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			if b, err = appendNamedMember(b, f.open, f.name, fv, depth); err != nil {
				return b, err
			}
			continue
		}
		b = append(b, "</member>"...)
	}
	return append(b, "</struct></value>"...), nil
}

// field is how a struct field is encoded: as member name (open is the
// member's start up to its value), left out when zero with omitempty.
type field struct {
	index     int
	kind      reflect.Kind // of the field's type
	name      string
	open      string
	omitEmpty bool
}

// fieldCache holds the encoded fields of each struct type (a []field by
// reflect.Type), so that tags are parsed once per type.
var fieldCache sync.Map

// structFields lists the fields of struct type t that are encoded, in order.
func structFields(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
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
		open := string(escape([]byte("<member><name>"), name)) + "</name>"
		fs = append(fs, field{index: i, kind: f.Type.Kind(), name: name, open: open, omitEmpty: opts == "omitempty"})
	}
	fieldCache.Store(t, fs)
	return fs
}

// appendMember appends one struct member, or nothing when the value is nil.
func appendMember(b []byte, name string, v reflect.Value, depth int) ([]byte, error) {
	return appendNamedMember(b, "", name, v, depth)
}

// appendNamedMember is appendMember with, unless empty, open the member's
// start (<member><name>escaped name</name>).
func appendNamedMember(b []byte, open, name string, v reflect.Value, depth int) ([]byte, error) {
	for v.IsValid() && v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if absent(v) {
		return b, nil
	}
	if open != "" {
		b = append(b, open...)
	} else {
		b = append(b, "<member><name>"...)
		b = escape(b, name)
		b = append(b, "</name>"...)
	}
	b, err := appendValue(b, v, depth+1)
	if err != nil {
		return b, within(err, "."+name)
	}
	return append(b, "</member>"...), nil
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
