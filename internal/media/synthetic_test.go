package media

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func readAll(t *testing.T, r io.Reader, chunk int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("Read returned 0, nil")
		}
	}
}

func TestSyntheticGolden(t *testing.T) {
	// Served bytes must never change for a given (size, seed): clients
	// may cache them and resume downloads with Range requests.
	got := make([]byte, 16)
	if _, err := io.ReadFull(Synthetic(16, 1), got); err != nil {
		t.Fatal(err)
	}
	const want = "2a22e2c396792890ef1b8020951ca1bb"
	if hex.EncodeToString(got) != want {
		t.Errorf("Synthetic(16, 1) = %x, want %s", got, want)
	}
}

func TestSyntheticSizesAndChunks(t *testing.T) {
	for _, size := range []int64{0, 1, 7, 8, 9, 63, 64, 65, 1000, 100003} {
		ref := readAll(t, Synthetic(size, 3), 1<<16)
		if int64(len(ref)) != size {
			t.Fatalf("size %d: read %d bytes", size, len(ref))
		}
		for _, chunk := range []int{1, 3, 8, 13, 4096} {
			if size > 2000 && chunk < 8 {
				continue
			}
			if got := readAll(t, Synthetic(size, 3), chunk); !bytes.Equal(got, ref) {
				t.Fatalf("size %d chunk %d: bytes differ", size, chunk)
			}
		}
		// ReadAt at random offsets and lengths agrees with the sequential read.
		r := Synthetic(size, 3).(io.ReaderAt)
		rng := rand.New(rand.NewPCG(1, uint64(size)))
		for i := 0; i < 200 && size > 0; i++ {
			off := rng.Int64N(size)
			buf := make([]byte, rng.IntN(100))
			n, err := r.ReadAt(buf, off)
			want := ref[off:min(off+int64(len(buf)), size)]
			if n != len(want) || !bytes.Equal(buf[:n], want) {
				t.Fatalf("size %d ReadAt(%d, %d): n=%d, bytes differ", size, len(buf), off, n)
			}
			if (n < len(buf)) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Fatalf("size %d ReadAt(%d, %d): n=%d err=%v", size, len(buf), off, n, err)
			}
		}
		// Longer streams with the same seed extend shorter ones.
		if longer := readAll(t, Synthetic(size+5, 3), 777); !bytes.Equal(longer[:size], ref) {
			t.Fatalf("size %d is not a prefix of size %d", size, size+5)
		}
	}
}

func TestSyntheticSeeds(t *testing.T) {
	a := readAll(t, Synthetic(64, 1), 64)
	b := readAll(t, Synthetic(64, 2), 64)
	if bytes.Equal(a, b) {
		t.Error("seeds 1 and 2 give the same bytes")
	}
	if c := readAll(t, Synthetic(-10, 1), 8); len(c) != 0 {
		t.Errorf("negative size read %d bytes", len(c))
	}
	// Roughly uniform bytes.
	var counts [256]int
	for _, v := range readAll(t, Synthetic(1<<16, 9), 4096) {
		counts[v]++
	}
	for v, c := range counts {
		if c < 150 || c > 370 { // mean 256
			t.Fatalf("byte %d occurs %d times in 64 KiB", v, c)
		}
	}
}

func TestSyntheticSeek(t *testing.T) {
	const size = 1000
	ref := readAll(t, Synthetic(size, 5), 100)
	r := Synthetic(size, 5)
	check := func(off int64, whence int, wantPos int64) {
		t.Helper()
		pos, err := r.Seek(off, whence)
		if err != nil || pos != wantPos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, wantPos)
		}
	}
	check(10, io.SeekStart, 10)
	buf := make([]byte, 5)
	if n, err := r.Read(buf); n != 5 || err != nil || !bytes.Equal(buf, ref[10:15]) {
		t.Fatalf("read after seek: %d %v", n, err)
	}
	check(5, io.SeekCurrent, 20)
	check(-3, io.SeekCurrent, 17)
	check(0, io.SeekCurrent, 17)
	check(-10, io.SeekEnd, 990)
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, ref[990:]) {
		t.Fatal("tail after SeekEnd differs")
	}
	check(0, io.SeekEnd, size)
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d %v", n, err)
	}
	check(50, io.SeekEnd, size+50) // past the end is allowed
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read past end: %d %v", n, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("negative seek succeeded")
	}
	if _, err := r.Seek(-size-1, io.SeekEnd); err == nil {
		t.Error("seek before start from end succeeded")
	}
	if _, err := r.Seek(0, 42); err == nil {
		t.Error("bad whence succeeded")
	}
	check(0, io.SeekCurrent, size+50) // failed seeks keep the position
	ra := r.(io.ReaderAt)
	if _, err := ra.ReadAt(buf, -1); err == nil {
		t.Error("ReadAt negative offset succeeded")
	}
	if n, err := ra.ReadAt(buf, size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at end: %d %v", n, err)
	}
	if n, err := ra.ReadAt(nil, size+10); n != 0 || err != nil {
		t.Errorf("empty ReadAt past end: %d %v", n, err)
	}
	if sr, ok := r.(*SyntheticReader); !ok || sr.Size() != size {
		t.Error("not a *SyntheticReader of the right size")
	}
}

// TestSyntheticServeContent serves a stream through http.ServeContent and
// checks a Range request.
func TestSyntheticServeContent(t *testing.T) {
	const size = 1 << 20
	ref := readAll(t, Synthetic(size, 11), 1<<16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ContentType("bin"))
		http.ServeContent(w, r, "", time.Time{}, Synthetic(size, 11))
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, ref[1000:2000]) {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 1000-1999/1048576" {
		t.Errorf("Content-Range %q", cr)
	}
}

// TestSyntheticNoAllocs reads a large stream (1 GiB, or 64 MiB with
// -short) and checks that the reader itself allocates nothing per read.
func TestSyntheticNoAllocs(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() || raceEnabled {
		size = 64 << 20
	}
	buf := make([]byte, 256<<10)
	var total int64
	allocs := testing.AllocsPerRun(1, func() {
		r := Synthetic(size, 1)
		total = 0
		for {
			n, err := r.Read(buf)
			total += int64(n)
			if errors.Is(err, io.EOF) {
				break
			}
		}
	})
	if total != size {
		t.Fatalf("read %d bytes, want %d", total, size)
	}
	if allocs > 2 {
		t.Errorf("%v allocations reading %d bytes, want O(1)", allocs, size)
	}
}

func BenchmarkSyntheticRead(b *testing.B) {
	buf := make([]byte, 64<<10)
	r := Synthetic(1<<30, 1)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read(buf); err == io.EOF {
			r.Seek(0, io.SeekStart)
		}
	}
}

func BenchmarkVideo1080p(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Video(1920, 1080, 10, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImagePNG1080p(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Image("png", 1920, 1080, 1); err != nil {
			b.Fatal(err)
		}
	}
}
