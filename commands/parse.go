package commands

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Instance names one object: by id or by name.
type Instance struct {
	ByID  bool
	Value string
}

func (i Instance) String() string {
	if i.ByID {
		return "id=" + i.Value
	}
	return "name=" + i.Value
}

// Target is a parsed "on|to|from <Type> <instance>" clause.
type Target struct {
	Prep     string
	Type     string
	Instance Instance
}

// Command is one parsed command.
type Command struct {
	Text     string // as typed, trimmed
	Spec     *Spec
	Verb     *VerbInfo
	Instance *Instance
	Attrs    map[string]string // canonical attribute name -> value (enums canonical)
	Target   *Target
	Help     bool // "?" asked for the command's help instead of running it
}

// Parse parses one command (no ';'). An empty command returns nil, nil.
func (r *Registry) Parse(text string) (*Command, *ParseError) {
	text = strings.TrimSpace(text)
	if len(text) > maxLineBytes {
		return nil, &ParseError{Code: CodeSyntax, Msg: fmt.Sprintf("the command is %d bytes long; at most %d are accepted", len(text), maxLineBytes)}
	}
	toks, perr := lex(text)
	if perr != nil {
		return nil, perr
	}
	if len(toks) == 0 {
		return nil, nil
	}
	p := &parser{toks: toks, reg: r}
	cmd, perr := p.parse()
	if perr != nil {
		return nil, perr
	}
	cmd.Text = text
	return cmd, nil
}

// ParseLine splits a line at ';' and parses each command. Each element of
// the result holds either a command or the error of that piece, so that a
// caller can run the good pieces and report the bad ones in order. A comment
// line (isComment) holds no command, as a blank one; a line whose quotes
// are unclear (splitCommands) is one piece, refused, so that none of it runs.
func (r *Registry) ParseLine(line string) []Parsed {
	if isComment(line) {
		return commentPieces(line)
	}
	pieces, perr := splitCommands(line)
	if perr != nil {
		perr.Msg += "; none of the line was run"
		return []Parsed{{Text: strings.TrimSpace(line), Err: perr}}
	}
	var out []Parsed
	for _, piece := range pieces {
		if strings.TrimSpace(piece) == "" {
			continue
		}
		cmd, err := r.Parse(piece)
		out = append(out, Parsed{Text: strings.TrimSpace(piece), Cmd: cmd, Err: err})
	}
	return out
}

// commentPieces is what a comment line holds: nothing, unless it has a
// control character or invalid UTF-8, which is refused as in any other line
// (an exec line "# note\nstart Vm ..." must not pass as a comment).
func commentPieces(line string) []Parsed {
	if perr := checkText(line); perr != nil {
		return []Parsed{{Text: strings.TrimSpace(line), Err: perr}}
	}
	return nil
}

// Parsed is one piece of a line: its text and either its command or error.
type Parsed struct {
	Text string
	Cmd  *Command
	Err  *ParseError
}

type parser struct {
	toks []token
	i    int
	reg  *Registry
}

func (p *parser) peek() *token {
	if p.i < len(p.toks) {
		return &p.toks[p.i]
	}
	return nil
}

func (p *parser) next() *token {
	t := p.peek()
	if t != nil {
		p.i++
	}
	return t
}

func isHelp(t *token) bool { return t != nil && !t.hasEq && !t.quoted && t.text == "?" }

func isPrep(t *token) bool {
	if t == nil || t.hasEq || t.quoted {
		return false
	}
	switch strings.ToLower(t.text) {
	case "on", "to", "from":
		return true
	}
	return false
}

