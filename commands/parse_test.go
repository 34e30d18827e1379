package commands

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		verb     string
		typ      string
		inst     string // Instance.String()
		attrs    map[string]string
		target   string // "on ServerPool name=p"
		help     bool
		wantCode Code
		wantMsg  string // substring of the error message
	}{
		{in: "list Vm", verb: "list", typ: "Vm"},
		{in: "LIST vm", verb: "list", typ: "Vm"},
		{in: "  show   VM   name=web1  ", verb: "show", typ: "Vm", inst: "name=web1"},
		{in: "show Vm id=0004fb00000600001122334455667788", verb: "show", typ: "Vm", inst: "id=0004fb00000600001122334455667788"},
		{in: `show Vm name="web 1"`, verb: "show", typ: "Vm", inst: "name=web 1"},
		{in: `show Vm name='web 1'`, verb: "show", typ: "Vm", inst: "name=web 1"},
		{in: `create Vm name=a repository=r description="HR/'s VMs"`, verb: "create", typ: "Vm",
			attrs: map[string]string{"name": "a", "repository": "r", "description": "HR's VMs"}},
		{in: `create Vm name=a repository=r description='say /"hi/"'`, verb: "create", typ: "Vm",
			attrs: map[string]string{"name": "a", "repository": "r", "description": `say "hi"`}},
		{in: "create vm NAME=a Repository=r MEMORY=2048 cpucount=2 domaintype=xen_pvm", verb: "create", typ: "Vm",
			attrs: map[string]string{"name": "a", "repository": "r", "memory": "2048", "cpuCount": "2", "domainType": "XEN_PVM"}},
		{in: "create Vm name=a name=b repository=r", verb: "create", typ: "Vm", attrs: map[string]string{"name": "b", "repository": "r"}},
		{in: "create Vm name=a repository=r on ServerPool name=p", verb: "create", typ: "Vm",
			attrs: map[string]string{"name": "a", "repository": "r"}, target: "on ServerPool name=p"},
		{in: "create Repository name=r fsLocation=/srv/r ON serverpool id=x", verb: "create", typ: "Repository",
			attrs: map[string]string{"name": "r", "fsLocation": "/srv/r"}, target: "on ServerPool id=x"},
		{in: "add Server name=ovs1 to ServerPool name=p", verb: "add", typ: "Server", inst: "name=ovs1", target: "to ServerPool name=p"},
		{in: "discoverServer ipAddress=10.0.0.1 password=x port=8899", verb: "discoverServer",
			attrs: map[string]string{"ipAddress": "10.0.0.1", "password": "x", "port": "8899"}},
		{in: "discoverserver IPADDRESS=h password=x", verb: "discoverServer", attrs: map[string]string{"ipAddress": "h", "password": "x"}},
		{in: "create Vm ?", verb: "create", typ: "Vm", help: true},
		{in: "create Vm name=x ?", verb: "create", typ: "Vm", help: true},
		{in: "list ?", verb: "list", help: true},
		{in: "help", verb: "help"},
		{in: "help start Vm", verb: "help", attrs: map[string]string{"arg0": "start", "arg1": "Vm"}},
		{in: "exit", verb: "exit"},
		{in: "", verb: ""},

		{in: "lsit Vm", wantCode: CodeUnknownCommand, wantMsg: "did you mean 'list'?"},
		{in: "frobnicate", wantCode: CodeUnknownCommand, wantMsg: "unknown command 'frobnicate'"},
		{in: "name=x", wantCode: CodeUnknownCommand, wantMsg: "starts with a verb"},
		{in: "list Vmm", wantCode: CodeUnknownType, wantMsg: "did you mean 'Vm'?"},
		{in: "list", wantCode: CodeUnknownType, wantMsg: "list needs an object type"},
		{in: "start Server name=x", wantCode: CodeUnknownType, wantMsg: "start does not act on 'Server'"},
		{in: "show Vm", wantCode: CodeMissingInstance, wantMsg: "show Vm needs the object"},
		{in: "show Vm web1", wantCode: CodeMissingInstance, wantMsg: "not 'web1'"},
		{in: "show Vm name=", wantCode: CodeMissingInstance},
		{in: `show Vm name="web1`, wantCode: CodeSyntax, wantMsg: "unterminated quote"},
		{in: "create Vm name=a repository=r memroy=1", wantCode: CodeUnknownAttribute, wantMsg: "unknown attribute 'memroy' for create Vm; did you mean 'memory'?"},
		{in: "create Vm name=a", wantCode: CodeMissingAttribute, wantMsg: "'repository='"},
		{in: "create Vm name= repository=r", wantCode: CodeInvalidValue, wantMsg: "'name=' has no value"},
		{in: "create Vm name=a repository=r memory=lots", wantCode: CodeInvalidValue, wantMsg: "integer from 1"},
		{in: "create Vm name=a repository=r memory=0", wantCode: CodeInvalidValue},
		{in: "create Vm name=a repository=r domainType=kvm", wantCode: CodeInvalidValue, wantMsg: "XEN_HVM"},
		{in: "create Vm name=a repository=r on", wantCode: CodeClause, wantMsg: "needs an object type"},
		{in: "create Vm name=a repository=r on Server name=x", wantCode: CodeClause},
		{in: "create Vm name=a repository=r on ServerPool", wantCode: CodeMissingInstance},
		{in: "create Vm name=a repository=r to ServerPool name=p", wantCode: CodeClause, wantMsg: "not 'to'"},
		{in: "create Vm name=a repository=r on ServerPool name=p extra=1", wantCode: CodeSyntax, wantMsg: "after the 'on' clause"},
		{in: "create Repository name=r fsLocation=/x", wantCode: CodeClause, wantMsg: "needs 'on ServerPool"},
		{in: "add Server name=s", wantCode: CodeClause},
		{in: "list Vm on ServerPool name=p", wantCode: CodeClause, wantMsg: "takes no 'on' clause"},
		{in: "create Vm name=a repository=r stray", wantCode: CodeSyntax, wantMsg: "name=value"},
		{in: "show Vm name=a\x01", wantCode: CodeSyntax, wantMsg: "control character"},
		{in: "show Vm name=\xff", wantCode: CodeSyntax, wantMsg: "UTF-8"},
		{in: "show Vm name=" + strings.Repeat("a", 10000), wantCode: CodeSyntax, wantMsg: "at most 8192"},
		{in: "discoverServer ipAddress=h", wantCode: CodeMissingAttribute, wantMsg: "'password='"},
		{in: "discoverServer ipAddress=h password=x port=70000", wantCode: CodeInvalidValue},

		{in: "list Vm name=web* status=running serverPool=p1", verb: "list", typ: "Vm",
			attrs: map[string]string{"name": "web*", "status": "Running", "serverPool": "p1"}},
		{in: "list Vm SERVER=ovs1 repository='my repo'", verb: "list", typ: "Vm",
			attrs: map[string]string{"server": "ovs1", "repository": "my repo"}},
		{in: "list Server status=Running", verb: "list", typ: "Server", attrs: map[string]string{"status": "Running"}},
		{in: "list ServerPool status=Running", wantCode: CodeUnknownAttribute, wantMsg: "accepted: name"},
		{in: "start Vm name=web* multiple=yes", verb: "start", typ: "Vm", inst: "name=web*", attrs: map[string]string{"multiple": "Yes"}},
		{in: "start Vm name=web* multiple=maybe", wantCode: CodeInvalidValue, wantMsg: "use Yes or No"},
		{in: "stop vm ID=0004fb00000600001122334455667788", verb: "stop", typ: "Vm", inst: "id=0004fb00000600001122334455667788"},
		{in: "set outputMode=json", verb: "set", attrs: map[string]string{"outputMode": "Json"}},
		{in: "set endLineChars=crlf alphabetizeAttributes=YES", verb: "set", attrs: map[string]string{"endLineChars": "CRLF", "alphabetizeAttributes": "Yes"}},
		{in: "set commandTimeout=43201", wantCode: CodeInvalidValue, wantMsg: "1 to 43200"},
		{in: "set outputMode=Html", wantCode: CodeInvalidValue, wantMsg: "Verbose, Sparse, Xml, Json, Table"},
		{in: "set outptMode=Json", wantCode: CodeUnknownAttribute, wantMsg: "did you mean 'outputMode'?"},
		{in: "showcustomcmds Vm", verb: "showcustomcmds", attrs: map[string]string{"arg0": "Vm"}},
		{in: "showversion", verb: "showversion"},
		{in: "showversion extra", wantCode: CodeSyntax, wantMsg: "unexpected word 'extra'"},
		{in: "shwo Vm", wantCode: CodeUnknownCommand, wantMsg: "did you mean 'show'?"},
		{in: "\tlist\tVm\t", verb: "list", typ: "Vm"},
		{in: "show Vm name=\"\"", wantCode: CodeMissingInstance},
		{in: `create Vm name="" repository=r`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "", "repository": "r"}},
		{in: `create Vm name=a=b repository=r`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a=b", "repository": "r"}},
		{in: `create Vm name=a repository=r description='it''s'`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": "its"}},
		{in: `create Vm name=a repository=r description="ends with slash//"`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": "ends with slash/"}},
		{in: `create Vm name=a repository=r description="ssh-ed25519 AAAA//8+/x a/b"`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": "ssh-ed25519 AAAA//8+/x a/b"}},
		{in: `create Vm name=a repository=r description='it/'s /"quoted/"'`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": `it's "quoted"`}},
		{in: "create Vm name=a repository=r description=\"unterminated", wantCode: CodeSyntax, wantMsg: "close it with \""},
		{in: "create Vm name=a repository=r memory=99999999999999999999", wantCode: CodeInvalidValue},
		{in: "create Vm name=a repository=r memory=-5", wantCode: CodeInvalidValue},
		{in: "create Vm name=a repository=r cpuCount=1.5", wantCode: CodeInvalidValue},
		{in: "create Vm name=a repository=r ON ServerPool NAME=p", verb: "create", typ: "Vm",
			attrs: map[string]string{"name": "a", "repository": "r"}, target: "on ServerPool name=p"},
		{in: "create Vm name=a repository=r on ServerPool web1", wantCode: CodeMissingInstance, wantMsg: "not 'web1'"},
		{in: "add Server name=s to Vm name=x", wantCode: CodeClause},
		{in: "add Server name=s from ServerPool name=p", wantCode: CodeClause, wantMsg: "not 'from'"},
		{in: "create Vm \"on\"=x", wantCode: CodeSyntax},
		{in: "list Vm \x1b[A", wantCode: CodeSyntax, wantMsg: "control character 0x1b"},
		{in: "show Vm name=caf\u00e9", verb: "show", typ: "Vm", inst: "name=caf\u00e9"},
		{in: "list Vm ?", verb: "list", typ: "Vm", help: true},
		{in: "?", wantCode: CodeUnknownCommand},
		{in: "show Vm id=0004FB00000600001122334455667788", verb: "show", typ: "Vm", inst: "id=0004fb00000600001122334455667788"},
		{in: "create Vm name=a repository=r memory=+5", wantCode: CodeInvalidValue},
		// A backslash is itself, except before a quote character inside
		// quotes: that is refused, naming the escape /.
		{in: `create Vm name=a repository=r description="a \"b\""`, wantCode: CodeSyntax, wantMsg: `the language's escape is /" ("say /"hi/"")`},
		{in: `create Vm name=a repository=r description='it\'s'`, wantCode: CodeSyntax, wantMsg: `the language's escape is /' ('it/'s')`},
		{in: `create Vm name=a repository=r description="it\'s"`, wantCode: CodeSyntax, wantMsg: `escape is /'`},
		{in: `create Vm name=a repository=r description='say \"hi\"'`, wantCode: CodeSyntax, wantMsg: `escape is /"`},
		{in: `create Vm name=a repository=r description="ends in a backslash\"`, wantCode: CodeSyntax, wantMsg: `close the quote first`},
		{in: `create Vm name=a repository=r description="\\"`, wantCode: CodeSyntax, wantMsg: `escape is /"`},
		{in: `create Vm name=a repository=r description="/\"`, wantCode: CodeSyntax, wantMsg: `escape is /"`},
		{in: `create Vm name=a repository=r description="C:\my dir"\`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": `C:\my dir\`}},
		{in: `create Vm name=a repository=r description="C:\dir\sub"`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": `C:\dir\sub`}},
		{in: `create Vm name=a repository=r description="a\/"b"`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": `a\"b`}},
		{in: `create Vm name=a repository=r description=back\slash`, verb: "create", typ: "Vm", attrs: map[string]string{"name": "a", "repository": "r", "description": `back\slash`}},
		// Actions with multiple= take list's filters instead of, or besides,
		// an instance (the handler refuses filters without multiple=Yes).
		{in: "stop Vm server=ovs1 multiple=Yes", verb: "stop", typ: "Vm", attrs: map[string]string{"server": "ovs1", "multiple": "Yes"}},
		{in: "migrate Vm tag=web multiple=Yes", verb: "migrate", typ: "Vm", attrs: map[string]string{"tag": "web", "multiple": "Yes"}},
		{in: "start Vm status=stopped SERVERPOOL=P multiple=yes", verb: "start", typ: "Vm",
			attrs: map[string]string{"status": "Stopped", "serverPool": "P", "multiple": "Yes"}},
		{in: "kill Vm name=web* server=ovs1 multiple=Yes", verb: "kill", typ: "Vm", inst: "name=web*", attrs: map[string]string{"server": "ovs1", "multiple": "Yes"}},
		{in: "restart Vm server=ovs1 NAME=web* multiple=Yes", verb: "restart", typ: "Vm", inst: "name=web*", attrs: map[string]string{"server": "ovs1", "multiple": "Yes"}},
		{in: "delete Vm repository=r1 id=0004FB00000600001122334455667788", verb: "delete", typ: "Vm", inst: "id=0004fb00000600001122334455667788",
			attrs: map[string]string{"repository": "r1"}},
		{in: "stop Vm server=ovs1", verb: "stop", typ: "Vm", attrs: map[string]string{"server": "ovs1"}},
		{in: "migrate Vm tag=web destServer=ovs2 multiple=Yes", verb: "migrate", typ: "Vm",
			attrs: map[string]string{"tag": "web", "destServer": "ovs2", "multiple": "Yes"}},
		{in: "stop Vm server=ovs1 ?", verb: "stop", typ: "Vm", help: true},
		{in: "stop Vm", wantCode: CodeMissingInstance, wantMsg: "stop Vm needs the objects: id=<id> or name=<name or pattern>, or filters (status=, server=, serverPool=, repository=, tag=) with multiple=Yes"},
		{in: "stop Vm multiple=Yes", wantCode: CodeMissingInstance, wantMsg: "or filters (status="},
		{in: "stop Vm web1", wantCode: CodeMissingInstance, wantMsg: "not 'web1'"},
		{in: "stop Vm name= server=ovs1", wantCode: CodeMissingInstance, wantMsg: "not 'name='"},
		{in: "stop Vm server=ovs1 name=", wantCode: CodeMissingInstance, wantMsg: "not 'name='"},
		{in: "stop Vm server=ovs1 name=a id=0004fb00000600001122334455667788 multiple=Yes", wantCode: CodeMissingInstance, wantMsg: "takes one id= or name="},
		{in: "stop Vm name=a name=b", wantCode: CodeMissingInstance, wantMsg: "takes one id= or name=, not 'name=b' after name=a"},
		{in: "stop Vm servr=ovs1 multiple=Yes", wantCode: CodeUnknownAttribute, wantMsg: "did you mean 'server'?"},
		{in: "stop Vm status=Bogus multiple=Yes", wantCode: CodeInvalidValue, wantMsg: "Running, Stopped"},
		{in: "show Vm server=ovs1", wantCode: CodeMissingInstance, wantMsg: "show Vm needs the object: id=<id> or name=<name>, not 'server=ovs1'"},
		{in: "edit Vm server=ovs1 memory=512", wantCode: CodeMissingInstance, wantMsg: "edit Vm needs the object"},
		{in: "stop Server server=ovs1", wantCode: CodeMissingInstance, wantMsg: "stop Server needs the object"},
		{in: "start Vm name=web1 on ServerPool name=p", wantCode: CodeClause, wantMsg: "takes no 'on' clause"},
		// migrate's destServer= names a Server: server= would read as where
		// the VMs go, so it is no filter of migrate.
		{in: "migrate Vm server=ovs1 multiple=Yes", wantCode: CodeUnknownAttribute,
			wantMsg: "server= is not a filter of migrate Vm: its destServer= names a Server already (the server to move to"},
		{in: "migrate Vm name=web* server=ovs2 multiple=Yes", wantCode: CodeUnknownAttribute, wantMsg: "select by id=, name=, status=, serverPool=, repository=, tag="},
		// '#' is an ordinary character inside a command.
		{in: "show Vm name=web#1", verb: "show", typ: "Vm", inst: "name=web#1"},
		{in: "show Vm name=web1 # a note", wantCode: CodeSyntax, wantMsg: "unexpected word '#'"},
	}
	for _, tc := range tests {
		name := tc.in
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			cmd, err := Default.Parse(tc.in)
			if tc.wantCode != "" {
				if err == nil {
					t.Fatalf("Parse(%q) succeeded; want %s", tc.in, tc.wantCode)
				}
				if err.Code != tc.wantCode || !strings.Contains(err.Msg, tc.wantMsg) {
					t.Fatalf("Parse(%q) error = %s %q; want %s containing %q", tc.in, err.Code, err.Msg, tc.wantCode, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.in, err)
			}
			if tc.verb == "" {
				if cmd != nil {
					t.Fatalf("Parse(%q) = %+v; want nothing", tc.in, cmd)
				}
				return
			}
			if cmd.Verb.Name != tc.verb {
				t.Errorf("verb = %q, want %q", cmd.Verb.Name, tc.verb)
			}
			if cmd.Help != tc.help {
				t.Errorf("help = %v, want %v", cmd.Help, tc.help)
			}
			if tc.help {
				return
			}
			if cmd.Spec.Type != tc.typ {
				t.Errorf("type = %q, want %q", cmd.Spec.Type, tc.typ)
			}
			gotInst := ""
			if cmd.Instance != nil {
				gotInst = cmd.Instance.String()
			}
			if gotInst != tc.inst {
				t.Errorf("instance = %q, want %q", gotInst, tc.inst)
			}
			if len(cmd.Attrs) != len(tc.attrs) {
				t.Errorf("attrs = %v, want %v", cmd.Attrs, tc.attrs)
			}
			for k, v := range tc.attrs {
				if cmd.Attrs[k] != v {
					t.Errorf("attr %s = %q, want %q", k, cmd.Attrs[k], v)
				}
			}
			gotTarget := ""
			if cmd.Target != nil {
				gotTarget = cmd.Target.Prep + " " + cmd.Target.Type + " " + cmd.Target.Instance.String()
			}
			if gotTarget != tc.target {
				t.Errorf("target = %q, want %q", gotTarget, tc.target)
			}
		})
	}
}

func TestParseLineSplitsOutsideQuotes(t *testing.T) {
	got := Default.ParseLine(`list Vm; show Vm name="a;b" ;; bogus`)
	if len(got) != 3 {
		t.Fatalf("pieces = %d, want 3: %+v", len(got), got)
	}
	if got[1].Cmd == nil || got[1].Cmd.Instance.Value != "a;b" {
		t.Fatalf("second piece = %+v, want show Vm name=a;b", got[1])
	}
	if got[2].Err == nil || got[2].Err.Code != CodeUnknownCommand {
		t.Fatalf("third piece error = %v, want unknown command", got[2].Err)
	}
}

// A line whose first non-blank character is '#' is a comment and, like a
// blank line, holds no command; '#' anywhere else is an ordinary character.
func TestParseLineComments(t *testing.T) {
	tests := []struct {
		line  string
		verbs []string // the verb of each piece; "!" for a piece that does not parse
	}{
		{"# a comment", nil},
		{"#", nil},
		{"#list Vm", nil},
		{"   # indented", nil},
		{"\t # after a tab", nil},
		{"# it's unbalanced; list Vm; \"", nil},
		{"# a backslash \"escape\" in a comment", nil},
		{"", nil},
		{" \t ", nil},
		{";;", nil},
		{"list Vm; # not a comment", []string{"list", "!"}},
		{"list Vm # not a comment", []string{"!"}},
		{"show Vm name=web#1", []string{"show"}},
		{"show Vm name='#1'; list Vm", []string{"show", "list"}},
		// A comment is text like any line: a control character in it is
		// refused rather than let a newline hide a command in an exec.
		{"# a note\nstart Vm name=web1", []string{"!"}},
		{"# \x1b[31mred", []string{"!"}},
		{"# caf\xe9", []string{"!"}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			var verbs []string
			for _, p := range Default.ParseLine(tc.line) {
				switch {
				case p.Err != nil:
					verbs = append(verbs, "!")
				case p.Cmd == nil:
					t.Fatalf("piece %q has neither a command nor an error", p.Text)
				default:
					verbs = append(verbs, p.Cmd.Verb.Name)
				}
			}
			if strings.Join(verbs, " ") != strings.Join(tc.verbs, " ") {
				t.Errorf("ParseLine(%q) pieces = %q, want %q", tc.line, verbs, tc.verbs)
			}
		})
	}
}

