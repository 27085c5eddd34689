package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// The drop-in API: Magic Hour's own routes, served by the gateway with
// the same bodies, so an app using an official SDK switches by changing
// its base URL and key (a tenant key). Project ids are gateway job ids.
//
//	POST   /v1/<tool>                        create (same body) → {id, credits_charged, estimated_frame_cost|frame_cost}
//	GET    /v1/{video,image,audio}-projects/{id}
//	DELETE /v1/{video,image,audio}-projects/{id}
//	POST   /v1/files/upload-urls             upload URLs pointing at the gateway
//	PUT    /v1/files/uploads/{id}/{token}    the upload itself (the token is the credential)
//	POST   /v1/face-detection, GET /v1/face-detection/{id}   proxied to Magic Hour
//	GET    /v1/downloads/{job}/{n}/{sig}/{name}             stored outputs (signed URL, no expiry)

// downloadExpiry is the expires_at the drop-in API reports for the
// gateway's own download URLs: they do not expire, so a date far ahead.
const downloadExpiry = 10 * 365 * 24 * time.Hour

func (g *Gateway) dropInRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/{tool}", g.auth(false, g.handleDropCreate))
	for _, kind := range []string{"video", "image", "audio"} {
		mux.HandleFunc("GET /v1/"+kind+"-projects/{id}", g.auth(false, func(w http.ResponseWriter, r *http.Request, c caller) {
			g.handleDropGet(w, r, c, kind)
		}))
		mux.HandleFunc("DELETE /v1/"+kind+"-projects/{id}", g.auth(false, func(w http.ResponseWriter, r *http.Request, c caller) {
			g.handleDropDelete(w, r, c, kind)
		}))
	}
	mux.HandleFunc("POST /v1/files/upload-urls", g.auth(false, g.handleDropUploadURLs))
	mux.HandleFunc("PUT /v1/files/uploads/{id}/{token}", g.handleUploadPut)
	mux.HandleFunc("POST /v1/face-detection", g.auth(false, g.handleDropFaceCreate))
	mux.HandleFunc("GET /v1/face-detection/{id}", g.auth(false, g.handleDropFaceGet))
	mux.HandleFunc("GET /v1/downloads/{job}/{n}/{sig}/{name}", g.handleDropDownload)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "Not Found", nil)
	})
}

func needTenant(w http.ResponseWriter, c caller) bool {
	if c.Tenant == nil {
		writeError(w, http.StatusForbidden, "forbidden", "use a tenant key (the admin key cannot create)", nil)
		return false
	}
	return true
}

func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return readLimited(w, r, g.cfg.MaxBodyBytes)
}

