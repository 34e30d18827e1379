package agent

import (
	"fmt"
	"strings"

	"xenmanager/backend/agentapi"
)

// kind is the type a method expects of one parameter.
type kind int

const (
	kString  kind = iota // <string>
	kInt                 // <int>/<i8>, or a decimal string
	kBool                // <boolean>
	kStruct              // <struct>
	kStrings             // <array> of strings
)

func (k kind) String() string {
	return [...]string{"str", "int", "bool", "struct", "array of str"}[k]
}

// param is one declared parameter of a method.
type param struct {
	name string
	kind kind
}

// method is one entry of the method table: its parameters, checked before fn
// runs so that fn can use the typed accessors of call without checks.
type method struct {
	params []param
	fn     func(*call) (any, error)
}

// check verifies the count and types of c's parameters; faults name the
// method and the parameter.
func (m method) check(c *call) error {
	if len(c.params) != len(m.params) {
		decl := make([]string, len(m.params))
		for i, p := range m.params {
			decl[i] = p.name + " " + p.kind.String()
		}
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s takes %d parameters (%s), got %d",
			c.method, len(m.params), strings.Join(decl, ", "), len(c.params))
	}
	for i, p := range m.params {
		v := c.params[i]
		ok := false
		switch p.kind {
		case kString:
			_, ok = v.(string)
		case kInt:
			_, err := agentapi.ToInt(v)
			ok = err == nil
		case kBool:
			_, ok = v.(bool)
		case kStruct:
			_, ok = v.(map[string]any)
		case kStrings:
			var items []any
			items, ok = v.([]any)
			for j := 0; ok && j < len(items); j++ {
				_, ok = items[j].(string)
			}
		}
		if !ok {
			return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: parameter %d (%s) must be a %s, got %s",
				c.method, i+1, p.name, p.kind, describe(v))
		}
	}
	return nil
}

// describe names the XML-RPC type of a decoded value for fault messages.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("str %q", truncate(x))
	case int64:
		return fmt.Sprintf("int %d", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case float64:
		return fmt.Sprintf("double %v", x)
	case map[string]any:
		return "struct"
	case []any:
		return "array"
	case []byte:
		return "base64"
	}
	return fmt.Sprintf("%T", v)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Typed accessors; check has already verified the types.

func (c *call) str(i int) string { return c.params[i].(string) }

func (c *call) int(i int) int64 {
	n, _ := agentapi.ToInt(c.params[i])
	return n
}

func (c *call) bool(i int) bool { return c.params[i].(bool) }

func (c *call) strct(i int) map[string]any { return c.params[i].(map[string]any) }

func (c *call) strs(i int) []string {
	items := c.params[i].([]any)
	out := make([]string, len(items))
	for j, v := range items {
		out[j] = v.(string)
	}
	return out
}
