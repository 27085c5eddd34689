// Package media generates small, real, deterministic media files in pure Go.
//
// The emulator serves these as the outputs of its tools: images (PNG, JPEG,
// GIF) drawn with the standard library, MP4 video carrying a hand-written
// H.264 Baseline bitstream, MP3 (MPEG-1 Layer III) and WAV audio, and a
// seekable pseudo-random byte stream for arbitrary-size downloads. Every
// output is a function of its arguments only: the same call returns the same
// bytes on every platform and run.
//
// The files are placeholders: they decode everywhere (Go's image package,
// browsers, ffprobe/ffmpeg) and have the requested dimensions, but their
// content is a seed-coloured gradient, silence or a quiet tone.
package media

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Limits enforced by the generators.
const (
	// MaxDimension is the largest accepted width or height, in pixels.
	MaxDimension = 8192
	// MaxSeconds is the longest accepted duration for Video and Audio.
	MaxSeconds = 600
	// MaxVideoSeconds caps the media duration of a generated video: a
	// longer request yields a video of exactly this length.
	MaxVideoSeconds = 10
	// VideoFPS is the frame rate of generated videos.
	VideoFPS = 10
)

// Sentinel errors wrapped by the generators' errors; test with errors.Is.
var (
	// ErrFormat reports an unsupported format name.
	ErrFormat = errors.New("media: unsupported format")
	// ErrSize reports a width or height outside [1, MaxDimension].
	ErrSize = errors.New("media: invalid dimensions")
	// ErrDuration reports a duration that is not in (0, MaxSeconds].
	ErrDuration = errors.New("media: invalid duration")
)

// normFormat lower-cases a format or extension and drops a leading dot.
func normFormat(s string) string {
	return strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), ".")
}

func checkSize(w, h int) error {
	if w < 1 || h < 1 || w > MaxDimension || h > MaxDimension {
		return fmt.Errorf("%w: %dx%d (each side must be in [1, %d])", ErrSize, w, h, MaxDimension)
	}
	return nil
}

func checkSeconds(s float64) error {
	if math.IsNaN(s) || s <= 0 || s > MaxSeconds {
		return fmt.Errorf("%w: %v s (must be > 0 and <= %d)", ErrDuration, s, MaxSeconds)
	}
	return nil
}

// mix64 is the splitmix64 finaliser: a fast, well-distributed 64-bit hash.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// seedKey turns a user seed into a well-mixed key.
func seedKey(seed int64) uint64 {
	return mix64(uint64(seed) ^ 0x6a09e667f3bcc909)
}

// contentTypes maps lower-case extensions (without dot) to MIME types.
var contentTypes = map[string]string{
	// video
	"mp4":  "video/mp4",
	"m4v":  "video/mp4",
	"mov":  "video/quicktime",
	"webm": "video/webm",
	"mkv":  "video/x-matroska",
	"avi":  "video/x-msvideo",
	"ogv":  "video/ogg",
	"ts":   "video/mp2t",
	"m3u8": "application/vnd.apple.mpegurl",
	// image
	"png":  "image/png",
	"jpg":  "image/jpeg",
	"jpeg": "image/jpeg",
	"gif":  "image/gif",
	"webp": "image/webp",
	"avif": "image/avif",
	"heic": "image/heic",
	"heif": "image/heif",
	"bmp":  "image/bmp",
	"tif":  "image/tiff",
	"tiff": "image/tiff",
	"svg":  "image/svg+xml",
	"ico":  "image/x-icon",
	// audio
	"mp3":  "audio/mpeg",
	"wav":  "audio/wav",
	"m4a":  "audio/mp4",
	"aac":  "audio/aac",
	"ogg":  "audio/ogg",
	"oga":  "audio/ogg",
	"opus": "audio/ogg",
	"flac": "audio/flac",
	"weba": "audio/webm",
	// other outputs
	"json": "application/json",
	"txt":  "text/plain; charset=utf-8",
	"srt":  "application/x-subrip",
	"vtt":  "text/vtt; charset=utf-8",
	"zip":  "application/zip",
	"pdf":  "application/pdf",
	"glb":  "model/gltf-binary",
	"gltf": "model/gltf+json",
	"bin":  "application/octet-stream",
}

// ContentType returns the MIME type for a file extension. The extension may
// have a leading dot, any case, or be a whole file name ("clip.MP4"). Unknown
// extensions map to "application/octet-stream".
func ContentType(ext string) string {
	e := strings.ToLower(strings.TrimSpace(ext))
	if i := strings.LastIndexByte(e, '.'); i >= 0 {
		e = e[i+1:]
	}
	if t, ok := contentTypes[e]; ok {
		return t
	}
	return "application/octet-stream"
}