// handleDropCreate is POST /v1/<tool>: the job is accepted like a native
// submission (validated, budget checked, recorded) and answered at once
// the way Magic Hour answers, with the gateway job id as the project id.
func (g *Gateway) handleDropCreate(w http.ResponseWriter, r *http.Request, c caller) {
	op := g.lookup(r.PathValue("tool"))
	if op == nil || op.Role != catalog.RoleCreate || op.Path != "/v1/"+r.PathValue("tool") ||
		(op.Kind != catalog.KindVideo && op.Kind != catalog.KindImage && op.Kind != catalog.KindAudio) {
		writeError(w, http.StatusNotFound, "not_found", "Not Found", nil)
		return
	}
	if !needTenant(w, c) {
		return
	}
	body, ok := g.readBody(w, r)
	if !ok {
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 || strings.TrimSpace(string(body))[0] != '{' {
		writeError(w, http.StatusBadRequest, "malformed_json", "the body must be a JSON object", nil)
		return
	}
	if !json.Valid(body) {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON", nil)
		return
	}
	req := submitRequest{Tool: op.Name, Params: body, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	job, status, apiErr := g.validateSubmit(&req)
	if apiErr == nil {
		var created bool
		job, created, status, apiErr = g.accept(r.Context(), c.Tenant, job, nil)
		if apiErr == nil && created {
			g.recordWarnings(r.Context(), job.ID, req.warnings)
		}
	}
	if apiErr != nil {
		// Magic Hour names the field without our "params." prefix.
		msg := strings.ReplaceAll(apiErr.Message, "params.", "")
		for i := range apiErr.Fields {
			apiErr.Fields[i].Field = strings.TrimPrefix(apiErr.Fields[i].Field, "params.")
		}
		writeError(w, status, apiErr.Code, msg, apiErr.Fields)
		return
	}
	resp := map[string]any{"id": job.ID, "credits_charged": job.Credits}
	switch op.Kind {
	case catalog.KindVideo:
		resp["estimated_frame_cost"] = job.Credits
	case catalog.KindImage:
		resp["frame_cost"] = job.Credits
	}
	writeJSON(w, http.StatusOK, resp)
}

// dropJob loads a job for the drop-in project routes: 404 "Not Found"
// (Magic Hour's answer) when it is not the caller's, not of this kind, or
// deleted through the drop-in API.
func (g *Gateway) dropJob(w http.ResponseWriter, r *http.Request, c caller, kind string) *Job {
	j, err := g.store.Job(r.Context(), c.scope(), r.PathValue("id"))
	if err == nil && (j.Kind != kind || !j.DeletedAt.IsZero()) {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "Not Found", nil)
		return nil
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return nil
	}
	return j
}

func (g *Gateway) handleDropGet(w http.ResponseWriter, r *http.Request, c caller, kind string) {
	j := g.dropJob(w, r, c, kind)
	if j == nil {
		return
	}
	var outs []Output
	if j.Status == StatusStored {
		var err error
		if outs, err = g.store.Outputs(r.Context(), j.ID); err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
	}
	key, err := g.signingKey(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	writeJSON(w, http.StatusOK, projectBody(baseURL(r), key, j, outs))
}

// dropStatus maps a job's status to Magic Hour's project status: the
// project is complete only once every output is stored by the gateway.
func dropStatus(s Status) string {
	switch s {
	case StatusPending, StatusCreating, StatusSubmitted, StatusQueued:
		return "queued"
	case StatusRendering, StatusStoring:
		return "rendering"
	case StatusStored:
		return "complete"
	case StatusCanceled:
		return "canceled"
	}
	return "error" // error, create_outcome_unknown
}

// projectBody renders a job in Magic Hour's project shape (the catalog's
// wire type, shared with the emulator). Fields only Magic Hour knows (type,
// width, height, fps, ...) come from the upstream project as seen at
// completion, else from the request or zero values.
func projectBody(base string, key []byte, j *Job, outs []Output) catalog.ProjectBody {
	var body catalog.ProjectBody
	seen := map[string]json.RawMessage{}
	if len(j.UpstreamProject) > 0 {
		_ = json.Unmarshal(j.UpstreamProject, &body)
		_ = json.Unmarshal(j.UpstreamProject, &seen)
	}
	body.Kind = catalog.Kind(j.Kind)
	params := catalog.DecodeBody(j.Params)
	has := func(k string) bool { _, ok := seen[k]; return ok }
	if !has("name") {
		if n, ok := params["name"].(string); ok {
			body.Name = &n
		}
	}
	if !has("type") {
		body.Type = strings.ToUpper(strings.ReplaceAll(j.Tool, "-", "_"))
	}
	if !has("created_at") {
		body.CreatedAt = catalog.Timestamp(j.CreatedAt)
	}
	if !has("enabled") {
		body.Enabled = true
	}
	switch j.Kind {
	case "video":
		if !has("start_seconds") {
			body.StartSeconds, _ = catalog.Number(params, "start_seconds")
		}
		if !has("end_seconds") {
			body.EndSeconds, _ = catalog.Number(params, "end_seconds")
		}
		if !has("fps") {
			body.FPS, _ = catalog.Number(params, "fps")
		}
	case "image":
		if !has("image_count") {
			n, _ := catalog.Number(params, "image_count")
			body.ImageCount = max(1, int(n))
		}
	}
	body.ID = j.ID
	body.Status = dropStatus(j.Status)
	body.CreditsCharged = j.Credits
	body.TotalFrameCost = j.Credits
	body.Error = nil
	if j.Status == StatusError || j.Status == StatusCreateOutcomeUnknown {
		code := j.ErrorCode
		if code == "" {
			code = "unknown_error"
		}
		body.Error = &catalog.ProjectError{Code: code, Message: j.ErrorMessage}
	}
	body.Downloads = []catalog.Download{}
	if j.Status == StatusStored {
		exp := catalog.Timestamp(j.FinishedAt.Add(downloadExpiry))
		for _, o := range outs {
			if o.StorageKey == "" {
				continue // deleted through the native API
			}
			body.Downloads = append(body.Downloads, catalog.Download{URL: downloadURL(base, key, j, o), ExpiresAt: exp})
		}
	}
	body.Download = nil
	if len(body.Downloads) > 0 {
		body.Download = &body.Downloads[0]
	}
	return body
}

// downloadURL is the gateway's URL of a stored output, signed so that it
// needs no API key (SDKs download without one) and cannot be guessed.
func downloadURL(base string, key []byte, j *Job, o Output) string {
	name := path.Base(o.StorageKey)
	if len(outsName(o)) > 0 {
		name = outsName(o)
	}
	return fmt.Sprintf("%s/v1/downloads/%s/%d/%s/%s", base, j.ID, o.Index, signDownload(key, j.ID, o.Index), name)
}

// outsName names a download after the job ("job_x-0.mp4"), so that two
// jobs downloaded into one folder do not overwrite each other.
func outsName(o Output) string {
	return o.JobID + "-" + strconv.Itoa(o.Index) + path.Ext(o.StorageKey)
}

func signDownload(key []byte, jobID string, n int) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "download\x00%s\x00%d", jobID, n)
	return hex.EncodeToString(m.Sum(nil))[:32]
}

