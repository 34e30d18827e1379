package agentapi

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// ToInt converts a decoded XML-RPC value to an integer. The protocol lets
// integers that may exceed 2^31 travel as <i8> or as decimal strings, so both
// (and every Go integer kind a decoder may produce) are accepted.
func ToInt(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case uint64:
		if n > math.MaxInt64 {
			return 0, fmt.Errorf("integer %d out of range", n)
		}
		return int64(n), nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", n)
		}
		return i, nil
	case nil:
		return 0, fmt.Errorf("missing integer")
	default:
		return 0, fmt.Errorf("%T is not an integer", v)
	}
}

// Decode copies a generic decoded XML-RPC value (map[string]any, []any,
// int64, float64, bool, string) into dst, a pointer to a struct tagged with
// `xmlrpc:"name"`, a slice, a map or a scalar. Members dst does not name are
// ignored and absent members leave their fields zero, so that agents may add
// fields; a member of the wrong type is an error naming its path.
func Decode(src any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode: destination must be a non-nil pointer, not %T", dst)
	}
	return decodeInto(src, rv.Elem(), "result")
}

func decodeInto(src any, dst reflect.Value, path string) error {
	if dst.Kind() == reflect.Interface {
		if src != nil {
			dst.Set(reflect.ValueOf(src))
		}
		return nil
	}
	if src == nil {
		return nil
	}
	switch dst.Kind() {
	case reflect.String:
		switch s := src.(type) {
		case string:
			dst.SetString(s)
		case int64, int:
			dst.SetString(fmt.Sprint(s))
		default:
			return fmt.Errorf("%s: want a string, got %T", path, src)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := ToInt(src)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		dst.SetInt(n)
	case reflect.Float32, reflect.Float64:
		switch f := src.(type) {
		case float64:
			dst.SetFloat(f)
		default:
			n, err := ToInt(src)
			if err != nil {
				return fmt.Errorf("%s: want a double, got %T", path, src)
			}
			dst.SetFloat(float64(n))
		}
	case reflect.Bool:
		switch b := src.(type) {
		case bool:
			dst.SetBool(b)
		default:
			n, err := ToInt(src)
			if err != nil {
				return fmt.Errorf("%s: want a boolean, got %T", path, src)
			}
			dst.SetBool(n != 0)
		}
	case reflect.Slice:
		items, ok := src.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", path, src)
		}
		out := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, item := range items {
			if err := decodeInto(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dst.Set(out)
	case reflect.Map:
		members, ok := src.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a struct, got %T", path, src)
		}
		if dst.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%s: map keys must be strings", path)
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(members))
		for k, v := range members {
			elem := reflect.New(dst.Type().Elem()).Elem()
			if err := decodeInto(v, elem, path+"."+k); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), elem)
		}
		dst.Set(out)
	case reflect.Struct:
		members, ok := src.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a struct, got %T", path, src)
		}
		t := dst.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("xmlrpc"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			v, present := members[name]
			if !present {
				continue
			}
			if err := decodeInto(v, dst.Field(i), path+"."+name); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		elem := reflect.New(dst.Type().Elem())
		if err := decodeInto(src, elem.Elem(), path); err != nil {
			return err
		}
		dst.Set(elem)
	default:
		return fmt.Errorf("%s: cannot decode into %s", path, dst.Type())
	}
	return nil
}
