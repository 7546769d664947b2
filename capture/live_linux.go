//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
)

// ARPHRD_* hardware types of /sys/class/net/IFACE/type that live capture
// reads.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	arphrdNone     = 65534 // tun devices: raw IP
)

// pollInterval is how long a live read waits before handing control back
// (ErrNoPacket), so cancellation and the packet clock are never stuck.
const pollInterval = 100 * time.Millisecond

type liveSource struct {
	tp   *afpacket.TPacket
	link layers.LinkType
}

// OpenLive starts capturing on a Linux interface through AF_PACKET (pure
// Go, no libpcap), with a kernel filter keeping TCP on opts.Ports. On the
// loopback interface the kernel's copy of each sent packet is filtered
// out, or every packet would be read twice.
func OpenLive(opts LiveOptions) (Source, error) {
	if len(opts.Ports) == 0 {
		return nil, errors.New("live capture needs at least one port")
	}
	ifi, err := net.InterfaceByName(opts.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", opts.Interface, err)
	}
	hw, err := hardwareType(ifi.Name)
	if err != nil {
		return nil, err
	}
	var link layers.LinkType
	switch hw {
	case arphrdEther, arphrdLoopback:
		link = layers.LinkTypeEthernet
	case arphrdNone:
		link = layers.LinkTypeRaw
	default:
		return nil, fmt.Errorf("interface %s has hardware type %d; live capture reads Ethernet, loopback and raw IP (tun) interfaces", ifi.Name, hw)
	}
	prog, err := PortFilter(opts.Ports, link, hw == arphrdLoopback)
	if err != nil {
		return nil, err
	}
	size := opts.BufferSize
	if size <= 0 {
		size = 64 << 20
	}
	const frame = 1 << 16
	const block = frame * 16
	blocks := max(4, size/block)
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(ifi.Name),
		afpacket.OptFrameSize(frame),
		afpacket.OptBlockSize(block),
		afpacket.OptNumBlocks(blocks),
		afpacket.OptPollTimeout(pollInterval),
		afpacket.OptBlockTimeout(10*time.Millisecond),
		afpacket.TPacketVersion3,
	)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open AF_PACKET socket on %s: %w (needs root or CAP_NET_RAW)", ifi.Name, err)
		}
		return nil, fmt.Errorf("open AF_PACKET socket on %s: %w", ifi.Name, err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("attach kernel filter: %w", err)
	}
	// Packets that arrived between opening the socket and attaching the
	// filter are still decoded and filtered by port in user space.
	return &liveSource{tp: tp, link: link}, nil
}

func hardwareType(iface string) (int, error) {
	b, err := os.ReadFile("/sys/class/net/" + iface + "/type")
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", iface, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (s *liveSource) Next(p *Packet) error {
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, afpacket.ErrTimeout) {
			return ErrNoPacket
		}
		return fmt.Errorf("read packet: %w", err)
	}
	p.Data, p.Time, p.Length, p.Link = data, ci.Timestamp, ci.Length, s.link
	return nil
}

// Drops returns the packets the kernel dropped because the ring was full.
func (s *liveSource) Drops() (int64, error) {
	v1, v3, err := s.tp.SocketStats()
	if err != nil {
		return 0, err
	}
	return int64(v1.Drops() + v3.Drops()), nil
}

func (s *liveSource) Close() error {
	s.tp.Close()
	return nil
}
