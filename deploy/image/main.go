// Command image writes herd's container image as an OCI image layout (a
// directory), without a container daemon: one layer on an empty base
// holding a static herd binary, a passwd entry for the non-root user it
// runs as, CA certificates for https targets, and /tmp. Push the layout
// with any OCI tool (crane push, skopeo copy oci:DIR docker://...).
//
//	CGO_ENABLED=0 go build -C .. -trimpath -ldflags "-X .../version.Version=v1.2.3 -X .../version.Commit=$(git rev-parse HEAD)" -o /tmp/herd ./cmd/herd
//	go run ./image -bin /tmp/herd -version v1.2.3 -commit $(git rev-parse HEAD) -o herd-oci
//
// deploy/image/build.sh does both.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed facts, which the test and docs/kubernetes.md rely on.
const (
	BinaryPath = "usr/local/bin/herd"
	User       = "65532:65532"
	Source     = "https://github.com/herd-replay/herd"
	// capNetRaw is CAP_NET_RAW's bit.
	capNetRaw = 13
)

// Options say what goes into the image.
type Options struct {
	Binary  string // a static linux herd binary
	Version string
	Commit  string
	CACerts string // a PEM bundle for /etc/ssl/certs; "" for none
	Arch    string
	Created time.Time
	Output  string // the OCI layout directory to write
	RefName string // org.opencontainers.image.ref.name of the image in the layout
}

func main() {
	var o Options
	flag.StringVar(&o.Binary, "bin", "", "static linux herd binary (CGO_ENABLED=0)")
	flag.StringVar(&o.Version, "version", "", "herd's version, for the labels (required)")
	flag.StringVar(&o.Commit, "commit", "", "the VCS commit, for the labels (required)")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include, or empty for none")
	flag.StringVar(&o.Arch, "arch", "amd64", "the binary's architecture")
	flag.StringVar(&o.Output, "o", "herd-oci", "OCI image layout directory to write (must not exist)")
	flag.Parse()
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		var s int64
		if _, err := fmt.Sscan(epoch, &s); err == nil {
			o.Created = time.Unix(s, 0).UTC()
		}
	}
	if err := Build(o); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// Build writes the image to o.Output.
func Build(o Options) error {
	switch {
	case o.Binary == "" || o.Version == "" || o.Commit == "":
		return errors.New("-bin, -version and -commit are required")
	case o.Output == "":
		return errors.New("-o is required")
	}
	if _, err := os.Stat(o.Output); err == nil {
		return fmt.Errorf("%s exists: the layout is written to a new directory", o.Output)
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	layerTar, err := rootfs(o)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = o.Arch, "linux"
	cf.Created = v1.Time{Time: o.Created}
	cf.Config = v1.Config{
		Entrypoint: []string{"herd"},
		Cmd:        []string{"--help"},
		User:       User,
		WorkingDir: "/home/nonroot",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "herd",
			"org.opencontainers.image.description": "Record real HTTP traffic and replay it at multiples of the peak",
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.revision":    o.Commit,
			"org.opencontainers.image.source":      Source,
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	p, err := layout.Write(o.Output, empty.Index)
	if err != nil {
		return err
	}
	ref := o.RefName
	if ref == "" {
		ref = o.Version
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.Arch}))
}

// rootfs is the image's one layer, as an uncompressed tar.
func rootfs(o Options) ([]byte, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	var certs []byte
	if o.CACerts != "" {
		if certs, err = os.ReadFile(o.CACerts); err != nil {
			return nil, fmt.Errorf("CA certificates: %w", err)
		}
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mod := o.Created
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mod, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte, pax map[string]string) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mod, PAXRecords: pax, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "home", "usr", "usr/local", "usr/local/bin"} {
		if err := dir(d, 0o755, 0); err != nil {
			return nil, err
		}
	}
	if err := dir("home/nonroot", 0o700, 65532); err != nil {
		return nil, err
	}
	if err := dir("tmp", 0o1777, 0); err != nil {
		return nil, err
	}
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:65532:\n"
	if err := file("etc/passwd", 0o644, []byte(passwd), nil); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte(group), nil); err != nil {
		return nil, err
	}
	if certs != nil {
		if err := file("etc/ssl/certs/ca-certificates.crt", 0o644, certs, nil); err != nil {
			return nil, err
		}
	}
	// Live capture as the non-root user needs CAP_NET_RAW in the binary's
	// permitted and effective sets: a file capability, as ping has, in the
	// security.capability attribute (struct vfs_cap_data, revision 2).
	if err := file(BinaryPath, 0o755, bin, map[string]string{"SCHILY.xattr.security.capability": string(NetRawCapability())}); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// NetRawCapability is the value of security.capability granting
// cap_net_raw+ep: magic (revision 2, effective), then permitted and
// inheritable for capabilities 0-31 and 32-63, little-endian.
func NetRawCapability() []byte {
	const vfsCapRevision2, vfsCapFlagsEffective = 0x02000000, 0x000001
	v := make([]byte, 20)
	binary.LittleEndian.PutUint32(v[0:], vfsCapRevision2|vfsCapFlagsEffective)
	binary.LittleEndian.PutUint32(v[4:], 1<<capNetRaw) // permitted, low word
	return v
}
