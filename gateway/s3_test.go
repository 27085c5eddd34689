package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/gateway/storage"
	"github.com/hourglasshq/hourglass/gateway/storage/storagetest"
)

func openS3(t *testing.T, u string) storage.Storage {
	t.Helper()
	s, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.(storage.Closer).Close() })
	return s
}

// verifyInStorage reads every output of j straight from the storage and
// checks size and sha256 against what the job recorded.
func verifyInStorage(t *testing.T, h *harness, s storage.Storage, id string) {
	t.Helper()
	outs, err := h.store.Outputs(context.Background(), id)
	if err != nil || len(outs) == 0 {
		t.Fatalf("outputs of %s: %d %v", id, len(outs), err)
	}
	for _, o := range outs {
		f, n, err := s.Open(context.Background(), o.StorageKey)
		if err != nil {
			t.Fatalf("%s output %d (%s): %v", id, o.Index, o.StorageKey, err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || n != o.Size || int64(len(b)) != o.Size || sha(b) != o.SHA256 {
			t.Fatalf("%s output %d in storage: %d bytes (%d read, err %v) sha %s; job says %d %s", id, o.Index, n, len(b), err, sha(b), o.Size, o.SHA256)
		}
	}
}

// Outputs go to S3 and are served from it, proxied or (StorageRedirect)
// as a redirect to a presigned URL that honours Range.
func TestS3Outputs(t *testing.T) {
	t.Parallel()
	for _, redirect := range []bool{false, true} {
		t.Run(fmt.Sprintf("redirect=%v", redirect), func(t *testing.T) {
			t.Parallel()
			s := openS3(t, storagetest.S3URL(t))
			h := newHarness(t, "sqlite://"+t.TempDir()+"/h.db", hopts{cfg: func(c *gateway.Config) {
				c.Storage = s
				if redirect {
					c.StorageRedirect = time.Minute
				}
			}})
			var ids []string
			for range 3 {
				ids = append(ids, h.submit("ai-image-generator", "", "").ID)
			}
			for _, id := range ids {
				j := h.wait(id)
				if j.Status != "stored" {
					t.Fatalf("%s: %s %+v", id, j.Status, j.Error)
				}
				h.checkOutputs(j) // follows the redirect when there is one
				verifyInStorage(t, h, s, id)
			}
			req, _ := http.NewRequest("GET", h.srv.URL+"/api/jobs/"+ids[0]+"/outputs/0", nil)
			req.Header.Set("Authorization", "Bearer "+h.tenantKey)
			req.Header.Set("Range", "bytes=10-19")
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusPartialContent
			if redirect {
				want = http.StatusFound
			}
			if resp.StatusCode != want {
				t.Fatalf("range GET: %s, want %d", resp.Status, want)
			}
			if redirect {
				loc := resp.Header.Get("Location")
				if !strings.HasPrefix(loc, "http://127.0.0.1:") || !strings.Contains(loc, "X-Amz-Signature") {
					t.Fatalf("redirect to %q", loc)
				}
				r2, _ := http.NewRequest("GET", loc, nil)
				r2.Header.Set("Range", "bytes=10-19")
				resp, err := http.DefaultClient.Do(r2)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusPartialContent || len(b) != 10 {
					t.Fatalf("presigned range: %s %d bytes", resp.Status, len(b))
				}
			}
		})
	}
}

// The S3 server down, then restarted while outputs are being written:
// /readyz says what is wrong, the output step retries, and every job ends
// stored with its object complete (size and sha256 as recorded).
func TestS3Outages(t *testing.T) {
	srv := storagetest.StartS3Server(t) // sets AWS_* for this test: not parallel
	s := openS3(t, srv.URL())
	h := newHarness(t, "sqlite://"+t.TempDir()+"/h.db", hopts{cfg: func(c *gateway.Config) { c.Storage = s }})

	srv.Stop()
	code, raw := h.do("GET", "/readyz", "", nil, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(raw), "unreachable") {
		t.Fatalf("readyz with S3 down: %d %s", code, raw)
	}
	var ids []string
	for range 4 {
		ids = append(ids, h.submit("ai-image-generator", "", "").ID)
	}
	waitFor(t, "a failed store", func() bool {
		for _, id := range ids {
			if count(h.events(id), "store_failed") > 0 {
				return true
			}
		}
		return false
	})
	for _, id := range ids {
		var j jobView
		h.do("GET", "/api/jobs/"+id, h.tenantKey, nil, &j)
		if j.Status == "stored" {
			t.Fatalf("%s stored while S3 was down", id)
		}
	}
	srv.Start()
	if code, raw := h.do("GET", "/readyz", "", nil, nil); code != http.StatusOK {
		t.Fatalf("readyz with S3 back: %d %s", code, raw)
	}

	// Restart the server while the next batch is being stored.
	var more []string
	for range 12 {
		more = append(more, h.submit("ai-image-generator", "", "").ID)
	}
	waitFor(t, "a stored output", func() bool {
		for _, id := range more {
			if count(h.events(id), "output_stored") > 0 {
				return true
			}
		}
		return false
	})
	srv.Stop()
	srv.Start()
	for _, id := range append(ids, more...) {
		j := h.wait(id)
		if j.Status != "stored" {
			t.Fatalf("%s: %s %+v", id, j.Status, j.Error)
		}
		h.checkOutputs(j)
		verifyInStorage(t, h, s, id)
	}
}
