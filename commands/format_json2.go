package commands

import (
	"bytes"
	"strconv"
	"time"

	"xenmanager/backend"
)

// JSONVersions are the forms of the Json mode "set jsonVersion=" chooses:
// 1, every value a string under its Verbose label (the default, so that
// scripts written for it keep working), and 2, the machine form.
var JSONVersions = []string{"1", "2"}

// jsonV2Lines prints r as one JSON object on one line in the machine form
// (Json version 2, docs/output-formats.md):
//
//	{"jsonVersion":2, "command":..., "status":..., "time":..., "data":..., "error":{"code":..., "message":..., "exitStatus":...}}
//
// Data is that of version 1 (rows, attributes or text) with the fields'
// machine keys and typed values. The report has been through
// prepareReport: attributes and columns are Fields.
func jsonV2Lines(r *Report) []string {
	var b bytes.Buffer
	jsonV2Head(&b, r)
	if res := r.Result; res != nil {
		switch dataKind(res) {
		case dataText:
			b.WriteString(`,"data":{"text":`)
			jsonStrings(&b, res.Text)
			b.WriteByte('}')
		case dataRows:
			b.WriteString(`,"data":[`)
			jsonV2Rows(&b, res.Rows, true)
			b.WriteByte(']')
		case dataProps:
			b.WriteString(`,"data":{`)
			for i := range res.Fields {
				if i > 0 {
					b.WriteByte(',')
				}
				jsonField(&b, &res.Fields[i])
			}
			b.WriteByte('}')
		}
	}
	if r.Failed() {
		b.WriteString(`,"error":`)
		jsonError(&b, r.Code, r.Msg)
	}
	b.WriteByte('}')
	return []string{b.String()}
}

// jsonV2Head writes the start of a Json version 2 object: the version,
// command, status and time.
func jsonV2Head(b *bytes.Buffer, r *Report) {
	b.WriteString(`{"jsonVersion":2,"command":`)
	jsonString(b, r.Command)
	b.WriteString(`,"status":`)
	jsonString(b, r.status())
	b.WriteString(`,"time":`)
	jsonString(b, r.Time.UTC().Format(machineTime))
}

// jsonV2Rows writes rows (in the machine form) as elements of version 2's
// data array; first says whether rows[0] is the array's first element.
func jsonV2Rows(b *bytes.Buffer, rows []Row, first bool) {
	for i := range rows {
		if i > 0 || !first {
			b.WriteByte(',')
		}
		row := &rows[i]
		b.WriteString(`{"id":`)
		jsonString(b, row.ID)
		b.WriteString(`,"name":`)
		jsonString(b, row.Name)
		for j := range row.Fields {
			b.WriteByte(',')
			jsonField(b, &row.Fields[j])
		}
		b.WriteByte('}')
	}
}

// jsonField writes "key":value.
func jsonField(b *bytes.Buffer, f *Field) {
	jsonString(b, f.Attr)
	b.WriteByte(':')
	switch f.Kind {
	case KindInt, KindFloat:
		switch {
		case f.Value == "":
			b.WriteString("null")
		case isJSONNumber(f.Value):
			b.WriteString(f.Value)
		default:
			jsonString(b, f.Value) // not reached: the constructors print numbers
		}
	case KindBool:
		switch f.Value {
		case "Yes":
			b.WriteString("true")
		case "No":
			b.WriteString("false")
		default:
			b.WriteString("null")
		}
	case KindTime:
		if t, _ := f.Raw.(time.Time); !t.IsZero() {
			jsonString(b, t.UTC().Format(machineTime))
		} else {
			b.WriteString("null")
		}
	case KindRef:
		if r, _ := f.Raw.(backend.NamedRef); r.ID != "" {
			jsonRef(b, r)
		} else {
			b.WriteString("null")
		}
	case KindRefs:
		refs, _ := f.Raw.([]backend.NamedRef)
		b.WriteByte('[')
		for i, r := range refs {
			if i > 0 {
				b.WriteByte(',')
			}
			jsonRef(b, r)
		}
		b.WriteByte(']')
	case KindStrings:
		ss, _ := f.Raw.([]string)
		jsonStrings(b, ss)
	case KindError:
		e, _ := f.Raw.(errorValue)
		jsonError(b, e.Code, e.Msg)
	default:
		jsonString(b, f.Value)
	}
}

func jsonRef(b *bytes.Buffer, r backend.NamedRef) {
	b.WriteString(`{"id":`)
	jsonString(b, r.ID)
	b.WriteString(`,"name":`)
	jsonString(b, r.Name)
	b.WriteByte('}')
}

// jsonStrings writes ss as an array; nil is [].
func jsonStrings(b *bytes.Buffer, ss []string) {
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		jsonString(b, s)
	}
	b.WriteByte(']')
}

// jsonError writes the error object of version 2: the code, the message
// and the exit status a session that failed with the code ends with.
func jsonError(b *bytes.Buffer, code Code, msg string) {
	b.WriteString(`{"code":`)
	jsonString(b, string(code))
	b.WriteString(`,"message":`)
	jsonString(b, msg)
	b.WriteString(`,"exitStatus":`)
	b.WriteString(strconv.Itoa(code.outcome().ExitStatus()))
	b.WriteByte('}')
}

// isJSONNumber reports whether s is a number in JSON's syntax: an optional
// minus, an integer part without leading zeros, an optional fraction.
// (No exponent: the constructors never print one.)
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start || s[start] == '0' && i-start > 1 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		frac := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == frac {
			return false
		}
	}
	return i == len(s)
}
