package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// withoutVCS is the commit line of a binary the toolchain recorded no
// commit in, and the usual reasons.
const withoutVCS = "unknown: built without VCS information (go run, a source tarball, a linked git worktree, or -buildvcs=false)"

// PrintVersion writes the running binary's VersionText to w: what
// --version prints.
func PrintVersion(w io.Writer, program string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	io.WriteString(w, VersionText(program, bi))
}

// VersionText says which build of program bi describes, so that a report
// can name the code that ran: the main module's version (a tag, a
// pseudo-version v0.0.0-<commit time>-<commit>, with +dirty for
// uncommitted changes, or "(devel)" without VCS information), the commit
// (vcs.revision, and vcs.modified as "with uncommitted changes"), the
// commit's date (vcs.time: Go records no build time, which keeps builds
// reproducible) and the toolchain. A nil bi (a binary built outside module
// mode) says so.
func VersionText(program string, bi *debug.BuildInfo) string {
	if bi == nil {
		return program + " (no build information in the binary)\n"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", program, version)
	if rev := buildSetting(bi, "vcs.revision"); rev != "" {
		if buildSetting(bi, "vcs.modified") == "true" {
			rev += ", with uncommitted changes"
		}
		fmt.Fprintf(&b, "  commit       %s\n", rev)
		if t := buildSetting(bi, "vcs.time"); t != "" {
			fmt.Fprintf(&b, "  commit date  %s\n", t)
		}
	} else {
		fmt.Fprintf(&b, "  commit       %s\n", withoutVCS)
	}
	fmt.Fprintf(&b, "  go           %s %s/%s\n", bi.GoVersion,
		settingOr(bi, "GOOS", runtime.GOOS), settingOr(bi, "GOARCH", runtime.GOARCH))
	return b.String()
}

// buildSetting returns the value of one of bi's settings, "" when absent.
func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// settingOr returns the value of one of bi's settings, or def when absent.
func settingOr(bi *debug.BuildInfo, key, def string) string {
	if v := buildSetting(bi, key); v != "" {
		return v
	}
	return def
}
