package xmlrpcwire

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// DecodeCall reads one XML-RPC methodCall from r and returns its method name
// and parameters as generic values: <int>, <i4> and <i8> become int64,
// <boolean> bool, <string> and untyped text string, <double> float64,
// <struct> map[string]any, <array> []any, <base64> []byte and
// <dateTime.iso8601> its text as a string. <nil/> is rejected: the protocol
// never sends it. Input beyond MaxCallBytes or nested deeper than MaxDepth is
// an error.
//
// Calls as clients write them are read by a tokenizer of their own (see
// fastTokens); anything outside what it knows, and every call in error, goes
// through encoding/xml, which has the last word and writes every error.
func DecodeCall(r io.Reader) (method string, params []any, err error) {
	buf := getBuffer()
	defer putBuffer(buf)
	data, err := readCall(*buf, r)
	*buf = data
	if err != nil {
		return "", nil, err
	}
	// The decoded values never point into data: the buffer is reused.
	d := &decoder{toks: &fastTokens{data: data}}
	if method, params, err = d.call(); err == nil {
		return method, params, nil
	}
	x := xml.NewDecoder(bytes.NewReader(data))
	d = &decoder{toks: xmlTokens{x}, buf: d.buf}
	method, params, err = d.call()
	if err != nil {
		line, _ := x.InputPos()
		return "", nil, fmt.Errorf("decode call (line %d): %w", line, err)
	}
	return method, params, nil
}

// readCall reads r to its end into buf[:0], or fails beyond MaxCallBytes.
func readCall(buf []byte, r io.Reader) ([]byte, error) {
	data := buf[:0]
	lr := io.LimitedReader{R: r, N: MaxCallBytes + 1}
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := lr.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return data, fmt.Errorf("read call: %w", err)
		}
	}
	if len(data) > MaxCallBytes {
		return data, fmt.Errorf("call larger than %d bytes", MaxCallBytes)
	}
	return data, nil
}

// Buffers of calls and responses are reused; one that grew beyond
// maxPooledBuffer is left to the garbage collector instead.
const maxPooledBuffer = 256 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		*b = (*b)[:0]
		buffers.Put(b)
	}
}

// tokenKind is the kind of a token: XML-RPC needs only elements and text.
type tokenKind uint8

const (
	startToken tokenKind = iota + 1
	endToken
	textToken
)

// token is a start or end element (name, without namespace prefix) or
// character data (text, valid until the next token).
type token struct {
	kind tokenKind
	name string
	text []byte
}

// tokenizer yields the tokens of a call, leaving out comments, processing
// instructions and directives (no step of the decoding looks at those),
// and io.EOF at the end of the input.
type tokenizer interface {
	token() (token, error)
}

// xmlTokens reads tokens with encoding/xml.
type xmlTokens struct{ x *xml.Decoder }

func (t xmlTokens) token() (token, error) {
	for {
		tok, err := t.x.Token()
		if err != nil {
			return token{}, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			return token{kind: startToken, name: tok.Name.Local}, nil
		case xml.EndElement:
			return token{kind: endToken, name: tok.Name.Local}, nil
		case xml.CharData:
			return token{kind: textToken, text: tok}, nil
		}
	}
}

// decoder walks the tokens of one methodCall.
type decoder struct {
	toks tokenizer
	buf  []byte // text being gathered (text, value)
}

// raw returns the next token; the end of the input is unexpected.
func (d *decoder) raw() (token, error) {
	tok, err := d.toks.token()
	if errors.Is(err, io.EOF) {
		return token{}, io.ErrUnexpectedEOF
	}
	return tok, err
}

// next returns the next start or end element, or non-blank character data.
func (d *decoder) next() (token, error) {
	for {
		tok, err := d.raw()
		if err != nil || tok.kind != textToken || len(bytes.TrimSpace(tok.text)) > 0 {
			return tok, err
		}
	}
}

// expectStart reads the next element and fails unless it opens name.
func (d *decoder) expectStart(name string) error { return d.expect(startToken, name) }

// expectEnd reads the next element and fails unless it closes name.
func (d *decoder) expectEnd(name string) error { return d.expect(endToken, name) }

// expect reads the next element and fails unless it is of kind (a start or
// an end) and named name.
func (d *decoder) expect(kind tokenKind, name string) error {
	tok, err := d.next()
	if err != nil {
		return err
	}
	if tok.kind != kind || tok.name != name {
		slash := ""
		if kind == endToken {
			slash = "/"
		}
		return fmt.Errorf("want <%s%s>, got %s", slash, name, describe(tok))
	}
	return nil
}

// text reads character data up to the end element that closes name; nested
// elements are an error. The text is valid until the decoder reads on.
func (d *decoder) text(name string) ([]byte, error) {
	text, start, err := d.textUntil(name)
	if err != nil {
		return nil, err
	}
	if start.kind == startToken {
		return nil, fmt.Errorf("unexpected <%s> inside <%s>", start.name, name)
	}
	return text, nil
}

// textUntil reads character data into d.buf until the end element that
// closes name, or until a start element, which it returns (text is then
// what came before it). Any other end element is an error.
func (d *decoder) textUntil(name string) (text []byte, start token, err error) {
	d.buf = d.buf[:0]
	for {
		tok, err := d.raw()
		if err != nil {
			return nil, token{}, err
		}
		switch tok.kind {
		case textToken:
			d.buf = append(d.buf, tok.text...)
		case endToken:
			if tok.name != name {
				return nil, token{}, fmt.Errorf("want </%s>, got %s", name, describe(tok))
			}
			return d.buf, token{}, nil
		case startToken:
			return d.buf, tok, nil
		}
	}
}

