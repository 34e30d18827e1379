package xmlrpcserver

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
)

// DecodeCall reads one XML-RPC methodCall from r and returns its method name
// and parameters as generic values: <int>, <i4> and <i8> become int64,
// <boolean> bool, <string> and untyped text string, <double> float64,
// <struct> map[string]any, <array> []any, <base64> []byte and
// <dateTime.iso8601> its text as a string. <nil/> is rejected: the protocol
// never sends it. Input beyond MaxCallBytes or nested deeper than MaxDepth is
// an error.
func DecodeCall(r io.Reader) (method string, params []any, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCallBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("read call: %w", err)
	}
	if len(data) > MaxCallBytes {
		return "", nil, fmt.Errorf("call larger than %d bytes", MaxCallBytes)
	}
	d := &decoder{x: xml.NewDecoder(bytes.NewReader(data))}
	method, params, err = d.call()
	if err != nil {
		line, _ := d.x.InputPos()
		return "", nil, fmt.Errorf("decode call (line %d): %w", line, err)
	}
	return method, params, nil
}

// decoder walks the token stream of one methodCall.
type decoder struct {
	x *xml.Decoder
}

// next returns the next start or end element, or non-blank character data;
// comments, processing instructions and directives are skipped.
func (d *decoder) next() (xml.Token, error) {
	for {
		tok, err := d.x.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement, xml.EndElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return t.Copy(), nil
			}
		}
	}
}

// expectStart reads the next element and fails unless it opens name.
func (d *decoder) expectStart(name string) error {
	tok, err := d.next()
	if err != nil {
		return err
	}
	if s, ok := tok.(xml.StartElement); !ok || s.Name.Local != name {
		return fmt.Errorf("want <%s>, got %s", name, describe(tok))
	}
	return nil
}

// expectEnd reads the next element and fails unless it closes name.
func (d *decoder) expectEnd(name string) error {
	tok, err := d.next()
	if err != nil {
		return err
	}
	if e, ok := tok.(xml.EndElement); !ok || e.Name.Local != name {
		return fmt.Errorf("want </%s>, got %s", name, describe(tok))
	}
	return nil
}

// text reads character data up to the end element that closes name; nested
// elements are an error.
func (d *decoder) text(name string) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.x.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			if t.Name.Local != name {
				return "", fmt.Errorf("want </%s>, got %s", name, describe(t))
			}
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> inside <%s>", t.Name.Local, name)
		}
	}
}

func describe(tok xml.Token) string {
	switch t := tok.(type) {
	case xml.StartElement:
		return "<" + t.Name.Local + ">"
	case xml.EndElement:
		return "</" + t.Name.Local + ">"
	case xml.CharData:
		s := string(bytes.TrimSpace(t))
		if len(s) > 20 {
			s = s[:20] + "..."
		}
		return fmt.Sprintf("text %q", s)
	}
	return fmt.Sprintf("%T", tok)
}

func (d *decoder) call() (string, []any, error) {
	if err := d.expectStart("methodCall"); err != nil {
		return "", nil, err
	}
	if err := d.expectStart("methodName"); err != nil {
		return "", nil, err
	}
	name, err := d.text("methodName")
	if err != nil {
		return "", nil, err
	}
	name = strings.TrimSpace(name)
	if !validMethodName(name) {
		return "", nil, fmt.Errorf("invalid method name %q", name)
	}
	params := []any{}
	tok, err := d.next()
	if err != nil {
		return "", nil, err
	}
	if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "params" {
		if params, err = d.params(); err != nil {
			return "", nil, err
		}
		if tok, err = d.next(); err != nil {
			return "", nil, err
		}
	}
	if e, ok := tok.(xml.EndElement); !ok || e.Name.Local != "methodCall" {
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
	for {
		tok, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local != "params" {
				return nil, fmt.Errorf("want </params>, got %s", describe(t))
			}
			return params, nil
		case xml.StartElement:
			if t.Name.Local != "param" {
				return nil, fmt.Errorf("want <param>, got %s", describe(t))
			}
			if err := d.expectStart("value"); err != nil {
				return nil, err
			}
			v, err := d.value(1)
			if err != nil {
				return nil, fmt.Errorf("param %d: %w", len(params)+1, err)
			}
			if err := d.expectEnd("param"); err != nil {
				return nil, err
			}
			params = append(params, v)
		default:
			return nil, fmt.Errorf("want <param>, got %s", describe(t))
		}
	}
}

// value decodes what follows a <value> start element, through its end.
func (d *decoder) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("values nested deeper than %d", MaxDepth)
	}
	// Untyped text is a string; whitespace before a type element is not.
	var text strings.Builder
	var start xml.StartElement
	for {
		tok, err := d.x.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
			continue
		case xml.EndElement:
			if t.Name.Local != "value" {
				return nil, fmt.Errorf("want </value>, got %s", describe(t))
			}
			return text.String(), nil
		case xml.StartElement:
			if strings.TrimSpace(text.String()) != "" {
				return nil, fmt.Errorf("text before <%s> in a value", t.Name.Local)
			}
			start = t
		default:
			continue
		}
		break
	}
	v, err := d.typed(start.Name.Local, depth)
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
	s, err := d.text(kind)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "int", "i4", "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("<%s> %q is not a 64-bit integer", kind, s)
		}
		return n, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("<boolean> %q is neither 0 nor 1", s)
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("<double> %q is not a finite number", s)
		}
		return f, nil
	case "string", "dateTime.iso8601":
		return s, nil
	case "base64":
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
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
	for {
		tok, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local != "struct" {
				return nil, fmt.Errorf("want </struct>, got %s", describe(t))
			}
			return m, nil
		case xml.StartElement:
			if t.Name.Local != "member" {
				return nil, fmt.Errorf("want <member>, got %s", describe(t))
			}
		default:
			return nil, fmt.Errorf("want <member>, got %s", describe(t))
		}
		if err := d.expectStart("name"); err != nil {
			return nil, err
		}
		name, err := d.text("name")
		if err != nil {
			return nil, err
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("struct member %q given twice", name)
		}
		if err := d.expectStart("value"); err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", name, err)
		}
		if err := d.expectEnd("member"); err != nil {
			return nil, err
		}
		m[name] = v
	}
}

func (d *decoder) arrayValue(depth int) ([]any, error) {
	if err := d.expectStart("data"); err != nil {
		return nil, err
	}
	items := []any{}
	for {
		tok, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local != "data" {
				return nil, fmt.Errorf("want </data>, got %s", describe(t))
			}
			if err := d.expectEnd("array"); err != nil {
				return nil, err
			}
			return items, nil
		case xml.StartElement:
			if t.Name.Local != "value" {
				return nil, fmt.Errorf("want <value>, got %s", describe(t))
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", len(items), err)
			}
			items = append(items, v)
		default:
			return nil, fmt.Errorf("want <value>, got %s", describe(t))
		}
	}
}
