package backend

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"xenmanager/backend/agentapi"
	"xenmanager/store"
)

// MaxDirectBootBytes bounds each setting of a direct kernel boot (the
// kernel's and the ramdisk's paths, the kernel command line): far above a
// real one, and small enough that vm.cfg stays readable.
const MaxDirectBootBytes = 1024

// repoFileRule says what a kernel or ramdisk path may be, for the errors
// that refuse one and for help.
const repoFileRule = "a path relative to the root of the VM's repository, such as Kernels/vmlinuz-6.1: " +
	"names separated by /, none empty, . or .., without control characters, at most 1024 bytes"

// DirectBoot is a VM's direct kernel boot (Xen PV, as xl's kernel,
// ramdisk and extra): the kernel and initial ramdisk, files of the VM's
// repository given relative to its root, and the kernel command line. An
// empty field is no value.
type DirectBoot struct {
	Kernel, Ramdisk, Extra string
}

// check refuses a kernel or ramdisk that is not a path inside the
// repository, and a command line that is not printable text of bounded
// length, saying what is accepted.
func (b DirectBoot) check() error {
	if err := checkRepoFile("kernel", b.Kernel); err != nil {
		return err
	}
	if err := checkRepoFile("ramdisk", b.Ramdisk); err != nil {
		return err
	}
	return checkKernelArgs(b.Extra)
}

// checkRepoFile refuses p, the value of attribute attr, unless it is
// empty or a relative path that stays inside the repository: written under
// the repository's mount point, an absolute path or a '..' would name
// another file of the server.
func checkRepoFile(attr, p string) error {
	if p == "" {
		return nil
	}
	refuse := func(why string) error {
		return errorf(KindInvalidArgument, "%s %s; give %s", attr, why, repoFileRule)
	}
	if len(p) > MaxDirectBootBytes {
		return refuse(fmt.Sprintf("is %d bytes long", len(p)))
	}
	if why := unprintable(p); why != "" {
		return refuse(fmt.Sprintf("%q %s", p, why))
	}
	if strings.HasPrefix(p, "/") {
		return refuse(fmt.Sprintf("%q is an absolute path", p))
	}
	for _, name := range strings.Split(p, "/") {
		switch name {
		case "":
			return refuse(fmt.Sprintf("%q has an empty name (a // or a / at its end)", p))
		case ".", "..":
			return refuse(fmt.Sprintf("%q has a %q name", p, name))
		}
	}
	return nil
}

// checkKernelArgs refuses a kernel command line that is too long or holds
// what is not printable text: vm.cfg keeps it on one line, and a guest's
// kernel reads it as words.
func checkKernelArgs(extra string) error {
	const accepted = "the kernel command line is printable text (spaces, no tabs or other control characters) of at most 1024 bytes"
	if len(extra) > MaxDirectBootBytes {
		return errorf(KindInvalidArgument, "extra is %d bytes long; %s", len(extra), accepted)
	}
	if why := unprintable(extra); why != "" {
		return errorf(KindInvalidArgument, "extra %q %s; %s", extra, why, accepted)
	}
	return nil
}

// unprintable says why s is not printable text ("" when it is): text that
// is not UTF-8, or that holds a control character.
func unprintable(s string) string {
	if !utf8.ValidString(s) {
		return "is not UTF-8"
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("holds a control character (%U) at byte %d", r, i)
		}
	}
	return ""
}

// directBootParam is the vm.cfg value of a kernel or ramdisk setting: the
// file's path under the mount point of repository r, as the pool's servers
// see it and as disk paths are written (diskPath); "" for none, which
// configure_vm takes for a removal.
func directBootParam(r store.Repository, rel string) string {
	if rel == "" {
		return ""
	}
	return r.MountPoint + "/" + rel
}

// params is b as the vm.cfg keys of a new VM in repository r: only the
// settings that have a value.
func (b DirectBoot) params(r store.Repository) agentapi.VMParams {
	out := agentapi.VMParams{}
	for key, v := range map[string]string{
		agentapi.KeyKernel:  directBootParam(r, b.Kernel),
		agentapi.KeyRamdisk: directBootParam(r, b.Ramdisk),
		agentapi.KeyExtra:   b.Extra,
	} {
		if v != "" {
			out[key] = v
		}
	}
	return out
}
