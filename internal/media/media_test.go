package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"math"
	"strconv"
	"strings"
	"testing"
)

var sizes = []struct{ w, h int }{
	{1280, 720}, {1920, 1080}, {720, 1280}, {64, 64}, {1080, 1080}, {100, 50}, {1, 1}, {3, 7000},
}

func TestImage(t *testing.T) {
	for _, format := range []string{"png", "jpg", "jpeg", "gif", ".PNG"} {
		for _, sz := range sizes {
			name := format + "_" + strconv.Itoa(sz.w) + "x" + strconv.Itoa(sz.h)
			t.Run(name, func(t *testing.T) {
				data, err := Image(format, sz.w, sz.h, 42)
				if err != nil {
					t.Fatal(err)
				}
				m, got, err := image.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("image.Decode: %v", err)
				}
				want := strings.TrimPrefix(strings.ToLower(format), ".")
				if want == "jpg" {
					want = "jpeg"
				}
				if got != want {
					t.Errorf("decoded format %q, want %q", got, want)
				}
				if b := m.Bounds(); b.Dx() != sz.w || b.Dy() != sz.h {
					t.Errorf("decoded size %dx%d, want %dx%d", b.Dx(), b.Dy(), sz.w, sz.h)
				}
			})
		}
	}
}

func TestImageDeterministicAndSeeded(t *testing.T) {
	for _, f := range []string{"png", "jpg", "gif"} {
		a, _ := Image(f, 120, 80, 1)
		b, _ := Image(f, 120, 80, 1)
		c, _ := Image(f, 120, 80, 2)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: same seed gave different bytes", f)
		}
		if bytes.Equal(a, c) {
			t.Errorf("%s: different seeds gave the same bytes", f)
		}
	}
	// The picture is not a flat colour: opposite corners differ.
	data, _ := Image("png", 200, 100, 9)
	m, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.At(0, 0) == m.At(199, 99) && m.At(199, 0) == m.At(0, 99) {
		t.Error("gradient corners are all equal")
	}
}

func TestVideoDeterministic(t *testing.T) {
	a, _ := Video(320, 240, 2, 5)
	b, _ := Video(320, 240, 2, 5)
	c, _ := Video(320, 240, 2, 6)
	if !bytes.Equal(a, b) {
		t.Error("same seed gave different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same bytes")
	}
}

// boxes returns the top-level ISO BMFF boxes of data by type.
func boxes(t *testing.T, data []byte) (order []string, body map[string][]byte) {
	t.Helper()
	body = map[string][]byte{}
	for len(data) > 0 {
		if len(data) < 8 {
			t.Fatalf("truncated box header: %d bytes", len(data))
		}
		size := int(binary.BigEndian.Uint32(data))
		typ := string(data[4:8])
		if size < 8 || size > len(data) {
			t.Fatalf("box %q size %d, %d bytes left", typ, size, len(data))
		}
		order = append(order, typ)
		body[typ] = data[8:size]
		data = data[size:]
	}
	return order, body
}

// findBox descends a path of box types ("moov/trak/tkhd"), skipping
// full-box headers and sample-entry fields where the path crosses them.
func findBox(t *testing.T, data []byte, path string) []byte {
	t.Helper()
	for _, typ := range strings.Split(path, "/") {
		_, b := boxes(t, data)
		next, ok := b[typ]
		if !ok {
			t.Fatalf("no %q box on path %s", typ, path)
		}
		switch typ {
		case "stsd":
			next = next[8:] // version/flags, entry_count
		case "avc1":
			next = next[78:] // VisualSampleEntry fields
		}
		data = next
	}
	return data
}