func (p *parser) parse() (*Command, *ParseError) {
	vt := p.next()
	if vt.hasEq || vt.quoted {
		return nil, parseErrorf(CodeUnknownCommand, vt, "a command starts with a verb, not %s; try help", quoteWord(vt.raw))
	}
	verb, ok := p.reg.Verb(vt.text)
	if !ok {
		return nil, parseErrorf(CodeUnknownCommand, vt, "%s", unknownCommandMsg(p.reg, vt.text))
	}
	cmd := &Command{Verb: verb, Attrs: map[string]string{}}
	var spec *Spec
	if verb.Typed() {
		tt := p.next()
		if tt == nil || tt.hasEq || isHelp(tt) {
			if isHelp(tt) {
				cmd.Help = true
				return cmd, nil
			}
			return nil, parseErrorf(CodeUnknownType, tt, "%s needs an object type: %s", verb.Name, strings.Join(verb.Types(), ", "))
		}
		s, ok := verb.Spec(tt.text)
		if !ok {
			return nil, parseErrorf(CodeUnknownType, tt, "%s", wrongTypeMsg(verb, tt.text))
		}
		spec = s
	} else {
		spec = verb.Specs[0]
	}
	cmd.Spec = spec
	name := spec.Verb
	if spec.Type != "" {
		name += " " + spec.Type
	}
	if isHelp(p.peek()) {
		p.next()
		cmd.Help = true
		return cmd, nil
	}
	selects := spec.selects()
	if spec.Instance {
		it := p.peek()
		inst, ok := instanceOf(it)
		switch {
		case ok:
			p.next()
			cmd.Instance = &inst
		case !selects || it == nil || !it.hasEq || isInstanceKey(it):
			// An action that filters may start with a filter; a stray word
			// or a malformed id= or name= is refused there as ever.
			return nil, parseErrorf(CodeMissingInstance, it, "%s%s", spec.needsInstance(name), after(it))
		}
	}
	// help and showcustomcmds take plain words.
	if spec.Args != "" {
		for t := p.next(); t != nil; t = p.next() {
			cmd.Attrs[fmt.Sprintf("arg%d", len(cmd.Attrs))] = t.text
		}
		return cmd, nil
	}
	for t := p.peek(); t != nil && !isPrep(t); t = p.peek() {
		p.next()
		if isHelp(t) {
			cmd.Help = true
			return cmd, nil
		}
		if !t.hasEq {
			return nil, parseErrorf(CodeSyntax, t, "unexpected word %s in %s: attributes are written name=value%s", quoteWord(t.raw), name, acceptedAttrs(spec))
		}
		a := spec.attr(t.key)
		if a == nil && selects && isInstanceKey(t) {
			// The instance of an action that filters may follow its filters.
			inst, ok := instanceOf(t)
			switch {
			case !ok:
				return nil, parseErrorf(CodeMissingInstance, t, "%s%s", spec.needsInstance(name), after(t))
			case cmd.Instance != nil:
				return nil, parseErrorf(CodeMissingInstance, t, "%s takes one id= or name=, not %s after %s; a pattern or filters select several",
					name, quoteWord(t.raw), cmd.Instance)
			}
			cmd.Instance = &inst
			continue
		}
		if a == nil {
			if perr := spec.clashError(t, name); perr != nil {
				return nil, perr
			}
			msg := fmt.Sprintf("unknown attribute '%s' for %s", t.key, name)
			names := attrNames(spec)
			if s := suggest(t.key, names); s != "" {
				msg += fmt.Sprintf("; did you mean '%s'?", s)
			} else if len(names) == 0 {
				msg += "; it takes no attributes"
			} else {
				msg += "; accepted: " + strings.Join(names, ", ")
			}
			return nil, parseErrorf(CodeUnknownAttribute, t, "%s", msg)
		}
		v, perr := checkValue(a, t, name)
		if perr != nil {
			return nil, perr
		}
		cmd.Attrs[a.Name] = v // a duplicate attribute takes the last value
	}
	if t := p.peek(); t != nil {
		if spec.Clause == nil {
			return nil, parseErrorf(CodeClause, t, "%s takes no '%s' clause", name, strings.ToLower(t.text))
		}
		if !strings.EqualFold(t.text, spec.Clause.Prep) {
			return nil, parseErrorf(CodeClause, t, "%s takes '%s %s <instance>', not '%s'", name, spec.Clause.Prep, strings.Join(spec.Clause.Types, "|"), strings.ToLower(t.text))
		}
		p.next()
		tt := p.next()
		var typ string
		if tt != nil && !tt.hasEq {
			for _, ct := range spec.Clause.Types {
				if strings.EqualFold(ct, tt.text) {
					typ = ct
				}
			}
		}
		if typ == "" {
			return nil, parseErrorf(CodeClause, tt, "'%s' needs an object type after it: %s%s", spec.Clause.Prep, strings.Join(spec.Clause.Types, ", "), after(tt))
		}
		it := p.next()
		inst, ok := instanceOf(it)
		if !ok {
			return nil, parseErrorf(CodeMissingInstance, it, "'%s %s' needs the object: id=<id> or name=<name>%s", spec.Clause.Prep, typ, after(it))
		}
		cmd.Target = &Target{Prep: spec.Clause.Prep, Type: typ, Instance: inst}
		if t := p.next(); t != nil {
			if isHelp(t) {
				cmd.Help = true
				return cmd, nil
			}
			return nil, parseErrorf(CodeSyntax, t, "unexpected %s after the '%s' clause; attributes go before it", quoteWord(t.raw), spec.Clause.Prep)
		}
	}
	if spec.Clause != nil && spec.Clause.Required && cmd.Target == nil {
		return nil, parseErrorf(CodeClause, nil, "%s needs '%s %s <instance>'", name, spec.Clause.Prep, strings.Join(spec.Clause.Types, "|"))
	}
	if selects && cmd.Instance == nil && !cmd.filtered() {
		return nil, spec.missingSelection(cmd, name)
	}
	var missing []string
	for _, a := range spec.Attrs {
		if _, ok := cmd.Attrs[a.Name]; a.Required && !ok {
			missing = append(missing, a.Name)
		}
	}
	if len(missing) > 0 {
		return nil, parseErrorf(CodeMissingAttribute, nil, "%s needs %s", name, strings.Join(quoteAll(missing), ", "))
	}
	return cmd, nil
}

