package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// qemu-img on images from the network. Every image is untrusted: its
// format is always given (-f, never probed), its header is read first
// (qemu-img info) and an image that names another file (a backing file, an
// external data file, a vmdk extent elsewhere) is refused before anything
// reads that file; each run is bounded in wall-clock time, CPU time and
// address space.
const (
	qemuImgInfoTimeout    = time.Minute
	qemuImgConvertTimeout = 2 * time.Hour
	// qemuImgMemoryKiB bounds the address space of a qemu-img run (ulimit
	// -v): enough for conversions, which stream, not for a header crafted
	// to make it allocate without end.
	qemuImgMemoryKiB = 1 << 20
	// qemuImgMaxOutput bounds what a run may print that is kept.
	qemuImgMaxOutput = 1 << 20
)

// acceptedDiskFormats lists them for faults.
const acceptedDiskFormats = "VMDK (monolithic sparse or streamOptimized), qcow2, VHD or raw"

// qemuImgPath finds qemu-img; its absence is the server's problem, said
// as such.
func qemuImgPath() (string, error) {
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		return "", errors.New("qemu-img is not installed on this server (Debian package qemu-utils): an appliance's disks cannot be converted")
	}
	return p, nil
}

// runQemuImg runs qemu-img with args under the bounds above and returns
// its standard output. Its standard error is returned in the error for the
// agent's log only.
func runQemuImg(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	bin, err := qemuImgPath()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cpu := int64(timeout / time.Second)
	// sh sets the limits and execs qemu-img, which then is the process
	// the context kills; the arguments travel as positional parameters,
	// never through the shell's parser.
	shArgs := append([]string{"-c", `ulimit -v "$1" && ulimit -t "$2" && shift 2 && exec "$@"`, "sh",
		strconv.Itoa(qemuImgMemoryKiB), strconv.FormatInt(cpu, 10), bin}, args...)
	cmd := exec.CommandContext(ctx, "/bin/sh", shArgs...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("qemu-img did not finish within %v", timeout)
	}
	if err != nil {
		return nil, &qemuImgError{err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

// qemuImgError is a failed run of qemu-img; what it printed is for the
// agent's log, not for the caller.
type qemuImgError struct {
	err    error
	stderr string
}

func (e *qemuImgError) Error() string { return fmt.Sprintf("qemu-img: %v: %s", e.err, e.stderr) }

// noSpace says whether qemu-img failed for want of room.
func (e *qemuImgError) noSpace() bool {
	return strings.Contains(e.stderr, "No space left on device") || strings.Contains(e.stderr, "Disk quota exceeded")
}

// limitedBuffer keeps the first qemuImgMaxOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := qemuImgMaxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// imageInfo is what qemu-img info --output=json says of an image that
// matters here.
type imageInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	FullBacking     string `json:"full-backing-filename"`
	FormatSpecific  struct {
		Type string `json:"type"`
		Data struct {
			DataFile string `json:"data-file"`
			Extents  []struct {
				Filename string `json:"filename"`
			} `json:"extents"`
		} `json:"data"`
	} `json:"format-specific"`
}

// checkImage reads the header of the image at path as format and refuses
// one that names another file; it returns the image's virtual size.
func checkImage(ctx context.Context, path, format string) (int64, error) {
	out, err := runQemuImg(ctx, qemuImgInfoTimeout, "info", "--output=json", "-f", format, path)
	if err != nil {
		return 0, err
	}
	var info imageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info answered what is not its JSON: %w", err)
	}
	switch {
	case info.Format != format:
		return 0, &badImage{fmt.Sprintf("qemu-img reads it as %q, not %q", info.Format, format)}
	case info.BackingFilename != "" || info.FullBacking != "":
		return 0, &badImage{"it names a backing file; images that depend on another file are not accepted"}
	case info.FormatSpecific.Data.DataFile != "":
		return 0, &badImage{"it names an external data file; images that depend on another file are not accepted"}
	case info.VirtualSize <= 0 || info.VirtualSize > MaxDiskMiB<<20:
		return 0, &badImage{fmt.Sprintf("its virtual size of %d bytes is out of range (1 byte to %d MiB)", info.VirtualSize, int64(MaxDiskMiB))}
	}
	for _, e := range info.FormatSpecific.Data.Extents {
		if e.Filename != path {
			return 0, &badImage{"its extents lie in other files; only monolithic images are accepted"}
		}
	}
	return info.VirtualSize, nil
}

// badImage is an image refused for what it is.
type badImage struct{ why string }

func (e *badImage) Error() string { return e.why }

// convertToRaw converts the image at src, of format, to a raw image at dst
// (sparse where the image has no data).
func convertToRaw(ctx context.Context, src, format, dst string) error {
	_, err := runQemuImg(ctx, qemuImgConvertTimeout, "convert", "-q", "-f", format, "-O", "raw", src, dst)
	if err != nil {
		os.Remove(dst)
	}
	return err
}
