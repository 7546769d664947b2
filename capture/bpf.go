package capture

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// snapLen is what the kernel filter keeps of each accepted packet.
const snapLen = 262144

// packetOutgoing is PACKET_OUTGOING, the packet type of a frame the host
// sends, as the kernel filter's packet-type extension reports it.
const packetOutgoing = 4

// PortFilter builds the in-kernel (classic BPF) program of a live capture:
// accept TCP over IPv4 or IPv6 with either port in ports, drop the rest.
// link is the interface's framing, Ethernet or raw IP. With dropOutgoing
// (the loopback interface, where every packet passes twice: once sent,
// once received) the sent copy is dropped. IPv6 packets with extension
// headers, and VLAN-tagged frames the NIC did not untag (any of
// vlanTypes), are accepted and filtered in user space.
func PortFilter(ports []int, link layers.LinkType, dropOutgoing bool) ([]bpf.RawInstruction, error) {
	if len(ports) == 0 || len(ports) > 64 {
		return nil, fmt.Errorf("kernel filter takes 1 to 64 ports, got %d", len(ports))
	}
	var a asm
	if dropOutgoing {
		a.add(bpf.LoadExtension{Num: bpf.ExtType})
		a.jeq(packetOutgoing, "drop", "")
	}
	var l3 uint32 // offset of the IP header
	switch link {
	case layers.LinkTypeEthernet:
		l3 = 14
		a.add(bpf.LoadAbsolute{Off: 12, Size: 2})
		a.jeq(ethIPv4, "ipv4", "")
		a.jeq(ethIPv6, "ipv6", "")
		for _, et := range vlanTypes {
			a.jeq(uint32(et), "accept", "")
		}
		a.jump("drop")
	case layers.LinkTypeRaw:
		a.add(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		a.jeq(4, "ipv4", "")
		a.jeq(6, "ipv6", "drop")
	default:
		return nil, &UnsupportedLinkError{Link: link}
	}
	// A conditional jump reaches at most 255 instructions ahead, and each
	// port list is as long as ports: every block ends with verdicts of its
	// own rather than jumping over the others.
	a.verdicts("")

	a.label("ipv4")
	a.add(bpf.LoadAbsolute{Off: l3 + 9, Size: 1})
	a.jeq(protoTCP, "", "drop4")
	a.add(bpf.LoadAbsolute{Off: l3 + 6, Size: 2})
	a.jset(0x1fff, "drop4", "") // a fragment after the first: no TCP header
	a.add(bpf.LoadMemShift{Off: l3})
	a.add(bpf.LoadIndirect{Off: l3, Size: 2})
	a.ports(ports, "accept4", "")
	a.add(bpf.LoadIndirect{Off: l3 + 2, Size: 2})
	a.ports(ports, "accept4", "drop4")
	a.verdicts("4")

	a.label("ipv6")
	a.add(bpf.LoadAbsolute{Off: l3 + 6, Size: 1})
	a.jeq(protoTCP, "tcp6", "")
	for _, ext := range []uint32{0, 43, 44, 51, 60} {
		a.jeq(ext, "accept6", "")
	}
	a.jump("drop6")
	a.label("tcp6")
	a.add(bpf.LoadAbsolute{Off: l3 + 40, Size: 2})
	a.ports(ports, "accept6", "")
	a.add(bpf.LoadAbsolute{Off: l3 + 42, Size: 2})
	a.ports(ports, "accept6", "drop6")
	a.verdicts("6")
	return a.assemble()
}

// asm is a tiny assembler for classic BPF with named jump targets. A jump
// target "" falls through to the next instruction.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at          int
	true, false string
	always      string
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = make(map[string]int)
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) jeq(val uint32, t, f string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: t, false: f})
	a.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: val})
}

func (a *asm) jset(mask uint32, t, f string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: t, false: f})
	a.add(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: mask})
}

func (a *asm) jump(to string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), always: to})
	a.add(bpf.Jump{})
}

// verdicts places the two returns, accept (with the snap length) labelled
// "accept"+suffix and drop labelled "drop"+suffix.
func (a *asm) verdicts(suffix string) {
	a.label("accept" + suffix)
	a.add(bpf.RetConstant{Val: snapLen})
	a.label("drop" + suffix)
	a.add(bpf.RetConstant{Val: 0})
}

// ports compares the accumulator with each port: equal goes to t; after
// the last, f.
func (a *asm) ports(ports []int, t, f string) {
	for i, p := range ports {
		if i == len(ports)-1 {
			a.jeq(uint32(p), t, f)
		} else {
			a.jeq(uint32(p), t, "")
		}
	}
}

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	target := func(from int, name string) (uint8, error) {
		if name == "" {
			return 0, nil
		}
		to, ok := a.labels[name]
		if !ok {
			return 0, fmt.Errorf("bpf: no label %q", name)
		}
		skip := to - from - 1
		if skip < 0 || skip > 255 {
			return 0, fmt.Errorf("bpf: jump to %q out of range (%d)", name, skip)
		}
		return uint8(skip), nil
	}
	for _, fx := range a.fixups {
		switch ins := a.ins[fx.at].(type) {
		case bpf.JumpIf:
			var err error
			if ins.SkipTrue, err = target(fx.at, fx.true); err != nil {
				return nil, err
			}
			if ins.SkipFalse, err = target(fx.at, fx.false); err != nil {
				return nil, err
			}
			a.ins[fx.at] = ins
		case bpf.Jump:
			to, ok := a.labels[fx.always]
			if !ok {
				return nil, fmt.Errorf("bpf: no label %q", fx.always)
			}
			ins.Skip = uint32(to - fx.at - 1)
			a.ins[fx.at] = ins
		}
	}
	return bpf.Assemble(a.ins)
}