func (g *Gateway) signingKey(ctx context.Context) ([]byte, error) {
	g.urlKeyMu.Lock()
	defer g.urlKeyMu.Unlock()
	if g.urlKey != nil {
		return g.urlKey, nil
	}
	k, err := g.store.URLSigningKey(ctx)
	if err != nil {
		return nil, err
	}
	g.urlKey = k
	return k, nil
}

// handleDropDownload serves a stored output to whoever holds its signed URL.
func (g *Gateway) handleDropDownload(w http.ResponseWriter, r *http.Request) {
	key, err := g.signingKey(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	jobID := r.PathValue("job")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || !hmac.Equal([]byte(signDownload(key, jobID, n)), []byte(r.PathValue("sig"))) {
		writeError(w, http.StatusForbidden, "bad_signature", "invalid download URL", nil)
		return
	}
	j, err := g.store.Job(r.Context(), "", jobID)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "Not Found", nil)
		return
	}
	g.serveOutput(w, r, j, n)
}

func (g *Gateway) handleDropDelete(w http.ResponseWriter, r *http.Request, c caller, kind string) {
	j := g.dropJob(w, r, c, kind)
	if j == nil {
		return
	}
	ctx := r.Context()
	load := func() (*Job, error) { return g.store.Job(ctx, c.scope(), j.ID) }
	res, err := g.deleteJob(ctx, j, load, "drop-in", true)
	switch {
	case errIsCreateInFlight(err):
		writeError(w, http.StatusConflict, "create_in_flight", "the project is being created; retry in a moment", nil)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	// The project is gone for the app either way (a later GET is a 404),
	// like Magic Hour's delete: left-over files and a failed upstream
	// delete are logged and in the timeline.
	if res.StorageErr != nil {
		g.log.Warn("gateway: drop-in delete: stored output not deleted", "job", j.ID, "err", res.StorageErr)
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDropUploadURLs answers upload URLs on the gateway itself: the app
// PUTs the bytes to the gateway, which keeps them and uploads them to
// Magic Hour when a job that uses them is submitted.
func (g *Gateway) handleDropUploadURLs(w http.ResponseWriter, r *http.Request, c caller) {
	if !needTenant(w, c) {
		return
	}
	var req struct {
		Items []struct {
			Type      string `json:"type"`
			Extension string `json:"extension"`
		} `json:"items"`
	}
	body, ok := g.readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed_json", "malformed JSON: "+err.Error(), nil)
		return
	}
	if len(req.Items) == 0 || len(req.Items) > 100 {
		writeError(w, http.StatusBadRequest, "invalid_items", "items must hold 1 to 100 entries", []fieldError{{"items", "1 to 100 entries"}})
		return
	}
	type item struct {
		UploadURL string `json:"upload_url"`
		ExpiresAt string `json:"expires_at"`
		FilePath  string `json:"file_path"`
	}
	out := []item{}
	for i, it := range req.Items {
		ext := strings.ToLower(strings.TrimPrefix(it.Extension, "."))
		media := catalog.MediaOfExtension(ext)
		if media == "" || (it.Type != "" && it.Type != media) {
			f := fmt.Sprintf("items[%d].extension", i)
			writeError(w, http.StatusBadRequest, "invalid_extension", fmt.Sprintf("%s: unsupported %s extension %q", f, it.Type, it.Extension),
				[]fieldError{{f, "unsupported"}})
			return
		}
		u, token, err := g.newUpload(r.Context(), c.Tenant.ID, ext)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
			return
		}
		out = append(out, item{UploadURL: fmt.Sprintf("%s/v1/files/uploads/%s/%s", baseURL(r), u.ID, token),
			ExpiresAt: u.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z"), FilePath: uploadFilePath(u)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// handleDropFaceCreate proxies a face detection to Magic Hour (gateway
// uploads in it are sent to Magic Hour first) and remembers whose it is.
func (g *Gateway) handleDropFaceCreate(w http.ResponseWriter, r *http.Request, c caller) {
	if !needTenant(w, c) {
		return
	}
	body, ok := g.readBody(w, r)
	if !ok {
		return
	}
	op := faceDetectionOp()
	if err := op.ValidateJSON(body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_params", err.Error(), nil)
		return
	}
	if fields := g.checkUploads(r.Context(), c.Tenant.ID, op, body); len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_params", fields[0].Field+": "+fields[0].Message, nil)
		return
	}
	params, _, err := g.resolveUploads(r.Context(), c.Tenant.ID, op, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, "upload_failed", err.Error(), nil)
		return
	}
	res, err := g.upFaceDetect(r.Context(), params)
	if err != nil {
		g.writeUpstreamError(w, err)
		return
	}
	if err := g.store.AddFaceDetection(r.Context(), res.ID, c.Tenant.ID, g.now()); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "database error", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": res.ID, "credits_charged": res.CreditsCharged})
}

func (g *Gateway) handleDropFaceGet(w http.ResponseWriter, r *http.Request, c caller) {
	id := r.PathValue("id")
	owner, err := g.store.FaceDetectionTenant(r.Context(), id)
	if err != nil || (c.Tenant != nil && owner != c.Tenant.ID) {
		writeError(w, http.StatusNotFound, "not_found", "Not Found", nil)
		return
	}
	fd, err := g.upFaceGet(r.Context(), id)
	if err != nil {
		g.writeUpstreamError(w, err)
		return
	}
	if fd.Faces == nil {
		fd.Faces = []magichour.Face{}
	}
	writeJSON(w, http.StatusOK, fd)
}

// writeUpstreamError passes a Magic Hour error on with its status.
func (g *Gateway) writeUpstreamError(w http.ResponseWriter, err error) {
	var ae *magichour.APIError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.StatusCode, "upstream_"+strconv.Itoa(ae.StatusCode), ae.Message, nil)
	case errors.Is(err, magichour.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "Not Found", nil)
	case errors.Is(err, magichour.ErrInvalidRequest):
		writeError(w, http.StatusBadRequest, "invalid_params", err.Error(), nil)
	default:
		writeError(w, http.StatusBadGateway, "upstream_unavailable", "Magic Hour did not answer: "+err.Error(), nil)
	}
}
