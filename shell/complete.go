package shell

import (
	"strings"

	"golang.org/x/term"

	"xenmanager/commands"
)

// tabCompleter is the Tab key of the plain line editor: the first Tab
// completes the common prefix of the suggestions, a second Tab with nothing
// more to add lists them.
type tabCompleter struct {
	reg     *commands.Registry
	names   commands.ObjectNames
	term    *term.Terminal
	lastTab string // the line at the previous Tab that added nothing
}

func (c *tabCompleter) callback(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' {
		c.lastTab = ""
		return "", 0, false
	}
	start, sugs := c.reg.Complete(line[:pos], c.names)
	if len(sugs) == 0 {
		return "", 0, false
	}
	word := line[start:pos]
	common := sugs[0].Text
	for _, s := range sugs[1:] {
		common = commonPrefixFold(common, s.Text)
	}
	if len(common) > len(word) {
		c.lastTab = ""
		newLine := line[:start] + common + line[pos:]
		return newLine, start + len(common), true
	}
	if c.lastTab == line {
		var b strings.Builder
		for _, s := range sugs {
			b.WriteString("  " + strings.TrimSpace(s.Text) + "\t" + s.Description + "\n")
		}
		c.term.Write([]byte(b.String()))
		c.lastTab = ""
		return "", 0, false
	}
	c.lastTab = line
	return "", 0, false
}

// commonPrefixFold is the longest common prefix of a and b, ignoring case;
// it keeps a's spelling.
func commonPrefixFold(a, b string) string {
	n := min(len(a), len(b))
	i := 0
	for i < n && strings.EqualFold(a[i:i+1], b[i:i+1]) {
		i++
	}
	return a[:i]
}
