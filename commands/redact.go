package commands

// This file keeps secrets out of echoes, errors and logs: passwords and
// the passwords of URLs are masked before a command is shown.

import (
	"strings"
	"unicode/utf8"
)

// MentionsSecret reports whether a command may hold a password, including
// misspelt attribute names (pasword=, passwd=): such commands are never
// quoted word for word in errors or logs, nor kept in history.
func MentionsSecret(text string) bool {
	l := strings.ToLower(text)
	if strings.Contains(l, "pass") || strings.Contains(l, "pwd") || strings.Contains(l, "secret") {
		return true
	}
	for _, w := range strings.Fields(text) {
		key, value, ok := strings.Cut(strings.Trim(w, `"'`), "=")
		if ok && editDistance(strings.ToLower(strings.Trim(key, `"'`)), "password") <= 2 {
			return true
		}
		if _, ok := redactURL(strings.Trim(value, `"'`)); ok {
			return true
		}
	}
	return false
}

// acceptedHint names the attributes the command takes, when its first words
// name a command, so that a redacted error still helps.
func (s *Session) acceptedHint(text string) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	v, ok := s.reg.Verb(f[0])
	if !ok {
		return ""
	}
	spec := v.Specs[0]
	if v.Typed() {
		if len(f) < 2 {
			return ""
		}
		if spec, ok = v.Spec(f[1]); !ok {
			return ""
		}
	}
	return "; usage: " + spec.Usage()
}

// firstWord is the command's first word when it can hold no secret, else ****.
func firstWord(text string) string {
	if f := strings.Fields(text); len(f) > 0 && utf8.ValidString(f[0]) && !strings.ContainsAny(f[0], "=\"'") {
		return f[0]
	}
	return "****"
}

// redactedMessage describes a parse error without quoting any word.
func redactedMessage(code Code) string {
	for _, c := range Codes {
		if c.Code == code {
			return c.Meaning + " (the command holds a password, so its words are not repeated; see help)"
		}
	}
	return "the command could not be parsed (the command holds a password, so its words are not repeated)"
}

// maskSecrets returns the command with the values of secret attributes
// (and of any attribute called password, even in a line that did not parse)
// replaced by ****, for echoing and logging.
func maskSecrets(text string, reg *Registry) string {
	toks, err := lex(text)
	if err != nil {
		// Not lexable (say, an open quote): keep only the first word.
		if f := strings.Fields(text); len(f) > 0 {
			return f[0] + " ..."
		}
		return ""
	}
	var spec *Spec
	if len(toks) > 0 {
		if v, ok := reg.Verb(toks[0].text); ok {
			if !v.Typed() {
				spec = v.Specs[0]
			} else if len(toks) > 1 {
				spec, _ = v.Spec(toks[1].text)
			}
		}
	}
	var b strings.Builder
	last := 0
	for _, t := range toks {
		if !t.hasEq {
			continue
		}
		secret := strings.EqualFold(t.key, "password")
		if spec != nil {
			if a := spec.attr(t.key); a != nil && a.Kind == AttrSecret {
				secret = true
			}
		}
		if secret {
			b.WriteString(text[last:t.pos])
			b.WriteString(t.key + "=****")
			last = t.pos + len(t.raw)
		} else if redacted, ok := redactURL(t.value); ok {
			b.WriteString(text[last:t.pos])
			b.WriteString(t.key + "=" + redacted)
			last = t.pos + len(t.raw)
		}
	}
	b.WriteString(text[last:])
	return b.String()
}

// redactURL returns a URL value with the password of its user part
// replaced (http://user:xxxxx@host/...), and whether it had one. It reads
// the value by hand, so that a URL too broken to parse still loses it.
func redactURL(value string) (string, bool) {
	scheme, rest, ok := strings.Cut(value, "://")
	if !ok {
		return "", false
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return "", false
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return "", false
	}
	return scheme + "://" + user + ":xxxxx" + authority[at:] + path, true
}
