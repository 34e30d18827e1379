package commands

import (
	"strings"
	"unicode/utf8"
)

// token is one word of a command: a bare word, a quoted string, or
// key=value. Quotes ("..." or '...') may surround the whole word or the value
// of key=value; inside quotes '/' escapes a quote character, as in Oracle
// VM's CLI (description="HR/'s VMs"), and "//" before a quote is one '/'
// (so a value may end in '/'). Any other '/' is itself: base64 text such
// as an SSH key passes unchanged.
type token struct {
	text   string // the word with quotes and escapes removed
	key    string // for key=value: the key as typed
	value  string // for key=value: the value, unquoted
	hasEq  bool   // the word is key=value (the '=' was outside quotes)
	quoted bool   // some part was quoted: never a keyword such as "on"
	pos    int    // byte offset in the line, for error messages
	raw    string // the word as typed
}

// maxLineBytes bounds one command line; longer lines are refused whole.
const maxLineBytes = MaxCommandBytes

// MaxCommandBytes is the longest command line accepted.
const MaxCommandBytes = 8192

// splitCommands cuts a line at ';' outside quotes. It never fails: an
// unterminated quote is reported by lex on the piece that holds it.
func splitCommands(line string) []string {
	var out []string
	var quote rune
	escaped := false
	start := 0
	for i, r := range line {
		switch {
		case escaped:
			escaped = false
		case quote != 0 && r == '/' && escapesNext(line, i):
			escaped = true
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == ';':
			out = append(out, line[start:i])
			start = i + 1
		}
	}
	return append(out, line[start:])
}

// lex splits one command into tokens.
func lex(cmd string) ([]token, *ParseError) {
	if !utf8.ValidString(cmd) {
		return nil, &ParseError{Code: CodeSyntax, Msg: "the command is not valid UTF-8 text"}
	}
	for i, r := range cmd {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return nil, &ParseError{Code: CodeSyntax, Pos: i, Msg: "control character " + strings.TrimPrefix(quoteRune(r), "'") + " in the command; only printable text, spaces and tabs are accepted"}
		}
	}
	var toks []token
	i := 0
	for {
		for i < len(cmd) && (cmd[i] == ' ' || cmd[i] == '\t') {
			i++
		}
		if i >= len(cmd) {
			return toks, nil
		}
		start := i
		var b strings.Builder
		t := token{pos: start}
		for i < len(cmd) && cmd[i] != ' ' && cmd[i] != '\t' {
			c := cmd[i]
			switch {
			case c == '"' || c == '\'':
				t.quoted = true
				i++
				closed := false
				for i < len(cmd) {
					if cmd[i] == '/' && escapesNext(cmd, i) {
						b.WriteByte(cmd[i+1])
						i += 2
						continue
					}
					if cmd[i] == c {
						closed = true
						i++
						break
					}
					b.WriteByte(cmd[i])
					i++
				}
				if !closed {
					return nil, &ParseError{Code: CodeSyntax, Pos: start, Word: cmd[start:],
						Msg: "unterminated quote " + string(c) + " starting at " + quoteWord(cmd[start:]) + "; close it with " + string(c)}
				}
			case c == '=' && !t.hasEq && !t.quoted:
				t.hasEq = true
				t.key = b.String()
				b.Reset()
				i++
			default:
				b.WriteByte(c)
				i++
			}
		}
		t.raw = cmd[start:i]
		if t.hasEq {
			t.value = b.String()
			t.text = t.key + "=" + t.value
		} else {
			t.text = b.String()
		}
		toks = append(toks, t)
	}
}

func quoteRune(r rune) string {
	const hex = "0123456789abcdef"
	return "0x" + string(hex[r>>4&0xf]) + string(hex[r&0xf])
}

// quoteWord shows a word in an error message, shortened when long.
func quoteWord(w string) string {
	if len(w) > 40 {
		cut := 40
		for !utf8.RuneStart(w[cut]) {
			cut--
		}
		w = w[:cut] + "..."
	}
	return "'" + w + "'"
}

// escapesNext reports whether the '/' at s[i], inside quotes, escapes the
// character after it: a quote, or a '/' that a quote follows.
func escapesNext(s string, i int) bool {
	if i+1 >= len(s) {
		return false
	}
	switch s[i+1] {
	case '"', '\'':
		return true
	case '/':
		return i+2 < len(s) && (s[i+2] == '"' || s[i+2] == '\'')
	}
	return false
}
