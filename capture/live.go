package capture

// LiveOptions configure a live capture.
type LiveOptions struct {
	Interface string
	Ports     []int // required: the kernel filter keeps only these
	// BufferSize is the kernel ring buffer in bytes (default 64 MiB).
	// Packets arriving faster than they are read are dropped there and
	// counted as kernel drops.
	BufferSize int
}
