package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/herd-replay/herd/internal/pcapgen"
	"golang.org/x/net/bpf"
)

type filterCase struct {
	name  string
	frame []byte
	keep  bool
}

// TestPortFilter runs the kernel filter in x/net/bpf's interpreter over
// frames it must keep and frames it must drop.
func TestPortFilter(t *testing.T) {
	seg := func(src, dst string) pcapgen.Segment {
		return pcapgen.Segment{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Flags: pcapgen.ACK, Payload: []byte("GET / HTTP/1.1\r\n\r\n")}
	}
	udp := pcapgen.AppendFrame(nil, pcapgen.Link{Type: layers.LinkTypeEthernet}, seg("10.0.0.1:5000", "10.0.0.2:80"))
	udp[14+9] = 17 // IPv4 protocol: UDP
	for _, link := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw} {
		vm := filterVM(t, []int{80, 8080}, link)
		l := pcapgen.Link{Type: link}
		cases := []filterCase{
			{"ipv4 to 80", pcapgen.AppendFrame(nil, l, seg("10.0.0.1:5000", "10.0.0.2:80")), true},
			{"ipv4 from 8080", pcapgen.AppendFrame(nil, l, seg("10.0.0.2:8080", "10.0.0.1:5000")), true},
			{"ipv4 other port", pcapgen.AppendFrame(nil, l, seg("10.0.0.1:5000", "10.0.0.2:81")), false},
			{"ipv6 to 80", pcapgen.AppendFrame(nil, l, seg("[2001:db8::1]:5000", "[2001:db8::2]:80")), true},
			{"ipv6 other port", pcapgen.AppendFrame(nil, l, seg("[2001:db8::1]:5000", "[2001:db8::2]:443")), false},
		}
		if link == layers.LinkTypeEthernet {
			cases = append(cases, filterCase{"udp to 80", udp, false})
			// Every tag type the decoder walks is left to it.
			for _, tpid := range vlanTypes {
				tagged := pcapgen.AppendFrame(nil, pcapgen.Link{Type: link, VLANs: []uint16{7}}, seg("10.0.0.1:5000", "10.0.0.2:81"))
				binary.BigEndian.PutUint16(tagged[12:], tpid)
				var f frame
				if decodeLink(link, tagged, &f) != decodedTCP {
					t.Fatalf("tag %#04x: the decoder does not find the TCP segment", tpid)
				}
				cases = append(cases, filterCase{fmt.Sprintf("tagged %#04x (filtered in user space)", tpid), tagged, true})
			}
		}
		for _, c := range cases {
			n, err := vm.Run(c.frame)
			if err != nil {
				t.Fatalf("%v %s: %v", link, c.name, err)
			}
			if (n > 0) != c.keep {
				t.Errorf("%v %s: filter returned %d, keep %v", link, c.name, n, c.keep)
			}
		}
	}
	if _, err := PortFilter(nil, layers.LinkTypeEthernet, false); err == nil {
		t.Error("a filter without ports was accepted")
	}
	if prog, err := PortFilter([]int{80}, layers.LinkTypeEthernet, true); err != nil || len(prog) == 0 {
		t.Errorf("loopback filter: %v", err)
	}
}

// TestPortFilterManyPorts: the filter takes as many ports as the CLI
// allows (64), on every link and with the loopback's extra check; a
// conditional jump reaches at most 255 instructions, so the program must
// stay within that whatever the number of ports.
func TestPortFilterManyPorts(t *testing.T) {
	ports := make([]int, 64)
	for i := range ports {
		ports[i] = 8000 + i
	}
	for _, link := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw} {
		// The VM has no packet-type extension: the loopback's program is
		// only assembled.
		if _, err := PortFilter(ports, link, true); err != nil {
			t.Errorf("%v, dropping outgoing: %v", link, err)
		}
		vm := filterVM(t, ports, link)
		for _, c := range []struct {
			src, dst string
			keep     bool
		}{
			{"10.0.0.1:5000", "10.0.0.2:8063", true},
			{"10.0.0.2:8000", "10.0.0.1:5000", true},
			{"[2001:db8::1]:5000", "[2001:db8::2]:8063", true},
			{"10.0.0.1:5000", "10.0.0.2:8064", false},
			{"[2001:db8::1]:5000", "[2001:db8::2]:7999", false},
		} {
			s := pcapgen.Segment{Src: netip.MustParseAddrPort(c.src), Dst: netip.MustParseAddrPort(c.dst), Flags: pcapgen.ACK}
			n, err := vm.Run(pcapgen.AppendFrame(nil, pcapgen.Link{Type: link}, s))
			if err != nil || (n > 0) != c.keep {
				t.Errorf("%v: %s -> %s: filter returned %d, %v; keep %v", link, c.src, c.dst, n, err, c.keep)
			}
		}
	}
	if _, err := PortFilter(append(ports, 9000), layers.LinkTypeEthernet, false); err == nil {
		t.Error("a filter of 65 ports was accepted")
	}
}

// filterVM loads the kernel filter of ports on link in x/net/bpf's VM.
func filterVM(t *testing.T, ports []int, link layers.LinkType) *bpf.VM {
	t.Helper()
	prog, err := PortFilter(ports, link, false)
	if err != nil {
		t.Fatalf("%v: %v", link, err)
	}
	ins, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}
