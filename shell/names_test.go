package shell

import (
	"path/filepath"
	"strings"
	"testing"
)

// Names that would pass for others are refused where they are given
// (create, edit), with what is wrong and what a name may be; a name typed
// with a combining accent is stored composed and found either way.
func TestNameRules(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	accepted := "a name is 1 to 100 letters, digits, spaces and . _ @ + : -"

	e.failCode(`create Vm name="web " repository=repo1`, "XM_0400E", `invalid Vm name "web ": it ends with a space; `+accepted)
	e.failCode("create Vm name=vm-\u0430 repository=repo1", "XM_0400E", "it mixes Latin and Cyrillic letters", accepted)
	e.failCode("create Vm name=w\u200beb repository=repo1", "XM_0400E", `invalid Vm name "w\u200beb": it holds U+200B, an invisible formatting character`)
	e.failCode("create Tag name=ｇｏｌｄ", "XM_0400E", `a compatibility form of "g"`)
	e.failCode("create Network name=\"front\u00a0end\" on ServerPool name=pool1", "XM_0400E", "U+00A0, a space other than the ordinary one")
	if out := e.mustRun("list Vm; list Tag; list Network"); strings.Contains(out, "  id:") {
		t.Fatalf("refused names left objects:\n%s", out)
	}

	// Renames follow the same rule.
	e.mustRun("create Vm name=web repository=repo1; create Tag name=gold")
	e.failCode(`edit Vm name=web name="web "`, "XM_0400E", "it ends with a space", accepted)
	e.failCode(`edit Tag name=gold name="gold "`, "XM_0400E", "it ends with a space", accepted)
	e.failCode(`edit Repository name=repo1 name="repo1  b"`, "XM_0400E", "two spaces in a row")
	e.failCode("edit ServerPool name=pool1 name=\u0440\u0430\u0443", "XM_0400E", `it reads as "pay"`)

	// NFD in, NFC stored: one name, whichever way it is typed.
	nfc, nfd := "caf\u00e9", "cafe\u0301"
	e.mustRun("create Vm name=" + nfd + " repository=repo1")
	out := e.mustRun("show Vm name=" + nfc)
	if prop(out, "Name") != nfc {
		t.Fatalf("the VM created as %q shows Name = %q, want %q\n%s", nfd, prop(out, "Name"), nfc, out)
	}
	if id := prop(e.mustRun("show Vm name="+nfd), "Id"); id != prop(out, "Id") {
		t.Fatalf("show Vm name=<NFD> found %s, want %s", id, prop(out, "Id"))
	}
	e.mustRun("create Vm name=" + nfc + " repository=repo1")
	e.failCode("show Vm name="+nfd, "XM_0300E", "matches 2 Vm objects")
	for _, filter := range []string{nfd, "cafe\u0301*", "caf?"} {
		if out := e.mustRun("list Vm name=" + filter); strings.Count(out, "name:"+nfc) != 2 {
			t.Errorf("list Vm name=%q does not list both:\n%s", filter, out)
		}
	}
}
