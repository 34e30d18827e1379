package commands

import (
	"slices"
	"sort"
	"strings"
)

// Suggestion is one completion of the word being typed.
type Suggestion struct {
	Text        string // what replaces the word
	Description string // help shown beside it
}

// NameQuery asks for object names to offer.
type NameQuery struct {
	Type   string
	Prefix string
	Limit  int
	// States, for VMs, keeps only VMs in these states (start offers the
	// stopped VMs); nil keeps all.
	States []string
}

// ObjectNames returns the names a NameQuery asks for; the caller (which can
// see the inventory and the user's permissions) provides it. Nil means no
// object names are offered.
type ObjectNames func(q NameQuery) []string

// maxObjectSuggestions bounds the object names offered for one word, so that
// completion stays instant with a large inventory.
const maxObjectSuggestions = 50

// Complete returns the suggestions for the last word of line (the text left
// of the cursor) and the byte offset where that word starts. Everything
// offered comes from the registry's declarations and, for object names,
// from names.
func (r *Registry) Complete(line string, names ObjectNames) (start int, out []Suggestion) {
	// The word being typed starts after the last blank outside quotes.
	start = wordStart(line)
	word := line[start:]
	done, perr := lex(line[:start])
	if perr != nil || strings.Contains(line[:start], ";") {
		// After a ';' complete the last command alone.
		if i := strings.LastIndex(line[:start], ";"); i >= 0 {
			s, sug := r.Complete(line[i+1:], names)
			return i + 1 + s, sug
		}
		return start, nil
	}
	if len(done) == 0 {
		for _, v := range r.Verbs() {
			if hasPrefixFold(v.Name, word) {
				out = append(out, Suggestion{v.Name + " ", v.Help})
			}
		}
		return start, out
	}
	verb, ok := r.Verb(done[0].text)
	if !ok {
		return start, nil
	}
	if verb.Typed() && len(done) == 1 {
		for _, s := range verb.Specs {
			if hasPrefixFold(s.Type, word) {
				out = append(out, Suggestion{s.Type + " ", s.Help})
			}
		}
		return start, out
	}
	if !verb.Typed() && strings.EqualFold(verb.Name, "help") {
		return start, r.completeHelp(done[1:], word)
	}
	spec := verb.Specs[0]
	rest := done[1:]
	if verb.Typed() {
		spec, ok = verb.Spec(done[1].text)
		if !ok {
			return start, nil
		}
		rest = done[2:]
	}
	// Inside or after the clause?
	for i := range rest {
		if isPrep(&rest[i]) && spec.Clause != nil {
			after := rest[i+1:]
			switch len(after) {
			case 0:
				for _, ct := range spec.Clause.Types {
					if hasPrefixFold(ct, word) {
						out = append(out, Suggestion{ct + " ", "the object to act " + spec.Clause.Prep})
					}
				}
				return start, out
			case 1:
				typ, ok := canonicalType(after[0].text)
				if !ok {
					return start, nil
				}
				if key, value, isPair := strings.Cut(word, "="); isPair && strings.EqualFold(key, "name") {
					out = objectSuggestions(typ, value, names)
					if also := spec.AlsoNames[typ]; also != "" {
						out = append(out, objectSuggestions(also, value, names)...)
					}
					return start + len(key) + 1, out
				}
				return start, instanceSuggestions(typ, word, names)
			}
			return start, nil
		}
	}
	// The instance comes first; an action that filters may take it after
	// its filters, or take filters alone.
	awaitsInstance := spec.Instance && len(rest) == 0
	if spec.selects() {
		awaitsInstance = !slices.ContainsFunc(rest, func(t token) bool { return isInstanceKey(&t) })
	}
	if key, value, isPair := strings.Cut(word, "="); isPair {
		if awaitsInstance && (strings.EqualFold(key, "name") || strings.EqualFold(key, "id")) {
			q := NameQuery{Type: spec.Type, Prefix: value, Limit: maxObjectSuggestions}
			if t := typeNamed(spec.Type); t != nil && t.StatesFor != nil {
				q.States = t.StatesFor(spec.Verb)
			}
			out = objectSuggestionsQ(q, names)
			if also := spec.AlsoNames[spec.Type]; also != "" {
				out = append(out, objectSuggestions(also, value, names)...)
			}
			return start + len(key) + 1, out
		}
		a := spec.attr(key)
		if a == nil {
			return start, nil
		}
		return start + len(key) + 1, valueSuggestions(a, spec, value, names)
	}
	if awaitsInstance {
		out = instanceSuggestions(spec.Type, word, names)
		if !spec.selects() {
			return start, out
		}
	}
	used := map[string]bool{}
	for _, t := range rest {
		if t.hasEq {
			used[strings.ToLower(t.key)] = true
		}
	}
	attrs := append([]Attr(nil), spec.Attrs...)
	sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].Required && !attrs[j].Required })
	for _, a := range attrs {
		if used[strings.ToLower(a.Name)] || !hasPrefixFold(a.Name, word) {
			continue
		}
		desc := a.Help
		if a.Required {
			desc = "(required) " + desc
		}
		out = append(out, Suggestion{a.Name + "=", desc})
	}
	if spec.Clause != nil && hasPrefixFold(spec.Clause.Prep, word) {
		out = append(out, Suggestion{spec.Clause.Prep + " ", spec.Clause.Prep + " " + strings.Join(spec.Clause.Types, "|") + " <instance>"})
	}
	return start, out
}

