package magichour

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
)

func TestFaceDetection(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodPost {
			writeJSON(w, 200, map[string]any{"id": "fd-1", "credits_charged": 0})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"fd-1","credits_charged":0,"status":"complete","faces":[{"path":"api-assets/id/0-0.png","url":"https://videos.example/0-0.png"}]}`)
	})
	c := newTestClient(t, f.URL)
	ctx := context.Background()
	res, err := c.FaceDetection.Create(ctx, FaceDetectionCreateParams{
		ConfidenceScore: Ptr(0.7),
		Assets:          FaceDetectionCreateParamsAssets{TargetFilePath: "api-assets/id/group.jpg"},
	})
	if err != nil || res.ID != "fd-1" {
		t.Fatalf("res %+v err %v", res, err)
	}
	fd, err := c.FaceDetection.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fd.Status != FaceDetectionComplete || !fd.Status.Terminal() || len(fd.Faces) != 1 || fd.Faces[0].Path != "api-assets/id/0-0.png" {
		t.Errorf("fd %+v", fd)
	}
	reqs := f.requests()
	if reqs[0].Method != "POST" || reqs[0].Path != "/v1/face-detection" ||
		string(reqs[0].Body) != `{"confidence_score":0.7,"assets":{"target_file_path":"api-assets/id/group.jpg"}}` {
		t.Errorf("create sent %s %s %s", reqs[0].Method, reqs[0].Path, reqs[0].Body)
	}
	if reqs[1].Method != "GET" || reqs[1].Path != "/v1/face-detection/fd-1" {
		t.Errorf("get sent %s %s", reqs[1].Method, reqs[1].Path)
	}
	// Validation applies.
	if _, err := c.FaceDetection.Create(ctx, FaceDetectionCreateParams{ConfidenceScore: Ptr(2.0)}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("err = %v", err)
	}
	if _, err := c.FaceDetection.Get(ctx, " "); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("err = %v", err)
	}
	if len(f.requests()) != 2 {
		t.Error("invalid calls reached the server")
	}
}
