package capture

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// Ethernet types and IP protocol numbers that the decoder walks.
const (
	ethIPv4    = 0x0800
	ethIPv6    = 0x86dd
	ethVLAN    = 0x8100 // 802.1Q
	ethQinQ    = 0x88a8 // 802.1ad
	ethQinQOld = 0x9100 // pre-standard QinQ, still seen
	ethQinQ2   = 0x9200

	protoTCP = 6
)

// vlanTypes are the tag types the decoder walks through, any number deep.
// The kernel filter accepts a frame tagged with any of them and leaves it
// to the decoder, so live capture and files read the same frames.
var vlanTypes = [...]uint16{ethVLAN, ethQinQ, ethQinQOld, ethQinQ2}

// isVLAN reports whether et is one of vlanTypes.
func isVLAN(et uint16) bool {
	for _, v := range vlanTypes {
		if et == v {
			return true
		}
	}
	return false
}

// Link types that are raw IP under another number: 12 and 14 are DLT_RAW as
// some BSDs number it.
const (
	linkRawBSD12 layers.LinkType = 12
	linkRawBSD14 layers.LinkType = 14
)

// supportedLink reports whether decodeLink understands link.
func supportedLink(link layers.LinkType) bool {
	switch link {
	case layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeLoop,
		layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypeRaw, linkRawBSD12, linkRawBSD14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return true
	}
	return false
}

// decodeResult says what a frame turned out to be.
type decodeResult int

const (
	decodedTCP       decodeResult = iota
	decodedNotTCP                 // a valid frame of another protocol (ARP, UDP, ICMP, ...)
	decodedFragment               // an IP fragment; fragments are not reassembled
	decodedMalformed              // headers that do not parse
)

// frame is the TCP segment found in a packet.
type frame struct {
	v6        bool
	src, dst  []byte // 4 or 16 bytes, aliasing the packet
	tcp       []byte // TCP header and payload, trimmed to the IP length
	truncated bool   // the snap length cut the IP packet short
}

// decodeLink finds the IP packet inside a frame of the given link type and
// decodes it into f. It never allocates.
func decodeLink(link layers.LinkType, data []byte, f *frame) decodeResult {
	switch link {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return decodedMalformed
		}
		et := binary.BigEndian.Uint16(data[12:14])
		data = data[14:]
		// Any number of 802.1Q / 802.1ad tags: each is 2 bytes of tag
		// control then the next type.
		for isVLAN(et) {
			if len(data) < 4 {
				return decodedMalformed
			}
			et = binary.BigEndian.Uint16(data[2:4])
			data = data[4:]
		}
		return decodeEtherType(et, data, f)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		// A 4-byte address family: host byte order of the capturing
		// machine for NULL, network order for LOOP. The value is small, so
		// whichever order gives a small number is the right one.
		if len(data) < 4 {
			return decodedMalformed
		}
		af := binary.LittleEndian.Uint32(data[:4])
		if link == layers.LinkTypeLoop || af > 0xffff {
			af = binary.BigEndian.Uint32(data[:4])
		}
		data = data[4:]
		switch af {
		case 2: // AF_INET everywhere
			return decodeIPv4(data, f)
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return decodeIPv6(data, f)
		}
		return decodedNotTCP
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return decodedMalformed
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[14:16]), data[16:], f)
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return decodedMalformed
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[0:2]), data[20:], f)
	case layers.LinkTypeRaw, linkRawBSD12, linkRawBSD14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(data) < 1 {
			return decodedMalformed
		}
		switch data[0] >> 4 {
		case 4:
			return decodeIPv4(data, f)
		case 6:
			return decodeIPv6(data, f)
		}
		return decodedMalformed
	}
	return decodedMalformed
}

func decodeEtherType(et uint16, data []byte, f *frame) decodeResult {
	switch et {
	case ethIPv4:
		return decodeIPv4(data, f)
	case ethIPv6:
		return decodeIPv6(data, f)
	}
	return decodedNotTCP
}

func decodeIPv4(data []byte, f *frame) decodeResult {
	if len(data) < 20 || data[0]>>4 != 4 {
		return decodedMalformed
	}
	ihl := int(data[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if ihl < 20 || len(data) < ihl {
		return decodedMalformed
	}
	if total == 0 {
		// TCP segmentation offload on the capturing host leaves 0 here.
		total = len(data)
	}
	if total < ihl {
		return decodedMalformed
	}
	if data[9] != protoTCP {
		return decodedNotTCP
	}
	// More-fragments flag or a non-zero offset.
	if binary.BigEndian.Uint16(data[6:8])&0x3fff != 0 {
		return decodedFragment
	}
	f.v6 = false
	f.src, f.dst = data[12:16], data[16:20]
	f.truncated = total > len(data)
	f.tcp = data[ihl:min(total, len(data))]
	return decodedTCP
}

func decodeIPv6(data []byte, f *frame) decodeResult {
	if len(data) < 40 || data[0]>>4 != 6 {
		return decodedMalformed
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	next := data[6]
	f.src, f.dst = data[8:24], data[24:40]
	end := 40 + plen
	if plen == 0 {
		// A jumbogram, or offload: take what was captured.
		end = len(data)
	}
	f.truncated = end > len(data)
	data = data[:min(end, len(data))]
	off := 40
	// Walk the extension headers up to TCP.
	for range 16 {
		switch next {
		case protoTCP:
			f.v6 = true
			f.tcp = data[off:]
			return decodedTCP
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(data) < off+8 {
				return decodedMalformed
			}
			next, off = data[off], off+(int(data[off+1])+1)*8
		case 51: // authentication header
			if len(data) < off+8 {
				return decodedMalformed
			}
			next, off = data[off], off+(int(data[off+1])+2)*4
		case 44: // fragment
			return decodedFragment
		default:
			return decodedNotTCP
		}
		if off > len(data) {
			return decodedMalformed
		}
	}
	return decodedMalformed
}