func (r *Registry) completeHelp(done []token, word string) []Suggestion {
	var out []Suggestion
	switch len(done) {
	case 0:
		for _, v := range r.Verbs() {
			if hasPrefixFold(v.Name, word) {
				out = append(out, Suggestion{v.Name + " ", v.Help})
			}
		}
	case 1:
		if v, ok := r.Verb(done[0].text); ok && v.Typed() {
			for _, s := range v.Specs {
				if hasPrefixFold(s.Type, word) {
					out = append(out, Suggestion{s.Type, s.Help})
				}
			}
		}
	}
	return out
}

func instanceSuggestions(typ, word string, names ObjectNames) []Suggestion {
	var out []Suggestion
	for _, k := range []string{"name=", "id="} {
		if hasPrefixFold(k, word) {
			out = append(out, Suggestion{k, "the " + typ + " by " + strings.TrimSuffix(k, "=")})
		}
	}
	return out
}

func objectSuggestions(typ, prefix string, names ObjectNames) []Suggestion {
	return objectSuggestionsQ(NameQuery{Type: typ, Prefix: prefix, Limit: maxObjectSuggestions}, names)
}

func objectSuggestionsQ(q NameQuery, names ObjectNames) []Suggestion {
	if names == nil {
		return nil
	}
	var out []Suggestion
	for _, n := range names(q) {
		out = append(out, Suggestion{quoteIfNeeded(n) + " ", q.Type})
	}
	return out
}

func valueSuggestions(a *Attr, spec *Spec, prefix string, names ObjectNames) []Suggestion {
	var out []Suggestion
	switch a.Kind {
	case AttrEnum, AttrYesNo:
		enum := a.Enum
		if a.Kind == AttrYesNo {
			enum = []string{"Yes", "No"}
		}
		for _, e := range enum {
			if hasPrefixFold(e, prefix) {
				out = append(out, Suggestion{e + " ", a.Help})
			}
		}
	case AttrObject:
		return objectSuggestions(a.Object, prefix, names)
	case AttrString:
		if a.Names != "" {
			return objectSuggestions(a.Names, prefix, names)
		}
		if a.Name == "name" && spec.Verb == "list" {
			return objectSuggestions(spec.Type, prefix, names)
		}
	}
	return out
}

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, " \t'\";") {
		q := strings.ReplaceAll(s, `"`, `/"`)
		if strings.HasSuffix(q, "/") {
			q += "/"
		}
		return `"` + q + `"`
	}
	return s
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// wordStart returns where the last word of line begins: after the last
// blank that is not inside quotes.
func wordStart(line string) int {
	start := 0
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == '/' && escapesNext(line, i):
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == 0 && (c == ' ' || c == '\t'):
			start = i + 1
		}
	}
	return start
}
