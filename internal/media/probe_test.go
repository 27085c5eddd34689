package media

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// probeResult is the subset of `ffprobe -print_format json` output we check.
type probeResult struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Profile    string `json:"profile"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		PixFmt     string `json:"pix_fmt"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
		NbFrames   string `json:"nb_frames"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

func (p probeResult) duration(t *testing.T) float64 {
	t.Helper()
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", p.Format.Duration, err)
	}
	return d
}

// needFFmpeg skips the test unless ffprobe and ffmpeg are on PATH.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH (apt-get install ffmpeg): skipping decoder check", tool)
		}
	}
}

// probeAndDecode writes data to a file named name, runs ffprobe on it, and
// decodes it fully with ffmpeg, failing on any error message.
func probeAndDecode(t *testing.T, name string, data []byte) probeResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", name, err, stderr.String())
	}
	var res probeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	if len(res.Streams) != 1 {
		t.Fatalf("ffprobe: %d streams, want 1\n%s", len(res.Streams), out)
	}
	// Decode every frame; -xerror makes ffmpeg stop with an error status on
	// the first decoding error, and -v error prints any error message.
	dec := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path, "-f", "null", "-")
	msg, err := dec.CombinedOutput()
	if err != nil || len(msg) > 0 {
		t.Fatalf("ffmpeg decode %s: %v\n%s", name, err, msg)
	}
	return res
}

func TestVideoFFprobe(t *testing.T) {
	needFFmpeg(t)
	cases := []struct {
		w, h         int
		seconds      float64
		wantW, wantH int
		wantDur      float64
	}{
		{1280, 720, 5, 1280, 720, 5},
		{1920, 1080, 3, 1920, 1080, 3},
		{720, 1280, 2, 720, 1280, 2},
		{64, 64, 1, 64, 64, 1},
		{1080, 1080, 2.5, 1080, 1080, 2.5},
		{100, 50, 1.234, 100, 50, 1.234}, // not multiples of 16: cropped
		{1, 1, 0.1, 2, 2, 0.1},           // odd sizes round up to even
		{33, 17, 0.05, 34, 18, 0.05},
		{3840, 2160, 0.3, 3840, 2160, 0.3},
		{16, 4000, 0.2, 16, 4000, 0.2},
		{640, 360, 42, 640, 360, MaxVideoSeconds}, // capped
	}
	for _, c := range cases {
		name := strconv.Itoa(c.w) + "x" + strconv.Itoa(c.h)
		t.Run(name, func(t *testing.T) {
			data, err := Video(c.w, c.h, c.seconds, 7)
			if err != nil {
				t.Fatal(err)
			}
			res := probeAndDecode(t, name+".mp4", data)
			s := res.Streams[0]
			if s.CodecName != "h264" || s.CodecType != "video" {
				t.Errorf("codec = %s/%s, want video/h264", s.CodecType, s.CodecName)
			}
			if s.Width != c.wantW || s.Height != c.wantH {
				t.Errorf("size = %dx%d, want %dx%d", s.Width, s.Height, c.wantW, c.wantH)
			}
			if s.PixFmt != "yuv420p" {
				t.Errorf("pix_fmt = %s, want yuv420p", s.PixFmt)
			}
			if d := res.duration(t); d <= 0 || math.Abs(d-c.wantDur) > 0.002 {
				t.Errorf("duration = %v, want %v", d, c.wantDur)
			}
			wantFrames := int(math.Ceil(c.wantDur*VideoFPS - 1e-9))
			if s.NbFrames != strconv.Itoa(wantFrames) {
				t.Errorf("nb_frames = %s, want %d", s.NbFrames, wantFrames)
			}
		})
	}
}

// TestVideoPixels decodes a frame with ffmpeg and checks that the picture
// is the seed's gradient: dark to light luma and a uniform chroma.
func TestVideoPixels(t *testing.T) {
	needFFmpeg(t)
	const w, h = 96, 48
	for _, seed := range []int64{1, 2, 3} {
		data, err := Video(w, h, 0.3, seed)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "v.mp4")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path,
			"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != w*h*3/2 {
			t.Fatalf("raw frame = %d bytes, want %d", len(out), w*h*3/2)
		}
		fc := newFrameColors(seed)
		y := out[:w*h]
		if first, last := int(y[0]), int(y[w*h-1]); abs(first-fc.y0) > 3 || abs(last-fc.y1) > 3 {
			t.Errorf("seed %d: luma corners %d..%d, want about %d..%d", seed, first, last, fc.y0, fc.y1)
		}
		cb := out[w*h : w*h+w*h/4]
		for i, v := range cb {
			if abs(int(v)-fc.cb) > 2 {
				t.Fatalf("seed %d: Cb[%d] = %d, want about %d", seed, i, v, fc.cb)
			}
		}
	}
}

func TestAudioFFprobe(t *testing.T) {
	needFFmpeg(t)
	cases := []struct {
		format, codec string
		seconds       float64
		tol           float64
	}{
		{"mp3", "mp3", 10, 0.03},
		{"mp3", "mp3", 1, 0.03},
		{"mp3", "mp3", 0.2, 0.03},
		{"mp3", "mp3", 123.4, 0.03},
		{"mp3", "mp3", 0.001, 0.06}, // two frames minimum: 52 ms
		{"wav", "pcm_s16le", 10, 0.001},
		{"wav", "pcm_s16le", 0.01, 0.001},
		{"wav", "pcm_s16le", 61.5, 0.001},
	}
	for _, c := range cases {
		name := c.format + "_" + strconv.FormatFloat(c.seconds, 'f', -1, 64)
		t.Run(name, func(t *testing.T) {
			data, err := Audio(c.format, c.seconds, 3)
			if err != nil {
				t.Fatal(err)
			}
			res := probeAndDecode(t, "a."+c.format, data)
			s := res.Streams[0]
			if s.CodecType != "audio" || s.CodecName != c.codec {
				t.Errorf("codec = %s/%s, want audio/%s", s.CodecType, s.CodecName, c.codec)
			}
			if d := res.duration(t); d <= 0 || d < c.seconds-1e-3 || d > c.seconds+c.tol {
				t.Errorf("duration = %v, want %v (+%v)", d, c.seconds, c.tol)
			}
		})
	}
}
