package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// Every call to Magic Hour goes through these wrappers: they wait for the
// process-wide rate limiter (Config.UpstreamRPS) and count the call by
// route and status for /metrics.

// upWait waits for the upstream rate limiter.
func (g *Gateway) upWait(ctx context.Context) error {
	if g.limiter == nil {
		return nil
	}
	return g.limiter.Wait(ctx)
}

// observe counts an upstream call: status is the HTTP status, or
// "error" when no answer came.
func (g *Gateway) observe(route string, err error, start time.Time) {
	status := "200"
	if err != nil {
		var ae *magichour.APIError
		switch {
		case errors.As(err, &ae):
			status = strconv.Itoa(ae.StatusCode)
		case errors.Is(err, magichour.ErrNotFound):
			status = "404"
		case errors.Is(err, magichour.ErrInvalidRequest):
			status = "invalid"
		default:
			status = "error"
		}
	}
	g.metrics.upstreamCalls.WithLabelValues(route, status).Inc()
	g.metrics.upstreamSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// upCreate sends a create. Unlike the other wrappers it does not wait for
// the rate limiter: submit takes the token before it commits the job as
// creating, so a process killed while waiting for a token leaves the job
// pending (safe to send) rather than creating (never resent).
func (g *Gateway) upCreate(ctx context.Context, tool string, params json.RawMessage) (*magichour.CreateResponse, error) {
	route := "POST /v1/" + tool
	start := time.Now()
	var res *magichour.CreateResponse
	var err error
	if op := g.lookup(tool); op != nil && op.IsTool() {
		res, err = g.up.CreateOperation(ctx, op, params) // checked at submit against the catalog then in use
	} else {
		res, err = g.up.Create(ctx, magichour.Tool(tool), params)
	}
	g.observe(route, err, start)
	return res, err
}

func (g *Gateway) upGetProject(ctx context.Context, kind, id string) (*magichour.Project, error) {
	if err := g.upWait(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	p, err := g.up.GetProject(ctx, magichour.Kind(kind), id)
	g.observe("GET /v1/"+kind+"-projects/{id}", err, start)
	return p, err
}

func (g *Gateway) upDeleteProject(ctx context.Context, kind, id string) error {
	if err := g.upWait(ctx); err != nil {
		return err
	}
	start := time.Now()
	err := g.up.DeleteProject(ctx, magichour.Kind(kind), id)
	g.observe("DELETE /v1/"+kind+"-projects/{id}", err, start)
	return err
}

// upUpload sends a stored file to Magic Hour (upload URL + PUT) and
// returns its file_path.
func (g *Gateway) upUpload(ctx context.Context, r io.Reader, size int64, ext string) (string, error) {
	if err := g.upWait(ctx); err != nil {
		return "", err
	}
	start := time.Now()
	p, err := g.up.Files.UploadReader(ctx, r, size, ext)
	g.observe("POST /v1/files/upload-urls", err, start)
	return p, err
}

func (g *Gateway) upFaceDetect(ctx context.Context, params json.RawMessage) (*magichour.CreateResponse, error) {
	var p magichour.FaceDetectionCreateParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	if err := g.upWait(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := g.up.FaceDetection.Create(ctx, p)
	g.observe("POST /v1/face-detection", err, start)
	return res, err
}

func (g *Gateway) upFaceGet(ctx context.Context, id string) (*magichour.FaceDetection, error) {
	if err := g.upWait(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	fd, err := g.up.FaceDetection.Get(ctx, id)
	g.observe("GET /v1/face-detection/{id}", err, start)
	return fd, err
}

// faceDetectionOp is the catalog's face detection create operation.
func faceDetectionOp() *catalog.Operation { return catalog.Lookup("face-detection") }
