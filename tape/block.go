package tape

import (
	"encoding/binary"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Format versions this package reads, and writes: it writes MaxVersion,
// marked as readable only by readers of CompatVersion or later, because a
// version 1 reader would replay an HTTP/2 exchange as HTTP/1.x.
const (
	MinVersion    = 1
	MaxVersion    = 2
	CompatVersion = 2
)

const (
	fileHeaderSize  = 16
	blockHeaderSize = 40
	trailerSize     = 20
)

var (
	fileMagic    = [8]byte{0x89, 'H', 'E', 'R', 'D', '\r', '\n', 0x1a}
	trailerMagic = [8]byte{'H', 'E', 'R', 'D', 'I', 'N', 'D', 'X'}

	typeMeta  = [4]byte{'M', 'E', 'T', 'A'}
	typeChunk = [4]byte{'C', 'H', 'N', 'K'}
	typeStat  = [4]byte{'S', 'T', 'A', 'T'}
	typeIndex = [4]byte{'I', 'N', 'D', 'X'}

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func appendFileHeader(b []byte) []byte {
	b = append(b, fileMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, MaxVersion)
	b = binary.LittleEndian.AppendUint16(b, CompatVersion)
	return binary.LittleEndian.AppendUint32(b, crc(b[len(b)-12:]))
}

type blockHeader struct {
	typ         [4]byte
	payloadLen  uint32
	rawLen      uint32
	count       uint32
	first, last int64
	payloadCRC  uint32
}

func (h *blockHeader) append(b []byte) []byte {
	start := len(b)
	b = append(b, h.typ[:]...)
	b = binary.LittleEndian.AppendUint32(b, h.payloadLen)
	b = binary.LittleEndian.AppendUint32(b, h.rawLen)
	b = binary.LittleEndian.AppendUint32(b, h.count)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.first))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.last))
	b = binary.LittleEndian.AppendUint32(b, h.payloadCRC)
	return binary.LittleEndian.AppendUint32(b, crc(b[start:]))
}

// parseBlockHeader decodes a 40-byte block header and checks its CRC and
// bounds. It returns a reason for the first check that fails, or "".
func parseBlockHeader(b []byte) (blockHeader, string) {
	var h blockHeader
	if binary.LittleEndian.Uint32(b[36:]) != crc(b[:36]) {
		return h, "block header checksum mismatch"
	}
	copy(h.typ[:], b[:4])
	h.payloadLen = binary.LittleEndian.Uint32(b[4:])
	h.rawLen = binary.LittleEndian.Uint32(b[8:])
	h.count = binary.LittleEndian.Uint32(b[12:])
	h.first = int64(binary.LittleEndian.Uint64(b[16:]))
	h.last = int64(binary.LittleEndian.Uint64(b[24:]))
	h.payloadCRC = binary.LittleEndian.Uint32(b[32:])
	switch {
	case h.payloadLen == 0 || h.payloadLen > MaxPayload:
		return h, "payload length out of bounds"
	case h.rawLen > MaxRaw:
		return h, "raw length out of bounds"
	case h.typ == typeChunk && (h.count == 0 || h.count > MaxChunkRecords || h.count > h.rawLen):
		return h, "record count out of bounds"
	case h.typ == typeChunk && h.last < h.first:
		return h, "chunk time range reversed"
	case h.typ != typeChunk && h.count != 0:
		return h, "record count on a non-chunk block"
	case (h.typ == typeMeta || h.typ == typeStat) && h.rawLen > MaxJSONBlock:
		return h, "metadata block too large"
	}
	return h, ""
}

func knownType(t []byte) bool {
	return [4]byte(t) == typeChunk || [4]byte(t) == typeMeta || [4]byte(t) == typeStat || [4]byte(t) == typeIndex
}

// The zstd codecs are shared: EncodeAll and DecodeAll are safe for
// concurrent use, and the decoder's memory is capped by the format's raw
// block bound so no input can make it allocate more.
var (
	encOnce sync.Once
	enc     *zstd.Encoder
	decOnce sync.Once
	dec     *zstd.Decoder
)

func zstdEncoder() *zstd.Encoder {
	encOnce.Do(func() {
		var err error
		enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderCRC(false), // every block has its own CRC32C
			zstd.WithZeroFrames(true),
			zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic("zstd encoder options: " + err.Error())
		}
	})
	return enc
}

func zstdDecoder() *zstd.Decoder {
	decOnce.Do(func() {
		var err error
		dec, err = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxRaw),
			zstd.WithDecoderMaxWindow(MaxRaw),
			zstd.WithDecodeAllCapLimit(true),
			zstd.IgnoreChecksum(true))
		if err != nil {
			panic("zstd decoder options: " + err.Error())
		}
	})
	return dec
}

// decompress decodes a block payload that must expand to exactly rawLen
// bytes.
func decompress(payload []byte, rawLen uint32) ([]byte, string) {
	out, err := zstdDecoder().DecodeAll(payload, make([]byte, 0, rawLen))
	if err != nil {
		return nil, "zstd: " + err.Error()
	}
	if len(out) != int(rawLen) {
		return nil, "decompressed length differs from the header"
	}
	return out, ""
}
