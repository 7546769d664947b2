package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestImage builds herd as the image build does (static, version and
// commit set at link time), writes the OCI layout, reads it back as a
// registry client would, checks the config (entrypoint, non-root user,
// labels with the version and commit), extracts the binary from the
// layer and runs herd version with it.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "herd")
	const version, commit = "v0.0.0-test", "0123456789abcdef0123456789abcdef01234567"
	pkg := "github.com/herd-replay/herd/internal/version"
	build := exec.Command("go", "build", "-trimpath", "-o", bin,
		"-ldflags", "-s -w -X "+pkg+".Version="+version+" -X "+pkg+".Commit="+commit, "./cmd/herd")
	build.Dir = filepath.Join("..", "..") // the main module
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build herd: %v\n%s", err, out)
	}
	certs := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "oci")
	if err := Build(Options{Binary: bin, Version: version, Commit: commit, CACerts: certs, Output: out, Created: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := Build(Options{Binary: bin, Version: version, Commit: commit, Output: out}); err == nil {
		t.Error("an existing layout must not be written over")
	}

	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v, %d manifests", err, len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.Annotations["org.opencontainers.image.ref.name"] != version || d.Platform == nil || d.Platform.OS != "linux" {
		t.Errorf("descriptor %+v", d)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"herd"}) || c.User != User || cf.OS != "linux" {
		t.Errorf("entrypoint %q, user %q, os %q", c.Entrypoint, c.User, cf.OS)
	}
	if c.Labels["org.opencontainers.image.version"] != version || c.Labels["org.opencontainers.image.revision"] != commit {
		t.Errorf("labels %v", c.Labels)
	}

	// The filesystem: the binary with its capability, the user, the rest.
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]*tar.Header{}
	var herd []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if h.Name == BinaryPath {
			if herd, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
		if h.Name == "etc/passwd" {
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "nonroot:x:65532:65532:") {
				t.Errorf("/etc/passwd: %s", b)
			}
		}
	}
	for _, name := range []string{BinaryPath, "etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt", "tmp", "home/nonroot"} {
		if files[name] == nil {
			t.Errorf("no %s in the image", name)
		}
	}
	if h := files[BinaryPath]; h == nil || h.Mode&0o111 == 0 || h.PAXRecords["SCHILY.xattr.security.capability"] != string(NetRawCapability()) {
		t.Errorf("the binary's header: %+v", h)
	}
	if h := files["home/nonroot"]; h == nil || h.Uid != 65532 {
		t.Error("the non-root user's home must be its own")
	}

	extracted := filepath.Join(dir, "extracted-herd")
	if err := os.WriteFile(extracted, herd, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("herd version from the image: %v\n%s", err, got)
	}
	if want := "herd " + version + " (commit " + commit + ")"; !bytes.HasPrefix(got, []byte(want)) {
		t.Errorf("herd version from the image: %q, want it to start %q", got, want)
	}
	t.Logf("%s", got)
}

// TestNetRawCapability: the attribute is what setcap cap_net_raw+ep
// writes.
func TestNetRawCapability(t *testing.T) {
	want := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := NetRawCapability(); !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
}
