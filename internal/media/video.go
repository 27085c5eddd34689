package media

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Video returns an MP4 file (ISO BMFF, brand isom, moov before mdat for
// progressive playback) with one H.264 Constrained Baseline video track of
// w×h pixels at VideoFPS frames per second, playable by browsers and
// ffmpeg.
//
// The picture is a still, seed-coloured gradient: one IDR frame followed by
// P frames that repeat it, so files are tiny (a few KB for 1080p). H.264
// 4:2:0 can only crop to even sizes, so an odd w or h is rounded up to the
// next even number (1x1 gives 2x2). The media duration is
// min(seconds, MaxVideoSeconds), exact to the millisecond; seconds must be in
// (0, MaxSeconds] and w, h in [1, MaxDimension].
func Video(w, h int, seconds float64, seed int64) ([]byte, error) {
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	if err := checkSeconds(seconds); err != nil {
		return nil, err
	}
	p := newH264Params(w, h, VideoFPS)
	durMS := int(math.Round(math.Min(seconds, MaxVideoSeconds) * 1000))
	durMS = max(durMS, 1)
	frameMS := 1000 / VideoFPS
	n := (durMS + frameMS - 1) / frameMS

	samples := make([][]byte, n)
	samples[0] = p.idrSlice(newFrameColors(seed))
	for i := 1; i < n; i++ {
		samples[i] = p.pSkipSlice(i)
	}
	// stts: n-1 frames of frameMS, the last one takes the remainder.
	durs := []sttsEntry{{count: uint32(n - 1), delta: uint32(frameMS)}, {count: 1, delta: uint32(durMS - (n-1)*frameMS)}}
	if n == 1 {
		durs = durs[1:]
	} else if durs[1].delta == uint32(frameMS) {
		durs = []sttsEntry{{count: uint32(n), delta: uint32(frameMS)}}
	}
	return muxMP4(p, samples, durs, uint32(durMS)), nil
}

type sttsEntry struct{ count, delta uint32 }

// mkbox builds an ISO BMFF box from its payload parts; boxes are built
// inside out.
func mkbox(typ string, parts ...[]byte) []byte {
	size := 8
	for _, p := range parts {
		size += len(p)
	}
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// fullbox prefixes version and flags.
func fullbox(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	vf := binary.BigEndian.AppendUint32(nil, uint32(version)<<24|flags&0xffffff)
	return mkbox(typ, append([][]byte{vf}, parts...)...)
}

func be(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		switch x := v.(type) {
		case uint8:
			b = append(b, x)
		case uint16:
			b = binary.BigEndian.AppendUint16(b, x)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, x)
		case int:
			b = binary.BigEndian.AppendUint32(b, uint32(x))
		case string:
			b = append(b, x...)
		case []byte:
			b = append(b, x...)
		default:
			panic(fmt.Sprintf("be: %T", v))
		}
	}
	return b
}

// unityMatrix is the identity transformation matrix of mvhd and tkhd.
var unityMatrix = be(uint32(0x00010000), 0, 0, 0, uint32(0x00010000), 0, 0, 0, uint32(0x40000000))

const movieTimescale = 1000 // milliseconds, for mvhd, tkhd and mdhd

func muxMP4(p h264Params, samples [][]byte, durs []sttsEntry, durMS uint32) []byte {
	sps, pps := p.sps(), p.pps()
	ftyp := mkbox("ftyp", be("isom", uint32(0x200), "isom", "iso2", "avc1", "mp41"))

	mvhd := fullbox("mvhd", 0, 0, be(
		0, 0, // creation, modification time
		movieTimescale, durMS,
		uint32(0x00010000), uint16(0x0100), uint16(0), // rate 1.0, volume 1.0, reserved
		0, 0, // reserved
		unityMatrix,
		0, 0, 0, 0, 0, 0, // pre_defined
		2, // next_track_ID
	))
	tkhd := fullbox("tkhd", 0, 3, be( // enabled, in movie
		0, 0, // creation, modification time
		1, 0, // track_ID, reserved
		durMS,
		0, 0, // reserved
		uint16(0), uint16(0), uint16(0), uint16(0), // layer, alternate_group, volume, reserved
		unityMatrix,
		uint32(p.w)<<16, uint32(p.h)<<16,
	))
	mdhd := fullbox("mdhd", 0, 0, be(0, 0, movieTimescale, durMS, uint16(0x55c4), uint16(0))) // language "und"
	hdlr := fullbox("hdlr", 0, 0, be(0, "vide", 0, 0, 0, "VideoHandler\x00"))
	vmhd := fullbox("vmhd", 0, 1, be(uint16(0), uint16(0), uint16(0), uint16(0)))
	dinf := mkbox("dinf", fullbox("dref", 0, 0, be(1), fullbox("url ", 0, 1)))

	avcC := mkbox("avcC", be(
		uint8(1), sps[1], sps[2], sps[3], // version, profile, compatibility, level
		uint8(0xff), // 6 reserved bits, lengthSizeMinusOne = 3
		uint8(0xe1), // 3 reserved bits, one SPS
		uint16(len(sps)), sps,
		uint8(1), uint16(len(pps)), pps,
	))
	compressor := make([]byte, 32)
	avc1 := mkbox("avc1", be(
		make([]byte, 6), uint16(1), // reserved, data_reference_index
		uint16(0), uint16(0), 0, 0, 0, // pre_defined, reserved, pre_defined
		uint16(p.w), uint16(p.h),
		uint32(0x00480000), uint32(0x00480000), // 72 dpi
		0, uint16(1), // reserved, frame_count
		compressor,
		uint16(0x0018), uint16(0xffff), // depth, pre_defined
	), avcC, mkbox("pasp", be(1, 1)))
	stsd := fullbox("stsd", 0, 0, be(1), avc1)

	stts := be(len(durs))
	for _, d := range durs {
		stts = append(stts, be(d.count, d.delta)...)
	}
	stsz := be(0, len(samples))
	mdatSize := 8
	for _, s := range samples {
		stsz = append(stsz, be(len(s)+4)...)
		mdatSize += len(s) + 4
	}
	stblWith := func(chunkOffset uint32) []byte {
		return mkbox("stbl",
			stsd,
			fullbox("stts", 0, 0, stts),
			fullbox("stss", 0, 0, be(1, 1)), // only sample 1 is a sync sample
			fullbox("stsc", 0, 0, be(1, 1, len(samples), 1)),
			fullbox("stsz", 0, 0, stsz),
			fullbox("stco", 0, 0, be(1, chunkOffset)),
		)
	}
	moovWith := func(chunkOffset uint32) []byte {
		minf := mkbox("minf", vmhd, dinf, stblWith(chunkOffset))
		return mkbox("moov", mvhd, mkbox("trak", tkhd, mkbox("mdia", mdhd, hdlr, minf)))
	}
	// The moov size does not depend on the offset's value.
	moovLen := len(moovWith(0))
	moov := moovWith(uint32(len(ftyp) + moovLen + 8))

	out := make([]byte, 0, len(ftyp)+len(moov)+mdatSize)
	out = append(out, ftyp...)
	out = append(out, moov...)
	out = binary.BigEndian.AppendUint32(out, uint32(mdatSize))
	out = append(out, "mdat"...)
	for _, s := range samples {
		out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out
}
