package commands

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// machineTime is the time of the Json and Xml modes: RFC 3339 in UTC with
// milliseconds, "2026-11-21T10:20:23.345Z".
const machineTime = "2006-01-02T15:04:05.000Z"

// jsonLines prints r as one JSON object on one line (docs/output-formats.md):
//
//	{"command":..., "status":..., "time":..., "data":..., "error":{"code":..., "message":...}}
//
// The object is written field by field so that key order is fixed.
func jsonLines(r *Report) []string {
	var b bytes.Buffer
	jsonHead(&b, r)
	if res := r.Result; res != nil {
		switch dataKind(res) {
		case dataText:
			b.WriteString(`,"data":{"text":[`)
			for i, l := range res.Text {
				if i > 0 {
					b.WriteByte(',')
				}
				jsonString(&b, l)
			}
			b.WriteString(`]}`)
		case dataRows:
			b.WriteString(`,"data":[`)
			var keys colKeyCache
			jsonRows(&b, res.Rows, &keys, true)
			b.WriteByte(']')
		case dataProps:
			b.WriteString(`,"data":{`)
			for i, k := range propKeys(res.Props) {
				if i > 0 {
					b.WriteByte(',')
				}
				jsonString(&b, k)
				b.WriteByte(':')
				jsonString(&b, res.Props[i].Value)
			}
			b.WriteByte('}')
		}
	}
	if r.Failed() {
		b.WriteString(`,"error":{"code":`)
		jsonString(&b, string(r.Code))
		b.WriteString(`,"message":`)
		jsonString(&b, r.Msg)
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return []string{b.String()}
}

// jsonHead writes the start of a Json version 1 object: command, status
// and time.
func jsonHead(b *bytes.Buffer, r *Report) {
	b.WriteString(`{"command":`)
	jsonString(b, r.Command)
	b.WriteString(`,"status":`)
	jsonString(b, r.status())
	b.WriteString(`,"time":`)
	jsonString(b, r.Time.UTC().Format(machineTime))
}

// jsonRows writes rows as the elements of Json version 1's data array,
// separated by commas; first says whether rows[0] is the array's first
// element (a streamed listing writes its rows in batches).
func jsonRows(b *bytes.Buffer, rows []Row, keys *colKeyCache, first bool) {
	for i, row := range rows {
		if i > 0 || !first {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		jsonString(b, row.ID)
		b.WriteString(`,"name":`)
		jsonString(b, row.Name)
		for j, k := range keys.keys(row) {
			b.WriteByte(',')
			jsonString(b, k)
			b.WriteByte(':')
			jsonString(b, row.Cols[j].Value)
		}
		b.WriteByte('}')
	}
}

// jsonString writes s as a JSON string: invalid UTF-8 becomes U+FFFD;
// control characters (C0, DEL and C1, which a terminal could act on),
// U+2028 and U+2029 are escaped, so the object stays on one line and is
// safe to print; <, > and & are left as they are. It appends directly
// (a list of 100,000 VMs writes half a million strings).
func jsonString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		var r rune
		n := 1
		if c >= 0x80 {
			r, n = utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError && !(r >= 0x80 && r <= 0x9f) && r != 0x2028 && r != 0x2029 {
				i += n
				continue
			}
		} else {
			r = rune(c)
		}
		b.WriteString(s[start:i])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && n == 1:
			b.WriteString("\ufffd")
		case r == utf8.RuneError:
			b.WriteString(s[i : i+n]) // a real U+FFFD
		default:
			b.WriteString(`\u`)
			b.WriteByte(hex[r>>12&0xf])
			b.WriteByte(hex[r>>8&0xf])
			b.WriteByte(hex[r>>4&0xf])
			b.WriteByte(hex[r&0xf])
		}
		i += n
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// The kinds of data a Result holds, as Json and Xml carry them.
type dataKindT int

const (
	dataNone dataKindT = iota
	dataText
	dataRows
	dataProps
)

// dataKind says which data Json and Xml carry: the first non-empty of Text,
// Rows, Props; else the first non-nil (an empty list is still a list).
func dataKind(res *Result) dataKindT {
	switch {
	case len(res.Text) > 0:
		return dataText
	case len(res.Rows) > 0:
		return dataRows
	case len(res.Props) > 0 || len(res.Fields) > 0:
		return dataProps
	case res.Text != nil:
		return dataText
	case res.Rows != nil:
		return dataRows
	case res.Props != nil || res.Fields != nil:
		return dataProps
	}
	return dataNone
}

// colKeyCache remembers the keys of the last row's columns: the rows of a
// listing have the same columns, and working their keys out again for each
// of 100,000 rows is a tenth of the listing's time.
type colKeyCache struct {
	cols []string // the Col keys the cached keys are for
	out  []string
}

// keys returns colKeys(row), reusing the last answer when row has the
// same Col keys as the last row asked about.
func (c *colKeyCache) keys(row Row) []string {
	if c.out != nil && len(c.cols) == len(row.Cols) {
		same := true
		for i, col := range row.Cols {
			if c.cols[i] != col.Key {
				same = false
				break
			}
		}
		if same {
			return c.out
		}
	}
	c.cols = c.cols[:0]
	for _, col := range row.Cols {
		c.cols = append(c.cols, col.Key)
	}
	c.out = colKeys(row)
	return c.out
}

// colKeys returns the Json key (and Xml col name) of each of row's Cols: the
// key in lowerCamel case ("memoryMiB", "Memory (MB)" -> "memoryMb"), made
// unique within the row by a numeric suffix ("name" is taken by the row's
// name, so a Col "name" becomes "name2").
func colKeys(row Row) []string {
	seen := map[string]bool{"id": true, "name": true}
	out := make([]string, len(row.Cols))
	for i, c := range row.Cols {
		out[i] = uniqueKey(lowerCamel(c.Key), seen, plainSuffix)
	}
	return out
}

// propKeys returns the Json key (and Xml attribute name) of each Prop: the
// key as Verbose prints it, made unique by a " (2)" suffix should a key
// repeat.
func propKeys(props []Prop) []string {
	seen := map[string]bool{}
	out := make([]string, len(props))
	for i, p := range props {
		out[i] = uniqueKey(p.Key, seen, parenSuffix)
	}
	return out
}

// uniqueKey returns k, or k with the first suffix(2), suffix(3), ... that
// makes it new to seen, and records the result in seen.
func uniqueKey(k string, seen map[string]bool, suffix func(n int) string) string {
	u := k
	for n := 2; seen[u]; n++ {
		u = k + suffix(n)
	}
	seen[u] = true
	return u
}

func plainSuffix(n int) string { return strconv.Itoa(n) }
func parenSuffix(n int) string { return " (" + strconv.Itoa(n) + ")" }

// lowerCamel turns a column key into a lowerCamel identifier: words are runs
// of letters and digits; the first word is lower-cased up to its first
// lower-case letter ("CPUCount" -> "cpuCount", "Id" -> "id"), each later
// word gets an upper-case first letter, and an all-capitals word other than
// the first is treated as a word ("Memory (MB)" -> "memoryMb").
// Keys already in lowerCamel case ("serverPool", "memoryMiB") are unchanged.
// A key without letters or digits is "col".
func lowerCamel(key string) string {
	words := strings.FieldsFunc(key, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) == 0 {
		return "col"
	}
	var b strings.Builder
	for i, w := range words {
		rs := []rune(w)
		allUpper := true
		for _, r := range rs {
			if unicode.IsLower(r) {
				allUpper = false
				break
			}
		}
		if i == 0 {
			// Lower-case the leading capitals, but leave the last one of a
			// run followed by a lower-case letter ("CPUCount" -> "cpuCount").
			j := 0
			for j < len(rs) && !unicode.IsLower(rs[j]) {
				j++
			}
			if j < len(rs) && j > 1 {
				j--
			}
			for k := 0; k < j; k++ {
				rs[k] = unicode.ToLower(rs[k])
			}
		} else {
			if allUpper {
				for k := 1; k < len(rs); k++ {
					rs[k] = unicode.ToLower(rs[k])
				}
			}
			rs[0] = unicode.ToUpper(rs[0])
		}
		b.WriteString(string(rs))
	}
	return b.String()
}
