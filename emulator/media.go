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

// synthetic returns a deterministic stream of size bytes in constant memory.
func (c *mediaCache) synthetic(size, seed int64) io.ReadSeeker { return media.Synthetic(size, seed) }