func TestVideoStructure(t *testing.T) {
	for _, sz := range sizes {
		t.Run(strconv.Itoa(sz.w)+"x"+strconv.Itoa(sz.h), func(t *testing.T) {
			data, err := Video(sz.w, sz.h, 1.25, 3)
			if err != nil {
				t.Fatal(err)
			}
			order, top := boxes(t, data)
			if strings.Join(order, ",") != "ftyp,moov,mdat" {
				t.Fatalf("top-level boxes %v, want ftyp,moov,mdat", order)
			}
			wantW, wantH := sz.w+sz.w%2, sz.h+sz.h%2
			tkhd := findBox(t, top["moov"], "trak/tkhd")
			if w, h := binary.BigEndian.Uint32(tkhd[76:])>>16, binary.BigEndian.Uint32(tkhd[80:])>>16; int(w) != wantW || int(h) != wantH {
				t.Errorf("tkhd %dx%d, want %dx%d", w, h, wantW, wantH)
			}
			mvhd := findBox(t, top["moov"], "mvhd")
			if d := binary.BigEndian.Uint32(mvhd[16:]); d != 1250 {
				t.Errorf("mvhd duration %d ms, want 1250", d)
			}
			// The SPS in avcC describes the same cropped size.
			avcC := findBox(t, top["moov"], "trak/mdia/minf/stbl/stsd/avc1/avcC")
			spsLen := int(binary.BigEndian.Uint16(avcC[6:]))
			w, h := parseSPSSize(t, avcC[8:8+spsLen])
			if w != wantW || h != wantH {
				t.Errorf("SPS size %dx%d, want %dx%d", w, h, wantW, wantH)
			}
			// stco points at the first sample, whose 4-byte length prefix
			// announces an IDR NAL unit.
			stco := findBox(t, top["moov"], "trak/mdia/minf/stbl/stco")
			off := int(binary.BigEndian.Uint32(stco[8:]))
			if off+5 > len(data) || data[off+4]&0x1f != nalIDR {
				t.Errorf("stco offset %d does not point at an IDR NAL unit", off)
			}
		})
	}
}

// bitReader reads an RBSP for the SPS check.
type bitReader struct {
	b   []byte
	pos int
}

func (r *bitReader) u(n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) ue() uint64 {
	n := 0
	for r.u(1) == 0 {
		n++
	}
	return 1<<n - 1 + r.u(n)
}

// parseSPSSize decodes the cropped picture size from a Baseline SPS NAL
// unit as produced by this package (no emulation prevention bytes expected
// in the fields read).
func parseSPSSize(t *testing.T, sps []byte) (w, h int) {
	t.Helper()
	if sps[0]&0x1f != nalSPS || sps[1] != 66 {
		t.Fatalf("not a Baseline SPS: % x", sps[:4])
	}
	r := &bitReader{b: sps[4:]}
	r.ue() // sps id
	r.ue() // log2_max_frame_num_minus4
	r.ue() // pic_order_cnt_type (2)
	r.ue() // max_num_ref_frames
	r.u(1) // gaps
	mbW := int(r.ue()) + 1
	mbH := int(r.ue()) + 1
	r.u(1) // frame_mbs_only
	r.u(1) // direct_8x8
	w, h = 16*mbW, 16*mbH
	if r.u(1) == 1 {
		l, rt, tp, bt := r.ue(), r.ue(), r.ue(), r.ue()
		w -= 2 * int(l+rt)
		h -= 2 * int(tp+bt)
	}
	return w, h
}

func TestH264ResidualRoundTrip(t *testing.T) {
	// Every luma value is reachable from every prediction within ±1.
	for _, pred := range []int{0, 1, 100, 128, 200, 255} {
		for target := 0; target <= 255; target++ {
			_, recon := bestLevel(pred, target, lumaDCResidual, 40)
			if abs(recon-target) > 1 {
				t.Fatalf("pred %d target %d: recon %d", pred, target, recon)
			}
		}
	}
}

func TestEmulationPrevention(t *testing.T) {
	got := nal(3, nalSPS, []byte{0, 0, 0, 0, 0, 1, 0, 0, 4})
	want := []byte{0x67, 0, 0, 3, 0, 0, 3, 0, 1, 0, 0, 4}
	if !bytes.Equal(got, want) {
		t.Errorf("nal = % x, want % x", got, want)
	}
}