func describe(tok token) string {
	switch tok.kind {
	case startToken:
		return "<" + tok.name + ">"
	case endToken:
		return "</" + tok.name + ">"
	}
	s := string(bytes.TrimSpace(tok.text))
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return fmt.Sprintf("text %q", s)
}

func (d *decoder) call() (string, []any, error) {
	if err := d.expectStart("methodCall"); err != nil {
		return "", nil, err
	}
	if err := d.expectStart("methodName"); err != nil {
		return "", nil, err
	}
	text, err := d.text("methodName")
	if err != nil {
		return "", nil, err
	}
	name := string(bytes.TrimSpace(text))
	if !validMethodName(name) {
		return "", nil, fmt.Errorf("invalid method name %q", name)
	}
	params := []any{}
	tok, err := d.next()
	if err != nil {
		return "", nil, err
	}
	if tok.kind == startToken && tok.name == "params" {
		if params, err = d.params(); err != nil {
			return "", nil, err
		}
		if tok, err = d.next(); err != nil {
			return "", nil, err
		}
	}
	if tok.kind != endToken || tok.name != "methodCall" {
		return "", nil, fmt.Errorf("want </methodCall>, got %s", describe(tok))
	}
	return name, params, nil
}

// validMethodName reports whether s uses only the characters the XML-RPC
// spec allows in a method name, which also keeps names safe to log.
func validMethodName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '/':
		default:
			return false
		}
	}
	return true
}

func (d *decoder) params() ([]any, error) {
	params := []any{}
	err := d.items("params", "param", func() error {
		if err := d.expectStart("value"); err != nil {
			return err
		}
		v, err := d.value(1)
		if err != nil {
			return fmt.Errorf("param %d: %w", len(params)+1, err)
		}
		params = append(params, v)
		return d.expectEnd("param")
	})
	if err != nil {
		return nil, err
	}
	return params, nil
}

// items reads the <item> elements of a container up to its end tag,
// calling each once the item's start tag is read; anything else there is
// an error naming what was wanted.
func (d *decoder) items(container, item string, each func() error) error {
	for {
		tok, err := d.next()
		if err != nil {
			return err
		}
		switch {
		case tok.kind == endToken && tok.name == container:
			return nil
		case tok.kind == endToken:
			return fmt.Errorf("want </%s>, got %s", container, describe(tok))
		case tok.kind == startToken && tok.name == item:
			if err := each(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("want <%s>, got %s", item, describe(tok))
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("values nested deeper than %d", MaxDepth)
	}
	// Untyped text is a string; whitespace before a type element is not.
	text, start, err := d.textUntil("value")
	if err != nil {
		return nil, err
	}
	if start.kind != startToken {
		return string(text), nil
	}
	if len(bytes.TrimSpace(text)) != 0 {
		return nil, fmt.Errorf("text before <%s> in a value", start.name)
	}
	v, err := d.typed(start.name, depth)
	if err != nil {
		return nil, err
	}
	if err := d.expectEnd("value"); err != nil {
		return nil, err
	}
	return v, nil
}

// typed decodes the content of a type element (<int>, <struct>, ...) through
// its end element.
func (d *decoder) typed(kind string, depth int) (any, error) {
	switch kind {
	case "struct":
		return d.structValue(depth)
	case "array":
		return d.arrayValue(depth)
	case "nil":
		return nil, errors.New("<nil/> is not allowed: absent fields are left out")
	}
	text, err := d.text(kind)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "int", "i4", "i8":
		n, err := strconv.ParseInt(string(bytes.TrimSpace(text)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("<%s> %q is not a 64-bit integer", kind, string(text))
		}
		return n, nil
	case "boolean":
		switch string(bytes.TrimSpace(text)) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("<boolean> %q is neither 0 nor 1", string(text))
	case "double":
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(text)), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("<double> %q is not a finite number", string(text))
		}
		return f, nil
	case "string", "dateTime.iso8601":
		return string(text), nil
	case "base64":
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, string(text))
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("<base64>: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown value type <%s>", kind)
}

func (d *decoder) structValue(depth int) (map[string]any, error) {
	m := map[string]any{}
	err := d.items("struct", "member", func() error {
		if err := d.expectStart("name"); err != nil {
			return err
		}
		text, err := d.text("name")
		if err != nil {
			return err
		}
		name := string(text)
		if _, dup := m[name]; dup {
			return fmt.Errorf("struct member %q given twice", name)
		}
		if err := d.expectStart("value"); err != nil {
			return err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
		m[name] = v
		return d.expectEnd("member")
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (d *decoder) arrayValue(depth int) ([]any, error) {
	if err := d.expectStart("data"); err != nil {
		return nil, err
	}
	items := []any{}
	err := d.items("data", "value", func() error {
		v, err := d.value(depth + 1)
		if err != nil {
			return fmt.Errorf("item %d: %w", len(items), err)
		}
		items = append(items, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.expectEnd("array"); err != nil {
		return nil, err
	}
	return items, nil
}
