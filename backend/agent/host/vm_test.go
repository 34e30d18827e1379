package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

// withKeys is vmParams(512, 1) with more keys.
func withKeys(kv ...any) agentapi.VMParams {
	p := vmParams(512, 1)
	for i := 0; i < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return p
}

// The direct-boot keys must be strings, kernel and ramdisk absolute paths
// without '..'; create_vm and configure_vm refuse anything else and change
// nothing.
func TestDirectBootKeysChecked(t *testing.T) {
	h := newHost(t, testConfig{})
	addRepo(t, h, t.TempDir(), "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(512, 1)))
	for _, c := range []struct {
		name   string
		params agentapi.VMParams
		sub    string
	}{
		{"relative kernel", withKeys("kernel", "Kernels/vmlinuz"), "params.kernel \"Kernels/vmlinuz\" is not an absolute path"},
		{"kernel with ..", withKeys("kernel", "/OVS/Repositories/r1/../../etc/passwd"), "contains '..'"},
		{"kernel the root", withKeys("kernel", "/"), "root directory"},
		{"relative ramdisk", withKeys("ramdisk", "initrd.img"), "params.ramdisk"},
		{"kernel an integer", withKeys("kernel", int64(5)), "params.kernel must be a string"},
		{"extra a list", withKeys("extra", []any{"console=hvc0"}), "params.extra must be a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantFault(t, h.CreateVM("r1", "vm2", c.params), agentapi.FaultInvalidArgument, c.sub)
			wantFault(t, h.ConfigureVM("r1", "vm1", c.params), agentapi.FaultInvalidArgument, c.sub)
		})
	}
	got, err := h.GetVMConfig("r1", "vm1")
	mustOK(t, err)
	for _, key := range agentapi.DirectBootKeys {
		if v, ok := got[key]; ok {
			t.Errorf("a refused call left %s = %#v in vm.cfg", key, v)
		}
	}
}

// The direct-boot keys are written as given and an empty one is no key: at
// create it is left out, at configure it removes the key; the simulated
// host starts the VM whatever they say.
func TestDirectBootKeysWrittenAndRemoved(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	kernel, ramdisk := "/OVS/Repositories/r1/Kernels/vmlinuz-6.1", "/OVS/Repositories/r1/Kernels/initrd-6.1.img"
	extra := `root=/dev/xvda1 console=hvc0 quiet msg="it's"`
	mustOK(t, h.CreateVM("r1", "vm1", withKeys("kernel", kernel, "ramdisk", ramdisk, "extra", extra)))
	mustOK(t, h.CreateVM("r1", "vm2", withKeys("kernel", "", "ramdisk", "", "extra", "")))

	cfgFile, err := os.ReadFile(filepath.Join(fsLoc, DirVMs, "vm1", vmConfigFile))
	mustOK(t, err)
	for _, line := range []string{"kernel = '" + kernel + "'\n", "ramdisk = '" + ramdisk + "'\n", `extra = 'root=/dev/xvda1 console=hvc0 quiet msg="it\'s"'` + "\n"} {
		if !strings.Contains(string(cfgFile), line) {
			t.Errorf("vm.cfg lacks %q:\n%s", line, cfgFile)
		}
	}
	mustOK(t, h.StartVM("r1", "vm1"))
	mustOK(t, h.StopVM("r1", "vm1", true))

	for _, step := range []struct {
		name   string
		vm     string
		params agentapi.VMParams
		want   map[string]string // the direct-boot keys of vm.cfg after the step; absent: no key
	}{
		{"empty values left out at create", "vm2", nil, map[string]string{}},
		{"written at create", "vm1", nil, map[string]string{"kernel": kernel, "ramdisk": ramdisk, "extra": extra}},
		{"kernel changed, the rest kept", "vm1", agentapi.VMParams{"kernel": "/OVS/Repositories/r1/Kernels/vmlinuz-6.6"},
			map[string]string{"kernel": "/OVS/Repositories/r1/Kernels/vmlinuz-6.6", "ramdisk": ramdisk, "extra": extra}},
		{"empty removes", "vm1", agentapi.VMParams{"ramdisk": "", "extra": ""},
			map[string]string{"kernel": "/OVS/Repositories/r1/Kernels/vmlinuz-6.6"}},
		{"removing what is not there", "vm2", agentapi.VMParams{"kernel": ""}, map[string]string{}},
	} {
		if step.params != nil {
			mustOK(t, h.ConfigureVM("r1", step.vm, step.params))
		}
		got, err := h.GetVMConfig("r1", step.vm)
		mustOK(t, err)
		for _, key := range agentapi.DirectBootKeys {
			v, present := got[key]
			want, wantPresent := step.want[key]
			if present != wantPresent || present && v != want {
				t.Errorf("%s: %s = %#v (present %v), want %q (present %v)", step.name, key, v, present, want, wantPresent)
			}
		}
	}
}