func TestAudioStructure(t *testing.T) {
	t.Run("mp3", func(t *testing.T) {
		data, err := Audio("MP3", 10, 1)
		if err != nil {
			t.Fatal(err)
		}
		frames := 0
		for off := 0; off < len(data); frames++ {
			h := data[off:]
			if len(h) < 4 || h[0] != 0xff || h[1] != 0xfb || h[2]&0xfc != 0x90 {
				t.Fatalf("frame %d at %d: bad header % x", frames, off, h[:min(4, len(h))])
			}
			off += 417 + int(h[2]>>1&1)
			if off > len(data) {
				t.Fatalf("frame %d overruns the file", frames)
			}
		}
		if want := int(math.Ceil(10 * 44100 / 1152.0)); frames != want {
			t.Errorf("%d frames, want %d", frames, want)
		}
		// Average bitrate is exactly nominal (to within one byte).
		if exp := float64(frames) * 1152 / 44100 * 128000 / 8; math.Abs(float64(len(data))-exp) > 1 {
			t.Errorf("size %d, want %.1f", len(data), exp)
		}
	})
	t.Run("wav", func(t *testing.T) {
		data, err := Audio(".wav", 1.5, 1)
		if err != nil {
			t.Fatal(err)
		}
		if string(data[:4]) != "RIFF" || string(data[8:16]) != "WAVEfmt " || string(data[36:40]) != "data" {
			t.Fatalf("bad RIFF header % x", data[:44])
		}
		if n := binary.LittleEndian.Uint32(data[40:]); int(n) != 2*36000 || len(data) != 44+2*36000 {
			t.Errorf("data size %d (file %d), want %d", n, len(data), 2*36000)
		}
		if int(binary.LittleEndian.Uint32(data[4:]))+8 != len(data) {
			t.Error("RIFF size mismatch")
		}
		// A quiet tone: peak within (0, 4000], silent at the edges.
		peak := 0
		for i := 44; i < len(data); i += 2 {
			peak = max(peak, abs(int(int16(binary.LittleEndian.Uint16(data[i:])))))
		}
		if peak < 2000 || peak > 4000 {
			t.Errorf("peak %d, want a quiet tone", peak)
		}
		if data[44] != 0 || data[45] != 0 {
			t.Error("first sample not silent (missing fade-in)")
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		a, _ := Audio("wav", 0.5, 1)
		b, _ := Audio("wav", 0.5, 1)
		c, _ := Audio("wav", 0.5, 2)
		if !bytes.Equal(a, b) || bytes.Equal(a, c) {
			t.Error("wav not deterministic per seed")
		}
	})
}

func TestSinQ16(t *testing.T) {
	for i := 0; i < 4096; i++ {
		phase := uint32(i) << 20
		want := math.Sin(2*math.Pi*float64(phase)/(1<<32)) * 65536
		if got := float64(sinQ16(phase)); math.Abs(got-want) > 0.003*65536 {
			t.Fatalf("sinQ16(%#x) = %v, want %v", phase, got, want)
		}
	}
}

func TestBadInputs(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name string
		call func() ([]byte, error)
		want error
		says string // substring the message must contain
	}{
		{"image empty format", func() ([]byte, error) { return Image("", 10, 10, 0) }, ErrFormat, "png, jpg, jpeg, gif"},
		{"image webp", func() ([]byte, error) { return Image("webp", 10, 10, 0) }, ErrFormat, "png, jpg, jpeg, gif"},
		{"image zero width", func() ([]byte, error) { return Image("png", 0, 10, 0) }, ErrSize, "8192"},
		{"image negative height", func() ([]byte, error) { return Image("png", 10, -5, 0) }, ErrSize, ""},
		{"image too wide", func() ([]byte, error) { return Image("png", MaxDimension+1, 1, 0) }, ErrSize, ""},
		{"image huge", func() ([]byte, error) { return Image("gif", math.MaxInt, math.MaxInt, 0) }, ErrSize, ""},
		{"image min int", func() ([]byte, error) { return Image("jpg", math.MinInt, 1, 0) }, ErrSize, ""},
		{"video zero", func() ([]byte, error) { return Video(0, 0, 1, 0) }, ErrSize, ""},
		{"video too tall", func() ([]byte, error) { return Video(16, MaxDimension+1, 1, 0) }, ErrSize, ""},
		{"video zero seconds", func() ([]byte, error) { return Video(16, 16, 0, 0) }, ErrDuration, ""},
		{"video negative seconds", func() ([]byte, error) { return Video(16, 16, -1, 0) }, ErrDuration, ""},
		{"video NaN", func() ([]byte, error) { return Video(16, 16, nan, 0) }, ErrDuration, ""},
		{"video +Inf", func() ([]byte, error) { return Video(16, 16, inf, 0) }, ErrDuration, ""},
		{"video -Inf", func() ([]byte, error) { return Video(16, 16, -inf, 0) }, ErrDuration, ""},
		{"video too long", func() ([]byte, error) { return Video(16, 16, MaxSeconds+0.5, 0) }, ErrDuration, ""},
		{"audio ogg", func() ([]byte, error) { return Audio("ogg", 1, 0) }, ErrFormat, "mp3, wav"},
		{"audio empty", func() ([]byte, error) { return Audio("", 1, 0) }, ErrFormat, "mp3, wav"},
		{"audio zero", func() ([]byte, error) { return Audio("mp3", 0, 0) }, ErrDuration, ""},
		{"audio NaN", func() ([]byte, error) { return Audio("wav", nan, 0) }, ErrDuration, ""},
		{"audio Inf", func() ([]byte, error) { return Audio("wav", inf, 0) }, ErrDuration, ""},
		{"audio too long", func() ([]byte, error) { return Audio("mp3", 1e300, 0) }, ErrDuration, ""},
		{"audio subnormal", func() ([]byte, error) { return Audio("mp3", -math.SmallestNonzeroFloat64, 0) }, ErrDuration, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := c.call()
			if err == nil || data != nil {
				t.Fatalf("got %d bytes, err %v; want error", len(data), err)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("error %v is not %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not mention %q", err, c.says)
			}
		})
	}
}

