package gateway

import (
	"net/http"
	"testing"
)

func TestOutputHeaders(t *testing.T) {
	t.Parallel()
	j := &Job{ID: "job_abc", Kind: "image"}
	for _, tc := range []struct {
		kind, ct, key      string
		download           bool
		wantCT, wantDispos string
	}{
		{"image", "image/png", "t/ab/job_abc-0.png", false, "image/png", `inline; filename=job_abc-0.png`},
		{"image", "image/png", "t/ab/job_abc-0.png", true, "image/png", `attachment; filename=job_abc-0.png`},
		{"image", "", "t/ab/job_abc-0.jpg", false, "image/jpeg", `inline; filename=job_abc-0.jpg`},
		{"image", "text/html; charset=utf-8", "t/ab/job_abc-0.html", false, "application/octet-stream", `attachment; filename=job_abc-0.bin`},
		{"image", "image/svg+xml", "t/ab/job_abc-0.svg", false, "application/octet-stream", `attachment; filename=job_abc-0.bin`},
		{"video", "image/png", "t/ab/job_abc-0.png", false, "application/octet-stream", `attachment; filename=job_abc-0.bin`},
		{"video", "video/mp4", "t/ab/job_abc-0.mp4", false, "video/mp4", `inline; filename=job_abc-0.mp4`},
		{"audio", "application/octet-stream", "t/ab/job_abc-0.mp3", false, "audio/mpeg", `inline; filename=job_abc-0.mp3`},
	} {
		j.Kind = tc.kind
		h := http.Header{}
		setOutputHeaders(h, j, Output{Index: 0, ContentType: tc.ct, StorageKey: tc.key}, tc.download)
		if h.Get("Content-Type") != tc.wantCT || h.Get("Content-Disposition") != tc.wantDispos ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != outputCSP {
			t.Errorf("%s %q %s: %v", tc.kind, tc.ct, tc.key, h)
		}
	}
}
