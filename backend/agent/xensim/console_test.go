package xensim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// attachConsole opens the console of vm1 of repository r1 on h and reads
// up to its first login prompt; it returns the connection's writer, a
// reader, and what was printed.
func attachConsole(t *testing.T, h *testHost) (func(string), func(string) string, string) {
	t.Helper()
	token, err := h.OpenConsole("r1", "vm1")
	mustOK(t, err)
	c, r := console(t, h)
	// net.Pipe has no buffer: a test that reads too little would block
	// both sides for good without a deadline.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s\n", token)
	boot := readUntil(t, r, "web login: ")
	typeKeys := func(s string) {
		t.Helper()
		if _, err := fmt.Fprint(c, s); err != nil {
			t.Fatalf("type %q: %v", s, err)
		}
	}
	return typeKeys, func(suffix string) string { t.Helper(); return readUntil(t, r, suffix) }, boot
}

// Enter on a terminal sends CR: it ends a line on the simulated guest, as
// on a Linux serial console (a tty with ICRNL). LF (Ctrl-J) does too, and
// CR LF is one line end, not a line and an empty one.
func TestConsoleEnterEndsALine(t *testing.T) {
	h := newHost(t, testConfig{})
	addRepo(t, h, t.TempDir(), "r1")
	mustOK(t, h.CreateVM("r1", "vm1", vmParams(256, 1)))
	mustOK(t, h.StartVM("r1", "vm1"))
	typeKeys, read, _ := attachConsole(t, h)

	for _, c := range []struct{ typed, want string }{
		{"root\r", "root\r\nweb login: "},
		{"ctrl-j\n", "ctrl-j\r\nweb login: "},
		{"crlf\r\n", "crlf\r\nweb login: "},
		{"\n", "\r\nweb login: "}, // an LF after a whole CR LF is a line end of its own
		{"\r", "\r\nweb login: "},
		{"\n", ""}, // the LF of a CR LF sent in two pieces
		{"a\rb\r", "a\r\nweb login: b\r\nweb login: "},
	} {
		typeKeys(c.typed)
		if c.want == "" {
			continue // nothing to read: the next case shows nothing came
		}
		if got := read(c.want); got != c.want {
			t.Errorf("typed %q: the guest printed %q, want %q", c.typed, got, c.want)
		}
	}
}

// The banner of the simulated guest names the OS type the VM booted with
// (vm.cfg's OVM_os_type, which show Vm shows), or no OS at all, and keeps
// it across save and restore and a live migration.
func TestConsoleBannerNamesTheOSType(t *testing.T) {
	src := newHost(t, testConfig{Hostname: "xen1", MemoryMiB: 8192, CPUs: 4})
	dst := newHost(t, testConfig{Hostname: "xen2", MemoryMiB: 8192, CPUs: 4})
	fsLoc := t.TempDir()
	addRepo(t, src, fsLoc, "r1")
	mustOK(t, dst.AddRepository(fsLoc, "/OVS/Repositories/r1"))
	params := vmParams(64, 1)
	mustOK(t, src.CreateVM("r1", "vm1", params))
	mustOK(t, src.StartVM("r1", "vm1"))
	if _, _, boot := attachConsole(t, src); !strings.Contains(boot, "\r\nSimulated guest\r\n") || strings.Contains(boot, "Oracle") {
		t.Errorf("boot log of a VM without an OS type:\n%s", boot)
	}
	mustOK(t, src.StopVM("r1", "vm1", true))

	mustOK(t, src.ConfigureVM("r1", "vm1", agentapi.VMParams{agentapi.KeyOSType: "Ubuntu 24.04\x1b[2J LTS"}))
	mustOK(t, src.StartVM("r1", "vm1"))
	const banner = "\r\nUbuntu 24.04[2J LTS (simulated)\r\n"
	if _, _, boot := attachConsole(t, src); !strings.Contains(boot, banner) {
		t.Errorf("boot log of an Ubuntu VM (its escape dropped):\n%s", boot)
	}
	// A change of vm.cfg does not change what runs.
	mustOK(t, src.ConfigureVM("r1", "vm1", agentapi.VMParams{agentapi.KeyOSType: "Windows"}))
	mustOK(t, src.SaveVM("r1", "vm1", false))
	mustOK(t, src.RestoreVM("r1", "vm1", false))
	if _, _, boot := attachConsole(t, src); !strings.Contains(boot, banner) {
		t.Errorf("boot log after save and restore:\n%s", boot)
	}

	dest, err := dst.SetupMigrationTarget("r1", "vm1", "127.0.0.1")
	mustOK(t, err)
	_, err = src.MigrateVM(t.Context(), "r1", "vm1", dest, true, false)
	mustOK(t, err)
	if _, _, boot := attachConsole(t, dst); !strings.Contains(boot, banner) {
		t.Errorf("boot log after a live migration:\n%s", boot)
	}
	// A reboot boots what vm.cfg says now.
	mustOK(t, dst.RebootVM("r1", "vm1", 0))
	if _, _, boot := attachConsole(t, dst); !strings.Contains(boot, "\r\nWindows (simulated)\r\n") {
		t.Errorf("boot log after a reboot:\n%s", boot)
	}
}

// bannerText keeps printable text, bounded.
func TestBannerText(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"  Oracle Linux 9  ":        "Oracle Linux 9",
		"a\tb\x00c\u202ed":          "abcd",
		strings.Repeat("é", 100):    strings.Repeat("é", maxBannerText/2),
		"Oracle Linux 7 \r\nlogin:": "Oracle Linux 7 login:",
	} {
		if got := bannerText(in); got != want {
			t.Errorf("bannerText(%q) = %q, want %q", in, got, want)
		}
	}
}
