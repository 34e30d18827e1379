// Package guestimage provides the tiny guest that the libvirt driver's tests
// boot: a Debian kernel and a ~1 MB busybox initramfs for direct kernel boot,
// with no disk, so that tests run real guests under QEMU (TCG) in seconds and
// migrate them without shared storage. build.sh makes it from .deb files it
// downloads with apt-get, and keeps it in a cache keyed by the kernel package's
// version; its header says what the guest does on its serial console.
package guestimage

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// buildScript is build.sh, embedded so that the image can be built from a
// test binary run anywhere, not only from the source tree.
//
//go:embed build.sh
var buildScript []byte

// Image is a built guest, ready for direct kernel boot (a domain's
// <os><kernel>, <initrd> and <cmdline>).
type Image struct {
	Kernel  string // path of the kernel (vmlinuz)
	Initrd  string // path of the gzipped initramfs
	Version string // the kernel release, as uname -r says in the guest
}

// Cmdline is the kernel command line that boots the image quickly under
// TCG with its output on the first serial port; append the guest's options
// (xenguest.poweroff_after=N, xenguest.panic_after=N,
// xenguest.hostname=NAME, panic=-1) after it.
const Cmdline = "console=ttyS0 quiet mitigations=off tsc=reliable no_timer_check"

// The lines the guest prints on its console, so that tests need not repeat
// them. The firmware may leave escape sequences in front of the first one:
// look for them with strings.Contains.
const (
	// Ready is printed once, when the guest is up and its ACPI power button
	// works.
	Ready = "XENGUEST READY"
	// Heartbeat starts the line printed every second: a counter from 1 and
	// the uptime in seconds (see ParseHeartbeat).
	Heartbeat = "XENGUEST HEARTBEAT"
	// PowerOff starts the line printed just before the guest powers off
	// (from the console, a timer or the ACPI power button).
	PowerOff = "XENGUEST POWEROFF"
	// Echo starts the answer to a line typed on the console that is not a
	// command.
	Echo = "XENGUEST ECHO"
)

// ParseHeartbeat reads a heartbeat line ("XENGUEST HEARTBEAT <n> <uptime>",
// anywhere in line): the counter, which keeps counting across a live
// migration, and the guest's uptime in seconds.
func ParseHeartbeat(line string) (n int, uptime float64, ok bool) {
	i := strings.Index(line, Heartbeat+" ")
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(line[i+len(Heartbeat):])
	if len(f) < 2 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0, false
	}
	uptime, err = strconv.ParseFloat(f[1], 64)
	if err != nil {
		return 0, 0, false
	}
	return n, uptime, true
}

// Tools are the programs build.sh needs. Debian has them all with apt
// (apt-get, apt-cache), dpkg (dpkg-deb), tar, cpio, gzip, util-linux
// (flock) and coreutils.
var Tools = []string{"bash", "apt-get", "apt-cache", "dpkg-deb", "tar", "cpio", "gzip", "flock", "sha256sum"}

// Available says why the image cannot be built here (a tool build.sh needs
// is missing), or nil; so that tests skip with the reason instead of failing
// half-way through the build.
func Available() error {
	var missing []string
	for _, tool := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot build the guest image: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// last remembers the image of this process's last successful Ensure, so
// that the tests of one binary run build.sh once (each run asks apt-cache for
// the current kernel version, about a second).
var last struct {
	mu  sync.Mutex
	img Image
}

// Ensure returns the guest image, building it first if the cache lacks it
// (a download of about 70 MB and 10 s; then a second or less). The cache
// is $XENMANAGER_IMAGE_CACHE, or ${XDG_CACHE_HOME:-$HOME/.cache}/xenmanager/
// guest-image; build.sh locks it, so that parallel test binaries build it
// once.
func Ensure(ctx context.Context) (Image, error) {
	last.mu.Lock()
	defer last.mu.Unlock()
	if last.img.Kernel != "" && exists(last.img.Kernel) && exists(last.img.Initrd) {
		return last.img, nil
	}
	img, err := build(ctx)
	if err != nil {
		return Image{}, err
	}
	last.img = img
	return img, nil
}

// build runs the embedded build.sh from a temporary file and reads the
// paths it prints.
func build(ctx context.Context) (Image, error) {
	f, err := os.CreateTemp("", "xenmanager-guestimage-*.sh")
	if err != nil {
		return Image{}, fmt.Errorf("guest image: write build script: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(buildScript); err != nil {
		f.Close()
		return Image{}, fmt.Errorf("guest image: write build script: %w", err)
	}
	if err := f.Close(); err != nil {
		return Image{}, fmt.Errorf("guest image: write build script: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", f.Name())
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return Image{}, fmt.Errorf("guest image: build.sh: %w: %s", err, tail(stderr.String(), 20))
	}
	img, err := parse(stdout.String())
	if err != nil {
		return Image{}, fmt.Errorf("guest image: %w (stderr: %s)", err, tail(stderr.String(), 20))
	}
	return img, nil
}

// parse reads build.sh's key=value lines (the last of each key wins).
func parse(out string) (Image, error) {
	var img Image
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "kernel":
			img.Kernel = v
		case "initrd":
			img.Initrd = v
		case "version":
			img.Version = v
		}
	}
	if img.Kernel == "" || img.Initrd == "" || img.Version == "" {
		return Image{}, fmt.Errorf("build.sh printed no kernel=, initrd= and version= lines: %q", tail(out, 10))
	}
	for _, p := range []string{img.Kernel, img.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return Image{}, fmt.Errorf("build.sh named a missing file: %w", err)
		}
	}
	return img, nil
}

// exists says whether path is there (the cache may have been removed
// since the last Ensure).
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tail is the last n lines of s, for error messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
