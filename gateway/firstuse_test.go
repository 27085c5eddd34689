package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

type listResp struct {
	Jobs       []jobView `json:"jobs"`
	NextCursor string    `json:"next_cursor"`
}

// Issue 11 item 14: list cursor checked, no next_cursor after a full last
// page, several statuses, metadata and creation-time filters.
func TestListQueryFirstUse(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1}) // API only: jobs stay pending
		for i := range 4 {
			req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""),
				"metadata": map[string]any{"user": fmt.Sprintf("u%d", i%2), "n": i, "vip": i == 3}}
			if code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, nil); code != http.StatusAccepted {
				t.Fatalf("submit: %d %s", code, raw)
			}
		}
		// A full last page: 4 jobs, pages of 2 -> the second has no cursor.
		var r listResp
		h.do("GET", "/api/jobs?limit=2", h.tenantKey, nil, &r)
		if len(r.Jobs) != 2 || r.NextCursor == "" {
			t.Fatalf("first page: %d jobs, cursor %q", len(r.Jobs), r.NextCursor)
		}
		var r2 listResp
		h.do("GET", "/api/jobs?limit=2&cursor="+r.NextCursor, h.tenantKey, nil, &r2)
		if len(r2.Jobs) != 2 || r2.NextCursor != "" {
			t.Fatalf("full last page: %d jobs, next_cursor %q (want none)", len(r2.Jobs), r2.NextCursor)
		}
		for _, bad := range []string{"cursor=garbage", "cursor=job_%00", "status=pending,bogus", "created_after=yesterday",
			"metadata.a%22b=1"} {
			code, raw := h.do("GET", "/api/jobs?"+bad, h.tenantKey, nil, nil)
			if code != http.StatusBadRequest || !strings.Contains(string(raw), strings.SplitN(strings.SplitN(bad, "=", 2)[0], ".", 2)[0]) {
				t.Errorf("%s: %d %s, want 400 naming the parameter", bad, code, raw)
			}
		}
		n := func(q string) int {
			t.Helper()
			var r listResp
			if code, raw := h.do("GET", "/api/jobs?"+q, h.tenantKey, nil, &r); code != http.StatusOK {
				t.Fatalf("%s: %d %s", q, code, raw)
			}
			return len(r.Jobs)
		}
		cases := []struct {
			q    string
			want int
		}{
			{"status=pending,stored", 4},
			{"status=stored&status=pending", 4},
			{"status=stored,error", 0},
			{"metadata.user=u1", 2},
			{"metadata.user=u1&metadata.n=3", 1},
			{"metadata.vip=true", 1},
			{"metadata.user=nobody", 0},
			{"created_after=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), 4},
			{"created_before=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), 0},
			{"created_after=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), 0},
		}
		for _, c := range cases {
			if got := n(c.q); got != c.want {
				t.Errorf("%s: %d jobs, want %d", c.q, got, c.want)
			}
		}
	})
}

// Issue 11 item 14: the refusal of a private callback URL names the flag.
func TestPrivateCallbackRefusalNamesFlag(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sqlite://"+t.TempDir()+"/hg.db", hopts{workers: -1, denyPrivateCallbacks: true})
	req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", ""), "callback_url": "http://127.0.0.1:9/cb"}
	code, raw := h.do("POST", "/api/jobs", h.tenantKey, req, nil)
	if code != http.StatusBadRequest || !strings.Contains(string(raw), "--allow-private-callbacks") {
		t.Fatalf("private callback: %d %s, want 400 naming --allow-private-callbacks", code, raw)
	}
}

var pngHead = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

// upload posts a multipart or raw body to /api/uploads.
func (h *harness) upload(path string, body io.Reader, contentType string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.tenantKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func multipartBody(t *testing.T, field, filename string, content []byte) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	mw.Close()
	return &b, mw.FormDataContentType()
}

