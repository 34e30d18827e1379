package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// How copy_file moves the bytes of a sparse or allocated copy.
const (
	// copyChunk is how much a copy moves at a time, and how far it gets
	// between looks at its call's context and progress.
	copyChunk = 4 << 20
	// zeroBlock is the unit in which a sparse copy leaves blocks of zeros
	// unwritten (holes).
	zeroBlock = 64 << 10
	// zeroProbe is how much of a block a sparse copy reads first to tell
	// data from zeros: a block with a byte other than zero there is data,
	// and only a block that starts with zeros is read whole.
	zeroProbe = 512
)

// zeroChunk is what an allocated copy writes into the holes of its
// source (read only).
var zeroChunk [1 << 20]byte

// errKernelCopyUnsupported is copyFileRange's answer where the kernel
// cannot copy between the two files: the copy goes on through a buffer.
var errKernelCopyUnsupported = errors.New("copy_file_range cannot copy between these files")

// fill writes the copy into out, in mode c.mode, from in, whose size and
// data extents (for sparse and allocated) run found.
func (c *fileCopy) fill(out, in *os.File, size int64, extents [][2]int64) error {
	switch c.mode {
	case agentapi.CopyReflink:
		if err := cloneFile(out, in); err != nil {
			return err
		}
		c.op.Set(agentapi.PhaseCopying, size)
		return nil
	case agentapi.CopyAllocated:
		// The kernel may make a copy share blocks with its source where the
		// file system can (Btrfs, XFS, OCFS2, an NFS server), and an
		// allocated copy is one whose blocks are its own: there, the data
		// goes through the buffer.
		d := &dataCopier{ctx: c.ctx, op: c.op, out: out, in: in, kernel: !mayShareBlocks(out), rate: c.rate, start: time.Now()}
		err := d.allocated(size, extents)
		c.kernelBytes = d.kernelBytes
		return err
	}
	d := &dataCopier{ctx: c.ctx, op: c.op, out: out, in: in, kernel: true, rate: c.rate, start: time.Now()}
	err := d.sparse(extents)
	c.kernelBytes = d.kernelBytes
	if err != nil {
		return err
	}
	return out.Truncate(size) // the holes after the last data
}

// dataCopier copies ranges of one file to the same offsets of another, in
// chunks of at most copyChunk, looking at its call's context before each
// and counting progress after each. It copies data in the kernel with
// copy_file_range(2), without a buffer in user space, and falls back to a
// buffer where the kernel cannot (two file systems: refused by kernels
// before 5.3 and, since 5.19, between file systems of different types; a
// kernel or file system without it; a seccomp filter).
type dataCopier struct {
	ctx         context.Context
	op          hypervisor.Operation
	out, in     *os.File
	kernel      bool   // copy_file_range is to be tried
	buf         []byte // the buffer of the user-space path, made on first use
	done        int64  // bytes counted in progress
	kernelBytes int64  // bytes copied by copy_file_range
	// rate, when not 0, is the most the copy moves per second from start
	// (a simulated host's copy_mib_per_s, so that tests can watch copies).
	rate  int64
	start time.Time
}

// sparse copies the data extents, leaving out the blocks of zeros in them.
func (d *dataCopier) sparse(extents [][2]int64) error {
	for _, e := range extents {
		if err := d.chunks(e[0], e[1], d.nonZero); err != nil {
			return err
		}
	}
	return nil
}

// allocated copies the file's size bytes, writing zeros where extents
// (its data) leave holes, and then writes zeros into whatever hole the
// copy still has (a file system may keep the holes of what the kernel
// copied), so that every block of the copy is allocated.
func (d *dataCopier) allocated(size int64, extents [][2]int64) error {
	for i, hole := range holes(extents, size) {
		if err := d.chunks(hole[0], hole[1], d.zeros); err != nil {
			return err
		}
		if i < len(extents) {
			if err := d.chunks(extents[i][0], extents[i][1], d.data); err != nil {
				return err
			}
		}
	}
	written, err := dataExtents(d.out, size)
	if err != nil {
		return err
	}
	for _, hole := range holes(written, size) {
		if err := d.zeros(hole[0], hole[1]-hole[0]); err != nil {
			return err
		}
	}
	return nil
}

// holes are the ranges of [0, size) before, between and after the
// ascending extents: one more than the extents, empty ones included.
func holes(extents [][2]int64, size int64) [][2]int64 {
	out := make([][2]int64, 0, len(extents)+1)
	off := int64(0)
	for _, e := range extents {
		out = append(out, [2]int64{off, e[0]})
		off = e[1]
	}
	return append(out, [2]int64{off, max(off, size)})
}

