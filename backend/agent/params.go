package agent

import (
	"fmt"

	"xenmanager/backend/agentapi"
)

// handler runs one method; the call's parameters have been checked against
// the method's signature, so it can use the typed accessors of call without
// checks.
type handler func(*call) (any, error)

// method is one entry of the method table: its parameters, declared once
// in agentapi.Signatures, and its handler.
type method struct {
	sig agentapi.Signature
	fn  handler
}

// withSignatures gives each handler its method's signature. A handler for a
// method the contract does not declare is a programming error, caught by
// the first test that starts an agent.
func withSignatures(handlers map[string]handler) map[string]method {
	m := make(map[string]method, len(handlers))
	for name, fn := range handlers {
		sig, ok := agentapi.Signatures[name]
		if !ok {
			panic("agent: method " + name + " has no signature in agentapi.Signatures")
		}
		m[name] = method{sig, fn}
	}
	return m
}

// check verifies the count and types of c's parameters; faults name the
// method and the parameter.
func (m method) check(c *call) error {
	bad, err := m.sig.Check(c.params)
	switch {
	case err == nil:
		return nil
	case bad < 0:
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s %v", c.method, err)
	default:
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: %v, got %s", c.method, err, describe(c.params[bad]))
	}
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
