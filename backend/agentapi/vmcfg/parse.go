package vmcfg

import (
	"fmt"
	"strconv"
	"strings"

	"xenmanager/backend/agentapi"
)

// Parse reads vm.cfg: `key = value` statements where a value is a decimal
// integer (int64), a string quoted with ' or " and Python escapes, True or
// False (bool), or a list of strings (which may span lines). `#` starts a
// comment; blank lines are ignored; a key given twice keeps its last value,
// as Python would. Errors name the line.
func Parse(data []byte) (agentapi.VMParams, error) {
	p := &parser{src: data, line: 1}
	params := agentapi.VMParams{}
	for {
		p.skipSpace(true)
		if p.eof() {
			return params, nil
		}
		line := p.line
		key := p.ident()
		if key == "" {
			return nil, p.errorf("want a key name, got %s", p.peekDesc())
		}
		p.skipSpace(false)
		if !p.consume('=') {
			return nil, p.errorf("want '=' after %q, got %s", key, p.peekDesc())
		}
		p.skipSpace(false)
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.skipSpace(false)
		if !p.eof() && !p.consume('\n') && !p.consume(';') {
			return nil, p.errorf("unexpected %s after the value of %q (line %d)", p.peekDesc(), key, line)
		}
		params[key] = v
	}
}

type parser struct {
	src  []byte
	pos  int
	line int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("vm.cfg line %d: %s", p.line, fmt.Sprintf(format, args...))
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

func (p *parser) peekDesc() string {
	if p.eof() {
		return "end of file"
	}
	if p.peek() == '\n' {
		return "end of line"
	}
	return strconv.QuoteRune(rune(p.peek()))
}

func (p *parser) consume(c byte) bool {
	if p.eof() || p.src[p.pos] != c {
		return false
	}
	p.pos++
	if c == '\n' {
		p.line++
	}
	return true
}

// skipSpace skips blanks and comments; newlines too when newlines is true
// (between statements and inside lists). A comment runs to the end of its
// line but leaves the newline for the caller.
func (p *parser) skipSpace(newlines bool) {
	for !p.eof() {
		switch c := p.peek(); {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
			p.pos += 2 // an explicit line continuation
			p.line++
		case c == '#':
			for !p.eof() && p.peek() != '\n' {
				p.pos++
			}
		case c == '\n' && newlines:
			p.consume('\n')
		default:
			return
		}
	}
}

func (p *parser) ident() string {
	start := p.pos
	for !p.eof() {
		c := p.peek()
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || p.pos > start && c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return string(p.src[start:p.pos])
}

func (p *parser) value() (any, error) {
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		return p.str()
	case c == '[':
		return p.list()
	case c == '-' || c == '+' || c >= '0' && c <= '9':
		return p.integer()
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		word := p.ident()
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		}
		return nil, p.errorf("%q is not a value (quote strings)", word)
	default:
		return nil, p.errorf("want a value, got %s", p.peekDesc())
	}
}

func (p *parser) integer() (int64, error) {
	start := p.pos
	if c := p.peek(); c == '-' || c == '+' {
		p.pos++
	}
	for !p.eof() && p.peek() >= '0' && p.peek() <= '9' {
		p.pos++
	}
	text := string(p.src[start:p.pos])
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, p.errorf("%q is not a 64-bit integer", text)
	}
	if !p.eof() && (p.peek() == '.' || p.peek() == '_' || p.peek() >= 'a' && p.peek() <= 'z' || p.peek() >= 'A' && p.peek() <= 'Z') {
		return 0, p.errorf("only decimal integers are supported, got %q followed by %s", text, p.peekDesc())
	}
	return n, nil
}

// str reads a quoted string with Python's escapes; an unknown escape keeps
// its backslash, as in Python.
func (p *parser) str() (string, error) {
	quote := p.peek()
	p.pos++
	var b strings.Builder
	for {
		if p.eof() || p.peek() == '\n' {
			return "", p.errorf("string not closed (missing %c)", quote)
		}
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == quote:
			return b.String(), nil
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		if p.eof() {
			return "", p.errorf("string not closed (missing %c)", quote)
		}
		e := p.src[p.pos]
		p.pos++
		switch e {
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n := int(e - '0')
			for k := 0; k < 2 && !p.eof() && p.peek() >= '0' && p.peek() <= '7'; k++ {
				n = n*8 + int(p.peek()-'0')
				p.pos++
			}
			if n > 0xff {
				return "", p.errorf(`octal escape \%o is beyond a byte`, n)
			}
			b.WriteByte(byte(n))
		case '\n':
			p.line++ // backslash-newline continues the string
		case 'x':
			if p.pos+2 > len(p.src) {
				return "", p.errorf(`\x needs two hex digits`)
			}
			n, err := strconv.ParseUint(string(p.src[p.pos:p.pos+2]), 16, 8)
			if err != nil {
				return "", p.errorf(`\x needs two hex digits, got %q`, p.src[p.pos:p.pos+2])
			}
			b.WriteByte(byte(n))
			p.pos += 2
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
}

func (p *parser) list() ([]string, error) {
	start := p.line
	p.pos++ // '['
	items := []string{}
	for {
		p.skipSpace(true)
		if p.eof() {
			return nil, fmt.Errorf("vm.cfg line %d: list not closed (missing ])", start)
		}
		if p.consume(']') {
			return items, nil
		}
		if c := p.peek(); c != '\'' && c != '"' {
			return nil, p.errorf("list items must be quoted strings, got %s", p.peekDesc())
		}
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		items = append(items, s)
		p.skipSpace(true)
		if p.eof() {
			return nil, fmt.Errorf("vm.cfg line %d: list not closed (missing ])", start)
		}
		if p.consume(']') {
			return items, nil
		}
		if !p.consume(',') {
			return nil, p.errorf("want ',' or ']' in the list, got %s", p.peekDesc())
		}
	}
}
