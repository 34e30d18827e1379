package xmlrpcwire

import (
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// errNotFast is what fastTokens answers for input it leaves to
// encoding/xml.
var errNotFast = errors.New("input outside what the fast tokenizer reads")

// fastTokens reads the XML that XML-RPC clients write, at a fraction of
// encoding/xml's cost (a third to a fifth of the CPU per call): an XML
// declaration at the very start; the elements of XML-RPC without
// attributes or namespace prefixes (<value>, </value>, <value/>);
// whitespace; text of valid UTF-8 with the predefined entities and
// character references. Everything else (comments, CDATA, processing
// instructions, DOCTYPE, carriage returns, unknown elements, whatever
// encoding/xml would reject) is errNotFast: DecodeCall then decodes the
// call again with encoding/xml. Where fastTokens gives tokens, they are
// those encoding/xml's Token gives (FuzzDecodeCall checks it), so the
// result is the same either way.
type fastTokens struct {
	data []byte
	pos  int
	// pendingEnd is the end element of <name/>, due next.
	pendingEnd string
	buf        []byte // text with entities replaced
}

// xmlDeclarations are the XML declarations fastTokens accepts at the start
// of a call: those of Go's, Python's and kolo's clients.
var xmlDeclarations = []string{
	`<?xml version="1.0"?>`,
	`<?xml version='1.0'?>`,
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0" encoding="utf-8"?>`,
	`<?xml version='1.0' encoding='UTF-8'?>`,
	`<?xml version='1.0' encoding='utf-8'?>`,
}

func (f *fastTokens) token() (token, error) {
	if f.pendingEnd != "" {
		name := f.pendingEnd
		f.pendingEnd = ""
		return token{kind: endToken, name: name}, nil
	}
	if f.pos == 0 && hasPrefix(f.data, "<?") {
		for _, decl := range xmlDeclarations {
			if hasPrefix(f.data, decl) {
				f.pos = len(decl)
				break
			}
		}
		if f.pos == 0 {
			return token{}, errNotFast
		}
	}
	if f.pos >= len(f.data) {
		return token{}, io.EOF
	}
	if f.data[f.pos] == '<' {
		return f.element()
	}
	return f.text()
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// element reads <name>, </name> or <name/>.
func (f *fastTokens) element() (token, error) {
	p := f.pos + 1
	kind := startToken
	if p < len(f.data) && f.data[p] == '/' {
		kind = endToken
		p++
	}
	start := p
	for p < len(f.data) && isNameByte(f.data[p]) {
		p++
	}
	name := elementName(f.data[start:p])
	switch {
	case name == "" || p >= len(f.data):
		return token{}, errNotFast
	case f.data[p] == '>':
		f.pos = p + 1
	case kind == startToken && f.data[p] == '/' && p+1 < len(f.data) && f.data[p+1] == '>':
		f.pos = p + 2
		f.pendingEnd = name
	default:
		return token{}, errNotFast
	}
	return token{kind: kind, name: name}, nil
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.'
}

// elementName returns the element names of XML-RPC as constants (no
// allocation), and "" for any other name.
func elementName(b []byte) string {
	switch string(b) {
	case "methodCall":
		return "methodCall"
	case "methodName":
		return "methodName"
	case "methodResponse":
		return "methodResponse"
	case "fault":
		return "fault"
	case "params":
		return "params"
	case "param":
		return "param"
	case "value":
		return "value"
	case "string":
		return "string"
	case "int":
		return "int"
	case "i4":
		return "i4"
	case "i8":
		return "i8"
	case "boolean":
		return "boolean"
	case "double":
		return "double"
	case "base64":
		return "base64"
	case "dateTime.iso8601":
		return "dateTime.iso8601"
	case "struct":
		return "struct"
	case "member":
		return "member"
	case "name":
		return "name"
	case "array":
		return "array"
	case "data":
		return "data"
	case "nil":
		return "nil"
	}
	return ""
}

// text reads character data up to the next '<' or the end of the input.
// Text without entities is a slice of the input; with entities, of f.buf.
func (f *fastTokens) text() (token, error) {
	data := f.data
	start := f.pos
	p := start
	decoded := false
	for p < len(data) {
		c := data[p]
		switch {
		case c == '<':
			// end of the text
		case c == '&':
			if !decoded {
				f.buf = append(f.buf[:0], data[start:p]...)
				decoded = true
			}
			var ok bool
			if f.buf, p, ok = appendEntity(f.buf, data, p); !ok {
				return token{}, errNotFast
			}
			continue
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[p:])
			if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
				return token{}, errNotFast
			}
			if decoded {
				f.buf = append(f.buf, data[p:p+size]...)
			}
			p += size
			continue
		case c < 0x20 && c != '\t' && c != '\n', // \r becomes \n in XML
			c == '>' && p-start >= 2 && data[p-1] == ']' && data[p-2] == ']': // ]]> outside CDATA
			return token{}, errNotFast
		default:
			if decoded {
				f.buf = append(f.buf, c)
			}
			p++
			continue
		}
		break
	}
	f.pos = p
	if decoded {
		return token{kind: textToken, text: f.buf}, nil
	}
	return token{kind: textToken, text: data[start:p]}, nil
}

// appendEntity appends the character of the entity or character reference
// at data[p] ('&') to buf and returns the position after it.
func appendEntity(buf, data []byte, p int) ([]byte, int, bool) {
	end := p + 1
	for end < len(data) && end-p <= 12 && data[end] != ';' {
		end++
	}
	if end >= len(data) || data[end] != ';' {
		return buf, p, false
	}
	ref := data[p+1 : end]
	switch string(ref) {
	case "amp":
		return append(buf, '&'), end + 1, true
	case "lt":
		return append(buf, '<'), end + 1, true
	case "gt":
		return append(buf, '>'), end + 1, true
	case "quot":
		return append(buf, '"'), end + 1, true
	case "apos":
		return append(buf, '\''), end + 1, true
	}
	if len(ref) < 2 || ref[0] != '#' {
		return buf, p, false
	}
	digits, base := ref[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	for _, c := range digits {
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return buf, p, false
		}
	}
	n, err := strconv.ParseUint(string(digits), base, 32)
	if err != nil || !isXMLChar(rune(n)) {
		return buf, p, false
	}
	return utf8.AppendRune(buf, rune(n)), end + 1, true
}

// isXMLChar reports whether XML allows r in a document (the Char
// production; encoding/xml's isInCharacterRange).
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
