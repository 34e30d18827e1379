package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"xenmanager/backend/agentapi"
)

// Manifests of imported archives: an OVF manifest (.mf: "SHA256(file)=
// hex" lines, SHA1 and SHA512 too) or sha256sum's output (.sha256: "hex
// file" lines), checked against the files beside it.
const (
	manifestExt       = ".mf"
	sha256SumExt      = ".sha256"
	maxManifestBytes  = 1 << 20
	maxManifestNaming = 4096 // lines naming files
)

var (
	ovfManifestLine = regexp.MustCompile(`^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)$`)
	sha256SumLine   = regexp.MustCompile(`^([0-9A-Fa-f]{64})\s[ *]?(.+)$`)
)

// isManifest says whether name is a manifest's file name.
func isManifest(name string) bool {
	return strings.HasSuffix(name, manifestExt) || strings.HasSuffix(name, sha256SumExt)
}

// manifestEntry is one line of a manifest.
type manifestEntry struct {
	line   int
	algo   string // SHA1, SHA256, SHA512
	name   string // as the manifest names it
	digest []byte
}

// checkManifests checks every manifest directly in dir against the files
// it names, which must be regular files beside it. It returns the names of
// the files checked. A line it cannot read, a file it names that the
// archive does not hold, and a digest that differs are InvalidArgument,
// naming the manifest and the file; what the archive claims is never
// trusted otherwise.
func (im *importer) checkManifests(dir string) (map[string]bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	checked := map[string]bool{}
	var manifests []string
	for _, e := range entries {
		if e.Type().IsRegular() && isManifest(e.Name()) {
			manifests = append(manifests, e.Name())
		}
	}
	if len(manifests) == 0 {
		return checked, nil
	}
	im.op.SetRound(agentapi.PhaseChecking, 0, int64(len(manifests)))
	for i, m := range manifests {
		list, err := im.readManifest(dir, m)
		if err != nil {
			return nil, err
		}
		for _, ent := range list {
			if err := im.ctx.Err(); err != nil {
				return nil, err
			}
			if err := im.checkDigest(dir, m, ent); err != nil {
				return nil, err
			}
			checked[ent.name] = true
		}
		im.op.Set(agentapi.PhaseChecking, int64(i+1))
	}
	return checked, nil
}

// readManifest parses the manifest dir/name.
func (im *importer) readManifest(dir, name string) ([]manifestEntry, error) {
	bad := func(format string, args ...any) error {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s %s: manifest %s %s", im.what, im.url.Redacted(), name, fmt.Sprintf(format, args...))
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestBytes {
		return nil, bad("is larger than %d bytes", maxManifestBytes)
	}
	var out []manifestEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		ent := manifestEntry{line: n}
		var hexDigest string
		if strings.HasSuffix(name, manifestExt) {
			m := ovfManifestLine.FindStringSubmatch(line)
			if m == nil {
				return nil, bad("line %d is not understood: expected SHA256(<file>)= <hex digest> (or SHA1, SHA512)", n)
			}
			ent.algo, ent.name, hexDigest = m[1], m[2], m[3]
		} else {
			m := sha256SumLine.FindStringSubmatch(line)
			if m == nil {
				return nil, bad("line %d is not understood: expected <64 hex digits> <file>, as sha256sum writes", n)
			}
			ent.algo, ent.name, hexDigest = "SHA256", m[2], m[1]
		}
		digest, err := hex.DecodeString(hexDigest)
		if err != nil || len(digest) != newHash(ent.algo).Size() {
			return nil, bad("line %d: the %s digest of %q is not %d hex digits", n, ent.algo, ent.name, 2*newHash(ent.algo).Size())
		}
		ent.digest = digest
		out = append(out, ent)
		if len(out) > maxManifestNaming {
			return nil, bad("names more than %d files", maxManifestNaming)
		}
	}
	return out, sc.Err()
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "SHA1":
		return sha1.New()
	case "SHA512":
		return sha512.New()
	}
	return sha256.New()
}

// checkDigest hashes the file ent names, beside the manifest m in dir.
func (im *importer) checkDigest(dir, m string, ent manifestEntry) error {
	missing := agentapi.Errorf(agentapi.FaultInvalidArgument,
		"%s %s: manifest %s names %q (line %d), which the archive does not hold beside it", im.what, im.url.Redacted(), m, ent.name, ent.line)
	local, err := archiveName(ent.name)
	if err != nil || local == "" || strings.ContainsRune(local, filepath.Separator) {
		return missing
	}
	f, err := os.OpenFile(filepath.Join(dir, local), os.O_RDONLY|openNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return missing
	}
	h := newHash(ent.algo)
	if _, err := io.Copy(h, ctxReader{im.ctx, f}); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), ent.digest) {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"%s %s: the %s checksum of %s does not match manifest %s: the archive is damaged or was changed", im.what, im.url.Redacted(), ent.algo, ent.name, m)
	}
	return nil
}

// ctxReader is a reader that stops when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
