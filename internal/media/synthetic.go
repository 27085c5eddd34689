package media

import (
	"encoding/binary"
	"errors"
	"io"
)

// Synthetic returns a deterministic pseudo-random stream of exactly size
// bytes (a negative size gives an empty stream). The same (size, seed)
// always yields the same bytes, and a shorter stream with the same seed is
// a prefix of a longer one.
//
// The bytes are splitmix64 in counter mode: the 8-byte block at index i is a
// hash of (seed, i), so reads at any offset cost O(1) to start and the
// stream uses constant memory whatever its size. The returned value is a
// *SyntheticReader, which also implements io.ReaderAt (so it can back
// http.ServeContent and io.SectionReader) and is safe for concurrent ReadAt
// calls. It is not a source of cryptographic randomness.
func Synthetic(size int64, seed int64) io.ReadSeeker {
	return &SyntheticReader{size: max(size, 0), key: seedKey(seed)}
}

// SyntheticReader is the stream returned by Synthetic. Read and Seek share
// one offset and must not be used concurrently; ReadAt may be.
type SyntheticReader struct {
	size int64
	key  uint64
	off  int64
}

var (
	_ io.ReadSeeker = (*SyntheticReader)(nil)
	_ io.ReaderAt   = (*SyntheticReader)(nil)
)

// Size returns the length of the stream in bytes.
func (r *SyntheticReader) Size() int64 { return r.size }

// block returns the 8 bytes of the stream starting at offset 8*i.
func (r *SyntheticReader) block(i int64) uint64 {
	return mix64(r.key + uint64(i+1)*0x9e3779b97f4a7c15)
}

// ReadAt implements io.ReaderAt: it fills p from offset off and returns
// io.EOF when fewer than len(p) bytes remain.
func (r *SyntheticReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("media: SyntheticReader.ReadAt: negative offset")
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	var err error
	if rem := r.size - off; int64(len(p)) > rem {
		p = p[:rem]
		err = io.EOF
	}
	n := len(p)
	i := off >> 3
	// Leading partial block.
	if skip := int(off & 7); skip != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.block(i))
		c := copy(p, b[skip:])
		p = p[c:]
		i++
	}
	// Whole blocks.
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, r.block(i))
		p = p[8:]
		i++
	}
	// Trailing partial block.
	if len(p) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.block(i))
		copy(p, b[:])
	}
	return n, err
}

// Read implements io.Reader.
func (r *SyntheticReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // report EOF on the next call, like most readers
	}
	return n, err
}

// Seek implements io.Seeker. Seeking past the end is allowed (reads then
// return io.EOF); seeking before the start is an error.
func (r *SyntheticReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return r.off, errors.New("media: SyntheticReader.Seek: invalid whence")
	}
	if abs < 0 {
		return r.off, errors.New("media: SyntheticReader.Seek: negative position")
	}
	r.off = abs
	return abs, nil
}