// chunks runs do over [start, end) in chunks of at most copyChunk.
func (d *dataCopier) chunks(start, end int64, do func(off, n int64) error) error {
	for off := start; off < end; {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		n := min(copyChunk, end-off)
		if err := do(off, n); err != nil {
			return err
		}
		off += n
		d.done += n
		d.op.Set(agentapi.PhaseCopying, d.done)
		if err := d.pace(); err != nil {
			return err
		}
	}
	return nil
}

// pace waits, when the copy has a rate, until the bytes done are what the
// rate allows since the start, or until the context ends.
func (d *dataCopier) pace() error {
	if d.rate <= 0 {
		return nil
	}
	wait := time.Until(d.start.Add(time.Duration(float64(d.done) / float64(d.rate) * float64(time.Second))))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
}

// data copies n bytes at off, in the kernel while it can.
func (d *dataCopier) data(off, n int64) error {
	for n > 0 && d.kernel {
		k, err := copyFileRange(d.out, d.in, off, n)
		switch {
		case errors.Is(err, errKernelCopyUnsupported):
			d.kernel = false
		case err != nil:
			return err
		case k == 0:
			return io.ErrUnexpectedEOF // the source shrank under the copy
		default:
			off, n = off+k, n-k
			d.kernelBytes += k
		}
	}
	if n == 0 {
		return nil
	}
	return d.buffered(off, n, false)
}

// nonZero copies n bytes at off but their blocks of zeros. In the kernel,
// it reads a probe of each block to find them and copies the runs of the
// others; through the buffer, it reads the whole and writes what is not
// zeros.
func (d *dataCopier) nonZero(off, n int64) error {
	if !d.kernel {
		return d.buffered(off, n, true)
	}
	run := int64(-1) // the start of the data blocks not yet copied
	end := off + n
	for b := off; b < end; b += zeroBlock {
		zero, err := d.isZero(b, min(zeroBlock, end-b))
		if err != nil {
			return err
		}
		switch {
		case zero && run >= 0:
			if err := d.data(run, b-run); err != nil {
				return err
			}
			run = -1
		case !zero && run < 0:
			run = b
		}
	}
	if run >= 0 {
		return d.data(run, end-run)
	}
	return nil
}

// isZero tells whether the n bytes of the source at off are all zero.
func (d *dataCopier) isZero(off, n int64) (bool, error) {
	buf := d.buffer()
	probe := min(zeroProbe, n)
	if _, err := readFull(d.in, buf[:probe], off); err != nil {
		return false, err
	}
	if !bytes.Equal(buf[:probe], zeroChunk[:probe]) {
		return false, nil
	}
	if _, err := readFull(d.in, buf[:n], off); err != nil {
		return false, err
	}
	return bytes.Equal(buf[:n], zeroChunk[:n]), nil
}

// buffered copies n bytes at off through the buffer; with sparse, its
// blocks of zeros are left unwritten.
func (d *dataCopier) buffered(off, n int64, sparse bool) error {
	buf := d.buffer()
	for n > 0 {
		k, err := readFull(d.in, buf[:min(int64(len(buf)), n)], off)
		if err != nil {
			return err
		}
		if sparse {
			err = writeNonZero(d.out, buf[:k], off)
		} else {
			_, err = d.out.WriteAt(buf[:k], off)
		}
		if err != nil {
			return err
		}
		off, n = off+int64(k), n-int64(k)
	}
	return nil
}

// zeros writes n bytes of zeros at off.
func (d *dataCopier) zeros(off, n int64) error {
	for n > 0 {
		k, err := d.out.WriteAt(zeroChunk[:min(int64(len(zeroChunk)), n)], off)
		if err != nil {
			return err
		}
		off, n = off+int64(k), n-int64(k)
	}
	return nil
}

func (d *dataCopier) buffer() []byte {
	if d.buf == nil {
		d.buf = make([]byte, copyChunk)
	}
	return d.buf
}

// readFull reads len(b) bytes of f at off; io.ErrUnexpectedEOF when the
// file ends before (the source shrank under the copy).
func readFull(f *os.File, b []byte, off int64) (int, error) {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// writeNonZero writes b at off in f, leaving out its blocks of zeros.
func writeNonZero(f *os.File, b []byte, off int64) error {
	start := -1
	for i := 0; i < len(b); i += zeroBlock {
		j := min(i+zeroBlock, len(b))
		if bytes.Equal(b[i:j], zeroChunk[:j-i]) {
			if start >= 0 {
				if _, err := f.WriteAt(b[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		_, err := f.WriteAt(b[start:], off+int64(start))
		return err
	}
	return nil
}