// Issue 11 item 11: multipart uploads store the file, not the envelope;
// the signature must match the extension; refusals leave nothing behind.
func TestUploadMultipartAndSignature(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1})
		file := append(append([]byte{}, pngHead...), bytes.Repeat([]byte{7}, 5000)...)
		body, ct := multipartBody(t, "file", "photo.png", file)
		code, raw := h.upload("/api/uploads", body, ct)
		if code != http.StatusCreated || !strings.Contains(string(raw), fmt.Sprintf(`"size":%d`, len(file))) {
			t.Fatalf("multipart upload: %d %s (want 201 with size %d)", code, raw, len(file))
		}
		if want := sha(file); !strings.Contains(string(raw), want) {
			t.Fatalf("multipart upload stored other bytes than the file: %s (want sha %s)", raw, want)
		}
		// Raw body, as before.
		if code, raw := h.upload("/api/uploads?extension=png", bytes.NewReader(file), "image/png"); code != http.StatusCreated {
			t.Fatalf("raw upload: %d %s", code, raw)
		}
		// A JPEG named .png, raw and multipart; a text file named .mp4.
		jpeg := append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF"), bytes.Repeat([]byte{1}, 100)...)
		body, ct = multipartBody(t, "file", "photo.png", jpeg)
		for name, send := range map[string]func() (int, []byte){
			"multipart jpeg as png": func() (int, []byte) { return h.upload("/api/uploads", body, ct) },
			"raw jpeg as png":       func() (int, []byte) { return h.upload("/api/uploads?extension=png", bytes.NewReader(jpeg), "") },
			"text as mp4": func() (int, []byte) {
				return h.upload("/api/uploads?filename=a.mp4", strings.NewReader("hello world, not a video"), "")
			},
		} {
			code, raw := send()
			if code != http.StatusBadRequest || !strings.Contains(string(raw), "file_signature_mismatch") {
				t.Errorf("%s: %d %s, want 400 file_signature_mismatch", name, code, raw)
			}
		}
		// A multipart body without a file part.
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("x", "y")
		mw.Close()
		if code, raw := h.upload("/api/uploads", &b, mw.FormDataContentType()); code != http.StatusBadRequest || !strings.Contains(string(raw), "missing_file") {
			t.Errorf("multipart without a file: %d %s", code, raw)
		}
		// Refused uploads recorded nothing: only the two accepted ones.
		if n := countRows(t, h.store, "uploads"); n != 2 {
			t.Errorf("%d upload rows, want 2 (refusals leave no partial state)", n)
		}
	})
}

// countRows counts a table's rows through the store's test hook.
func countRows(t *testing.T, s gateway.Store, table string) int {
	t.Helper()
	n, err := gateway.CountRowsForTest(s, table)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue 11 item 12: a tenant at its storage quota gets 413 for uploads
// and 507 for submits, with a message naming the limit; other tenants
// are not affected.
func TestTenantStorageQuota(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, hopts{workers: -1, cfg: func(c *gateway.Config) { c.TenantStorageQuota = 4000 }})
		file := append(append([]byte{}, pngHead...), bytes.Repeat([]byte{7}, 5000)...)
		if code, raw := h.upload("/api/uploads?extension=png", bytes.NewReader(file), ""); code != http.StatusCreated {
			t.Fatalf("first upload (under the quota): %d %s", code, raw)
		}
		code, raw := h.upload("/api/uploads?extension=png", bytes.NewReader(file), "")
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "storage quota of 4000 bytes") {
			t.Fatalf("upload over the quota: %d %s, want 413 naming the quota", code, raw)
		}
		// The drop-in upload URL (an SDK's Files.Upload) is refused too.
		if _, err := h.sdk().Files.UploadReader(t.Context(), bytes.NewReader(file), int64(len(file)), "png"); err == nil || !strings.Contains(err.Error(), "413") {
			t.Fatalf("drop-in upload over the quota: %v, want a 413", err)
		}
		req := map[string]any{"tool": "ai-image-generator", "params": params(t, "ai-image-generator", "")}
		code, raw = h.do("POST", "/api/jobs", h.tenantKey, req, nil)
		if code != http.StatusInsufficientStorage || !strings.Contains(string(raw), "storage_quota_exceeded") {
			t.Fatalf("submit over the quota: %d %s, want 507", code, raw)
		}
		_, other, err := gateway.CreateTenant(t.Context(), h.store, "other", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code, raw := h.do("POST", "/api/jobs", other, req, nil); code != http.StatusAccepted {
			t.Fatalf("another tenant's submit: %d %s", code, raw)
		}
	})
}
