package backend

import (
	"strings"
	"testing"
)

func TestCheckRepoFile(t *testing.T) {
	for _, c := range []struct {
		name, path string
		why        string // "" when accepted
	}{
		{"empty: no file", "", ""},
		{"a file at the root", "vmlinuz", ""},
		{"a file in a directory", "Kernels/vmlinuz-6.1", ""},
		{"names with dots, blanks and non-ASCII", "Kernels/6.1 test/initrd-é.img", ""},
		{"hidden name", "Kernels/.vmlinuz", ""},
		{"the longest accepted", strings.Repeat("k", MaxDirectBootBytes), ""},
		{"absolute", "/boot/vmlinuz", "is an absolute path"},
		{"the root", "/", "is an absolute path"},
		{"dot-dot first", "../other/vmlinuz", `has a ".." name`},
		{"dot-dot inside", "Kernels/../../etc/passwd", `has a ".." name`},
		{"dot-dot last", "Kernels/..", `has a ".." name`},
		{"dot", "Kernels/./vmlinuz", `has a "." name`},
		{"empty name inside", "Kernels//vmlinuz", "has an empty name"},
		{"trailing slash", "Kernels/", "has an empty name"},
		{"newline", "Kernels/vm\nlinuz", "holds a control character (U+000A) at byte 10"},
		{"tab", "Kernels\tvmlinuz", "holds a control character (U+0009)"},
		{"NUL", "vmlinuz\x00", "holds a control character (U+0000)"},
		{"DEL", "vmlinuz\x7f", "holds a control character (U+007F)"},
		{"C1 control", "vmlinuz\u0085", "holds a control character (U+0085)"},
		{"not UTF-8", "vmlinuz\xff", "is not UTF-8"},
		{"too long", strings.Repeat("k", MaxDirectBootBytes+1), "is 1025 bytes long"},
	} {
		err := checkRepoFile("kernel", c.path)
		if c.why == "" {
			if err != nil {
				t.Errorf("%s: %q refused: %v", c.name, c.path, err)
			}
			continue
		}
		if KindOf(err) != KindInvalidArgument || !strings.Contains(err.Error(), c.why) ||
			!strings.Contains(err.Error(), "relative to the root of the VM's repository, such as Kernels/vmlinuz-6.1") {
			t.Errorf("%s: %q gives %v; want an InvalidArgument saying %q and what is accepted", c.name, c.path, err, c.why)
		}
	}
}

func TestCheckKernelArgs(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		why         string // "" when accepted
	}{
		{"empty: no command line", "", ""},
		{"words", "root=/dev/xvda1 ro console=hvc0 quiet", ""},
		{"quotes and non-ASCII", `init=/bin/sh msg="l'été"`, ""},
		{"the longest accepted", strings.Repeat("x", MaxDirectBootBytes), ""},
		{"too long", strings.Repeat("x", MaxDirectBootBytes+1), "is 1025 bytes long"},
		{"newline", "root=/dev/xvda1\nsingle", "holds a control character (U+000A)"},
		{"tab", "root=/dev/xvda1\tsingle", "holds a control character (U+0009)"},
		{"escape", "console=hvc0 \x1b[2J", "holds a control character (U+001B)"},
		{"not UTF-8", "console=\xc3", "is not UTF-8"},
	} {
		err := checkKernelArgs(c.extra)
		if c.why == "" {
			if err != nil {
				t.Errorf("%s: %q refused: %v", c.name, c.extra, err)
			}
			continue
		}
		if KindOf(err) != KindInvalidArgument || !strings.Contains(err.Error(), c.why) ||
			!strings.Contains(err.Error(), "printable text") {
			t.Errorf("%s: %q gives %v; want an InvalidArgument saying %q and what is accepted", c.name, c.extra, err, c.why)
		}
	}
}

// A direct boot is checked whole: the kernel, the ramdisk and the command
// line, each refusal naming its attribute.
func TestDirectBootCheckNamesTheAttribute(t *testing.T) {
	for _, c := range []struct {
		boot DirectBoot
		want string // "" when accepted
	}{
		{DirectBoot{}, ""},
		{DirectBoot{Kernel: "Kernels/vmlinuz", Ramdisk: "Kernels/initrd.img", Extra: "console=hvc0"}, ""},
		{DirectBoot{Kernel: "/vmlinuz"}, "kernel "},
		{DirectBoot{Kernel: "vmlinuz", Ramdisk: "../initrd"}, "ramdisk "},
		{DirectBoot{Kernel: "vmlinuz", Extra: "a\nb"}, "extra "},
	} {
		err := c.boot.check()
		if (err == nil) != (c.want == "") || err != nil && !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: check() = %v; want an error starting %q", c.boot, err, c.want)
		}
	}
}
