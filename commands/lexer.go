package commands

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// token is one word of a command: a bare word, a quoted string, or
// key=value. Quotes ("..." or '...') may surround the whole word or the value
// of key=value; inside quotes '/' escapes a quote character, as in Oracle
// VM's CLI (description="HR/'s VMs"), and "//" before a quote is one '/'
// (so a value may end in '/'). Any other '/' is itself: base64 text such
// as an SSH key passes unchanged. A backslash is itself too, but not just
// before a quote character inside quotes: that is refused (see
// backslashQuoteError), since it is another language's escape.
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

// isComment reports whether a line is a comment: its first character that
// is not a blank (space or tab) is '#'. A '#' anywhere else, even just after
// a ';', is an ordinary character (name=web#1).
func isComment(line string) bool {
	return strings.HasPrefix(strings.TrimLeft(line, " \t"), "#")
}

// splitCommands cuts a line at ';' outside quotes. It fails only when a
// backslash comes before a quote character inside quotes: where those quotes
// end is then unclear, and so is where the line's commands begin and end.
// An unterminated quote is reported by lex on the piece that holds it.
func splitCommands(line string) ([]string, *ParseError) {
	var out []string
	var quote rune
	escaped := false
	start, quoteAt := 0, 0
	for i, r := range line {
		switch {
		case escaped:
			escaped = false
		case quote != 0 && r == '\\' && quoteFollows(line, i):
			return nil, backslashQuoteError(line, startOfWordAt(line, quoteAt), line[i+1])
		case quote != 0 && r == '/' && escapesNext(line, i):
			escaped = true
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote, quoteAt = r, i
		case quote == 0 && r == ';':
			out = append(out, line[start:i])
			start = i + 1
		}
	}
	return append(out, line[start:]), nil
}

// startOfWordAt is where the word that holds line[i] begins: after the last
// blank or ';' before it.
func startOfWordAt(line string, i int) int {
	return strings.LastIndexAny(line[:i], " \t;") + 1
}

// quoteFollows reports whether a quote character comes just after s[i].
func quoteFollows(s string, i int) bool {
	return i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\'')
}

// backslashQuoteError refuses a backslash before the quote character q
// inside quotes, in the word of text that starts at start. Elsewhere a
// backslash would just be itself; here the writer most likely meant the
// escape of another language ("a \"b\""), which this one would read as a
// backslash that ends the quote: the message names the escape /.
func backslashQuoteError(text string, start int, q byte) *ParseError {
	example := `"say /"hi/""`
	if q == '\'' {
		example = `'it/'s'`
	}
	return &ParseError{Code: CodeSyntax, Pos: start, Word: text[start:],
		Msg: fmt.Sprintf(`\%c inside quotes in %s: the language's escape is /%c (%s), and a backslash is itself; `+
			`to end a quoted value with a backslash, close the quote first ("C:\my dir"\)`, q, quoteWord(text[start:]), q, example)}
}

// checkText accepts only valid UTF-8 with no control characters other than
// tab: anything else could end a line early or move a terminal's cursor.
func checkText(cmd string) *ParseError {
	if !utf8.ValidString(cmd) {
		return &ParseError{Code: CodeSyntax, Msg: "the command is not valid UTF-8 text"}
	}
	for i, r := range cmd {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return &ParseError{Code: CodeSyntax, Pos: i, Msg: "control character " + strings.TrimPrefix(quoteRune(r), "'") + " in the command; only printable text, spaces and tabs are accepted"}
		}
	}
	return nil
}

// lex splits one command into tokens.
func lex(cmd string) ([]token, *ParseError) {
	if perr := checkText(cmd); perr != nil {
		return nil, perr
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
					if cmd[i] == '\\' && quoteFollows(cmd, i) {
						return nil, backslashQuoteError(cmd, start, cmd[i+1])
					}
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
