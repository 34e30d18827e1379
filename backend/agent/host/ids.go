package host

import (
	"path/filepath"
	"strings"

	"xenmanager/backend/agentapi"
)

// checkID rejects ids that could escape a directory or confuse a path: an id
// is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or a
// digit.
func checkID(kind, id string) error {
	ok := id != "" && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"%s %q is not valid: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", kind, id)
	}
	return nil
}

// checkAbsPath rejects relative paths, paths with a ".." element and the
// root, and returns the cleaned path.
func checkAbsPath(kind, p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument, "%s %q %s", kind, p, why)
	}
	switch {
	case p == "":
		return bad("is empty")
	case !filepath.IsAbs(p):
		return bad("is not an absolute path")
	case strings.ContainsRune(p, 0):
		return bad("contains a NUL byte")
	}
	for _, elem := range strings.Split(filepath.ToSlash(p), "/") {
		if elem == ".." {
			return bad("contains '..'")
		}
	}
	clean := filepath.Clean(p)
	if clean == string(filepath.Separator) {
		return bad("is the root directory")
	}
	return clean, nil
}

// checkAlias rejects aliases that would break the line format of .ovsrepo.
func checkAlias(alias string) error {
	if strings.ContainsAny(alias, "\n\r\x00") || len(alias) > 256 {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"repository alias %q is not valid: use at most 256 characters and no line breaks", alias)
	}
	return nil
}