// A line with a backslash before a closing quote is refused whole: where
// its quotes end is unclear, so none of its ';'-pieces can be trusted.
func TestParseLineRefusesBackslashEscapeWhole(t *testing.T) {
	tests := []string{
		`edit Tag name=t description="x \"; delete Tag name=t; show Tag name=t \""`,
		`list Vm; edit Tag name=t description="a \"b\""`,
		`edit Tag name=t description='it\'s'; list Vm`,
	}
	for _, line := range tests {
		got := Default.ParseLine(line)
		if len(got) != 1 || got[0].Err == nil || got[0].Err.Code != CodeSyntax || got[0].Text != line {
			t.Errorf("ParseLine(%q) = %+v; want the whole line refused with %s", line, got, CodeSyntax)
			continue
		}
		if !strings.Contains(got[0].Err.Msg, "none of the line was run") {
			t.Errorf("ParseLine(%q) message %q does not say that none of the line ran", line, got[0].Err.Msg)
		}
	}
}

func TestMaskSecrets(t *testing.T) {
	tests := []struct{ in, want string }{
		{"discoverServer ipAddress=h password=s3cret port=1", "discoverServer ipAddress=h password=**** port=1"},
		{`discoverServer password="a b" ipAddress=h`, "discoverServer password=**** ipAddress=h"},
		{"bogus password=s3cret", "bogus password=****"},
		{`discoverServer password="open`, "discoverServer ..."},
		{"list Vm", "list Vm"},
		{"importIso Repository name=r url=http://me:hunter2@mirror/x.iso name=x", "importIso Repository name=r url=http://me:xxxxx@mirror/x.iso name=x"},
		{`importIso Repository name=r url="https://me:hun ter@mirror/x.iso" name=x`, "importIso Repository name=r url=https://me:xxxxx@mirror/x.iso name=x"},
		{"importIso Repository name=r url=http://me@mirror/x.iso name=x", "importIso Repository name=r url=http://me@mirror/x.iso name=x"},
	}
	for _, tc := range tests {
		if got := maskSecrets(tc.in, Default); got != tc.want {
			t.Errorf("maskSecrets(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Every verb is declared with help, and every attribute with help and a type.
func TestRegistryDeclarationsComplete(t *testing.T) {
	for _, v := range Default.Verbs() {
		if v.Help == "" {
			t.Errorf("verb %s has no help", v.Name)
		}
		for _, s := range v.Specs {
			if s.Help == "" || s.Run == nil {
				t.Errorf("%s %s: missing help or handler", v.Name, s.Type)
			}
			if s.Args != "" && (s.Type != "" || s.Instance || s.Attrs != nil || s.Clause != nil) {
				t.Errorf("%s %s: plain words (Args) go only with a command that takes no type, instance, attribute or clause", v.Name, s.Type)
			}
			for _, a := range s.Attrs {
				if a.Help == "" {
					t.Errorf("%s %s: attribute %s has no help", v.Name, s.Type, a.Name)
				}
				if a.Kind == AttrEnum && len(a.Enum) == 0 || a.Kind == AttrInt && a.Max <= a.Min || a.Kind == AttrObject && a.Object == "" {
					t.Errorf("%s %s: attribute %s is declared incompletely", v.Name, s.Type, a.Name)
				}
			}
		}
	}
}
