package commands

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"unicode/utf8"
)

// xmlDecl opens every Xml document.
const xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>`

// xmlLines prints r as one XML document on one line, declaration included
// (docs/output-formats.md):
//
//	<?xml ...?><result><command/><status/><time/><data/><error><code/><message/></error></result>
//
// Rows are <object id="" name=""><col name="">value</col>...</object>, Props
// <attribute name="">value</attribute>, Text <text><line>...</line></text>.
// Names are those of the Json mode. Text goes through xml.EscapeText, which
// also escapes newlines (so the document stays on one line) and replaces
// invalid UTF-8 and characters XML forbids with U+FFFD.
func xmlLines(r *Report) []string {
	var b bytes.Buffer
	xmlHead(&b, r)
	if res := r.Result; res != nil {
		switch dataKind(res) {
		case dataText:
			b.WriteString("<data><text>")
			for _, l := range res.Text {
				xmlElem(&b, "line", l)
			}
			b.WriteString("</text></data>")
		case dataRows:
			b.WriteString("<data>")
			var keys colKeyCache
			xmlRows(&b, res.Rows, &keys)
			b.WriteString("</data>")
		case dataProps:
			b.WriteString("<data>")
			for i, k := range propKeys(res.Props) {
				xmlNamed(&b, "attribute", k, res.Props[i].Value)
			}
			b.WriteString("</data>")
		}
	}
	if r.Failed() {
		b.WriteString("<error>")
		xmlElem(&b, "code", string(r.Code))
		xmlElem(&b, "message", r.Msg)
		b.WriteString("</error>")
	}
	b.WriteString("</result>")
	return []string{b.String()}
}

// xmlHead writes the start of an Xml document: the declaration, <result>,
// command, status and time.
func xmlHead(b *bytes.Buffer, r *Report) {
	b.WriteString(xmlDecl)
	b.WriteString("<result>")
	xmlElem(b, "command", r.Command)
	xmlElem(b, "status", r.status())
	xmlElem(b, "time", r.Time.UTC().Format(machineTime))
}

// xmlRows writes rows as <object> elements of <data>.
func xmlRows(b *bytes.Buffer, rows []Row, keys *colKeyCache) {
	for _, row := range rows {
		b.WriteString(`<object id="`)
		xmlEscape(b, row.ID)
		b.WriteString(`" name="`)
		xmlEscape(b, row.Name)
		b.WriteString(`">`)
		for j, k := range keys.keys(row) {
			xmlNamed(b, "col", k, row.Cols[j].Value)
		}
		b.WriteString("</object>")
	}
}

// xmlEscape writes s as character data or an attribute value (it escapes
// quotes too). DEL and the C1 controls, which XML allows but a terminal
// could act on, become character references.
func xmlEscape(b *bytes.Buffer, s string) {
	var e bytes.Buffer
	_ = xml.EscapeText(&e, []byte(s)) // a bytes.Buffer does not fail
	out := e.Bytes()
	for len(out) > 0 {
		r, n := utf8.DecodeRune(out)
		if r == 0x7f || r >= 0x80 && r <= 0x9f {
			fmt.Fprintf(b, "&#x%X;", r)
		} else {
			b.Write(out[:n])
		}
		out = out[n:]
	}
}

// xmlElem writes <tag>s</tag>.
func xmlElem(b *bytes.Buffer, tag, s string) {
	b.WriteString("<" + tag + ">")
	xmlEscape(b, s)
	b.WriteString("</" + tag + ">")
}

// xmlNamed writes <tag name="name">s</tag>.
func xmlNamed(b *bytes.Buffer, tag, name, s string) {
	b.WriteString("<" + tag + ` name="`)
	xmlEscape(b, name)
	b.WriteString(`">`)
	xmlEscape(b, s)
	b.WriteString("</" + tag + ">")
}
