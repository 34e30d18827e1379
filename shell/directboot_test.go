package shell

import (
	"path/filepath"
	"strings"
	"testing"
)

// Direct kernel boot through the language: create Vm takes kernel,
// ramdisk and extra, show Vm and getVmCfgFileContent show them, a path out
// of the repository is refused saying what is accepted, and an empty
// value removes one.
func TestDirectBootCommands(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun(`create Vm name=pv1 repository=repo1 domainType=XEN_PVM kernel=Kernels/vmlinuz-6.1 ramdisk=Kernels/initrd-6.1.img extra="root=/dev/xvda1 console=hvc0"`)
	out := e.mustRun("show Vm name=pv1")
	for key, want := range map[string]string{"Kernel": "Kernels/vmlinuz-6.1", "Ramdisk": "Kernels/initrd-6.1.img", "Extra": "root=/dev/xvda1 console=hvc0"} {
		if got := prop(out, key); got != want {
			t.Errorf("show Vm: %s = %q, want %q\n%s", key, got, want, out)
		}
	}
	mount := prop(e.mustRun("show Repository name=repo1"), "Mount Point")
	cfg := e.mustRun("getVmCfgFileContent Vm name=pv1")
	if mount == "" || !strings.Contains(cfg, "kernel = '"+mount+"/Kernels/vmlinuz-6.1'") || !strings.Contains(cfg, "extra = 'root=/dev/xvda1 console=hvc0'") {
		t.Errorf("vm.cfg (repository mounted at %q) lacks the kernel or extra:\n%s", mount, cfg)
	}
	e.failCode("edit Vm name=pv1 kernel=../../etc/passwd", "XM_0400E", `has a ".." name`, "relative to the root of the VM's repository")
	e.failCode("create Vm name=pv2 repository=repo1 ramdisk=/boot/initrd.img", "XM_0400E", "is an absolute path")
	e.mustRun(`edit Vm name=pv1 ramdisk="" extra=""`)
	out = e.mustRun("show Vm name=pv1")
	if prop(out, "Kernel") != "Kernels/vmlinuz-6.1" || prop(out, "Ramdisk") != "" || prop(out, "Extra") != "" {
		t.Errorf("after removing ramdisk and extra:\n%s", out)
	}
	if cfg := e.mustRun("getVmCfgFileContent Vm name=pv1"); strings.Contains(cfg, "ramdisk") || strings.Contains(cfg, "extra") {
		t.Errorf("vm.cfg keeps a removed key:\n%s", cfg)
	}
}
