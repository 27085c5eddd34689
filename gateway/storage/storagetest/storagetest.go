// Package storagetest is the conformance suite every storage.Storage
// passes: round trips with size and sha256, atomic puts (a failed or
// canceled put leaves nothing), overwrites, deletes, key validation,
// seeks and HTTP Range reads, large streamed objects, concurrency, and the
// optional Checker and Presigner.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway/storage"
)

// Run runs the suite on s. Keys are put under prefix (a fresh one per
// run, so that runs sharing a bucket do not meet).
func Run(t *testing.T, s storage.Storage, prefix string) {
	t.Helper()
	ctx := context.Background()
	key := func(name string) string { return prefix + "/" + name }

	t.Run("RoundTrip", func(t *testing.T) {
		data := payload(1, 100_000)
		put(t, s, key("rt/0.mp4"), data)
		if got := read(t, s, key("rt/0.mp4")); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, differ from the %d put", len(got), len(data))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		put(t, s, key("empty/0"), nil)
		if got := read(t, s, key("empty/0")); len(got) != 0 {
			t.Fatalf("empty object reads %d bytes", len(got))
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		put(t, s, key("ow/0"), []byte("first version"))
		put(t, s, key("ow/0"), []byte("second"))
		if got := read(t, s, key("ow/0")); string(got) != "second" {
			t.Fatalf("after overwrite: %q", got)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		if _, _, err := s.Open(ctx, key("missing/0")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open missing: %v, want ErrNotFound", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		put(t, s, key("del/0"), []byte("x"))
		for i := range 2 {
			if err := s.Delete(ctx, key("del/0")); err != nil {
				t.Fatalf("delete %d: %v", i, err)
			}
		}
		if _, _, err := s.Open(ctx, key("del/0")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open deleted: %v", err)
		}
	})
	t.Run("BadKeys", func(t *testing.T) {
		for _, bad := range []string{"", "../x", "a/../../x", "/abs", `a\b`, "a//b", "a/./b", "a/"} {
			if _, _, err := s.Put(ctx, bad, bytes.NewReader([]byte("x"))); err == nil {
				t.Errorf("put key %q accepted", bad)
			}
			if _, _, err := s.Open(ctx, bad); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("open key %q: %v, want a key error", bad, err)
			}
		}
	})
	t.Run("FailedPutLeavesNothing", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(payload(2, 300_000)), errReader{})
		if _, _, err := s.Put(ctx, key("fail/0"), r); err == nil {
			t.Fatal("a failing reader was accepted")
		}
		if _, _, err := s.Open(ctx, key("fail/0")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("partial object visible: %v", err)
		}
	})
	t.Run("CanceledPutLeavesNothing", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(payload(3, 7<<20)), n: 6 << 20, cancel: cancel}
		if _, _, err := s.Put(cctx, key("cancel/0"), r); err == nil {
			t.Fatal("a put whose context was canceled succeeded")
		}
		if _, _, err := s.Open(ctx, key("cancel/0")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("partial object visible: %v", err)
		}
	})
	t.Run("LargeStreamed", func(t *testing.T) {
		// Larger than one S3 part (5 MiB): exercises multipart uploads.
		const size = 12<<20 + 12345
		h := sha256.New()
		src := io.TeeReader(io.LimitReader(newRand(4), size), h)
		n, sum, err := s.Put(ctx, key("large/0"), src)
		if err != nil || n != size || sum != hex.EncodeToString(h.Sum(nil)) {
			t.Fatalf("put: %d %s %v", n, sum, err)
		}
		f, sz, err := s.Open(ctx, key("large/0"))
		if err != nil || sz != size {
			t.Fatalf("open: %d %v", sz, err)
		}
		defer f.Close()
		h2 := sha256.New()
		if m, err := io.Copy(h2, f); err != nil || m != size || !bytes.Equal(h2.Sum(nil), h.Sum(nil)) {
			t.Fatalf("read back %d bytes, err %v, sha equal %v", m, err, bytes.Equal(h2.Sum(nil), h.Sum(nil)))
		}
	})
	t.Run("Seek", func(t *testing.T) {
		data := payload(5, 50_000)
		put(t, s, key("seek/0"), data)
		f, _, err := s.Open(ctx, key("seek/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil || end != int64(len(data)) {
			t.Fatalf("seek end: %d %v", end, err)
		}
		for _, off := range []int64{40_000, 7, 0, 49_990} {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, data[off:off+10]) {
				t.Fatalf("at %d: %q %v", off, buf, err)
			}
		}
	})
	t.Run("HTTPRange", func(t *testing.T) {
		data := payload(6, 64_000)
		put(t, s, key("range/0"), data)
		f, _, err := s.Open(ctx, key("range/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Range", "bytes=1000-1999")
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "", time.Time{}, f)
		if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[1000:2000]) {
			t.Fatalf("range: %d, %d bytes", rec.Code, rec.Body.Len())
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				data := payload(uint64(10+i), 20_000+i)
				k := key(fmt.Sprintf("conc/%d", i))
				if _, _, err := s.Put(ctx, k, bytes.NewReader(data)); err != nil {
					errs <- err
					return
				}
				if got := read(t, s, k); !bytes.Equal(got, data) {
					errs <- fmt.Errorf("%s differs", k)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	if c, ok := s.(storage.Checker); ok {
		t.Run("Check", func(t *testing.T) {
			if err := c.Check(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if p, ok := s.(storage.Presigner); ok {
		t.Run("Presign", func(t *testing.T) {
			data := payload(7, 30_000)
			put(t, s, key("presign/0"), data)
			u, err := p.PresignGet(ctx, key("presign/0"), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			req.Header.Set("Range", "bytes=100-199")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) {
				t.Fatalf("presigned range GET: %s, %d bytes", resp.Status, len(body))
			}
		})
	}
}

func put(t *testing.T, s storage.Storage, key string, data []byte) {
	t.Helper()
	n, sum, err := s.Put(context.Background(), key, bytes.NewReader(data))
	want := sha256.Sum256(data)
	if err != nil || n != int64(len(data)) || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("put %s: %d %s %v", key, n, sum, err)
	}
}

func read(t *testing.T, s storage.Storage, key string) []byte {
	t.Helper()
	f, n, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil || int64(len(b)) != n {
		t.Fatalf("read %s: %d of %d bytes, %v", key, len(b), n, err)
	}
	return b
}

func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(newRand(seed), b)
	return b
}

// newRand is a deterministic byte stream.
func newRand(seed uint64) io.Reader { return rand.NewChaCha8(seedBytes(seed)) }

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// cancelAfter cancels a context once n bytes were read, then keeps
// reading (the storage must notice the canceled context).
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	m, err := c.r.Read(p)
	c.read += m
	if c.read >= c.n {
		c.cancel()
	}
	return m, err
}
