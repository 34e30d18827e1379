// Package vmcfg reads and writes a VM's vm.cfg in Xen's Python-like syntax
// (`memory = 1024`, `name = 'web1'`, `disk = ['file:/OVS/...,xvda,w']`), the
// file an agent keeps beside each VM in a repository, so that any server of
// the pool can start the VM from it.
package vmcfg

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"xenmanager/backend/agentapi"
)

// KnownKeys is the order Write puts the protocol's keys in, so that files
// are stable and read like Oracle VM's; other keys follow, sorted.
var KnownKeys = []string{
	agentapi.KeyName,
	agentapi.KeyUUID,
	agentapi.KeySimpleName,
	agentapi.KeyDescription,
	agentapi.KeyDomainType,
	agentapi.KeyOSType,
	agentapi.KeyHA,
	agentapi.KeyMemory,
	agentapi.KeyMaxMem,
	agentapi.KeyVCPUs,
	agentapi.KeyMaxVCPUs,
	agentapi.KeyCPUs,
	agentapi.KeyDisk,
	agentapi.KeyVif,
	agentapi.KeyVfb,
	agentapi.KeyBoot,
	agentapi.KeyKernel,
	agentapi.KeyRamdisk,
	agentapi.KeyExtra,
	agentapi.KeyOnPoweroff,
	agentapi.KeyOnReboot,
	agentapi.KeyOnCrash,
}

// Write writes params as vm.cfg lines, one `key = value` per key. Values may
// be strings, integers, bools (True/False) or lists of strings ([]string, or
// []any holding strings as decoded from XML-RPC); nil values are left out.
// Nothing is written when a key or value cannot be represented.
func Write(w io.Writer, params agentapi.VMParams) error {
	var b bytes.Buffer
	for _, key := range orderedKeys(params) {
		v := params[key]
		if v == nil {
			continue
		}
		if !validKey(key) {
			return fmt.Errorf("vm.cfg key %q is not a valid name (letters, digits and _, not starting with a digit)", key)
		}
		b.WriteString(key)
		b.WriteString(" = ")
		if err := appendValue(&b, v); err != nil {
			return fmt.Errorf("vm.cfg key %q: %w", key, err)
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

func orderedKeys(params agentapi.VMParams) []string {
	keys := make([]string, 0, len(params))
	for _, k := range KnownKeys {
		if _, ok := params[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range params {
		if !slices.Contains(KnownKeys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

func validKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func appendValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case string:
		appendString(b, x)
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int8, int16, int32, int64:
		fmt.Fprint(b, x)
	case uint, uint8, uint16, uint32:
		fmt.Fprint(b, x)
	case uint64:
		if x > math.MaxInt64 {
			return fmt.Errorf("%d is out of range", x)
		}
		fmt.Fprint(b, x)
	case []string:
		appendList(b, x)
	case []any:
		items := make([]string, len(x))
		for i, item := range x {
			s, ok := item.(string)
			if !ok {
				return fmt.Errorf("list item %d is a %T, want a string", i, item)
			}
			items[i] = s
		}
		appendList(b, items)
	default:
		return fmt.Errorf("cannot write a %T (want a string, an integer, a bool or a list of strings)", v)
	}
	return nil
}

func appendList(b *bytes.Buffer, items []string) {
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		appendString(b, s)
	}
	b.WriteByte(']')
}

// appendString writes s single-quoted with Python escapes. Bytes from 0x80
// up pass through, so UTF-8 text stays readable; control bytes are escaped.
func appendString(b *bytes.Buffer, s string) {
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\'')
}