// unknownCommandMsg says that word is no verb, suggesting the closest one
// or help; the parser and help say it alike.
func unknownCommandMsg(reg *Registry, word string) string {
	var names []string
	for _, v := range reg.Verbs() {
		names = append(names, v.Name)
	}
	msg := fmt.Sprintf("unknown command %s", quoteWord(word))
	if s := suggest(word, names); s != "" {
		return msg + fmt.Sprintf("; did you mean '%s'?", s)
	}
	return msg + "; type help for the list of commands"
}

// wrongTypeMsg says that verb does not act on typ, a type of another verb
// or no type at all (then suggesting the closest), and lists the types it
// accepts; the parser and help say it alike.
func wrongTypeMsg(verb *VerbInfo, typ string) string {
	accepted := strings.Join(verb.Types(), ", ")
	if _, known := canonicalType(typ); known {
		return fmt.Sprintf("%s does not act on %s; object types accepted: %s", verb.Name, quoteWord(typ), accepted)
	}
	msg := fmt.Sprintf("unknown object type %s for %s", quoteWord(typ), verb.Name)
	if sg := suggest(typ, verb.Types()); sg != "" {
		msg += fmt.Sprintf("; did you mean '%s'?", sg)
	}
	return msg + "; accepted: " + accepted
}

func instanceOf(t *token) (Instance, bool) {
	if t == nil || !t.hasEq || t.value == "" {
		return Instance{}, false
	}
	switch strings.ToLower(t.key) {
	case "id":
		// Ids are hex: accept them in either case.
		return Instance{ByID: true, Value: strings.ToLower(t.value)}, true
	case "name":
		return Instance{Value: t.value}, true
	}
	return Instance{}, false
}

// isInstanceKey reports whether t is written id=... or name=..., whatever
// its value.
func isInstanceKey(t *token) bool {
	return t != nil && t.hasEq && (strings.EqualFold(t.key, "id") || strings.EqualFold(t.key, "name"))
}

func after(t *token) string {
	if t == nil {
		return ""
	}
	return ", not " + quoteWord(t.raw)
}

func attrNames(s *Spec) []string {
	out := make([]string, len(s.Attrs))
	for i, a := range s.Attrs {
		out[i] = a.Name
	}
	return out
}

func acceptedAttrs(s *Spec) string {
	if len(s.Attrs) == 0 {
		return ""
	}
	return "; accepted: " + strings.Join(attrNames(s), ", ")
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = "'" + v + "='"
	}
	return out
}

// checkValue validates a value against its attribute's kind and returns it
// canonical (enumerations in their declared spelling).
func checkValue(a *Attr, t *token, cmdName string) (string, *ParseError) {
	v := t.value
	if v == "" && !t.quoted {
		return "", parseErrorf(CodeInvalidValue, t, "'%s=' has no value; %s", a.Name, describe(a))
	}
	switch a.Kind {
	case AttrInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < a.Min || n > a.Max || strings.HasPrefix(v, "+") {
			return "", parseErrorf(CodeInvalidValue, t, "%s=%s is not valid for %s; %s", a.Name, quoteWord(v), cmdName, describe(a))
		}
		return strconv.FormatInt(n, 10), nil
	case AttrEnum, AttrYesNo:
		enum := a.Enum
		if a.Kind == AttrYesNo {
			enum = []string{"Yes", "No"}
		}
		for _, e := range enum {
			if strings.EqualFold(e, v) {
				return e, nil
			}
		}
		return "", parseErrorf(CodeInvalidValue, t, "%s=%s is not valid for %s; %s", a.Name, quoteWord(v), cmdName, describe(a))
	}
	return v, nil
}

func describe(a *Attr) string {
	switch a.Kind {
	case AttrInt:
		return fmt.Sprintf("use an integer from %d to %d", a.Min, a.Max)
	case AttrEnum:
		return "use one of " + strings.Join(a.Enum, ", ")
	case AttrYesNo:
		return "use Yes or No"
	case AttrObject:
		return "use the name or id of a " + a.Object
	}
	return "use a value, quoted if it has spaces"
}

// suggest returns the candidate closest to word (case-insensitive edit
// distance at most 2, or a prefix match), or "".
func suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	best, bestD := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		lc := strings.ToLower(c)
		d := editDistance(w, lc)
		if len(w) >= 3 && strings.HasPrefix(lc, w) && d > 1 {
			d = 1
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and adjacent transpositions ("memroy") cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 99
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