// Tiny positive durations and extreme seeds are valid.
func TestEdgeInputs(t *testing.T) {
	for _, seed := range []int64{0, -1, math.MinInt64, math.MaxInt64} {
		if _, err := Video(1, 1, math.SmallestNonzeroFloat64, seed); err != nil {
			t.Error(err)
		}
		if _, err := Audio("mp3", math.SmallestNonzeroFloat64, seed); err != nil {
			t.Error(err)
		}
		if data, err := Audio("wav", math.SmallestNonzeroFloat64, seed); err != nil || len(data) != 46 {
			t.Errorf("wav: %d bytes, %v", len(data), err)
		}
		if _, err := Image("gif", 1, 1, seed); err != nil {
			t.Error(err)
		}
	}
}

func FuzzGenerators(f *testing.F) {
	f.Add("png", 16, 16, 1.0, int64(1))
	f.Add("jpg", 1, 300, 0.01, int64(-1))
	f.Add("gif", 0, 5, -3.0, int64(0))
	f.Add("mp3", 17, 9, 2.5, int64(99))
	f.Add("wav", 5, 5, 0.001, int64(7))
	f.Add(".JPEG", -1, 1<<40, math.Inf(1), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, format string, w, h int, seconds float64, seed int64) {
		// Keep valid work small; invalid inputs must just fail cleanly.
		if w > 0 && h > 0 && w*h > 1<<14 {
			w, h = w%128+1, h%128+1
		}
		if seconds > 2 {
			seconds = math.Mod(seconds, 2)
		}
		if data, err := Image(format, w, h, seed); err == nil {
			m, _, derr := image.Decode(bytes.NewReader(data))
			if derr != nil || m.Bounds().Dx() != w || m.Bounds().Dy() != h {
				t.Fatalf("Image(%q, %d, %d): decode %v", format, w, h, derr)
			}
		}
		if data, err := Video(w, h, seconds, seed); err == nil && len(data) < 100 {
			t.Fatalf("Video: %d bytes", len(data))
		}
		if data, err := Audio(format, seconds, seed); err == nil && len(data) == 0 {
			t.Fatal("Audio: empty")
		}
	})
}

func TestContentType(t *testing.T) {
	cases := map[string]string{
		"mp4": "video/mp4", ".mp4": "video/mp4", "MP4": "video/mp4", "clip.mp4": "video/mp4",
		"png": "image/png", ".png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
		"gif": "image/gif", "webp": "image/webp", "webm": "video/webm", "mov": "video/quicktime",
		"mp3": "audio/mpeg", "wav": "audio/wav", "m4a": "audio/mp4", "json": "application/json",
		"": "application/octet-stream", "unknown": "application/octet-stream", ".": "application/octet-stream",
	}
	for ext, want := range cases {
		if got := ContentType(ext); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", ext, got, want)
		}
	}
}
