package emulator

import (
	"fmt"
	"io"
	"sync"

	"github.com/hourglasshq/hourglass/internal/media"
)

// mediaCache generates outputs with internal/media once per
// (media, format, dimensions, duration) and keeps the bytes.
type mediaCache struct {
	seed    int64
	mu      sync.Mutex
	entries map[output]*mediaEntry
}

type mediaEntry struct {
	once sync.Once
	b    []byte
	err  error
}

func newMediaCache(seed int64) *mediaCache {
	return &mediaCache{seed: seed, entries: map[output]*mediaEntry{}}
}

func clampDim(n int) int { return min(max(n, 16), media.MaxDimension) }

func (c *mediaCache) get(o output) ([]byte, error) {
	c.mu.Lock()
	ent := c.entries[o]
	if ent == nil {
		ent = &mediaEntry{}
		c.entries[o] = ent
	}
	c.mu.Unlock()
	ent.once.Do(func() {
		switch o.media {
		case "video":
			ent.b, ent.err = media.Video(clampDim(o.w), clampDim(o.h), o.seconds, c.seed)
		case "image":
			ent.b, ent.err = media.Image(o.format, clampDim(o.w), clampDim(o.h), c.seed)
		case "audio":
			ent.b, ent.err = media.Audio(o.format, o.seconds, c.seed)
		default:
			ent.err = fmt.Errorf("emulator: unknown media %q", o.media)
		}
		if ent.err != nil {
			ent.err = fmt.Errorf("emulator: generate %s %s: %w", o.media, o.format, ent.err)
		}
	})
	return ent.b, ent.err
}

func (c *mediaCache) contentType(ext string) string { return media.ContentType(ext) }

func (c *mediaCache) synthetic(size, seed int64) io.ReadSeeker { return newSynthetic(size, seed) }

// synthetic is a deterministic pseudo-random byte stream of a given size,
// generated on the fly (constant memory) and seekable.
type synthetic struct {
	size, off int64
	key       uint64
}

func newSynthetic(size, seed int64) *synthetic {
	return &synthetic{size: size, key: uint64(seed)*0x9e3779b97f4a7c15 + 1}
}

func splitmix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *synthetic) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-s.off))
	for i := 0; i < n; {
		word := splitmix(s.key ^ uint64(s.off>>3))
		j := int(s.off & 7)
		for ; j < 8 && i < n; j++ {
			p[i] = byte(word >> (8 * j))
			i++
			s.off++
		}
	}
	return n, nil
}

func (s *synthetic) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.off + offset
	case io.SeekEnd:
		abs = s.size + offset
	default:
		return 0, fmt.Errorf("emulator: bad whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("emulator: negative seek position %d", abs)
	}
	s.off = abs
	return abs, nil
}
